//! The media pipeline end to end: what its stories (and other files) share — app options, the
//! admin, worker processes, multipart uploads, media URLs, the SSE status stream. The stories:
//! REST uploads and bad uploads in `pipeline_uploads`, gRPC upload, status stream and download
//! in `pipeline_grpc`, lost queues, crashes and failures in `pipeline_recovery`.

use std::time::Duration;

use reqwest::{StatusCode, multipart};
use serde_json::Value;

use crate::helpers::{AppOptions, PASSWORD, Server, TestApp, spawn_peer};

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
    app: &impl Server,
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
pub(crate) async fn send_form(
    app: &impl Server,
    token: Option<&str>,
    form: multipart::Form,
) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().post(format!("{}/api/videos/", app.base()));
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
pub(crate) async fn sse_until_final(app: &impl Server, token: &str, id: i64) -> Vec<Value> {
    let response = reqwest::Client::new()
        .get(format!("{}/api/videos/{id}/status/", app.base()))
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
