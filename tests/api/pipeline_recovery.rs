//! The media pipeline when things go wrong: a lost queue, a crash, a dead worker, a source that
//! cannot be transcoded, and a video deleted mid-transcode.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::{
    helpers::{Backend, TestApp, spawn_app_with},
    media::Clips,
    pipeline::{admin, options, post_form, sse_until_final, worker_of},
};

/// A Real deployment (PostgreSQL + Redis, no worker in the serving process) with one uploaded
/// 1 s clip waiting in the queue: (app, admin token, video id, Redis connection, stream key).
async fn queued_upload(
    title: &str,
) -> (
    TestApp,
    String,
    i64,
    redis::aio::MultiplexedConnection,
    String,
) {
    let app = spawn_app_with(Backend::Real, options(&[])).await;
    let token = admin(&app).await;
    let clips = Clips::new();
    let bytes = std::fs::read(clips.clip("q.mp4", "320x240", 1, false, &[])).expect("clip");
    let (status, video) =
        post_form(&app, &token, &[("title", title)], Some(("q.mp4", bytes))).await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_i64().expect("id");
    let client = redis::Client::open(crate::helpers::redis_url()).expect("redis");
    let conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let stream = format!(
        "{}:jobs:transcode",
        app.settings.redis_prefix.trim_end_matches(':')
    );
    (app, token, id, conn, stream)
}

#[tokio::test]
async fn a_lost_queue_loses_no_upload_the_sweep_finishes_it() {
    // PostgreSQL + Redis, and no worker in the serving process.
    let (app, token, id, mut conn, stream) = queued_upload("Queued").await;

    // Redis loses the queue (as FLUSHALL would, for this deployment's keys).
    let _: i64 = redis::cmd("DEL")
        .arg(&stream)
        .query_async(&mut conn)
        .await
        .expect("del");

    // A worker process starts: its sweep finds the pending video in the database.
    let worker = worker_of(&app, &[]).await;
    let events = sse_until_final(&worker, &token, id).await;
    assert_eq!(
        events.last().map(|e| e["status"].clone()),
        Some(json!("ready"))
    );
    // The first process sees it too (status over Redis pub/sub, cache invalidated).
    let seen = app
        .get_auth(&format!("/api/videos/{id}/"), &token)
        .await
        .expect(200)
        .body;
    assert_eq!(seen["status"], "ready", "{seen}");
}

#[tokio::test]
async fn a_restart_after_a_crash_takes_the_dead_job_over_at_once_and_clears_its_debris() {
    let (app, token, id, _conn, _stream) = queued_upload("Crashed").await;
    // A process was killed mid-transcode a moment ago: the row is processing under its claim
    // (heartbeat just now), its working folder is half-written, and an upload it was receiving
    // stopped an hour ago. Another process is receiving an upload right now.
    let claimed = app
        .services
        .store
        .claim_transcode(
            videoflix::domain::VideoId::parse(id, "id").expect("id"),
            "deadjob",
            videoflix::store::Timestamp::now(),
        )
        .await
        .expect("claim");
    assert!(matches!(claimed, videoflix::store::Claim::Started(_)));
    let media = &app.settings.media_dir;
    let dead_folder = media.join(format!("videos/{id}/.tmp-deadjob"));
    std::fs::create_dir_all(dead_folder.join("hls")).expect("mkdir");
    std::fs::write(dead_folder.join("hls/segment-00000.m4s"), vec![0u8; 4096]).expect("write");
    let incoming = media.join("incoming");
    std::fs::create_dir_all(&incoming).expect("mkdir");
    let abandoned = incoming.join("abandoned.part");
    let arriving = incoming.join("arriving.part");
    std::fs::write(&abandoned, vec![0u8; 4096]).expect("write");
    std::fs::write(&arriving, vec![0u8; 4096]).expect("write");
    let touched = std::process::Command::new("touch")
        .args(["-d", "1 hour ago"])
        .arg(&abandoned)
        .status()
        .expect("touch");
    assert!(touched.success());

    // The restarted worker: the job is taken over once the dead claim's heartbeat is stale (a
    // few seconds here), not at the next sweep minutes later.
    let started = std::time::Instant::now();
    let worker = worker_of(&app, &[("--job-visibility-timeout", "10")]).await;
    let events = sse_until_final(&worker, &token, id).await;
    assert_eq!(
        events.last().map(|e| e["status"].clone()),
        Some(json!("ready"))
    );
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "taken over after {:?}",
        started.elapsed()
    );
    assert!(!dead_folder.exists(), "the dead job's folder is gone");
    assert!(!abandoned.exists(), "the abandoned upload is gone");
    assert!(arriving.exists(), "an upload still arriving is kept");
}

#[tokio::test]
async fn a_job_whose_worker_died_is_taken_over_and_finished() {
    let (app, token, id, mut conn, stream) = queued_upload("Orphan").await;

    // A worker takes the job (the entry is now pending on it, the row processing) and dies.
    let created: Result<String, _> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&stream)
        .arg("workers")
        .arg("0")
        .arg("MKSTREAM")
        .query_async(&mut conn)
        .await;
    drop(created);
    let claimed = app
        .services
        .store
        .claim_transcode(
            videoflix::domain::VideoId::parse(id, "id").expect("id"),
            "dead-job",
            videoflix::store::Timestamp::now(),
        )
        .await
        .expect("claim");
    assert!(matches!(claimed, videoflix::store::Claim::Started(_)));
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg("workers")
        .arg("dead-worker")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg(&stream)
        .arg(">")
        .query_async(&mut conn)
        .await
        .expect("taken");

    // Another worker comes: after the visibility timeout it takes the job over and finishes.
    let worker = worker_of(&app, &[("--job-visibility-timeout", "5")]).await;
    let events = sse_until_final(&worker, &token, id).await;
    assert_eq!(
        events.last().map(|e| e["status"].clone()),
        Some(json!("ready"))
    );
    // Nothing stays behind in the queue: the dead worker's entry was reclaimed and acknowledged.
    let drained = async {
        loop {
            let pending: (i64, redis::Value, redis::Value, redis::Value) = redis::cmd("XPENDING")
                .arg(&stream)
                .arg("workers")
                .query_async(&mut conn)
                .await
                .expect("xpending");
            if pending.0 == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), drained)
        .await
        .expect("the orphaned entry is reclaimed");
}

#[tokio::test]
async fn a_source_that_cannot_be_transcoded_ends_failed_with_its_reason() {
    // PostgreSQL + Redis, no worker in the serving process: the upload waits in the queue.
    let (app, token, id, _, _) = queued_upload("Broken").await;
    // The stored source goes bad before a worker gets to it (a disk error, say).
    let source = app.settings.media_dir.join(format!("videos/{id}/source"));
    std::fs::write(&source, b"no longer a video").expect("overwrite");

    let worker = worker_of(&app, &[]).await;
    // Watched on the serving process, transcoded on the worker: events cross over Redis.
    let events = sse_until_final(&app, &token, id).await;
    drop(worker);
    let last = events.last().expect("events");
    assert_eq!(last["status"], "failed", "{events:?}");
    assert!(
        last["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not a playable video")),
        "{last}"
    );
    let seen = app
        .get_auth(&format!("/api/videos/{id}/"), &token)
        .await
        .expect(200)
        .body;
    assert_eq!(seen["status"], "failed");
    assert!(
        seen["status_reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty()),
        "{seen}"
    );
    assert_eq!(seen["video_file_hd360"], "");
}

#[tokio::test]
async fn deleting_a_video_stops_its_transcode_and_the_worker_goes_on() {
    let app = spawn_app_with(Backend::Embedded, options(&[])).await;
    let token = admin(&app).await;
    let clips = Clips::new();
    let long = std::fs::read(clips.clip("long.mp4", "1280x720", 12, false, &[])).expect("clip");
    let (status, video) =
        post_form(&app, &token, &[("title", "Long")], Some(("l.mp4", long))).await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_i64().expect("id");

    // Wait until it is being transcoded, then delete it.
    let started = async {
        loop {
            let seen = app
                .get_auth(&format!("/api/videos/{id}/"), &token)
                .await
                .expect(200)
                .body;
            if seen["status"] == "processing" {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), started)
        .await
        .expect("processing starts");
    app.call(
        Method::DELETE,
        &format!("/api/videos/{id}/"),
        None,
        Some(&token),
    )
    .await
    .expect(204);

    // The worker stops (its heartbeat finds the video gone) and takes the next job.
    let small = std::fs::read(clips.clip("next.mp4", "320x240", 1, false, &[])).expect("clip");
    let (status, next) =
        post_form(&app, &token, &[("title", "Next")], Some(("n.mp4", small))).await;
    assert_eq!(status, 201, "{next}");
    let next_id = next["id"].as_i64().expect("id");
    let events = sse_until_final(&app, &token, next_id).await;
    assert_eq!(
        events.last().map(|e| e["status"].clone()),
        Some(json!("ready"))
    );
    // Nothing of the deleted video is left.
    let folder = app.settings.media_dir.join(format!("videos/{id}"));
    let gone = async {
        while folder.exists() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), gone)
        .await
        .unwrap_or_else(|_| panic!("{} remains", folder.display()));
}

#[tokio::test]
async fn a_worker_that_stops_mid_transcode_gives_its_job_back_at_once() {
    // PostgreSQL + Redis; claims go stale only after 150 s, far beyond this test's waits.
    let app = spawn_app_with(Backend::Real, options(&[])).await;
    let slow = [("--job-visibility-timeout", "300")];
    let first = worker_of(&app, &slow).await;
    let token = admin(&app).await;
    let clips = Clips::new();
    let bytes = std::fs::read(clips.clip("long.mp4", "640x360", 20, false, &[])).expect("clip");
    let (status, video) = post_form(
        &app,
        &token,
        &[("title", "Interrupted")],
        Some(("long.mp4", bytes)),
    )
    .await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_i64().expect("id");
    let mut events = crate::playback::follow_sse(&app, &token, id);
    crate::playback::progress_at(&mut events, 5.0).await;

    // The worker's process stops (as on SIGTERM): its job is abandoned, not left to go stale.
    first.stop().await;
    let row = app
        .services
        .store
        .video(videoflix::domain::VideoId::parse(id, "id").expect("id"))
        .await
        .expect("read")
        .expect("the video");
    assert_eq!(
        row.status,
        videoflix::domain::VideoStatus::Pending,
        "{row:?}"
    );
    let folder = app.settings.media_dir.join(format!("videos/{id}"));
    let working: Vec<String> = std::fs::read_dir(&folder)
        .expect("folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.starts_with(".tmp-"))
        .collect();
    assert!(working.is_empty(), "partial outputs left: {working:?}");

    // Another worker takes it at once (its entry was queued again) and finishes it.
    let second = worker_of(&app, &slow).await;
    let finished = tokio::time::timeout(
        Duration::from_secs(90),
        sse_until_final(&second, &token, id),
    )
    .await
    .expect("finished long before the claim would have gone stale");
    assert_eq!(
        finished.last().map(|e| e["status"].clone()),
        Some(json!("ready"))
    );
}

#[tokio::test]
async fn status_streams_end_cleanly_when_their_server_stops() {
    // No worker anywhere: the video stays pending and its watchers would wait for ever.
    let (app, token, id, _conn, _stream) = queued_upload("Waiting").await;
    let mut sse = crate::playback::follow_sse(&app, &token, id);
    let first = tokio::time::timeout(Duration::from_secs(10), sse.recv())
        .await
        .expect("an event")
        .expect("the stream");
    assert_eq!(first["status"], "pending", "{first}");
    let mut grpc = app
        .video_client()
        .await
        .watch_transcode_status(crate::helpers::authed(
            videoflix::grpc::pb::WatchTranscodeStatusRequest { video_id: id },
            &token,
        ))
        .await
        .expect("watch")
        .into_inner();
    assert!(grpc.message().await.expect("first event").is_some());
    // Both watchers are counted as open status streams.
    let open =
        crate::observability::scraped(&app, "videoflix_active_streams", &["kind=\"status\""]).await;
    assert!(open.is_some_and(|n| n >= 2.0), "{open:?}");

    // Stopping takes far less than the 20 s grace: the streams end instead of being cut.
    let started = std::time::Instant::now();
    app.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Both end as streams end: the gRPC one with status OK, the SSE one at its end.
    assert!(matches!(grpc.message().await, Ok(None)), "a clean gRPC end");
    let rest = tokio::time::timeout(Duration::from_secs(5), sse.recv())
        .await
        .expect("the SSE stream ends");
    assert!(rest.is_none(), "{rest:?}");
}
