//! `export-video-data` and `import-video-data` as an operator runs them, on both backends.

use std::{os::unix::fs::PermissionsExt as _, path::Path, process::Output};

use rstest::rstest;
use serde_json::{Value, json};
use videoflix::{
    domain::{RawVideoMeta, UserId, VideoMeta},
    store::NewUser,
};

use crate::helpers::{Backend, TestApp, redis_url, spawn_app};

/// The `videoflix` binary pointed at `app`'s database (and Redis, on the real backend).
fn videoflix(app: &TestApp, args: &[&str]) -> Output {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_videoflix"));
    for var in [
        "JWT_SECRET",
        "DATABASE_URL",
        "REDIS_URL",
        "SMTP_URL",
        "VIDEOFLIX_DEV",
    ] {
        cmd.env_remove(var);
    }
    cmd.current_dir(std::env::temp_dir())
        .args(args)
        .args(["--database-url", &app.settings.database_url])
        .args(["--jwt-secret", "test-secret-0123456789-abcdefghijklmnop"])
        .args(["--redis-prefix", &app.settings.redis_prefix]);
    if app.backend == Backend::Real {
        cmd.args(["--redis-url", &redis_url()]);
    }
    cmd.output().expect("run videoflix")
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs an export into `dir` and returns the file it printed.
fn export(app: &TestApp, dir: &Path, full: bool) -> std::path::PathBuf {
    let dir = dir.display().to_string();
    let mut args = vec!["export-video-data", "--output", dir.as_str()];
    if full {
        args.push("--full");
    }
    let stdout = ok(&videoflix(app, &args));
    let path = stdout.split(" (").next().expect("a path").trim();
    std::path::PathBuf::from(path)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read export")).expect("JSON")
}

/// An uploader and a viewer with a favorite and progress, and three videos with media.
async fn seed(app: &TestApp) -> (i64, i64) {
    let store = &app.services.store;
    let hash = app
        .services
        .accounts
        .hasher()
        .hash("Old-Password-2026")
        .await
        .expect("hash");
    let admin = store
        .create_user(NewUser {
            email: &videoflix::domain::Email::parse("admin@example.com").expect("email"),
            password_hash: &hash,
            is_active: true,
            is_superuser: true,
            is_guest: false,
        })
        .await
        .expect("admin");
    let viewer = store
        .create_user(NewUser {
            email: &videoflix::domain::Email::parse("viewer@example.com").expect("email"),
            password_hash: &hash,
            is_active: true,
            is_superuser: false,
            is_guest: false,
        })
        .await
        .expect("viewer");
    let mut ids = Vec::new();
    for (title, genre) in [("Ocean", "documentary"), ("Chase", "action"), ("Night", "")] {
        let meta = VideoMeta::parse(&RawVideoMeta {
            title,
            description: "A film about things, with ümlauts.",
            author: "Jane",
            genre,
            language: "english",
        })
        .expect("meta");
        let video = store
            .create_video(&meta, admin.user_id())
            .await
            .expect("video");
        store
            .set_video_source(video.id, &format!("videos/{}/source.mp4", video.id))
            .await
            .expect("source");
        // Transcoded, as the pipeline leaves it (no worker touches a ready video).
        let claim = store
            .claim_transcode(video.id, "seed", videoflix::store::Timestamp::now())
            .await
            .expect("claim");
        assert!(
            matches!(claim, videoflix::store::Claim::Started(_)),
            "{claim:?}"
        );
        let folder = format!("videos/{}/g1", video.id);
        let rendition = |name: &str, w: u32, h: u32| videoflix::domain::StoredRendition {
            name: name.into(),
            width: w,
            height: h,
            bitrate: 800_000,
            mp4: format!("{folder}/{name}.mp4"),
            playlist: format!("{folder}/hls/{name}/index.m3u8"),
        };
        let media = videoflix::domain::Media::finished(
            String::new(),
            format!("{folder}/poster.jpg"),
            format!("{folder}/thumbnails.vtt"),
            format!("{folder}/hls/master.m3u8"),
            vec![rendition("360p", 640, 360), rendition("480p", 854, 480)],
        );
        assert!(
            store
                .finish_transcode(video.id, "seed", &media, 61.48)
                .await
                .expect("finish")
        );
        ids.push(video.id);
    }
    store
        .add_favorite(viewer.user_id(), ids[0])
        .await
        .expect("favorite");
    store
        .save_progress(viewer.user_id(), ids[1], 12.625)
        .await
        .expect("progress");
    (admin.id.get(), viewer.id.get())
}

async fn video_count(app: &TestApp) -> usize {
    app.services
        .store
        .videos_after(None, 10_000)
        .await
        .expect("videos")
        .len()
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn an_export_is_a_private_timestamped_file_with_every_column(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = seed(&app).await;
    let dir = tempfile::tempdir().expect("dir");

    let path = export(&app, dir.path(), false);

    let name = path.file_name().and_then(|n| n.to_str()).expect("name");
    assert!(videoflix::backup::is_export_name(name), "{name}");
    assert!(name.starts_with("video_data_20"), "{name}");
    let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    let videos = read_json(&path);
    let videos = videos.as_array().expect("an array");
    assert_eq!(videos.len(), 3);
    let first = &videos[0];
    for field in [
        "id",
        "title",
        "description",
        "author",
        "genre",
        "uploaded_at",
        "updated_at",
        "uploaded_by",
        "is_favorite",
        "language",
        "video_file",
        "poster",
        "vtt_file",
        "video_file_hd360",
        "video_file_hd480",
        "video_file_hd720",
        "video_file_hd1080",
        "duration",
        "status",
        "status_reason",
        "hls",
        "renditions",
    ] {
        assert!(first.get(field).is_some(), "no {field} in {first}");
    }
    assert_eq!(first["uploaded_by"], admin);
    assert_eq!(first["is_favorite"], false, "favorites are per user");
    assert_eq!(
        first["video_file"],
        format!("videos/{}/source.mp4", first["id"])
    );
    assert_eq!(videos[2]["genre"], Value::Null);
    assert!(
        first["uploaded_at"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 27),
        "{}",
        first["uploaded_at"]
    );
    assert!(
        !std::fs::read_to_string(&path)
            .expect("text")
            .contains("/media/"),
        "a signed URL"
    );
    // Ids ascend.
    let ids: Vec<i64> = videos.iter().filter_map(|v| v["id"].as_i64()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn a_full_export_restores_into_an_empty_database_with_every_login(#[case] backend: Backend) {
    let source = spawn_app(backend).await;
    seed(&source).await;
    let dir = tempfile::tempdir().expect("dir");
    let full = export(&source, dir.path(), true);
    let plain = export(&source, dir.path(), false);

    let target = spawn_app(backend).await;
    let stdout = ok(&videoflix(
        &target,
        &["import-video-data", full.to_str().expect("path")],
    ));
    assert!(
        stdout.contains("videos: 3 created, 0 updated, 0 unchanged"),
        "{stdout}"
    );
    assert!(stdout.contains("users: 2 created"), "{stdout}");
    assert!(stdout.contains("favorites: 1 created"), "{stdout}");

    // The same records come back out, byte for byte (both files list ids in order).
    let again = tempfile::tempdir().expect("dir");
    let restored = export(&target, again.path(), false);
    assert_eq!(
        std::fs::read(&plain).expect("first"),
        std::fs::read(&restored).expect("second")
    );
    let restored_full = read_json(&export(&target, again.path(), true));
    let original_full = read_json(&full);
    for section in ["users", "videos", "favorites", "watch_progress"] {
        assert_eq!(restored_full[section], original_full[section], "{section}");
    }
    // Importing it again changes nothing.
    let stdout = ok(&videoflix(
        &target,
        &["import-video-data", full.to_str().expect("path")],
    ));
    assert!(
        stdout.contains("videos: 0 created, 0 updated, 3 unchanged"),
        "{stdout}"
    );
    assert!(
        stdout.contains("users: 0 created, 0 updated, 2 unchanged"),
        "{stdout}"
    );
    // Every account logs in with its old password.
    for email in ["admin@example.com", "viewer@example.com"] {
        target
            .post(
                "/login/",
                json!({"email": email, "password": "Old-Password-2026"}),
            )
            .await
            .expect(200);
    }
    // New rows never collide with imported ids.
    let next = target
        .services
        .store
        .create_video(
            &VideoMeta::parse(&RawVideoMeta {
                title: "New",
                ..Default::default()
            })
            .expect("meta"),
            UserId::parse(1, "id").expect("id"),
        )
        .await
        .expect("a new video");
    let imported_max = original_full["videos"]
        .as_array()
        .and_then(|v| v.iter().filter_map(|v| v["id"].as_i64()).max())
        .expect("ids");
    assert!(
        next.id.get() > imported_max,
        "{} <= {imported_max}",
        next.id
    );
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn one_bad_record_is_reported_and_nothing_is_written(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = seed(&app).await;
    let dir = tempfile::tempdir().expect("dir");
    let good = |id: i64, title: &str| {
        json!({"id": id, "title": title, "uploaded_at": "2026-01-01T00:00:00Z",
               "uploaded_by": admin, "genre": "drama", "video_file": format!("videos/{id}/a.mp4")})
    };
    let mut bad_genre = good(102, "Bad genre");
    bad_genre["genre"] = json!("western");
    let mut escaping = good(103, "Escaping");
    escaping["poster"] = json!("../../etc/passwd");
    let mut stranger = good(104, "Stranger");
    stranger["uploaded_by"] = json!(9999);
    let file = dir.path().join("bad.json");
    std::fs::write(
        &file,
        serde_json::to_vec(&json!([
            good(101, "Fine"),
            bad_genre,
            escaping,
            stranger,
            good(101, "Twice")
        ]))
        .expect("json"),
    )
    .expect("write");

    let output = videoflix(&app, &["import-video-data", file.to_str().expect("path")]);

    assert!(!output.status.success(), "a bad file was accepted");
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "videos[1] (id 102) genre:",
        "videos[2] (id 103) poster: must be a path inside MEDIA_DIR",
        "videos[3] (id 104) uploaded_by: no user 9999",
        "videos[4] (id 101) id: appears twice",
        "nothing was written",
    ] {
        assert!(stderr.contains(expected), "no {expected:?} in {stderr}");
    }
    assert_eq!(video_count(&app).await, 3, "a record was written");

    // A dry run of the good part previews and writes nothing; mapping an uploader is allowed.
    std::fs::write(
        &file,
        serde_json::to_vec(&json!([good(101, "Fine"), stranger])).expect("json"),
    )
    .expect("write");
    let map = format!("9999={admin}");
    let stdout = ok(&videoflix(
        &app,
        &[
            "import-video-data",
            file.to_str().expect("path"),
            "--dry-run",
            "--map-user",
            &map,
        ],
    ));
    assert!(stdout.contains("videos: 2 created"), "{stdout}");
    assert!(stdout.contains("nothing was written"), "{stdout}");
    assert_eq!(video_count(&app).await, 3, "a dry run wrote");
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn an_import_shows_in_the_cached_catalog_at_once(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    let (admin, _) = seed(&app).await;
    let token = app.login("admin@example.com", "Old-Password-2026").await;
    let before = app.get_auth("/api/videos/", &token).await.expect(200);
    let count = |body: &Value| {
        body.as_array()
            .or_else(|| body["results"].as_array())
            .map(Vec::len)
            .expect("a list")
    };
    assert_eq!(count(&before.body), 3);
    let bytes = serde_json::to_vec(&json!([{"id": 700, "title": "Imported",
        "uploaded_at": "2026-01-01T00:00:00Z", "uploaded_by": admin, "status": "ready"}]))
    .expect("json");

    let outcome = app
        .services
        .backups
        .import(&bytes, false, &Default::default())
        .await
        .expect("import");

    assert!(matches!(outcome, videoflix::backup::Imported::Done(p) if p.videos.created == 1));
    let after = app.get_auth("/api/videos/", &token).await.expect(200);
    assert_eq!(count(&after.body), 4, "the cached list did not change");
}

/// Adds `n` plain videos straight in SQL (the API would take minutes for a big catalog).
async fn bulk_videos(app: &TestApp, n: i64) {
    let url = &app.settings.database_url;
    if app.backend == Backend::Real {
        let pool = sqlx::PgPool::connect(url).await.expect("postgres");
        sqlx::query(
            "INSERT INTO videos (title, description, uploaded_at, updated_at, search_title) \
             SELECT 'Bulk ' || i, repeat('words ', 40), now(), now(), 'bulk ' || i \
             FROM generate_series(1, $1) i",
        )
        .bind(n)
        .execute(&pool)
        .await
        .expect("bulk insert");
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.expect("sqlite");
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1) \
             INSERT INTO videos (title, description, uploaded_at, updated_at, search_title) \
             SELECT 'Bulk ' || i, printf('%.240c', 'w'), 0, 0, 'bulk ' || i FROM n",
        )
        .bind(n)
        .execute(&pool)
        .await
        .expect("bulk insert");
    }
}

#[rstest]
#[case::embedded(Backend::Embedded)]
#[case::real(Backend::Real)]
#[tokio::test]
async fn a_killed_export_leaves_no_file_under_the_final_name(#[case] backend: Backend) {
    let app = spawn_app(backend).await;
    bulk_videos(&app, 40_000).await;
    let dir = tempfile::tempdir().expect("dir");
    let out = dir.path().display().to_string();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_videoflix"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("REDIS_URL")
        .args(["export-video-data", "--output", &out])
        .args(["--database-url", &app.settings.database_url])
        .args(["--jwt-secret", "test-secret-0123456789-abcdefghijklmnop"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn");

    // Kill it as soon as it has started writing.
    let names = || -> Vec<String> {
        std::fs::read_dir(dir.path())
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .collect()
            })
            .unwrap_or_default()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !names().iter().any(|n| n.contains(".tmp-")) {
        assert!(
            std::time::Instant::now() < deadline,
            "no temp file appeared"
        );
        assert!(
            child.try_wait().expect("wait").is_none(),
            "finished before the kill"
        );
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    child.kill().expect("kill");
    let _ = child.wait();

    let left = names();
    assert!(
        left.iter().all(|n| !videoflix::backup::is_export_name(n)),
        "a final file after a kill: {left:?}"
    );
    // The next export is whole.
    let path = export(&app, dir.path(), false);
    assert_eq!(read_json(&path).as_array().map(Vec::len), Some(40_000));
}
