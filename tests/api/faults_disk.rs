//! The media disk full (a small tmpfs as MEDIA_DIR): a transcode that runs out of space fails
//! with its reason after its retries and leaves only the original upload; an upload that does
//! not fit is refused with 507 and leaves nothing; once there is room again a retry succeeds.

use std::{path::Path, process::Command};

use reqwest::Method;
use serde_json::json;

use crate::{
    faults::event_where,
    helpers::{Backend, TestApp, spawn_app_with},
    media::Clips,
    pipeline::{admin, options, post_form},
    playback::follow_sse,
};

/// A tmpfs of a given size, mounted on a temporary folder (the tests run as root, as CI does);
/// unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(bytes: usize) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .expect("mount");
        assert!(mounted.success(), "mounting a tmpfs needs root");
        Self { dir }
    }

    fn resize(&self, bytes: usize) {
        let resized = Command::new("mount")
            .args(["-o", &format!("remount,size={bytes}")])
            .arg(self.dir.path())
            .status()
            .expect("remount");
        assert!(resized.success());
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// The entries of `dir` (sorted; none when it does not exist).
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Rows in `videos` (of an embedded app).
async fn video_count(app: &TestApp) -> i64 {
    let pool = sqlx::SqlitePool::connect(&app.settings.database_url)
        .await
        .expect("sqlite");
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM videos")
        .fetch_one(&pool)
        .await
        .expect("count");
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_media_disk_fails_the_job_keeps_the_upload_refuses_new_ones_and_recovers() {
    let clips = Clips::new();
    let bytes = std::fs::read(clips.clip("d.mp4", "640x360", 4, false, &[])).expect("clip");
    // Room for the upload and half as much again; its outputs are about as large as it is.
    let disk = Tmpfs::mount(bytes.len() * 3 / 2);
    let media = disk.path().display().to_string();
    let app = spawn_app_with(
        Backend::Embedded,
        options(&[
            ("--media-dir", media.as_str()),
            ("--transcode-max-attempts", "2"),
            ("--transcode-retry-delay", "1"),
        ]),
    )
    .await;
    let token = admin(&app).await;
    let upload = |title: &'static str| {
        let (app, token, bytes) = (&app, token.clone(), bytes.clone());
        async move { post_form(app, &token, &[("title", title)], Some(("d.mp4", bytes))).await }
    };

    // The transcode runs out of space twice: failed for good, with the reason, and only the
    // original upload is left.
    let (status, first) = upload("No room").await;
    assert_eq!(status, 201, "{first}");
    let first = first["id"].as_i64().expect("id");
    let mut events = follow_sse(&app, &token, first);
    let failed = event_where(&mut events, |e| e["status"] == "failed").await;
    let reason = failed["reason"].as_str().unwrap_or_default();
    assert!(reason.contains("No space left on device"), "{failed}");
    let folder = disk.path().join(format!("videos/{first}"));
    assert_eq!(entries(&folder), ["source"]);
    assert_eq!(
        std::fs::read(folder.join("source")).expect("the upload"),
        bytes,
        "the original upload is kept whole"
    );

    // An upload that does not fit: 507 with the JSON error, no video, no partial file.
    let (status, refused) = upload("Does not fit").await;
    assert_eq!(status.as_u16(), 507, "{refused}");
    assert_eq!(refused["type"], json!(["storage"]), "{refused}");
    assert_eq!(video_count(&app).await, 1);
    assert!(
        entries(&disk.path().join("incoming")).is_empty(),
        "{:?}",
        entries(&disk.path().join("incoming"))
    );

    // Room is made (the failed video deleted): the next upload fits, its first attempt runs
    // out of space, and once the disk is larger its retry succeeds.
    app.call(
        Method::DELETE,
        &format!("/api/videos/{first}/"),
        None,
        Some(&token),
    )
    .await
    .expect(204);
    let (status, second) = upload("Room again").await;
    assert_eq!(status, 201, "{second}");
    let second = second["id"].as_i64().expect("id");
    let mut events = follow_sse(&app, &token, second);
    let retrying = event_where(&mut events, |e| {
        assert_ne!(e["status"], "failed", "{e}");
        e["status"] == "pending" && e["step"] == "retrying"
    })
    .await;
    assert!(
        retrying["reason"]
            .as_str()
            .is_some_and(|r| r.contains("No space left on device")),
        "{retrying}"
    );
    disk.resize(64 << 20);
    event_where(&mut events, |e| {
        assert_ne!(e["status"], "failed", "{e}");
        e["status"] == "ready"
    })
    .await;
    let folder = entries(&disk.path().join(format!("videos/{second}")));
    assert_eq!(
        folder.len(),
        2,
        "the source and one set of outputs: {folder:?}"
    );
    assert!(!folder.iter().any(|n| n.starts_with(".tmp-")), "{folder:?}");
}
