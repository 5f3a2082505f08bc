//! API documentation served from this binary, with no CDN: `/openapi.json`, Swagger UI at
//! `/swagger/` (utoipa-swagger-ui's vendored assets) and Redoc at `/redoc/` (Redoc 3's
//! standalone bundle, vendored under `assets/redoc/` with its MIT licence).

use axum::{
    Router,
    http::header,
    response::{Html, IntoResponse},
    routing::get,
};
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::SwaggerUi;

use crate::Gateway;

const REDOC_BUNDLE: &str = include_str!("../assets/redoc/redoc.standalone.js");

/// Redoc 3's bundle is an ES module exporting `init` (no global `Redoc`), so the page imports it.
/// `disableTelemetry` keeps Redoc from posting usage data.
const REDOC_HTML: &str = r#"<!DOCTYPE html>
<html lang="en">
  <head>
    <title>Videoflix API — Redoc</title>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <style>body { margin: 0; padding: 0; }</style>
  </head>
  <body>
    <div id="redoc-container"></div>
    <script type="module">
      import { init } from "/redoc/redoc.standalone.js";
      const response = await fetch("/openapi.json");
      init(await response.json(), { disableTelemetry: true }, document.getElementById("redoc-container"));
    </script>
  </body>
</html>
"#;

pub(crate) fn router(openapi: OpenApi) -> Router<Gateway> {
    Router::new()
        .merge(SwaggerUi::new("/swagger").url("/openapi.json", openapi))
        .route("/redoc/", get(|| async { Html(REDOC_HTML) }))
        .route(
            "/redoc/redoc.standalone.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    REDOC_BUNDLE,
                )
                    .into_response()
            }),
        )
}
