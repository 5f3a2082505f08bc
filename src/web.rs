//! The one-port HTTP front: CORS and request logging around a router that answers `/healthz`
//! and `/readyz` itself, serves the web app at `/app/` (`web/app.rs`), and steers every other
//! request by content type — `application/grpc*`
//! (gRPC and gRPC-web) to the tonic routes, everything else to the REST gateway.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Instant};

use axum::{
    Json, Router,
    body::Body,
    extract::{ConnectInfo, Path, Request, State},
    http::{HeaderName, HeaderValue, Method, StatusCode, header},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde_json::json;
use tonic::{service::Routes, transport::server::TcpConnectInfo};
use tower::{Layer as _, ServiceExt as _, util::BoxCloneSyncService};
use tower_http::cors::{AllowOrigin, CorsLayer};

mod app;

use crate::{
    config::Settings,
    security::{MediaSigner, MediaUrlError, unix_now},
    services::Services,
};

/// Assembles the application router.
pub fn app(settings: &Settings, grpc: Routes, services: Services) -> anyhow::Result<Router> {
    let in_process = BoxCloneSyncService::new(grpc.clone());
    let body_timeout = std::time::Duration::from_secs(settings.body_timeout.max(1));
    let rest = videoflix_gateway::rest(in_process, settings.public_url.as_str(), body_timeout);
    // A request message must arrive within the body timeout, as a REST body must (an upload's
    // stream has its own idle timeout instead). Inside tonic-web, so gRPC-web gets the status.
    let grpc = tower::ServiceBuilder::new()
        .map_request(move |request: Request<tonic::body::Body>| {
            if request.uri().path() == UPLOAD_METHOD {
                request
            } else {
                request.map(|body| grpc_deadline(body, body_timeout))
            }
        })
        .service(grpc);
    let grpc_web = tonic_web::GrpcWebLayer::new().layer(grpc);
    let steer = tower::service_fn(move |mut request: Request| {
        let grpc_web = grpc_web.clone();
        let rest = rest.clone();
        async move {
            if is_grpc(&request) {
                // tonic reads the peer address from its own connection-info type.
                if let Some(ConnectInfo(addr)) = request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .copied()
                {
                    request.extensions_mut().insert(TcpConnectInfo {
                        local_addr: None,
                        remote_addr: Some(addr),
                    });
                }
                let mut response = grpc_web.oneshot(request).await?;
                message_limit_status(response.headers_mut());
                Ok::<_, Infallible>(response.map(Body::new))
            } else {
                let response = rest.oneshot(request).await?;
                Ok(response.into_response())
            }
        }
    });
    let media = media_router(settings);
    let main = Router::new()
        .route("/healthz", get(healthz))
        .route("/healthz/", get(healthz))
        .route("/readyz", get(readyz))
        .route("/readyz/", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(Front {
            services,
            metrics_token: settings.metrics_token.clone().map(Arc::from),
        })
        .fallback_service(steer)
        .layer(cors(settings)?);
    let web_app = app::router(settings.web_dir.clone());
    Ok(media
        .merge(web_app)
        .merge(main)
        .layer(middleware::from_fn(log_request)))
}

/// Where media files are served from, and who signs their URLs.
#[derive(Clone)]
struct Media {
    dir: std::path::PathBuf,
    signer: MediaSigner,
}

/// `GET|HEAD /media/<expires>/<signature>/<path>`: a stored file, when the URL is signed and
/// unexpired (else 403). tower-http's `ServeFile` answers Range (206), HEAD and conditional
/// requests with the right content type. Any origin may read (`<video crossorigin>`, `<track>`,
/// hls.js on the frontend's origin): the URL itself is the permission.
fn media_router(settings: &Settings) -> Router {
    let state = Media {
        dir: settings.media_dir.clone(),
        signer: MediaSigner::new(settings.signing_secret()),
    };
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::any())
        .allow_methods([Method::GET, Method::HEAD, Method::OPTIONS])
        .allow_headers([
            header::RANGE,
            header::IF_NONE_MATCH,
            header::IF_MODIFIED_SINCE,
        ])
        .expose_headers([
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            header::ACCEPT_RANGES,
            header::ETAG,
            header::LAST_MODIFIED,
        ])
        .max_age(std::time::Duration::from_secs(86_400));
    Router::new()
        .route("/media/{expires}/{signature}/{*path}", get(media_file))
        .with_state(state)
        .layer(cors)
}

async fn media_file(
    State(media): State<Media>,
    Path((expires, signature, path)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    let path = match media.signer.verify(&expires, &signature, &path, unix_now()) {
        Ok(path) => path,
        Err(e) => {
            let message = match e {
                MediaUrlError::Expired => {
                    "This media URL has expired: fetch the video again for fresh URLs."
                }
                MediaUrlError::Invalid => "Invalid media URL.",
            };
            return (
                StatusCode::FORBIDDEN,
                Json(json!({"type": ["forbidden"], "message": [message]})),
            )
                .into_response();
        }
    };
    // `verify` accepted only plain segments under videos/: no way out of the media folder.
    let full = media.dir.join(path);
    // Only files are media: ServeFile would answer a folder's HEAD with its inode size and its
    // GET with nothing.
    if !tokio::fs::metadata(&full).await.is_ok_and(|m| m.is_file()) {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"type": ["not_found"], "message": ["Not found."]})),
        )
            .into_response();
    }
    // 1 MiB reads: a quarter fewer syscalls and frames than 256 KiB on large files, and a
    // tenth of the default 64 KiB's (bench/media.sh).
    let file = tower_http::services::ServeFile::new(full).with_buf_chunk_size(1 << 20);
    let head = request.method() == Method::HEAD;
    match file.oneshot(request).await {
        Ok(mut response) => {
            if response.status().is_success() {
                if !head
                    && let Some(bytes) = response
                        .headers()
                        .get(header::CONTENT_LENGTH)
                        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
                {
                    crate::monitoring::media_bytes(bytes);
                }
                response.headers_mut().insert(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("private, max-age=3600"),
                );
                // The registered types of HLS (RFC 8216) and fMP4 segments; the extension
                // table knows them by older names or not at all.
                let streaming = if path.ends_with(".m3u8") {
                    Some("application/vnd.apple.mpegurl")
                } else if path.ends_with(".m4s") {
                    Some("video/iso.segment")
                } else {
                    None
                };
                if let Some(kind) = streaming {
                    response
                        .headers_mut()
                        .insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
                }
            }
            if response.status() == StatusCode::NOT_FOUND {
                return (
                    StatusCode::NOT_FOUND,
                    Json(json!({"type": ["not_found"], "message": ["Not found."]})),
                )
                    .into_response();
            }
            response.map(Body::new)
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"type": ["server"], "message": [format!("{e}")]})),
        )
            .into_response(),
    }
}

/// The one client-streaming method: its messages may take as long as the upload does.
const UPLOAD_METHOD: &str = "/videoflix.v1.VideoService/UploadVideo";

/// `body` with a deadline; past it tonic answers DEADLINE_EXCEEDED saying why.
fn grpc_deadline(body: tonic::body::Body, limit: std::time::Duration) -> tonic::body::Body {
    use http_body_util::BodyExt as _;
    tonic::body::Body::new(videoflix_gateway::deadline::limit(body, limit).map_err(
        move |e| -> axum::BoxError {
            if videoflix_gateway::deadline::is_body_deadline(&*e) {
                Box::new(tonic::Status::deadline_exceeded(format!(
                    "the request message did not arrive within {} s",
                    limit.as_secs()
                )))
            } else {
                e
            }
        },
    ))
}

fn is_grpc(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// CORS for REST and gRPC-web alike, outermost so preflights and error responses carry it.
fn cors(settings: &Settings) -> anyhow::Result<CorsLayer> {
    let origins = settings.allowed_origins();
    let allow_origin = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        let values = origins
            .iter()
            .map(|o| HeaderValue::from_str(o))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("CORS_ORIGINS: {e}"))?;
        AllowOrigin::list(values)
    };
    Ok(CorsLayer::new()
        .allow_origin(allow_origin)
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::RANGE,
            HeaderName::from_static("x-requested-with"),
            HeaderName::from_static("x-grpc-web"),
            HeaderName::from_static("x-user-agent"),
            HeaderName::from_static("grpc-timeout"),
            HeaderName::from_static("x-request-id"),
        ])
        .expose_headers([
            HeaderName::from_static("grpc-status"),
            HeaderName::from_static("grpc-message"),
            HeaderName::from_static("grpc-status-details-bin"),
            header::RETRY_AFTER,
            header::CONTENT_RANGE,
            header::CONTENT_LENGTH,
            HeaderName::from_static("x-request-id"),
        ])
        .max_age(std::time::Duration::from_secs(86_400)))
}

/// The request id: the client's `x-request-id` when it is a sane token (visible ASCII, at most
/// 128 bytes), else a new one.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().simple().to_string(), str::to_owned)
}

const REQUEST_ID: &str = "x-request-id";

/// One log line per request (method, path, status and gRPC status, latency) and its metrics;
/// every log line of the request carries its id, which the response returns.
async fn log_request(mut request: Request, next: Next) -> Response {
    use tracing::Instrument as _;
    let id = request_id(&request);
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    let method = request.method().clone();
    let path = loggable_path(request.uri().path());
    let grpc = is_grpc(&request);
    let grpc_method = grpc.then(|| grpc_method(request.uri().path()));
    let started = Instant::now();
    let span = tracing::info_span!("request", request_id = %id);
    let mut response = crate::monitoring::with_request_id(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let _entered = span.enter();
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    let took = started.elapsed();
    let latency_ms = took.as_secs_f64() * 1000.0;
    let grpc_status = response
        .headers()
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .unwrap_or(if grpc { "0" } else { "-" })
        .to_owned();
    let (protocol, route, status) = match grpc_method {
        Some(name) => ("grpc", name, grpc_status.clone()),
        None => {
            let template = response
                .extensions()
                .get::<videoflix_gateway::RouteTemplate>()
                .map(|t| t.0.clone());
            let (protocol, route) = match template {
                Some(template) => ("rest", template),
                None if path.starts_with("/media/") => ("media", "/media/{*path}".to_owned()),
                None if FRONT_ROUTES.contains(&path.as_str()) => ("other", path.clone()),
                // Unknown paths are counted together: a scanner must not grow the label set.
                None => ("other", "unmatched".to_owned()),
            };
            (protocol, route, response.status().as_u16().to_string())
        }
    };
    crate::monitoring::request(protocol, route, status, took);
    tracing::info!(
        %method,
        %path,
        status = response.status().as_u16(),
        grpc_status,
        latency_ms = format_args!("{latency_ms:.2}"),
        "request"
    );
    response
}

/// The front's own routes, counted by their path.
const FRONT_ROUTES: [&str; 5] = ["/healthz", "/healthz/", "/readyz", "/readyz/", "/metrics"];

/// A gRPC method as a metrics label: `/package.Service/Method` for our services, health and
/// reflection; anything else is `unknown` (the set of labels stays bounded).
fn grpc_method(path: &str) -> String {
    let known = ["/videoflix.v1.", "/grpc.health.v1.", "/grpc.reflection."];
    let well_formed = path.len() <= 128
        && path[1..].split('/').count() == 2
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'/' || b == b'_');
    if well_formed && known.iter().any(|prefix| path.starts_with(prefix)) {
        path.to_owned()
    } else {
        "unknown".to_owned()
    }
}

/// tonic answers a request message over its size limit with OUT_OF_RANGE, which reads as "an
/// index past the end"; it is RESOURCE_EXHAUSTED (a limit), saying which.
fn message_limit_status(headers: &mut http::HeaderMap) {
    let over_limit = headers.get("grpc-status").is_some_and(|s| s == "11")
        && headers
            .get("grpc-message")
            .and_then(|m| m.to_str().ok())
            .is_some_and(|m| {
                m.contains("message length too large")
                    || m.contains("message%20length%20too%20large")
            });
    if over_limit {
        headers.insert("grpc-status", HeaderValue::from_static("8"));
        headers.insert("grpc-message", HeaderValue::from_static(MESSAGE_LIMIT_TEXT));
    }
}

/// What a client is told when a message is over tonic's default limit.
pub(crate) const MESSAGE_LIMIT_TEXT: &str =
    "A message is larger than the limit of 4 MiB (4194304 bytes); upload files in smaller chunks.";

/// A request path fit for the log: a signed media URL grants access for hours, so its expiry
/// and signature are left out (`/media/…/videos/1/…`).
fn loggable_path(path: &str) -> String {
    match path.strip_prefix("/media/") {
        Some(rest) => {
            let stored = rest.splitn(3, '/').nth(2).unwrap_or_default();
            format!("/media/…/{stored}")
        }
        None => path.to_owned(),
    }
}

/// State of the front's own routes.
#[derive(Clone)]
struct Front {
    services: Services,
    /// What `/metrics` asks for as a bearer token, when set.
    metrics_token: Option<Arc<str>>,
}

/// `GET /metrics`: Prometheus text format; with METRICS_TOKEN, only for `Bearer <token>`.
async fn metrics(State(front): State<Front>, headers: http::HeaderMap) -> Response {
    if let Some(token) = &front.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        // Digests compared: the time taken says nothing about the token.
        let allowed = given.is_some_and(|given| {
            use sha2::{Digest as _, Sha256};
            Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes())
        });
        if !allowed {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({"type": ["token"], "message": ["The metrics need METRICS_TOKEN as a bearer token."]})),
            )
                .into_response();
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        crate::monitoring::render(&front.services).await,
    )
        .into_response()
}

async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// What a readiness check found.
struct Probe {
    database: bool,
    /// None when no Redis is configured.
    redis: Option<bool>,
}

impl Probe {
    async fn run(services: &Services) -> Self {
        let database = services.store.ping().await.is_ok();
        let redis = match &services.redis {
            Some(redis) => Some(redis.ping().await.is_ok()),
            None => None,
        };
        Self { database, redis }
    }

    fn ready(&self) -> bool {
        self.database && self.redis != Some(false)
    }
}

/// Whether every backend this process depends on answers.
pub async fn readiness(services: &Services) -> bool {
    Probe::run(services).await.ready()
}

async fn readyz(State(Front { services, .. }): State<Front>) -> Response {
    let probe = Probe::run(&services).await;
    let ready = probe.ready();
    let body = json!({
        "status": if ready { "ready" } else { "unavailable" },
        "database": {
            "backend": services.store.backend_name(),
            "ok": probe.database,
        },
        "redis": match (probe.redis, &services.redis) {
            (Some(ok), Some(redis)) => json!({
                "configured": true,
                "ok": ok,
                "bypassed": redis.is_down(),
                "failed_calls": redis.failed_calls(),
            }),
            _ => json!({"configured": false}),
        },
    });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn media_paths_are_logged_without_their_signature() {
        assert_eq!(
            loggable_path("/media/1796169600/0KrgwtoHrCdUyh4AhOSTPw/videos/1/g/360p.mp4"),
            "/media/…/videos/1/g/360p.mp4"
        );
        assert_eq!(loggable_path("/api/videos/"), "/api/videos/");
        assert_eq!(loggable_path("/media/x"), "/media/…/");
    }
}
