//! Faults with real processes: a worker process stopped (SIGTERM) and one killed (`kill -9`)
//! mid-transcode, each job finished by the next worker with nothing lost or left behind.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;
use videoflix::domain::VideoId;

use crate::{
    helpers::{Backend, TestApp, process::Process, spawn_app_with},
    media::Clips,
    pipeline::{admin, options, post_form},
    playback::{follow_sse, progress_at},
};

/// Waits (bounded) for an event matching `found`; returns it.
pub(crate) async fn event_where(
    events: &mut mpsc::Receiver<Value>,
    found: impl Fn(&Value) -> bool,
) -> Value {
    let wait = async {
        while let Some(event) = events.recv().await {
            if found(&event) {
                return event;
            }
        }
        panic!("the status stream ended");
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .expect("the event in time")
}

/// The entries of `videos/<id>` (sorted).
fn video_folder(app: &TestApp, id: i64) -> Vec<String> {
    let folder = app.settings.media_dir.join(format!("videos/{id}"));
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .expect("the video's folder")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_worker_gives_its_job_back_and_a_killed_ones_job_is_reclaimed_and_finished() {
    // Claims go stale 5 s after their last heartbeat, queue entries are reclaimed after 10 s.
    let app = spawn_app_with(
        Backend::Real,
        options(&[("--job-visibility-timeout", "10")]),
    )
    .await;
    let token = admin(&app).await;
    let clips = Clips::new();
    let bytes = std::fs::read(clips.clip("long.mp4", "640x360", 20, false, &[])).expect("clip");
    let first = Process::worker(&app, &[]).await;
    let (status, video) = post_form(
        &app,
        &token,
        &[("title", "Survivor")],
        Some(("long.mp4", bytes)),
    )
    .await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_i64().expect("id");
    let video_id = VideoId::parse(id, "id").expect("id");
    let mut events = follow_sse(&app, &token, id);

    // SIGTERM mid-transcode: the worker gives the job back (no attempt spent, no partial
    // outputs) and exits 0 long before its grace period is over.
    progress_at(&mut events, 5.0).await;
    first.signal("TERM");
    let mut first = first;
    let exit = first.exit_within(Duration::from_secs(15)).await;
    assert_eq!(exit.code(), Some(0), "{}", first.tail());
    assert_eq!(
        first.logged("transcode abandoned: the process stops")[0]["fields"]["released"],
        json!(true)
    );
    event_where(&mut events, |e| e["status"] == "pending").await;
    let attempts = app.services.store.transcode_attempts(video_id).await;
    assert_eq!(attempts.expect("read"), Some(0));
    assert!(
        !video_folder(&app, id)
            .iter()
            .any(|n| n.starts_with(".tmp-")),
        "{:?}",
        video_folder(&app, id)
    );

    // The next worker takes it at once, and is killed mid-transcode: its half-written working
    // folder stays behind, its claim and queue entry are held by a dead process.
    let second = Process::worker(&app, &[]).await;
    progress_at(&mut events, 5.0).await;
    second.signal("KILL");
    let mut second = second;
    second.exit_within(Duration::from_secs(5)).await;
    let debris: Vec<String> = video_folder(&app, id)
        .into_iter()
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert_eq!(debris.len(), 1, "the killed job's folder: {debris:?}");

    // A third worker reclaims the job once the claim is stale and finishes it.
    let third = Process::worker(&app, &[]).await;
    let ready = event_where(&mut events, |e| {
        assert_ne!(e["status"], "failed", "{e}");
        e["status"] == "ready"
    })
    .await;
    assert_eq!(ready["percent"], json!(100.0), "{ready}");
    assert_eq!(
        (
            first.encoder_runs(id),
            second.encoder_runs(id),
            third.encoder_runs(id)
        ),
        (1, 1, 1)
    );
    let attempts = app.services.store.transcode_attempts(video_id).await;
    assert_eq!(
        attempts.expect("read"),
        Some(2),
        "the killed run and the last"
    );

    // One set of outputs, the one the API names; no working folder is left.
    let folder = video_folder(&app, id);
    let detail = app
        .get_auth(&format!("/api/videos/{id}/"), &token)
        .await
        .expect(200)
        .body;
    let url = detail["renditions"][0]["url"]
        .as_str()
        .expect("a rendition");
    let generations: Vec<&String> = folder.iter().filter(|n| *n != "source").collect();
    assert_eq!(generations.len(), 1, "{folder:?}");
    assert!(
        url.contains(&format!("/videos/{id}/{}/", generations[0])),
        "{url} {folder:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_in_flight_at_shutdown_is_refused_and_leaves_nothing_and_the_process_exits_0() {
    let app = spawn_app_with(Backend::Real, options(&[])).await;
    let token = admin(&app).await;
    let mut server = Process::serve(&app, &[]).await;
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address)
        .await
        .expect("connect");
    crate::hostile::start_upload(&mut stream, &token, "Cut short").await;
    // The upload is arriving: its file exists.
    let incoming = app.settings.media_dir.join("incoming");
    let parts = || {
        std::fs::read_dir(&incoming).map_or(0, |d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".part"))
                .count()
        })
    };
    let arriving = async {
        while parts() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), arriving)
        .await
        .expect("the upload's file");

    // SIGTERM: the upload is answered 503 at once (not held to the 20 s grace period), its
    // file removed, no video created, and the process exits 0.
    let stopped = std::time::Instant::now();
    server.signal("TERM");
    let text = crate::hostile::answer_head(&mut stream, Duration::from_secs(5))
        .await
        .expect("no answer");
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    let exit = server.exit_within(Duration::from_secs(10)).await;
    assert_eq!(exit.code(), Some(0), "{}", server.tail());
    assert!(stopped.elapsed() < Duration::from_secs(10));
    assert_eq!(parts(), 0, "the partial upload is removed");
    let pool = sqlx::PgPool::connect(&app.settings.database_url)
        .await
        .expect("postgres");
    let (videos,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM videos")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(videos, 0);
}
