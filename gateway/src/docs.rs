//! API documentation served from this binary, with no CDN and no reference to any outside host:
//! `/openapi.json`, Swagger UI at `/swagger/` (utoipa-swagger-ui's vendored assets) and Redoc at
//! `/redoc/` (Redoc 3's standalone bundle, vendored under `assets/redoc/` with its MIT licence).
//!
//! The vendored bundles still name hosts of their own (Redoc's icon CDN and telemetry endpoint,
//! Swagger's validator badge, links in error messages). Every asset is served through
//! [`offline`], which turns each such URL into one under the reserved `.invalid` domain (RFC
//! 6761: it never resolves), so nothing a docs page loads can reach another host. XML namespace
//! names (`http://www.w3.org/2000/svg`, …) are identifiers browsers never fetch and stay.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
};

use axum::{
    Json, Router,
    extract::Path,
    http::{StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::get,
};
use utoipa::openapi::OpenApi;
use utoipa_swagger_ui::Config;

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

/// XML namespace names: compared as strings by the DOM, never fetched.
const NAMESPACES: &[&str] = &[
    "http://www.w3.org/2000/svg",
    "http://www.w3.org/1999/xlink",
    "http://www.w3.org/1999/xhtml",
    "http://www.w3.org/1998/Math/MathML",
    "http://www.w3.org/XML/1998/namespace",
    "http://www.w3.org/2000/xmlns/",
];

/// `text` with every absolute http(s) URL to another host moved under `.invalid`; URLs to the
/// local machine and XML namespace names are kept.
pub(crate) fn offline(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 256);
    let mut rest = text;
    while let Some(at) = rest.find("http") {
        let (before, from) = rest.split_at(at);
        out.push_str(before);
        let scheme = ["https://", "http://"]
            .into_iter()
            .find(|s| from.starts_with(s));
        let Some(scheme) = scheme else {
            out.push_str("http");
            rest = &from[4..];
            continue;
        };
        let after = &from[scheme.len()..];
        let host_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-'))
            .unwrap_or(after.len());
        let host = &after[..host_len];
        out.push_str(scheme);
        out.push_str(host);
        let local = matches!(host, "localhost" | "127.0.0.1") || host.ends_with(".invalid");
        let namespace = NAMESPACES.iter().any(|ns| from.starts_with(ns));
        if !host.is_empty() && !local && !namespace {
            out.push_str(".invalid");
        }
        rest = &after[host_len..];
    }
    out.push_str(rest);
    out
}

static REDOC_OFFLINE: LazyLock<String> = LazyLock::new(|| offline(REDOC_BUNDLE));

/// Swagger UI's files as served (after [`offline`]), made once per file.
type SwaggerFiles = Arc<Mutex<HashMap<String, (String, Arc<[u8]>)>>>;

pub(crate) fn router(openapi: OpenApi) -> Router<Gateway> {
    let openapi = Arc::new(openapi);
    // Swagger's default validator badge loads an image from validator.swagger.io.
    let config = Arc::new(Config::new(["/openapi.json"]).validator_url("none"));
    let files: SwaggerFiles = Arc::default();
    let swagger = move |rest: Option<Path<String>>| {
        let config = config.clone();
        let files = files.clone();
        async move { swagger_file(rest.map_or_else(String::new, |Path(p)| p), &config, &files) }
    };
    Router::new()
        .route(
            "/openapi.json",
            get(move || {
                let openapi = openapi.clone();
                async move { Json(openapi.as_ref().clone()) }
            }),
        )
        .route("/swagger", get(|| async { Redirect::to("/swagger/") }))
        .route("/swagger/", get(swagger.clone()))
        .route("/swagger/{*rest}", get(swagger))
        .route("/redoc/", get(|| async { Html(REDOC_HTML) }))
        .route(
            "/redoc/redoc.standalone.js",
            get(|| async {
                (
                    [
                        (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
                        (header::CACHE_CONTROL, "public, max-age=86400"),
                    ],
                    REDOC_OFFLINE.as_str(),
                )
                    .into_response()
            }),
        )
}

fn swagger_file(path: String, config: &Arc<Config<'static>>, files: &SwaggerFiles) -> Response {
    if let Some((content_type, bytes)) = files.lock().ok().and_then(|f| f.get(&path).cloned()) {
        return ([(header::CONTENT_TYPE, content_type)], bytes.to_vec()).into_response();
    }
    let file = match utoipa_swagger_ui::serve(&path, config.clone()) {
        Ok(Some(file)) => file,
        Ok(None) => return StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e, path, "Swagger UI asset");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    let bytes: Arc<[u8]> = match std::str::from_utf8(&file.bytes) {
        Ok(text) => offline(text).into_bytes().into(),
        Err(_) => file.bytes.to_vec().into(),
    };
    if let Ok(mut cache) = files.lock() {
        cache.insert(path, (file.content_type.clone(), bytes.clone()));
    }
    ([(header::CONTENT_TYPE, file.content_type)], bytes.to_vec()).into_response()
}

#[cfg(test)]
mod tests {
    use super::offline;

    #[test]
    fn outside_hosts_move_under_invalid_and_the_rest_stays() {
        assert_eq!(
            offline("a `https://cdn.redocly.com/icons/fa` b"),
            "a `https://cdn.redocly.com.invalid/icons/fa` b"
        );
        assert_eq!(
            offline("new URL(p,\"https://base\")"),
            "new URL(p,\"https://base.invalid\")"
        );
        assert_eq!(
            offline("http://localhost:8000/x"),
            "http://localhost:8000/x"
        );
        assert_eq!(
            offline("createElementNS(\"http://www.w3.org/2000/svg\")"),
            "createElementNS(\"http://www.w3.org/2000/svg\")"
        );
        assert_eq!(
            offline("http://www.w3.org/TR/x"),
            "http://www.w3.org.invalid/TR/x"
        );
        assert_eq!(offline("httpx http: https:"), "httpx http: https:");
        assert_eq!(offline(&offline("https://a.b/c")), "https://a.b.invalid/c");
    }
}
