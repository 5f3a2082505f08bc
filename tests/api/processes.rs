//! Several processes on one PostgreSQL + Redis: two `serve` and two `worker` processes share the
//! uploads, each job runs through the encoder exactly once, status reaches watchers on either
//! server, a write on one is seen at once on the other, and rate limits are one budget across
//! servers.

use std::time::Duration;

use serde_json::Value;

use crate::{
    helpers::{Backend, process::Process, spawn_app_with, spawn_peer},
    media::Clips,
    pipeline::{admin, options, post_form, sse_until_final},
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_and_two_workers_transcode_every_upload_exactly_once() {
    // The deployment (its database, Redis prefix, folders); its own process only serves the
    // admin's sign-up. The servers and workers are `videoflix serve` and `videoflix worker`.
    let deployment = spawn_app_with(Backend::Real, options(&[])).await;
    let token = admin(&deployment).await;
    let servers = [
        Process::serve(&deployment, &[]).await,
        Process::serve(&deployment, &[]).await,
    ];
    let workers = [
        Process::worker(&deployment, &[]).await,
        Process::worker(&deployment, &[]).await,
    ];
    let clips = Clips::new();
    let bytes = std::fs::read(clips.clip("c.mp4", "320x240", 2, false, &[])).expect("clip");

    // Four uploads, alternating between the servers.
    let mut ids = Vec::new();
    for n in 0..4 {
        let title = format!("Clip {n}");
        let (status, video) = post_form(
            &servers[n % 2],
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
        let events = tokio::time::timeout(
            Duration::from_secs(120),
            sse_until_final(&servers[(n + 1) % 2], &token, *id),
        )
        .await
        .expect("in time");
        assert_eq!(
            events.last().map(|e| e["status"].clone()),
            Some(Value::from("ready")),
            "{events:?}"
        );
    }
    // Exactly once: each video went through the encoder a single time, on one of the workers.
    for id in &ids {
        let runs: usize = workers.iter().map(|w| w.encoder_runs(*id)).sum();
        assert_eq!(runs, 1, "video {id}");
        let attempts = deployment
            .services
            .store
            .transcode_attempts(videoflix::domain::VideoId::parse(*id, "id").expect("id"))
            .await
            .expect("read");
        assert_eq!(attempts, Some(1), "video {id}");
    }

    // A write on one server is what the other answers next, though it had the list cached.
    let http = reqwest::Client::new();
    let list = |server: &Process| {
        http.get(format!("{}/api/videos/", server.base))
            .header("authorization", format!("Token {token}"))
            .send()
    };
    let before: Value = list(&servers[1])
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(before.to_string().contains("Clip 0"), "{before}");
    let patched = http
        .patch(format!("{}/api/videos/{}/", servers[0].base, ids[0]))
        .header("authorization", format!("Token {token}"))
        .json(&serde_json::json!({"title": "Renamed on the first server"}))
        .send()
        .await
        .expect("patch");
    assert_eq!(patched.status(), 200);
    let after: Value = list(&servers[1])
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert!(
        after.to_string().contains("Renamed on the first server"),
        "{after}"
    );
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
