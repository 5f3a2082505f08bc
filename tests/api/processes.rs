//! Several processes on one PostgreSQL + Redis: two servers and two workers share the uploads,
//! each job runs exactly once, status reaches watchers on either server, and rate limits are
//! one budget across servers.

use std::time::Duration;

use serde_json::Value;

use crate::{
    helpers::{Backend, spawn_app_with, spawn_peer},
    media::Clips,
    pipeline::{admin, options, post_form, sse_until_final, worker_of},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_and_two_workers_transcode_every_upload_exactly_once() {
    let first = spawn_app_with(Backend::Real, options(&[])).await;
    let second = spawn_peer(&first, vec![]).await;
    let workers = [worker_of(&first, &[]).await, worker_of(&first, &[]).await];
    let token = admin(&first).await;
    let clips = Clips::new();
    let bytes = std::fs::read(clips.clip("c.mp4", "320x240", 2, false, &[])).expect("clip");

    // Four uploads, alternating between the servers.
    let mut ids = Vec::new();
    for n in 0..4 {
        let server = if n % 2 == 0 { &first } else { &second };
        let title = format!("Clip {n}");
        let (status, video) = post_form(
            server,
            &token,
            &[("title", title.as_str())],
            Some(("c.mp4", bytes.clone())),
        )
        .await;
        assert_eq!(status, 201, "{video}");
        ids.push(video["id"].as_i64().expect("id"));
    }
    // Each one is watched on the server it was not uploaded to, to its end.
    for (n, id) in ids.iter().enumerate() {
        let watcher = if n % 2 == 0 { &second } else { &first };
        let events = tokio::time::timeout(
            Duration::from_secs(120),
            sse_until_final(watcher, &token, *id),
        )
        .await
        .expect("in time");
        assert_eq!(
            events.last().map(|e| e["status"].clone()),
            Some(Value::from("ready")),
            "{events:?}"
        );
    }
    // Exactly once: each video was claimed (one encoder run) a single time, by either worker.
    for id in &ids {
        let attempts = first
            .services
            .store
            .transcode_attempts(videoflix::domain::VideoId::parse(*id, "id").expect("id"))
            .await
            .expect("read");
        assert_eq!(attempts, Some(1), "video {id}");
    }
    drop(workers);
}

#[tokio::test]
async fn a_rate_limit_holds_across_servers() {
    let limit = [("--throttle-user", "4/min")];
    let first = spawn_app_with(Backend::Real, options(&limit)).await;
    let second = spawn_peer(
        &first,
        limit
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
    .await;
    let token = admin(&first).await;
    // Four calls spread over both servers use the one budget...
    for server in [&first, &second, &first, &second] {
        server.get_auth("/api/videos/", &token).await.expect(200);
    }
    // ...so the fifth is refused on either.
    second
        .get_auth("/api/videos/", &token)
        .await
        .expect_error(429, "throttled");
    first
        .get_auth("/api/videos/", &token)
        .await
        .expect_error(429, "throttled");
    let refused = crate::observability::scraped(&first, "videoflix_rate_limited_total", &[]).await;
    assert!(refused.is_some_and(|n| n >= 2.0), "{refused:?}");
}
