//! Media a player can trust: a 720p source through the whole pipeline, then checked as players
//! check it — legacy fields that always play, the real renditions, a master playlist with
//! CODECS and AVERAGE-BANDWIDTH read by FFmpeg's HLS demuxer over HTTP, segments that each start
//! with an IDR frame and decode alone, aligned across variants; `StreamVideo` choosing the best
//! rendition; and a status watcher joining mid-transcode (in process, and across processes).

use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use url::Url;
use videoflix::grpc::pb;

use crate::{
    helpers::{Backend, TestApp, authed, spawn_app_with},
    hls_check::{
        decodes_cleanly, fetch, first_nal_types, profile_and_level, run, segments, standalone,
        variants, video_frames,
    },
    media::Clips,
    pipeline::{admin, local, options, post_form, worker_of},
};

const FPS: f64 = 30.0;
const SEGMENT: f64 = 4.0;

/// Follows a video's SSE status stream in the background, one event at a time.
pub(crate) fn follow_sse(app: &TestApp, token: &str, id: i64) -> mpsc::Receiver<Value> {
    let (tx, rx) = mpsc::channel(256);
    let request = app
        .http
        .get(format!("{}/api/videos/{id}/status/", app.base))
        .header("authorization", format!("Token {token}"));
    tokio::spawn(async move {
        let mut response = request.send().await.expect("sse");
        let mut buffer = String::new();
        while let Ok(Some(chunk)) = response.chunk().await {
            buffer.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                    let event: Value = serde_json::from_str(data).expect("json");
                    if tx.send(event).await.is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

/// Waits for a `processing` event at `percent` or more; returns it.
pub(crate) async fn progress_at(events: &mut mpsc::Receiver<Value>, percent: f64) -> Value {
    let wait = async {
        while let Some(event) = events.recv().await {
            assert_ne!(event["status"], "failed", "{event}");
            if event["status"] == "processing" && event["percent"].as_f64() >= Some(percent) {
                return event;
            }
        }
        panic!("the stream ended before {percent} %");
    };
    tokio::time::timeout(Duration::from_secs(120), wait)
        .await
        .expect("progress in time")
}

/// The first event a new gRPC watcher of `id` gets.
async fn first_watch_event(
    app: &TestApp,
    token: &str,
    id: i64,
) -> pb::WatchTranscodeStatusResponse {
    let mut stream = app
        .video_client()
        .await
        .watch_transcode_status(authed(
            pb::WatchTranscodeStatusRequest { video_id: id },
            token,
        ))
        .await
        .expect("watch")
        .into_inner();
    stream.next().await.expect("an event").expect("event")
}

/// Follows `id`'s SSE stream to a `processing` event at 5 % or more, then checks that a new
/// gRPC watcher starts there (not at 0 %), and waits for `ready`.
async fn joins_mid_transcode_then_ready(app: &TestApp, token: &str, id: i64) {
    let mut events = follow_sse(app, token, id);
    let seen = progress_at(&mut events, 5.0).await;
    let first = first_watch_event(app, token, id).await;
    assert_eq!(
        first.status,
        pb::VideoStatus::Processing as i32,
        "{first:?}"
    );
    assert!(
        first.percent >= seen["percent"].as_f64().expect("percent"),
        "{first:?} after {seen}"
    );
    assert_eq!(first.step, "transcoding", "{first:?}");
    // Progress keeps arriving as it happens: the watcher's periodic database check delivers
    // only the end, so a dead status hub (or dead Redis pub/sub) fails here.
    let later = until_ready(&mut events).await;
    let rising: Vec<f64> = later
        .into_iter()
        .filter(|p| *p > seen["percent"].as_f64().unwrap_or(100.0) && *p < 100.0)
        .collect();
    assert!(
        rising.len() >= 2 && rising.windows(2).all(|w| w[0] <= w[1]),
        "progress after {seen}: {rising:?}"
    );
}

/// Follows `events` to `ready`; returns the percents of the `processing` events on the way.
async fn until_ready(events: &mut mpsc::Receiver<Value>) -> Vec<f64> {
    let wait = async {
        let mut percents = Vec::new();
        while let Some(event) = events.recv().await {
            assert_ne!(event["status"], "failed", "{event}");
            if event["status"] == "ready" {
                return percents;
            }
            if event["status"] == "processing" {
                percents.extend(event["percent"].as_f64());
            }
        }
        panic!("the stream ended before ready");
    };
    tokio::time::timeout(Duration::from_secs(180), wait)
        .await
        .expect("ready in time")
}

// FFmpeg's tools run synchronously and fetch from the server in this runtime: two threads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_720p_source_plays_everywhere_a_player_looks() {
    let app = spawn_app_with(Backend::Embedded, options(&[])).await;
    let token = admin(&app).await;
    let clips = Clips::new();
    // 13 s with audio: more than three 4 s segments, so boundaries and alignment can be checked.
    let bytes = std::fs::read(clips.clip("hd.mp4", "1280x720", 13, false, &[])).expect("clip");
    let (status, video) =
        post_form(&app, &token, &[("title", "HD")], Some(("hd.mp4", bytes))).await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_i64().expect("id");

    // A watcher joining mid-transcode starts where the job is, not at 0 %.
    joins_mid_transcode_then_ready(&app, &token, id).await;

    let video = app
        .get_auth(&format!("/api/videos/{id}/"), &token)
        .await
        .expect(200)
        .body;
    // The real renditions, and legacy fields that each name a playable file at or below.
    let renditions = video["renditions"].as_array().expect("renditions");
    let sizes: Vec<(&str, i64, i64)> = renditions
        .iter()
        .map(|r| {
            (
                r["name"].as_str().expect("name"),
                r["width"].as_i64().expect("width"),
                r["height"].as_i64().expect("height"),
            )
        })
        .collect();
    assert_eq!(
        sizes,
        vec![("360p", 640, 360), ("480p", 854, 480), ("720p", 1280, 720)]
    );
    for (field, rung) in [
        ("video_file_hd360", 0),
        ("video_file_hd480", 1),
        ("video_file_hd720", 2),
        ("video_file_hd1080", 2),
    ] {
        assert_eq!(video[field], renditions[rung]["url"], "{field}: {video}");
    }
    let bitrates: Vec<i64> = renditions
        .iter()
        .map(|r| r["bitrate"].as_i64().expect("bitrate"))
        .collect();
    assert!(bitrates.windows(2).all(|w| w[0] < w[1]), "{bitrates:?}");

    // The master: CODECS from the real profile and level, both bandwidths, only real variants.
    let master_url = Url::parse(&local(&app, video["hls"].as_str().expect("hls"))).expect("url");
    let master = String::from_utf8(fetch(&app, &master_url).await).expect("utf-8");
    let variants = variants(&master);
    assert_eq!(variants.len(), 3, "{master}");
    let dir = tempfile::TempDir::new().expect("tempdir");
    let mut boundaries: Vec<Vec<(f64, usize)>> = Vec::new();
    for (variant, rendition) in variants.iter().zip(renditions) {
        let mp4 = local(&app, rendition["url"].as_str().expect("url"));
        let (profile, level) = profile_and_level(&mp4);
        let profile_idc = match profile.as_str() {
            "High" => "64",
            "Main" => "4d",
            _ => "42",
        };
        let codecs = variant.get("CODECS").expect("CODECS");
        let video_codec = codecs.split(',').next().expect("video codec");
        assert!(
            video_codec.starts_with(&format!("avc1.{profile_idc}")),
            "{codecs} vs {profile}"
        );
        assert_eq!(
            u32::from_str_radix(&video_codec[video_codec.len() - 2..], 16).ok(),
            Some(level),
            "{codecs}"
        );
        assert_eq!(
            codecs,
            format!("{video_codec},mp4a.40.2"),
            "video and AAC-LC audio"
        );
        let peak: u64 = variant
            .get("BANDWIDTH")
            .and_then(|b| b.parse().ok())
            .expect("BANDWIDTH");
        let average: u64 = variant
            .get("AVERAGE-BANDWIDTH")
            .and_then(|b| b.parse().ok())
            .expect("AVERAGE-BANDWIDTH");
        assert!(average > 0 && average <= peak, "{variant:?}");
        assert_eq!(
            variant.get("RESOLUTION"),
            Some(format!("{}x{}", rendition["width"], rendition["height"]).as_str())
        );
        assert_eq!(variant.get("FRAME-RATE"), Some("30.000"));

        // Every segment starts with an IDR frame and decodes on its own (init + that segment).
        let playlist_url = master_url.join(&variant.uri).expect("join");
        let playlist = String::from_utf8(fetch(&app, &playlist_url).await).expect("utf-8");
        let init = fetch(&app, &playlist_url.join("init.mp4").expect("join")).await;
        let mut cuts = Vec::new();
        for (n, (_, segment)) in segments(&playlist).iter().enumerate() {
            let bytes = fetch(&app, &playlist_url.join(segment).expect("join")).await;
            let nals = first_nal_types(&bytes);
            assert_eq!(
                nals.last(),
                Some(&5),
                "{} segment {n} starts with NAL types {nals:?}",
                variant.uri
            );
            let file = standalone(
                dir.path(),
                &format!("{}-{n}.mp4", rendition["name"].as_str().unwrap_or("r")),
                &init,
                &bytes,
            );
            decodes_cleanly(&file);
            let frames = video_frames(&file);
            let (start, key, kind) = frames.first().cloned().expect("frames");
            assert!(
                key && kind == "I",
                "{} segment {n} starts with {kind}",
                variant.uri
            );
            cuts.push((start, frames.len()));
        }
        boundaries.push(cuts);
    }
    // Aligned: the same segments at the same times in every variant, each one segment long
    // (±1 frame) but the last.
    assert!(
        boundaries.windows(2).all(|w| w[0] == w[1]),
        "{boundaries:?}"
    );
    let cuts = &boundaries[0];
    assert_eq!(cuts.len(), 4, "{cuts:?}");
    // (Times count from the first frame: the encoder's B-frame delay shifts every timestamp.)
    let origin = cuts[0].0;
    for (n, (start, frames)) in cuts.iter().enumerate() {
        assert!(
            (start - origin - n as f64 * SEGMENT).abs() <= 1.0 / FPS + 1e-6,
            "{cuts:?}"
        );
        if n + 1 < cuts.len() {
            assert!((*frames as f64 - SEGMENT * FPS).abs() <= 1.0, "{cuts:?}");
        }
    }

    // FFmpeg's own HLS demuxer, over HTTP: every variant decodes, every frame there.
    let (ok, out, err) = run(
        "ffprobe",
        &[
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames,width",
            "-select_streams",
            "v",
            "-of",
            "csv=p=0",
            master_url.as_str(),
        ],
    );
    assert!(ok && err.trim().is_empty(), "{err}");
    let mut counted: Vec<(u32, u32)> = out
        .lines()
        .filter_map(|l| l.split_once(','))
        .map(|(w, n)| {
            (
                w.parse().expect("width"),
                n.trim_end_matches(',').parse().expect("frames"),
            )
        })
        .collect();
    // ffprobe lists each stream under its program and again in the stream list.
    counted.sort_unstable();
    counted.dedup();
    assert_eq!(counted, vec![(640, 390), (854, 390), (1280, 390)], "{out}");

    // gRPC lists the same real renditions, with their rungs.
    let mut client = app.video_client().await;
    let grpc = client
        .get_video(authed(
            pb::GetVideoRequest {
                id,
                if_none_match: String::new(),
            },
            &token,
        ))
        .await
        .expect("get")
        .into_inner()
        .video
        .and_then(|v| v.media)
        .expect("media");
    let rungs: Vec<(i32, i32, i32)> = grpc
        .renditions
        .iter()
        .map(|r| (r.rendition, r.width, r.height))
        .collect();
    assert_eq!(
        rungs,
        vec![
            (pb::Rendition::Rendition360p as i32, 640, 360),
            (pb::Rendition::Rendition480p as i32, 854, 480),
            (pb::Rendition::Rendition720p as i32, 1280, 720),
        ]
    );
    assert!(grpc.hd1080_url.is_empty(), "gRPC names no fake 1080p");

    // StreamVideo naming no rendition streams the best one and says so; a middle offset is
    // byte-exact.
    let hd = app
        .http
        .get(local(&app, renditions[2]["url"].as_str().expect("url")))
        .send()
        .await
        .expect("mp4");
    let whole = hd.bytes().await.expect("bytes");
    let middle = whole.len() / 2;
    let mut download = client
        .stream_video(authed(
            pb::StreamVideoRequest {
                video_id: id,
                rendition: pb::Rendition::Unspecified as i32,
                offset: i64::try_from(middle).expect("offset"),
            },
            &token,
        ))
        .await
        .expect("stream")
        .into_inner();
    let mut got = Vec::new();
    while let Some(chunk) = download.next().await {
        let chunk = chunk.expect("chunk");
        assert_eq!(chunk.rendition, pb::Rendition::Rendition720p as i32);
        assert_eq!(chunk.rendition_name, "720p");
        assert_eq!(chunk.total_size, i64::try_from(whole.len()).expect("len"));
        got.extend_from_slice(&chunk.data);
    }
    assert_eq!(got, whole[middle..]);
}

#[tokio::test]
async fn a_watcher_on_another_process_joins_mid_transcode_where_the_worker_is() {
    // PostgreSQL + Redis: the job runs in a worker process, the watcher is on the server.
    let app = spawn_app_with(Backend::Real, options(&[])).await;
    let _worker = worker_of(&app, &[]).await;
    let token = admin(&app).await;
    let clips = Clips::new();
    let bytes = std::fs::read(clips.clip("sd.mp4", "640x360", 13, true, &[])).expect("clip");
    let (status, video) =
        post_form(&app, &token, &[("title", "SD")], Some(("sd.mp4", bytes))).await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_i64().expect("id");
    joins_mid_transcode_then_ready(&app, &token, id).await;

    // A 360p source on PostgreSQL: one real rendition, every legacy field names it.
    let video = app
        .get_auth(&format!("/api/videos/{id}/"), &token)
        .await
        .expect(200)
        .body;
    crate::pipeline::every_legacy_field_names_the_one_360p_rendition(&video);
    assert_eq!(video["duration"], 13);
}
