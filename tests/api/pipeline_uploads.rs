//! Uploads over REST: an uploaded file becomes a playable adaptive video (background
//! transcode, status over SSE, signed media URLs with Range), bad uploads are refused clearly
//! and leave nothing behind, and a form may send its file before its fields.

use reqwest::{Method, multipart};
use serde_json::json;

use crate::{
    helpers::{Backend, spawn_app_with},
    media::Clips,
    pipeline::{
        admin, every_legacy_field_names_the_one_360p_rendition, local, options, post_form,
        send_form, sse_until_final,
    },
};

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
    let served_before = crate::observability::scraped(&app, "videoflix_media_bytes_total", &[])
        .await
        .unwrap_or(0.0);
    let full = app.http.get(&mp4).send().await.expect("mp4");
    assert_eq!(full.status(), 200);
    assert_eq!(full.headers()["content-type"], "video/mp4");
    let whole = full.bytes().await.expect("bytes");
    // The metrics saw the job end ready, and the bytes served.
    let served = crate::observability::scraped(&app, "videoflix_media_bytes_total", &[]).await;
    assert!(
        served.is_some_and(|s| s - served_before >= whole.len() as f64),
        "{served:?} after {served_before}, {} bytes",
        whole.len()
    );
    let ready = ["outcome=\"ready\""];
    let jobs = crate::observability::scraped(&app, "videoflix_transcode_jobs_total", &ready).await;
    assert!(jobs.is_some_and(|n| n >= 1.0), "{jobs:?}");
    // ...and how long it took: a histogram sample per job, its sum a real duration.
    let name = "videoflix_transcode_duration_seconds_count";
    let timed = crate::observability::scraped(&app, name, &ready).await;
    assert!(timed.is_some_and(|n| n >= 1.0), "{timed:?}");
    let name = "videoflix_transcode_duration_seconds_sum";
    let took = crate::observability::scraped(&app, name, &ready).await;
    assert!(took.is_some_and(|s| s > 0.0 && s < 600.0), "{took:?}");
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
