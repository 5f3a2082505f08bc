//! Videoflix REST gateway: the legacy Django REST paths and JSON shapes, mapped onto the gRPC
//! services, plus the generated OpenAPI document with Swagger UI and Redoc served locally.
//!
//! The gateway knows only the contract (`proto/`): every handler calls the gRPC service through
//! a generated client over the server's in-process tower service, so REST and gRPC share one
//! validation, one authentication and one error model. It holds no business logic.

mod call;
mod conditional;
mod contract;
pub mod deadline;
mod docs;
mod dto;
mod error;
mod routes;

use std::convert::Infallible;

use axum::{Router, body::Body, http::Request};
use tower::{ServiceBuilder, util::MapRequest};
use utoipa::OpenApi as _;

pub use call::AlreadyThrottled;
pub use error::{
    ApiError, ErrorBody, REASON_ETAG_MISMATCH, REASON_PAYLOAD_TOO_LARGE, REASON_STORAGE_FULL,
    http_status,
};
pub use routes::{OPERATIONS, Operation, UNMAPPED_RPCS};

/// Client code generated from `proto/videoflix/v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("videoflix.v1");
}

/// The gRPC server as an in-process tower service.
pub type GrpcService = tower::util::BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    Infallible,
>;

/// The route template a REST request matched (`/api/videos/{id}/`), in its response's
/// extensions: metrics count by template, never by raw path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTemplate(pub String);

async fn route_template(
    request: Request<Body>,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let template = request
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map(|path| RouteTemplate(path.as_str().to_owned()));
    let mut response = next.run(request).await;
    if let Some(template) = template {
        response.extensions_mut().insert(template);
    }
    response
}

/// The REST application: path normalisation in front of the router.
pub type RestService = MapRequest<Router, fn(Request<Body>) -> Request<Body>>;

/// Shared state of the handlers.
#[derive(Clone)]
pub(crate) struct Gateway {
    grpc: GrpcService,
    renders: conditional::Renders,
    /// This server's public base URL without its trailing slash (`PUBLIC_URL`): absolute links
    /// the API answers (DRF's `next`/`previous`) start with it, never with a client's `Host`.
    public_base: std::sync::Arc<str>,
}

/// The REST API, its OpenAPI document (`/openapi.json`), Swagger UI (`/swagger/`) and Redoc
/// (`/redoc/`), calling `grpc` for every operation; absolute links start at `public_url`, and
/// a request body (but an upload's, which has its own idle timeout) must arrive within
/// `body_timeout`.
pub fn rest(grpc: GrpcService, public_url: &str, body_timeout: std::time::Duration) -> RestService {
    let (api, mut openapi) = routes::router().split_for_parts();
    contract::complete(&mut openapi);
    let router = api
        .merge(docs::router(openapi))
        .route_layer(axum::middleware::from_fn(route_template))
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .with_state(Gateway {
            grpc,
            renders: conditional::Renders::new(),
            public_base: public_url.trim_end_matches('/').into(),
        });
    // Video uploads stream through without axum's body limit (the service enforces
    // UPLOAD_MAX_BYTES as the bytes arrive); every other body keeps the default limit.
    let uploads = router
        .clone()
        .layer(axum::extract::DefaultBodyLimit::disable());
    // A client sending its body slowly holds a connection: it gets `body_timeout` in all.
    let router = router.layer(axum::middleware::map_request(
        move |request: Request<Body>| async move {
            request.map(|body| Body::new(deadline::limit(body, body_timeout)))
        },
    ));
    let steer = tower::service_fn(move |request: Request<Body>| {
        let target = if routes::is_upload(&request) {
            uploads.clone()
        } else {
            router.clone()
        };
        tower::ServiceExt::oneshot(target, request)
    });
    ServiceBuilder::new()
        .map_request(normalize_path as fn(Request<Body>) -> Request<Body>)
        .service(Router::new().fallback_service(steer))
}

/// The OpenAPI document, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    let mut openapi = routes::router().split_for_parts().1;
    contract::complete(&mut openapi);
    openapi
}

/// The legacy frontend calls paths both with and without their trailing slash: route on the
/// slashed form. Paths whose last segment has a dot (`/openapi.json`, assets) are left alone.
fn normalize_path(mut request: Request<Body>) -> Request<Body> {
    let uri = request.uri();
    let path = uri.path();
    let last = path.rsplit('/').next().unwrap_or("");
    if path.ends_with('/') || last.contains('.') {
        return request;
    }
    let rewritten = match uri.query() {
        Some(query) => format!("{path}/?{query}"),
        None => format!("{path}/"),
    };
    if let Ok(pq) = rewritten.parse::<http::uri::PathAndQuery>() {
        let mut parts = uri.clone().into_parts();
        parts.path_and_query = Some(pq);
        if let Ok(new_uri) = http::Uri::from_parts(parts) {
            *request.uri_mut() = new_uri;
        }
    }
    request
}

/// The `info` block of the document.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Videoflix API",
        description = "REST/JSON API of Videoflix, a video-streaming backend. Compatible with the \
                       original Django REST API (same paths, JSON fields and error shapes). Every \
                       operation is also available over gRPC (`videoflix.v1`), gRPC-web and server \
                       reflection on the same port.\n\nAuthenticated operations take \
                       `Authorization: Token <access>` or `Authorization: Bearer <access>`; the \
                       access token comes from `POST /login/` (`token`) or `POST /jwt/` (`access`).\n\n\
                       Errors: `{\"type\": [...], \"message\": [...], \"fields\": {...}}` with \
                       400/401/403/404/412/413/415/429/503/507 (429 carries `Retry-After`); every \
                       operation lists the ones it can answer. The legacy account paths answer \
                       client errors with 400, as the original did.",
        license(name = "MIT", identifier = "MIT"),
        version = "1.0.0"
    ),
    modifiers(&SecurityAddon),
    components(schemas(dto::VideoPageDto)),
    tags(
        (name = "auth", description = "Registration, activation, login, tokens, password reset"),
        (name = "me", description = "The caller's profile, favorites and watch progress"),
        (name = "videos", description = "The catalog: list, search, filter, recent, by genre; admin writes"),
        (name = "admin", description = "Superusers: accounts, scheduled jobs, exports and imports"),
    )
)]
pub(crate) struct ApiDoc;

struct SecurityAddon;

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "The access token from /login/ (`token`) or /jwt/ (`access`).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "Authorization",
                "`Token <access>`, as the legacy frontend sends it.",
            ))),
        );
    }
}

pub(crate) fn base_doc() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_of(uri: &str) -> String {
        let req = Request::builder()
            .uri(uri)
            .body(Body::empty())
            .expect("request");
        normalize_path(req).uri().to_string()
    }

    #[test]
    fn paths_gain_a_trailing_slash_but_files_do_not() {
        assert_eq!(path_of("/login"), "/login/");
        assert_eq!(path_of("/login/"), "/login/");
        assert_eq!(
            path_of("/api/videos?genre=drama"),
            "/api/videos/?genre=drama"
        );
        assert_eq!(path_of("/openapi.json"), "/openapi.json");
        assert_eq!(
            path_of("/redoc/redoc.standalone.js"),
            "/redoc/redoc.standalone.js"
        );
    }
}
