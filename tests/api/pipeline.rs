//! The media pipeline end to end: uploads over REST and gRPC, the background transcode, status
//! over SSE and gRPC, signed media URLs with Range, and the bad uploads.

use std::time::Duration;

use reqwest::{Method, StatusCode, multipart};
use serde_json::{Value, json};
use tokio_stream::StreamExt as _;
use tonic::Code;
use videoflix::grpc::pb;

use crate::{
    helpers::{AppOptions, Backend, PASSWORD, TestApp, authed, spawn_app_with, spawn_peer},
    media::Clips,
};

pub(crate) fn options(extra: &[(&str, &str)]) -> AppOptions {
    let mut args = vec![("--transcode-preset".to_owned(), "veryfast".to_owned())];
    args.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    AppOptions {
        args,
        ..Default::default()
    }
}

pub(crate) async fn admin(app: &TestApp) -> String {
    crate::catalog::admin_token(app).await
}

/// A fresh token of the admin made by [`admin`].
pub(crate) async fn admin_token_of(app: &TestApp) -> String {
    app.login("admin@example.com", PASSWORD).await
}

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

/// A worker process of `app`'s deployment, with `extra` flags.
pub(crate) async fn worker_of(app: &TestApp, extra: &[(&str, &str)]) -> TestApp {
    let mut args = vec![
        ("--worker".to_owned(), String::new()),
        ("--transcode-preset".to_owned(), "veryfast".to_owned()),
    ];
    args.extend(
        extra
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    spawn_peer(app, args).await
}

/// POSTs a multipart form: `fields` first, then the file part (if any).
pub(crate) async fn post_form(
    app: &TestApp,
    token: &str,
    fields: &[(&str, &str)],
    file: Option<(&str, Vec<u8>)>,
) -> (StatusCode, Value) {
    let mut form = multipart::Form::new();
    for (k, v) in fields {
        form = form.text((*k).to_owned(), (*v).to_owned());
    }
    if let Some((name, bytes)) = file {
        form = form.part(
            "video_file",
            multipart::Part::bytes(bytes).file_name(name.to_owned()),
        );
    }
    send_form(app, Some(token), form).await
}

/// POSTs `form` to `/api/videos/` (with `Authorization: Token …` when given).
async fn send_form(
    app: &TestApp,
    token: Option<&str>,
    form: multipart::Form,
) -> (StatusCode, Value) {
    let mut request = app.http.post(format!("{}/api/videos/", app.base));
    if let Some(token) = token {
        request = request.header("authorization", format!("Token {token}"));
    }
    let response = request.multipart(form).send().await.expect("request");
    let status = response.status();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// The test server's media URL for a URL the API answered (PUBLIC_URL has no port in tests).
pub(crate) fn local(app: &TestApp, url: &str) -> String {
    let path = url.strip_prefix("http://127.0.0.1/").expect("PUBLIC_URL");
    format!("{}/{path}", app.base)
}

/// Reads the SSE stream of a video until it ends; returns the events.
pub(crate) async fn sse_until_final(app: &TestApp, token: &str, id: i64) -> Vec<Value> {
    let response = app
        .http
        .get(format!("{}/api/videos/{id}/status/", app.base))
        .header("authorization", format!("Token {token}"))
        .send()
        .await
        .expect("sse");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap_or_default()
            .starts_with("text/event-stream")
    );
    let mut events = Vec::new();
    let mut response = response;
    let mut buffer = String::new();
    let read = async {
        while let Some(chunk) = response.chunk().await.expect("chunk") {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                    events.push(serde_json::from_str::<Value>(data).expect("json"));
                }
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(120), read)
        .await
        .expect("the transcode finishes in time");
    events
}

#[tokio::test]
async fn an_uploaded_file_becomes_a_playable_adaptive_video() {
    let app = spawn_app_with(Backend::Embedded, options(&[])).await;
    let token = admin(&app).await;
    let clips = Clips::new();
    // Above axum's default 2 MB body limit: uploads must stream past it.
    let clip = clips.clip(
        "clip.mp4",
        "640x360",
        3,
        false,
        &["-vf", "noise=alls=12:allf=t", "-qp", "24"],
    );
    let bytes = std::fs::read(&clip).expect("clip");
    assert!(bytes.len() > 3 << 20, "{} bytes", bytes.len());

    // A shell-hostile file name is metadata only.
    let (status, video) = post_form(
        &app,
        &token,
        &[
            ("title", "Ocean"),
            ("description", "Waves"),
            ("genre", "documentary"),
        ],
        Some(("$(touch /tmp/pwned); rm -rf ~ .mp4", bytes)),
    )
    .await;
    assert_eq!(status, 201, "{video}");
    assert_eq!(video["status"], "pending");
    assert_eq!(video["genre"], "documentary");
    let id = video["id"].as_i64().expect("id");
    assert!(!std::path::Path::new("/tmp/pwned").exists());

    let events = sse_until_final(&app, &token, id).await;
    let statuses: Vec<&str> = events.iter().filter_map(|e| e["status"].as_str()).collect();
    assert_eq!(statuses.last(), Some(&"ready"), "{events:?}");
    let percents: Vec<f64> = events
        .iter()
        .filter(|e| e["status"] == "processing")
        .filter_map(|e| e["percent"].as_f64())
        .collect();
    assert!(percents.windows(2).all(|w| w[0] <= w[1]), "{percents:?}");
    // The live stream carries the job's progress, not only its end (which the watcher's
    // database check would deliver anyway).
    let intermediate: Vec<f64> = percents
        .iter()
        .copied()
        .filter(|p| *p > 0.0 && *p < 100.0)
        .collect();
    assert!(
        intermediate.windows(2).any(|w| w[0] < w[1]),
        "no rising progress over the stream: {events:?}"
    );

    let video = app
        .get_auth(&format!("/api/videos/{id}/"), &token)
        .await
        .expect(200)
        .body;
    assert_eq!(video["status"], "ready", "{video}");
    // The original's `duration` is whole seconds; the exact value rides along.
    assert_eq!(video["duration"], 3, "{video}");
    assert!(video["duration"].is_i64(), "{video}");
    assert!((video["duration_seconds"].as_f64().expect("duration") - 3.0).abs() < 0.2);
    for field in [
        "video_file",
        "video_file_hd360",
        "poster",
        "vtt_file",
        "hls",
    ] {
        assert!(
            video[field]
                .as_str()
                .is_some_and(|u| u.starts_with("http://127.0.0.1/media/")),
            "{field}: {video}"
        );
    }
    // A 360p source is not upscaled: it has one real rendition, and every legacy field names
    // it so a legacy player (the catalog's 1080p hero) always finds a file.
    every_legacy_field_names_the_one_360p_rendition(&video);

    // Range, HEAD, content types, CORS for a player on another origin.
    let mp4 = local(&app, video["video_file_hd360"].as_str().expect("url"));
    let full = app.http.get(&mp4).send().await.expect("mp4");
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["content-type"], "video/mp4");
    let whole = full.bytes().await.expect("bytes");
    let part = app
        .http
        .get(&mp4)
        .header("range", "bytes=100-299")
        .header("origin", "http://frontend.test")
        .send()
        .await
        .expect("range");
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 100-299/{}", whole.len()).as_str()
    );
    assert_eq!(part.headers()["access-control-allow-origin"], "*");
    assert_eq!(part.bytes().await.expect("part"), whole.slice(100..300));
    let modified = app.http.get(&mp4).send().await.expect("mp4");
    let last_modified = modified.headers()["last-modified"].clone();
    let not_modified = app
        .http
        .get(&mp4)
        .header("if-modified-since", last_modified)
        .send()
        .await
        .expect("conditional");
    assert_eq!(not_modified.status(), 304);
    let head = app.http.head(&mp4).send().await.expect("head");
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        whole.len().to_string().as_str()
    );

    // HLS: the master's relative URLs resolve under the same signature.
    let master_url = local(&app, video["hls"].as_str().expect("hls"));
    let master = app.http.get(&master_url).send().await.expect("master");
    assert_eq!(master.status(), 200);
    assert_eq!(
        master.headers()["content-type"],
        "application/vnd.apple.mpegurl"
    );
    let master = master.text().await.expect("text");
    let media = master
        .lines()
        .find(|l| l.ends_with(".m3u8"))
        .expect("a variant");
    let media_url = url::Url::parse(&master_url)
        .and_then(|u| u.join(media))
        .expect("join");
    let playlist = app
        .http
        .get(media_url.clone())
        .send()
        .await
        .expect("playlist");
    assert_eq!(playlist.status(), 200);
    let playlist = playlist.text().await.expect("text");
    let segment = playlist
        .lines()
        .find(|l| l.ends_with(".m4s"))
        .expect("segment");
    let segment = app
        .http
        .get(media_url.join(segment).expect("join"))
        .send()
        .await
        .expect("segment");
    assert_eq!(segment.status(), 200);

    // Thumbnails: the VTT points at sprites beside it.
    let vtt_url = local(&app, video["vtt_file"].as_str().expect("vtt"));
    let vtt = app
        .http
        .get(&vtt_url)
        .send()
        .await
        .expect("vtt")
        .text()
        .await
        .expect("text");
    let sprite = vtt
        .lines()
        .find_map(|l| l.split_once("#xywh=").map(|(image, _)| image.to_owned()))
        .expect("a cue");
    let sprite = app
        .http
        .get(
            url::Url::parse(&vtt_url)
                .and_then(|u| u.join(&sprite))
                .expect("join"),
        )
        .send()
        .await
        .expect("sprite");
    assert_eq!(sprite.status(), 200);
    assert_eq!(sprite.headers()["content-type"], "image/jpeg");

    // A folder under a valid signature is not a file: 404 for GET and HEAD alike.
    let folder = master_url
        .rsplit_once("/master.m3u8")
        .map(|(hls, _)| hls.to_owned())
        .expect("the hls folder");
    assert!(folder.ends_with("/hls"), "{folder}");
    for method in [Method::GET, Method::HEAD] {
        let response = app
            .http
            .request(method.clone(), &folder)
            .send()
            .await
            .expect("folder");
        assert_eq!(response.status(), 404, "{method} {folder}");
    }

    // Tampered, moved and expired URLs are refused.
    let tampered = mp4.replacen("/media/", "/media/1", 1);
    assert_eq!(
        app.http.get(&tampered).send().await.expect("x").status(),
        403
    );
    let other = mp4.replace(&format!("/videos/{id}/"), "/videos/999/");
    assert_eq!(app.http.get(&other).send().await.expect("x").status(), 403);
    let signer = videoflix::security::MediaSigner::new(app.settings.signing_secret());
    let stored = mp4.split_once("/videos/").expect("path").1;
    let expired = signer
        .sign(&format!("videos/{stored}"), 1_000)
        .expect("signed");
    let expired = format!("{}/media/{expired}", app.base);
    let refused = app.http.get(&expired).send().await.expect("x");
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.expect("text").contains("expired"));

    // Deleting the video removes its files.
    app.call(
        Method::DELETE,
        &format!("/api/videos/{id}/"),
        None,
        Some(&token),
    )
    .await
    .expect(204);
    assert_eq!(app.http.get(&mp4).send().await.expect("x").status(), 404);
}

#[tokio::test]
async fn bad_uploads_are_refused_clearly_and_leave_nothing_behind() {
    let app = spawn_app_with(
        Backend::Embedded,
        options(&[("--upload-max-bytes", "200000")]),
    )
    .await;
    let token = admin(&app).await;
    let guest = app.post("/guest-login/", json!({})).await.expect(200).body["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let clips = Clips::new();
    let small = std::fs::read(clips.clip("s.mp4", "160x120", 1, true, &[])).expect("clip");
    let big = std::fs::read(clips.clip("b.mp4", "1280x720", 3, false, &[])).expect("clip");
    let title = [("title", "Bad")];
    // (file, fields sent before it, status, error type)
    type Case<'a> = (
        Option<(&'a str, Vec<u8>)>,
        &'a [(&'a str, &'a str)],
        u16,
        &'a str,
    );
    let cases: Vec<Case> = vec![
        (
            Some(("x.mp4", b"just text\n".repeat(50))),
            &title,
            400,
            "video_file",
        ),
        (Some(("empty.mp4", Vec::new())), &title, 400, "video_file"),
        (
            Some(("cut.mp4", small[..small.len() / 3].to_vec())),
            &title,
            400,
            "video_file",
        ),
        (Some(("big.mp4", big)), &title, 413, "too_large"),
        (Some(("s.mp4", small.clone())), &[], 400, "title"),
        (
            Some(("s.mp4", small.clone())),
            &[("title", "")],
            400,
            "title",
        ),
    ];
    for (file, fields, status, kind) in cases {
        let name = file.as_ref().map(|(n, _)| (*n).to_owned());
        let (got, body) = post_form(&app, &token, fields, file).await;
        assert_eq!(got.as_u16(), status, "{name:?}: {body}");
        assert_eq!(body["type"], json!([kind]), "{name:?}: {body}");
    }
    let (got, _) = post_form(&app, &guest, &title, Some(("s.mp4", small.clone()))).await;
    assert_eq!(got, 403);
    // Refused before the body is read: a forged token, and none at all.
    let (got, _) = post_form(&app, "forged", &title, Some(("s.mp4", small.clone()))).await;
    assert_eq!(got, 401);
    let form = multipart::Form::new().text("title", "x").part(
        "video_file",
        multipart::Part::bytes(small.clone()).file_name("s.mp4"),
    );
    let (got, _) = send_form(&app, None, form).await;
    assert_eq!(got, 401);
    // Nothing was kept: no partial uploads, no catalog entries.
    let incoming = app.settings.media_dir.join("incoming");
    let left: Vec<_> = std::fs::read_dir(&incoming)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
    let list = app.get_auth("/api/videos/", &token).await.expect(200).body;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn grpc_upload_status_stream_and_chunked_download() {
    let app = spawn_app_with(Backend::Embedded, options(&[])).await;
    let token = admin(&app).await;
    let clips = Clips::new();
    let bytes = std::fs::read(clips.clip("g.mp4", "320x240", 2, true, &[])).expect("clip");
    let mut client = app.video_client().await;

    let header = pb::UploadVideoRequest {
        payload: Some(pb::upload_video_request::Payload::Header(
            pb::UploadHeader {
                metadata: Some(pb::VideoMetadata {
                    title: "Over gRPC".to_owned(),
                    ..Default::default()
                }),
                file_name: "g.mp4".to_owned(),
                size_bytes: i64::try_from(bytes.len()).expect("size"),
            },
        )),
    };
    let mut messages = vec![header];
    for chunk in bytes.chunks(64 * 1024) {
        messages.push(pb::UploadVideoRequest {
            payload: Some(pb::upload_video_request::Payload::Chunk(chunk.to_vec())),
        });
    }
    let video = client
        .upload_video(authed(tokio_stream::iter(messages), &token))
        .await
        .expect("upload")
        .into_inner()
        .video
        .expect("video");
    assert_eq!(video.status, pb::VideoStatus::Pending as i32);

    let mut stream = client
        .watch_transcode_status(authed(
            pb::WatchTranscodeStatusRequest { video_id: video.id },
            &token,
        ))
        .await
        .expect("watch")
        .into_inner();
    let mut last = None;
    let watch = async {
        while let Some(event) = stream.next().await {
            last = Some(event.expect("event"));
        }
    };
    tokio::time::timeout(Duration::from_secs(120), watch)
        .await
        .expect("in time");
    let last = last.expect("events");
    assert_eq!(last.status, pb::VideoStatus::Ready as i32, "{last:?}");

    // Bytes with no metadata at all: refused, nothing kept.
    let headless = vec![pb::UploadVideoRequest {
        payload: Some(pb::upload_video_request::Payload::Chunk(
            bytes[..1000].to_vec(),
        )),
    }];
    let status = client
        .upload_video(authed(tokio_stream::iter(headless), &token))
        .await
        .expect_err("no metadata");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // StreamVideo: the whole original, in order, then from an offset.
    let mut download = client
        .stream_video(authed(
            pb::StreamVideoRequest {
                video_id: video.id,
                rendition: pb::Rendition::Original as i32,
                offset: 0,
            },
            &token,
        ))
        .await
        .expect("stream")
        .into_inner();
    let mut got = Vec::new();
    while let Some(chunk) = download.next().await {
        let chunk = chunk.expect("chunk");
        assert_eq!(chunk.offset, i64::try_from(got.len()).expect("len"));
        assert_eq!(chunk.total_size, i64::try_from(bytes.len()).expect("len"));
        got.extend_from_slice(&chunk.data);
    }
    assert_eq!(got, bytes);
    let status = client
        .stream_video(authed(
            pb::StreamVideoRequest {
                video_id: video.id,
                rendition: pb::Rendition::Rendition1080p as i32,
                offset: 0,
            },
            &token,
        ))
        .await
        .expect_err("no 1080p of a 240p source");
    assert_eq!(status.code(), Code::NotFound);
    let status = client
        .stream_video(authed(
            pb::StreamVideoRequest {
                video_id: video.id,
                rendition: pb::Rendition::Original as i32,
                offset: i64::try_from(bytes.len()).expect("len") + 1,
            },
            &token,
        ))
        .await
        .expect_err("past the end");
    assert_eq!(status.code(), Code::OutOfRange);
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
async fn a_form_may_send_its_file_before_its_fields() {
    let app = spawn_app_with(Backend::Embedded, options(&[])).await;
    let token = admin(&app).await;
    let clips = Clips::new();
    let bytes = std::fs::read(clips.clip("first.mp4", "320x240", 1, false, &[])).expect("clip");
    // curl -F video_file=@… -F title=… sends the parts in this order.
    let form = multipart::Form::new()
        .part(
            "video_file",
            multipart::Part::bytes(bytes.clone()).file_name("first.mp4"),
        )
        .text("title", "File first")
        .text("genre", "horror");
    let (status, video) = send_form(&app, Some(&token), form).await;
    assert_eq!(status, 201, "{video}");
    assert_eq!(video["title"], "File first");
    assert_eq!(video["genre"], "horror");
    let id = video["id"].as_i64().expect("id");
    let events = sse_until_final(&app, &token, id).await;
    assert_eq!(
        events.last().map(|e| e["status"].clone()),
        Some(json!("ready"))
    );

    // Invalid metadata after the file: refused, and the file is not kept.
    let form = multipart::Form::new()
        .part(
            "video_file",
            multipart::Part::bytes(bytes).file_name("x.mp4"),
        )
        .text("title", "x".repeat(151));
    let (status, body) = send_form(&app, Some(&token), form).await;
    assert_eq!(status, 400);
    assert_eq!(body["type"], json!(["title"]), "{body}");
    let incoming = app.settings.media_dir.join("incoming");
    let left = std::fs::read_dir(&incoming)
        .map(Iterator::count)
        .unwrap_or(0);
    assert_eq!(left, 0);
}

/// A 360p source has one real rendition, a 640x360 MP4 with its playlist, and every legacy
/// `video_file_hdNNN` field names it (so a legacy player always finds a file).
pub(crate) fn every_legacy_field_names_the_one_360p_rendition(video: &Value) {
    let renditions = video["renditions"].as_array().expect("renditions");
    assert_eq!(renditions.len(), 1, "{video}");
    assert_eq!(renditions[0]["name"], "360p");
    assert_eq!(
        (
            renditions[0]["width"].as_i64(),
            renditions[0]["height"].as_i64()
        ),
        (Some(640), Some(360))
    );
    assert!(
        renditions[0]["bitrate"]
            .as_i64()
            .is_some_and(|b| b > 10_000),
        "{video}"
    );
    assert!(
        renditions[0]["hls"]
            .as_str()
            .is_some_and(|u| u.ends_with("/hls/360p/index.m3u8")),
        "{video}"
    );
    for field in [
        "video_file_hd360",
        "video_file_hd480",
        "video_file_hd720",
        "video_file_hd1080",
    ] {
        assert_eq!(video[field], renditions[0]["url"], "{field}: {video}");
    }
}

#[tokio::test]
async fn messages_over_the_limit_are_resource_exhausted_naming_it() {
    let app = spawn_app_with(Backend::Embedded, options(&[])).await;
    let token = admin(&app).await;
    let mut client = app.video_client().await;
    // A unary request over 4 MiB (a 5 MiB search text).
    let status = client
        .list_videos(authed(
            pb::ListVideosRequest {
                search: "x".repeat(5 << 20),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("4194304 bytes"), "{status:?}");
    // An upload chunk over 4 MiB.
    let messages = vec![
        pb::UploadVideoRequest {
            payload: Some(pb::upload_video_request::Payload::Header(
                pb::UploadHeader {
                    metadata: Some(pb::VideoMetadata {
                        title: "Big chunk".to_owned(),
                        ..Default::default()
                    }),
                    file_name: "big.mp4".to_owned(),
                    size_bytes: 0,
                },
            )),
        },
        pb::UploadVideoRequest {
            payload: Some(pb::upload_video_request::Payload::Chunk(vec![0u8; 5 << 20])),
        },
    ];
    let status = client
        .upload_video(authed(tokio_stream::iter(messages), &token))
        .await
        .expect_err("too large");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("4194304 bytes"), "{status:?}");
    // Nothing was kept.
    let incoming = app.settings.media_dir.join("incoming");
    let left = std::fs::read_dir(&incoming).map_or(0, |d| d.count());
    assert_eq!(left, 0, "no .part left in {}", incoming.display());
}
