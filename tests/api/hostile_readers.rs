//! Clients that never read what they asked for — many gRPC `StreamVideo` calls and many `/media`
//! downloads at once — against a `videoflix serve` process: its memory grows by a bounded
//! amount per client (not by the file), everyone else is served at once, and after
//! WRITE_STALL_TIMEOUT their downloads end and their connections are closed.

use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use videoflix::grpc::pb::{self, video_service_client::VideoServiceClient};

use crate::{
    helpers::{Backend, authed, process::Process, spawn_app_with},
    media::Clips,
    observability::sample,
    pipeline::{admin, options, post_form, sse_until_final},
};

/// Resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS");
    kb * 1024
}

/// The client ports of the connections the server has established (its side, by `ss`): a
/// connection it closed with unsent data is no longer among them.
fn established_with(server: &Process) -> Vec<u16> {
    let port = server.base.rsplit(':').next().expect("port");
    let out = std::process::Command::new("ss")
        .args(["-Htn", "state", "established"])
        .arg(format!("( sport = :{port} )"))
        .output()
        .expect("ss");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .last()?
                .rsplit(':')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

/// Open downloads (`StreamVideo` readers) of the server, from its /metrics.
async fn open_downloads(server: &Process) -> f64 {
    let text = reqwest::get(format!("{}/metrics", server.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    sample(&text, "videoflix_active_streams", &["kind=\"download\""]).unwrap_or(0.0)
}

/// Waits (bounded) until the server has `count` downloads open.
async fn downloads_reach(server: &Process, count: f64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open = open_downloads(server).await;
        if (open - count).abs() < 0.5 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{open} downloads open, expected {count}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A `StreamVideo` call of the original on its own connection, nothing read yet.
async fn open_original(
    server: &Process,
    token: &str,
    id: i64,
) -> (
    VideoServiceClient<tonic::transport::Channel>,
    tonic::Streaming<pb::StreamVideoResponse>,
) {
    let mut client = VideoServiceClient::connect(server.base.clone())
        .await
        .expect("connect");
    let stream = client
        .stream_video(authed(
            pb::StreamVideoRequest {
                video_id: id,
                rendition: pb::Rendition::Original as i32,
                offset: 0,
            },
            token,
        ))
        .await
        .expect("stream")
        .into_inner();
    (client, stream)
}

/// One whole `StreamVideo` download of the original; returns its bytes.
async fn download(server: &Process, token: &str, id: i64) -> usize {
    let (_client, mut stream) = open_original(server, token, id).await;
    let mut bytes = 0;
    while let Some(chunk) = stream.message().await.expect("chunk") {
        bytes += chunk.data.len();
    }
    bytes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_pin_no_memory_or_task_and_others_are_served_at_once() {
    let app = spawn_app_with(Backend::Embedded, options(&[])).await;
    let token = admin(&app).await;
    // A 60 s source at 3 Mbit/s (~23 MB); its 360p rendition (~7 MB) is more than the kernel's
    // socket buffers take, so a download of it that nobody reads stalls the server's writes.
    let clips = Clips::new();
    let source = clips.clip("big.mp4", "640x360", 60, false, &["-b:v", "3M"]);
    let bytes = std::fs::read(source).expect("clip");
    let size = bytes.len();
    let (status, video) =
        post_form(&app, &token, &[("title", "Big")], Some(("big.mp4", bytes))).await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_i64().expect("id");
    let events = sse_until_final(&app, &token, id).await;
    assert_eq!(
        events.last().map(|e| e["status"].clone()),
        Some("ready".into())
    );

    let server = Process::serve(&app, &[("--write-stall-timeout", "3")]).await;
    let http = reqwest::Client::new();
    let detail: Value = http
        .get(format!("{}/api/videos/{id}/", server.base))
        .header("authorization", format!("Token {token}"))
        .send()
        .await
        .expect("detail")
        .json()
        .await
        .expect("json");
    let url = detail["renditions"][0]["url"]
        .as_str()
        .expect("a rendition");
    let media = format!(
        "/{}",
        url.strip_prefix("http://127.0.0.1/").expect("PUBLIC_URL")
    );
    let rendition = http
        .get(format!("{}{media}", server.base))
        .send()
        .await
        .expect("media")
        .bytes()
        .await
        .expect("bytes")
        .len();
    assert_eq!(
        download(&server, &token, id).await,
        size,
        "a reader gets it all"
    );
    let baseline = rss(server.pid());

    // 40 StreamVideo calls whose callers never take a message.
    let mut held = Vec::new();
    for _ in 0..40 {
        held.push(open_original(&server, &token, id).await);
    }
    downloads_reach(&server, 40.0).await;
    let with_streams = rss(server.pid());
    // Each holds a few 256 KiB chunks (queued, being encoded, in its HTTP/2 send buffer) and
    // its connection's buffers: about 2.5 MB, not its 23 MB file.
    let per_stream = with_streams.saturating_sub(baseline) / 40;
    assert!(
        per_stream < 4 << 20,
        "{per_stream} bytes per stalled stream"
    );

    // 100 downloads of the rendition over HTTP/1.1, with tiny receive buffers, never read.
    let mut sockets = Vec::new();
    for _ in 0..100 {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_recv_buffer_size(4096).expect("SO_RCVBUF");
        let address = server
            .base
            .trim_start_matches("http://")
            .parse()
            .expect("address");
        let mut stream = socket.connect(address).await.expect("connect");
        let request = format!("GET {media} HTTP/1.1\r\nHost: x\r\n\r\n");
        stream.write_all(request.as_bytes()).await.expect("request");
        sockets.push(stream);
    }
    // Everyone else is served at once meanwhile.
    let started = Instant::now();
    let list = http
        .get(format!("{}/api/videos/", server.base))
        .header("authorization", format!("Token {token}"))
        .send()
        .await
        .expect("list");
    assert_eq!(list.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(download(&server, &token, id).await, size);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let with_all = rss(server.pid());
    let per_download = with_all.saturating_sub(with_streams) / 100;
    assert!(
        per_download < 3 << 20,
        "{per_download} bytes per stalled download"
    );

    // After the stall timeout the stalled downloads end (their files and tasks freed)...
    downloads_reach(&server, 0.0).await;
    // ...and the HTTP/1.1 connections were closed part-way.
    let ours: Vec<u16> = sockets
        .iter()
        .map(|s| s.local_addr().expect("address").port())
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open = established_with(&server)
            .into_iter()
            .filter(|p| ours.contains(p))
            .count();
        if open == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{open} stalled downloads still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for mut socket in sockets {
        let mut received = 0;
        let mut buf = vec![0u8; 64 * 1024];
        let drained = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match socket.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received += n,
                }
            }
        })
        .await;
        assert!(drained.is_ok(), "still open after {received} bytes");
        assert!(
            received < rendition,
            "{received} of {rendition} bytes: not cut"
        );
    }
    eprintln!(
        "RSS: {baseline} at rest, +{per_stream} per stalled stream, +{per_download} per stalled \
         download"
    );
    drop(held);
}
