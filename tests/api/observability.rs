//! What an operator sees: `/metrics` in Prometheus text (requests by route template and gRPC
//! method, cache, pool, queue), its optional token, and the request id on every answer.

use reqwest::Method;
use serde_json::json;
use videoflix::grpc::pb;

use crate::{
    catalog::{admin_token, create},
    helpers::{Backend, TestApp, authed, spawn_app_with, with},
};

/// `/metrics` as text (with `token` as a bearer token when given).
async fn scrape(app: &TestApp, token: Option<&str>) -> (u16, String) {
    let mut request = app.http.get(format!("{}/metrics", app.base));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("metrics");
    let status = response.status().as_u16();
    (status, response.text().await.expect("text"))
}

/// The value of `name` (with every one of `labels`) on `/metrics` now.
pub(crate) async fn scraped(app: &TestApp, name: &str, labels: &[&str]) -> Option<f64> {
    sample(&scrape(app, None).await.1, name, labels)
}

/// The value of the sample of `name` whose labels include every one of `labels`.
pub(crate) fn sample(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| labels.iter().all(|label| l.contains(label)))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_and_grpc_method() {
    let app = spawn_app_with(Backend::Embedded, with(&[])).await;
    let admin = admin_token(&app).await;
    let video = create(&app, &admin, json!({"title": "Counted"})).await;
    let id = video["id"].as_i64().expect("id");
    let (_, before) = scrape(&app, None).await;
    let hits_before = sample(
        &before,
        "videoflix_cache_requests_total",
        &["result=\"hit\""],
    )
    .unwrap_or(0.0);
    for _ in 0..2 {
        app.get_auth(&format!("/api/videos/{id}/"), &admin)
            .await
            .expect(200);
    }
    app.get_auth("/api/videos/999999/", &admin)
        .await
        .expect(404);
    app.video_client()
        .await
        .list_videos(authed(pb::ListVideosRequest::default(), &admin))
        .await
        .expect("list");
    app.http
        .get(format!("{}/no/such/path/{id}", app.base))
        .send()
        .await
        .expect("unknown path");

    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, 200);
    let rest = [
        "protocol=\"rest\"",
        "route=\"/api/videos/{id}/\"",
        "status=\"200\"",
    ];
    assert!(
        sample(&text, "videoflix_requests_total", &rest).is_some_and(|n| n >= 2.0),
        "{text}"
    );
    let not_found = ["route=\"/api/videos/{id}/\"", "status=\"404\""];
    assert!(
        sample(&text, "videoflix_requests_total", &not_found).is_some(),
        "{text}"
    );
    // Raw paths never become labels: neither ids nor a scanner's paths.
    assert!(!text.contains(&format!("/api/videos/{id}/\"")), "{text}");
    assert!(!text.contains("/no/such/path"), "{text}");
    assert!(
        sample(&text, "videoflix_requests_total", &["route=\"unmatched\""]).is_some(),
        "{text}"
    );
    let grpc = [
        "protocol=\"grpc\"",
        "route=\"/videoflix.v1.VideoService/ListVideos\"",
        "status=\"0\"",
    ];
    assert!(
        sample(&text, "videoflix_requests_total", &grpc).is_some(),
        "{text}"
    );
    // Latency is a histogram (buckets), per route.
    assert!(
        sample(
            &text,
            "videoflix_request_duration_seconds_bucket",
            &["route=\"/api/videos/{id}/\"", "le=\"+Inf\""]
        )
        .is_some_and(|n| n >= 3.0),
        "{text}"
    );
    // The second read of the video came from the cache.
    let hits = sample(&text, "videoflix_cache_requests_total", &["result=\"hit\""]);
    assert!(
        hits.is_some_and(|h| h > hits_before),
        "{hits:?} after {hits_before}"
    );
    // State read at scrape time.
    assert!(sample(&text, "videoflix_db_connections", &["state=\"idle\""]).is_some());
    assert_eq!(
        sample(&text, "videoflix_queue_jobs", &[]),
        Some(0.0),
        "{text}"
    );
}

#[tokio::test]
async fn a_metrics_token_keeps_the_metrics_private() {
    let app = spawn_app_with(
        Backend::Embedded,
        with(&[("--metrics-token", "scrape-me-0123456789")]),
    )
    .await;
    assert_eq!(scrape(&app, None).await.0, 401);
    assert_eq!(scrape(&app, Some("wrong")).await.0, 401);
    let (status, text) = scrape(&app, Some("scrape-me-0123456789")).await;
    assert_eq!(status, 200);
    assert!(text.contains("videoflix_requests_total"), "{text}");
}

#[tokio::test]
async fn every_answer_carries_its_request_id_and_browsers_may_send_it() {
    let app = spawn_app_with(Backend::Embedded, with(&[])).await;
    let sent = app
        .http
        .get(format!("{}/api/videos/", app.base))
        .header("x-request-id", "checkout-42")
        .send()
        .await
        .expect("request");
    assert_eq!(sent.status(), 401);
    assert_eq!(sent.headers()["x-request-id"], "checkout-42");
    let generated = app
        .http
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("request");
    let id = generated.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert_eq!(id.len(), 32, "{id}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    // A value that is no sane token is replaced, not echoed.
    let hostile = app
        .http
        .get(format!("{}/healthz", app.base))
        .header("x-request-id", "x".repeat(300))
        .send()
        .await
        .expect("request");
    assert_eq!(hostile.headers()["x-request-id"].len(), 32);
    // The preflight of a browser request carrying the header passes; the answer exposes it.
    let preflight = app
        .http
        .request(Method::OPTIONS, format!("{}/api/videos/", app.base))
        .header("origin", "http://localhost:4200")
        .header("access-control-request-method", "GET")
        .header(
            "access-control-request-headers",
            "authorization,x-request-id",
        )
        .send()
        .await
        .expect("preflight");
    let allowed = preflight.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(allowed.contains("x-request-id"), "{allowed}");
    let exposed = app
        .http
        .get(format!("{}/api/videos/", app.base))
        .header("origin", "http://localhost:4200")
        .send()
        .await
        .expect("request");
    let exposed = exposed.headers()["access-control-expose-headers"]
        .to_str()
        .expect("ascii")
        .to_lowercase();
    assert!(exposed.contains("x-request-id"), "{exposed}");
}
