//! The web app at `/app/`: files of `WEB_DIR`, `index.html` for the app's own routes (deep
//! links such as the mailed activation link), year-long caching of hashed assets, and a 503
//! page that says how to build the app while it is missing.

use crate::helpers::{Backend, spawn_app_with, with};

/// A built app's shape: `index.html`, a hashed asset, a top-level file.
fn built_app() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("index.html"),
        "<!doctype html><title>app</title>",
    )
    .unwrap();
    std::fs::write(dir.path().join("favicon.svg"), "<svg/>").unwrap();
    std::fs::create_dir(dir.path().join("assets")).unwrap();
    std::fs::write(dir.path().join("assets/index-AbC123.js"), "console.log(1)").unwrap();
    dir
}

async fn get(app: &crate::helpers::TestApp, path: &str) -> reqwest::Response {
    app.http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn deep_links_get_the_apps_index_revalidated_on_every_load() {
    let web = built_app();
    let app = spawn_app_with(
        Backend::Embedded,
        with(&[("--web-dir", web.path().to_str().unwrap())]),
    )
    .await;

    for path in ["/app/", "/app/activate-account/MQ/abc-123/", "/app/watch/7"] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["cache-control"], "no-cache", "{path}");
        assert!(
            response
                .text()
                .await
                .unwrap()
                .contains("<title>app</title>"),
            "{path}"
        );
    }
    let icon = get(&app, "/app/favicon.svg").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.text().await.unwrap(), "<svg/>");
    let bare = get(&app, "/app").await;
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/app/");
}

#[tokio::test]
async fn hashed_assets_are_cached_for_a_year_and_missing_ones_are_not_the_index() {
    let web = built_app();
    let app = spawn_app_with(
        Backend::Embedded,
        with(&[("--web-dir", web.path().to_str().unwrap())]),
    )
    .await;

    let asset = get(&app, "/app/assets/index-AbC123.js").await;
    assert_eq!(asset.status(), 200);
    assert_eq!(
        asset.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert!(
        asset.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("javascript")
    );
    let stale = get(&app, "/app/assets/index-Old999.js").await;
    assert_eq!(stale.status(), 404);
    assert!(stale.headers().get("cache-control").is_none());
    // Nothing outside the build is reachable.
    let escape = get(&app, "/app/..%2f..%2fetc%2fpasswd").await;
    assert!(
        !escape.text().await.unwrap().contains("root:"),
        "escaped the web folder"
    );
}

#[tokio::test]
async fn without_a_built_app_the_server_says_how_to_build_it() {
    let empty = tempfile::tempdir().unwrap();
    let app = spawn_app_with(
        Backend::Embedded,
        with(&[("--web-dir", empty.path().join("dist").to_str().unwrap())]),
    )
    .await;

    for path in ["/app/", "/app/watch/7"] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), 503, "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("The web app is not built"), "{page}");
        assert!(page.contains("npm ci &amp;&amp; npm run build"), "{page}");
    }
    // The API is unaffected.
    assert_eq!(get(&app, "/healthz").await.status(), 200);
}
