//! What every client sees around the services: reflection, health, readiness, CORS, gRPC-web
//! and the API documentation pages.

use rstest::rstest;
use tokio_stream::StreamExt as _;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_reflection::pb::{v1, v1alpha};

use crate::helpers::{Backend, spawn_app};

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn reflection_v1_and_v1alpha_list_both_services(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let channel = tonic::transport::Channel::from_shared(app.base.clone())
        .expect("uri")
        .connect()
        .await
        .expect("connect");

    let mut client = v1::server_reflection_client::ServerReflectionClient::new(channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(
            String::new(),
        )),
    };
    let mut stream = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection")
        .into_inner();
    let response = stream.next().await.expect("one answer").expect("ok");
    let Some(v1::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected reflection answer");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "videoflix.v1.AuthService",
        "videoflix.v1.VideoService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == expected), "{names:?}");
    }

    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(channel);
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            v1alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "videoflix.v1.AuthService".into(),
            ),
        ),
    };
    let mut stream = alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let response = stream.next().await.expect("one answer").expect("ok");
    assert!(matches!(
        response.message_response,
        Some(v1alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(_))
    ));
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn health_and_readiness_answer(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let channel = tonic::transport::Channel::from_shared(app.base.clone())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    for service in ["", "videoflix.v1.AuthService", "videoflix.v1.VideoService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health
        .check(HealthCheckRequest {
            service: "nope".into(),
        })
        .await
        .expect_err("unknown service");
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    for path in ["/healthz", "/healthz/"] {
        let reply = app
            .call(reqwest::Method::GET, path, None, None)
            .await
            .expect(200);
        assert_eq!(reply.body["status"], "ok");
    }
    let ready = app
        .call(reqwest::Method::GET, "/readyz", None, None)
        .await
        .expect(200);
    assert_eq!(ready.body["status"], "ready");
    assert_eq!(ready.body["database"]["ok"], true);
    assert_eq!(ready.body["redis"]["configured"], backend == Backend::Real);
}

#[tokio::test]
async fn cors_preflights_and_errors_carry_the_headers() {
    // Development mode: the usual frontend development servers' origins are allowed.
    let app =
        crate::helpers::spawn_app_with(Backend::Embedded, crate::helpers::with(&[("--dev", "")]))
            .await;
    for (path, method) in [
        ("/login/", "POST"),
        ("/logout", "DELETE"),
        ("/api/me/", "PATCH"),
        ("/videoflix.v1.AuthService/GuestLogin", "POST"),
    ] {
        let response = app
            .http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.base))
            .header("origin", "http://localhost:4200")
            .header("access-control-request-method", method)
            .header(
                "access-control-request-headers",
                "authorization,content-type,x-grpc-web",
            )
            .send()
            .await
            .expect("preflight");
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        let headers = response.headers();
        assert_eq!(
            headers["access-control-allow-origin"],
            "http://localhost:4200"
        );
        let methods = headers["access-control-allow-methods"]
            .to_str()
            .expect("ascii")
            .to_lowercase();
        for m in ["get", "post", "put", "patch", "delete"] {
            assert!(methods.contains(m), "{methods}");
        }
        let allowed = headers["access-control-allow-headers"]
            .to_str()
            .expect("ascii")
            .to_lowercase();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
    }
    // A development frontend opened by IP is the same frontend as by name.
    for origin in [
        "http://127.0.0.1:4200",
        "http://localhost:5500",
        "http://127.0.0.1:5500",
        "http://127.0.0.1:3000",
        "http://127.0.0.1:5173",
    ] {
        let response = app
            .http
            .get(format!("{}/api/me/", app.base))
            .header("origin", origin)
            .send()
            .await
            .expect("request");
        assert_eq!(
            response
                .headers()
                .get("access-control-allow-origin")
                .and_then(|v| v.to_str().ok()),
            Some(origin),
            "{origin}"
        );
    }
    // The frontend origin from FRONTEND_URL is allowed too; strangers are not.
    let response = app
        .http
        .get(format!("{}/api/me/", app.base))
        .header("origin", "http://frontend.test")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://frontend.test"
    );
    let response = app
        .http
        .get(format!("{}/api/me/", app.base))
        .header("origin", "http://evil.test")
        .send()
        .await
        .expect("request");
    assert!(
        response
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
}

#[tokio::test]
async fn grpc_web_calls_work_over_http1() {
    let app = spawn_app(Backend::Embedded).await;
    // One gRPC-web data frame holding an empty GuestLoginRequest.
    let response = app
        .http
        .post(format!("{}/videoflix.v1.AuthService/GuestLogin", app.base))
        .header("content-type", "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .header("origin", "http://frontend.test")
        .body(vec![0u8, 0, 0, 0, 0])
        .send()
        .await
        .expect("grpc-web");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["access-control-allow-origin"],
        "http://frontend.test"
    );
    let body = response.bytes().await.expect("body");
    assert_eq!(body[0], 0, "first frame is data");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("grpc-status:0"), "{text}");
    assert!(text.contains("guest.videoflix.com"), "{text}");
}

#[tokio::test]
async fn api_docs_are_served_locally() {
    let app = spawn_app(Backend::Embedded).await;
    let spec = app
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await
        .expect(200);
    assert_eq!(spec.body["info"]["title"], "Videoflix API");
    assert!(spec.body["paths"]["/login/"]["post"].is_object());
    assert!(spec.body["components"]["securitySchemes"]["token"].is_object());

    for path in ["/swagger/", "/swagger", "/redoc/", "/redoc"] {
        let response = app
            .http
            .get(format!("{}{path}", app.base))
            .send()
            .await
            .expect("docs");
        assert!(
            response.status().is_success() || response.status().is_redirection(),
            "{path}"
        );
        let text = response.text().await.expect("html");
        assert!(
            !text.contains("cdn.") && !text.contains("unpkg") && !text.contains("googleapis"),
            "{path} references a CDN"
        );
    }
    let swagger = app
        .http
        .get(format!("{}/swagger/", app.base))
        .send()
        .await
        .expect("swagger");
    assert!(swagger.text().await.expect("html").contains("swagger-ui"));
    let init = app
        .http
        .get(format!("{}/swagger/swagger-initializer.js", app.base))
        .send()
        .await
        .expect("init");
    assert!(init.text().await.expect("js").contains("/openapi.json"));
    let bundle = app
        .http
        .get(format!("{}/redoc/redoc.standalone.js", app.base))
        .send()
        .await
        .expect("bundle");
    assert_eq!(bundle.status(), 200);
    assert!(bundle.bytes().await.expect("js").len() > 1_000_000);
}

/// Absolute http(s) URLs in `text` that point at another host: not the local machine, not the
/// reserved `.invalid` domain, not an XML namespace name.
fn outside_urls(text: &str) -> Vec<String> {
    const NAMESPACES: &[&str] = &[
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
        "http://www.w3.org/1999/xhtml",
        "http://www.w3.org/1998/Math/MathML",
        "http://www.w3.org/XML/1998/namespace",
        "http://www.w3.org/2000/xmlns/",
    ];
    let mut found = Vec::new();
    for scheme in ["http://", "https://"] {
        for (at, _) in text.match_indices(scheme) {
            let url = &text[at..];
            let host: String = url[scheme.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                .collect();
            let local = host.is_empty()
                || host == "localhost"
                || host == "127.0.0.1"
                || host.ends_with(".invalid");
            if !local && !NAMESPACES.iter().any(|ns| url.starts_with(ns)) {
                found.push(format!("{scheme}{host}"));
            }
        }
    }
    found.sort();
    found.dedup();
    found
}

/// What a page loads: `src=`, `href=`, module imports and fetches with quoted relative URLs.
fn referenced(html: &str) -> Vec<String> {
    let mut refs = Vec::new();
    for marker in ["src=\"", "href=\"", "from \"", "fetch(\""] {
        for (at, _) in html.match_indices(marker) {
            let rest = &html[at + marker.len()..];
            if let Some(end) = rest.find('"') {
                refs.push(rest[..end].to_owned());
            }
        }
    }
    refs
}

#[tokio::test]
async fn nothing_the_docs_pages_load_references_another_host() {
    let app = spawn_app(Backend::Embedded).await;
    let mut scanned = Vec::new();
    for page in ["/swagger/", "/redoc/"] {
        let page_url = url::Url::parse(&format!("{}{page}", app.base)).expect("url");
        let html = app
            .http
            .get(page_url.clone())
            .send()
            .await
            .expect("page")
            .text()
            .await
            .expect("html");
        assert_eq!(outside_urls(&html), Vec::<String>::new(), "{page}");
        let assets = referenced(&html);
        assert!(assets.len() >= 2, "{page}: {assets:?}");
        for asset in assets {
            let url = page_url.join(&asset).expect("join");
            assert_eq!(url.host_str(), page_url.host_str(), "{page} loads {url}");
            let response = app.http.get(url.clone()).send().await.expect("asset");
            assert_eq!(response.status(), 200, "{url}");
            let text =
                String::from_utf8_lossy(&response.bytes().await.expect("bytes")).into_owned();
            assert_eq!(outside_urls(&text), Vec::<String>::new(), "{url}");
            scanned.push(url.path().to_owned());
        }
    }
    for asset in [
        "/swagger/swagger-ui-bundle.js",
        "/swagger/swagger-initializer.js",
        "/redoc/redoc.standalone.js",
        "/openapi.json",
    ] {
        assert!(
            scanned.iter().any(|s| s == asset),
            "{asset} not among {scanned:?}"
        );
    }
    // Swagger's validator badge is off (it would load an image from its own host).
    let init = app
        .http
        .get(format!("{}/swagger/swagger-initializer.js", app.base))
        .send()
        .await
        .expect("init")
        .text()
        .await
        .expect("js");
    assert!(
        init.contains("\"validatorUrl\": \"none\"") || init.contains("\"validatorUrl\":\"none\""),
        "{init}"
    );
}

#[tokio::test]
async fn a_busy_sqlite_database_answers_503_with_retry_after_not_500() {
    let app = crate::helpers::spawn_app_with(
        Backend::Embedded,
        crate::helpers::with(&[("--database-busy-timeout-ms", "200")]),
    )
    .await;
    // Another program holds the write lock (as a long migration or a backup would).
    use sqlx::Connection as _;
    let mut holder = sqlx::SqliteConnection::connect(&app.settings.database_url)
        .await
        .expect("second connection");
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut holder)
        .await
        .expect("lock");
    let register = || {
        app.post(
            "/register/",
            serde_json::json!({"email": "busy@example.com", "password": crate::helpers::PASSWORD,
                               "confirm_password": crate::helpers::PASSWORD}),
        )
    };
    let started = std::time::Instant::now();
    let busy = register().await;
    assert_eq!(busy.status, 503, "{}", busy.text);
    assert_eq!(busy.body["type"], serde_json::json!(["server"]));
    assert!(
        busy.headers.contains_key("retry-after"),
        "{:?}",
        busy.headers
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "bounded by the busy timeout"
    );
    sqlx::query("ROLLBACK")
        .execute(&mut holder)
        .await
        .expect("unlock");
    register().await.expect(201);
}

#[tokio::test]
async fn in_production_only_the_frontend_origin_is_allowed() {
    let origin_allowed = |app: &crate::helpers::TestApp, origin: &'static str| {
        let request = app
            .http
            .get(format!("{}/api/me/", app.base))
            .header("origin", origin);
        async move {
            request
                .send()
                .await
                .expect("request")
                .headers()
                .get("access-control-allow-origin")
                .is_some()
        }
    };
    // FRONTEND_URL is http://frontend.test/ in tests: development servers are strangers.
    let app = spawn_app(Backend::Embedded).await;
    assert!(origin_allowed(&app, "http://frontend.test").await);
    assert!(!origin_allowed(&app, "http://localhost:4200").await);
    assert!(!origin_allowed(&app, "http://127.0.0.1:5173").await);
    // A frontend on this machine (the default FRONTEND_URL) is allowed by name and by IP.
    let local = crate::helpers::spawn_app_with(
        Backend::Embedded,
        crate::helpers::with(&[("--frontend-url", "http://localhost:4200/")]),
    )
    .await;
    assert!(origin_allowed(&local, "http://localhost:4200").await);
    assert!(origin_allowed(&local, "http://127.0.0.1:4200").await);
    assert!(!origin_allowed(&local, "http://localhost:5173").await);
}

#[tokio::test]
async fn an_app_told_to_stop_stops_and_frees_its_port() {
    let app = spawn_app(Backend::Embedded).await;
    app.http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("served");

    app.stop().await;

    let refused = tokio::net::TcpStream::connect(("127.0.0.1", app.port)).await;
    assert!(refused.is_err(), "the port still accepts connections");
}

#[test]
fn the_database_pool_size_defaults_per_database_and_can_be_set() {
    use videoflix::config::Settings;
    let settings = |url: &str, extra: &[&str]| {
        let mut args = vec!["videoflix", "--dev", "--database-url", url];
        args.extend_from_slice(extra);
        Settings::from_args(args).expect("settings")
    };
    assert_eq!(
        settings("postgres://u@h/db", &[]).database_connections(),
        16
    );
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    let sqlite = settings("sqlite://x.db", &[]).database_connections();
    assert_eq!(
        usize::try_from(sqlite).expect("u32"),
        (cores * 2).clamp(4, 16)
    );
    assert_eq!(
        settings("sqlite://x.db", &["--database-max-connections", "9"]).database_connections(),
        9
    );
}
