//! The web app (`web/`, built by Vite) at `/app/`: the files of `WEB_DIR`, `index.html` for any
//! other path under `/app/` (the app's own routes, such as the mailed activation links), and
//! year-long caching for Vite's content-hashed `assets/`. While the app is not built, `/app/`
//! answers 503 with a page that says how to build it.
//!
//! Mounted beside the API rather than in the gateway: these are pages, not REST routes, so they
//! are neither throttled nor part of the OpenAPI document.

use std::{path::PathBuf, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{HeaderValue, StatusCode, header},
    middleware,
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};

/// `GET /app`, `/app/` and everything under it, served from `dir`.
pub(super) fn router(dir: PathBuf) -> Router {
    if !dir.join("index.html").is_file() {
        tracing::warn!(
            web_dir = %dir.display(),
            "the web app is not built: /app/ answers 503 until it is"
        );
    }
    let assets = ServeDir::new(dir.join("assets"));
    Router::new()
        .route("/app", get(|| async { Redirect::permanent("/app/") }))
        .route("/app/", get(page))
        .route("/app/{*path}", get(page))
        .nest_service(
            "/app/assets",
            Router::new()
                .fallback_service(assets)
                .layer(middleware::map_response(immutable)),
        )
        .with_state(Arc::new(dir))
}

/// Vite names every asset by its content's hash: a name never changes content.
async fn immutable(mut response: Response) -> Response {
    if response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED {
        response.headers_mut().insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        );
    }
    response
}

/// A file at the top of the build (e.g. `favicon.svg`) as itself, any other path as the app's
/// `index.html` (its router reads the path); revalidated on every load, so a new build shows at
/// once.
async fn page(State(dir): State<Arc<PathBuf>>, request: Request) -> Response {
    let index = dir.join("index.html");
    if !is_file(&index).await {
        return not_built();
    }
    let name = request
        .uri()
        .path()
        .strip_prefix("/app/")
        .unwrap_or_default();
    // One plain segment only: nothing can name a file outside the folder.
    let plain = !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    let file = if plain && is_file(&dir.join(name)).await {
        dir.join(name)
    } else {
        index
    };
    match ServeFile::new(file).oneshot(request).await {
        Ok(mut response) => {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response.map(Body::new)
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn is_file(path: &std::path::Path) -> bool {
    tokio::fs::metadata(path).await.is_ok_and(|m| m.is_file())
}

/// 503 (the app is temporarily unavailable, the API is not): what is missing and how to build
/// it. The folder is not named: a public page has no business showing server paths.
fn not_built() -> Response {
    let body = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Videoflix: web app not built</title></head><body>\
         <h1>The web app is not built</h1>\
         <p>There is no <code>index.html</code> in the folder <code>WEB_DIR</code> names.</p>\
         <p>Build it with <code>npm ci &amp;&amp; npm run build</code> in <code>web/</code> \
         (<code>scripts/serve.sh</code> does this before starting the server), or point \
         <code>WEB_DIR</code> at a built app.</p>\
         <p>The API itself is up: see <a href=\"/swagger/\">/swagger/</a>.</p></body></html>";
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, Html(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
