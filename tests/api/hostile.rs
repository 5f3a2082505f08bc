//! Hostile and broken clients: connections that trickle their headers, floods from one
//! address, uploads that stop sending. None of them may keep the server from serving others.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::{TcpSocket, TcpStream},
};

use crate::{
    helpers::{Backend, TestApp, spawn_app_with, with},
    pipeline::admin,
};

/// A TCP connection to the app from `source` (any 127.0.0.0/8 address).
async fn connect_from(app: &TestApp, source: [u8; 4]) -> TcpStream {
    let port = app
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse::<u16>().ok())
        .expect("port");
    let socket = TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((source, 0)))
        .expect("bind");
    socket
        .connect(std::net::SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .expect("connect")
}

/// Whether the server closed `stream` (a read ends) within `wait`.
async fn closed_within(stream: &mut TcpStream, wait: Duration) -> bool {
    let mut buf = [0u8; 256];
    matches!(
        tokio::time::timeout(wait, async {
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await,
        Ok(())
    )
}

#[tokio::test]
async fn trickling_clients_are_cut_and_a_normal_client_is_served_at_once() {
    let app = spawn_app_with(
        Backend::Embedded,
        with(&[
            ("--header-read-timeout", "1"),
            ("--max-connections-per-address", "10"),
        ]),
    )
    .await;
    // 40 connections from one address, each sending half a request head and then nothing.
    let mut trickling = Vec::new();
    for _ in 0..40 {
        let mut stream = connect_from(&app, [127, 0, 0, 2]).await;
        let _ = stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await;
        trickling.push(stream);
    }
    // Over the per-address limit: closed at once.
    let mut last = trickling.pop().expect("a connection");
    assert!(
        closed_within(&mut last, Duration::from_millis(500)).await,
        "over the limit"
    );

    // Someone else is served at once.
    let client = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 3]))
        .build()
        .expect("client");
    let started = Instant::now();
    let response = client
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .expect("served");
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );

    // The ones admitted are cut when their headers do not arrive in time.
    let mut first = trickling.remove(0);
    assert!(
        closed_within(&mut first, Duration::from_secs(3)).await,
        "header timeout"
    );

    // A kept-alive connection that goes idle after a request is closed too.
    let mut idle = connect_from(&app, [127, 0, 0, 5]).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("request");
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).await.expect("answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)).await,
        "idle timeout"
    );
}

/// Sends `head` and then the body one byte every 200 ms, never finishing it, and returns the
/// answer's head once it comes (within 5 s; empty if none).
async fn trickle_body(mut stream: TcpStream, head: &str) -> String {
    stream.write_all(head.as_bytes()).await.expect("head");
    let (mut read, mut write) = stream.into_split();
    let trickle = tokio::spawn(async move {
        while write.write_all(b"0").await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    trickle.abort();
    String::from_utf8_lossy(&answer).into_owned()
}

#[rstest::rstest]
#[case::rest(
    "POST /login/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
     Content-Length: 100000\r\n\r\n{\"email\": \"",
    "http/1.1 408"
)]
#[case::grpc_web(
    "POST /videoflix.v1.AuthService/Login HTTP/1.1\r\nHost: x\r\n\
     Content-Type: application/grpc-web+proto\r\nContent-Length: 100000\r\n\r\n\
     \x00\x00\x00\x01\x00",
    "grpc-status: 4"
)]
#[tokio::test]
async fn a_body_that_keeps_trickling_is_answered_when_its_time_is_up(
    #[case] head: &str,
    #[case] expected: &str,
) {
    let app = spawn_app_with(Backend::Embedded, with(&[("--body-timeout", "1")])).await;
    let stream = connect_from(&app, [127, 0, 0, 6]).await;
    let started = Instant::now();
    let answer = trickle_body(stream, head).await;
    assert!(
        answer.to_ascii_lowercase().contains(expected),
        "{answer:?} after {:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

/// Sends the head of a REST upload of 10 MB titled `title` and its first 64 KiB, no more.
pub(crate) async fn start_upload(stream: &mut TcpStream, token: &str, title: &str) {
    let boundary = "XyZ";
    let head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\n{title}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"video_file\"; filename=\"a.mp4\"\r\n\
         Content-Type: video/mp4\r\n\r\n"
    );
    let request = format!(
        "POST /api/videos/ HTTP/1.1\r\nHost: x\r\nAuthorization: Token {token}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 10000000\r\n\r\n{head}"
    );
    stream.write_all(request.as_bytes()).await.expect("head");
    stream
        .write_all(&vec![0u8; 64 * 1024])
        .await
        .expect("some bytes");
}

/// The head of the answer on `stream`, if it comes within `within`.
pub(crate) async fn answer_head(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut answer = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()
        .map(|()| String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn an_upload_that_stops_sending_is_dropped_and_leaves_no_file() {
    let app = spawn_app_with(
        Backend::Embedded,
        crate::pipeline::options(&[("--upload-idle-timeout", "1")]),
    )
    .await;
    let token = admin(&app).await;
    let mut stream = connect_from(&app, [127, 0, 0, 4]).await;
    start_upload(&mut stream, &token, "Stalled").await;
    // ...and then nothing. The server answers within the idle timeout (plus a margin).
    let answer = answer_head(&mut stream, Duration::from_secs(5)).await;
    let text = answer.expect("no answer to a stalled upload");
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    let incoming = app.settings.media_dir.join("incoming");
    let wait = async {
        while std::fs::read_dir(&incoming).map_or(0, |d| d.count()) > 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), wait)
        .await
        .expect("the partial upload is removed");
}

/// A Redis server of this test's own on a free port (so it can be stopped without touching
/// anyone else's), stopped when dropped.
struct OwnRedis {
    child: std::process::Child,
    port: u16,
}

impl OwnRedis {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let child = std::process::Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server runs");
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child, port }
    }

    /// SIGSTOP / SIGCONT: a hung Redis (connections stay open, nothing answers) is the worst
    /// case for timeouts.
    fn signal(&self, signal: &str) {
        let status = std::process::Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn a_hung_redis_costs_requests_nothing_and_limits_stay_on() {
    let redis = OwnRedis::start();
    let app = spawn_app_with(
        Backend::Real,
        with(&[
            ("--redis-url", &format!("redis://127.0.0.1:{}/", redis.port)),
            ("--throttle-login-address", "5/min"),
        ]),
    )
    .await;
    let token = admin(&app).await;
    app.get_auth("/api/videos/", &token).await.expect(200);

    redis.signal("-STOP");
    // Reads keep working at once (the cache is bypassed), however many are sent.
    let started = Instant::now();
    for _ in 0..20 {
        app.get_auth("/api/videos/", &token).await.expect(200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "20 reads took {:?}",
        started.elapsed()
    );
    // Limits hold in process: 12 wrong passwords from one address, 5 pass, then 429.
    let guesses = (0..12).map(|i| {
        let app = &app;
        async move {
            app.post(
                "/login/",
                serde_json::json!({"email": format!("x{i}@example.com"), "password": "Guess-123456"}),
            )
            .await
            .status
            .as_u16()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        7,
        "{statuses:?}"
    );
    // Readiness says Redis is down.
    let ready = app.call(reqwest::Method::GET, "/readyz", None, None).await;
    assert_eq!(ready.status, 503, "{}", ready.text);
    assert_eq!(ready.body["redis"]["ok"], false, "{}", ready.text);
    assert_eq!(ready.body["redis"]["bypassed"], true, "{}", ready.text);
    assert!(
        ready.body["redis"]["failed_calls"].as_u64() >= Some(3),
        "{}",
        ready.text
    );

    // Redis is back: readiness and the shared cache recover without a restart.
    redis.signal("-CONT");
    let recovered = async {
        loop {
            if app
                .call(reqwest::Method::GET, "/readyz", None, None)
                .await
                .status
                == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(15), recovered)
        .await
        .expect("ready again");
    // Calls are admitted through Redis again (session stamps, cache versions).
    let seen = crate::round_trips::commands_during(
        &format!("redis://127.0.0.1:{}/", redis.port),
        &app.settings.redis_prefix,
        async {
            app.get_auth("/api/videos/", &token).await.expect(200);
        },
    )
    .await;
    assert!(seen.iter().any(|c| c.contains(":auth:s:")), "{seen:#?}");
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed_even_when_it_answers_pings_but_not_mid_request() {
    use http_body_util::{BodyExt as _, StreamBody};
    use hyper::body::{Bytes, Frame};

    let app = spawn_app_with(
        Backend::Embedded,
        with(&[("--idle-timeout", "1"), ("--http2-keep-alive", "1")]),
    )
    .await;
    let tcp = connect_from(&app, [127, 0, 0, 7]).await;
    let (mut sender, connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("HTTP/2 handshake");
    // The client answers the server's pings for as long as the connection lives.
    let mut connection = tokio::spawn(connection);

    // A request whose body is still coming keeps the connection open past the idle timeout.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, std::io::Error>>(1);
    let request = http::Request::post(format!("{}/login/", app.base))
        .header("content-type", "application/json")
        .body(StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx)).boxed())
        .expect("request");
    let answer = tokio::spawn(sender.clone().send_request(request));
    tx.send(Ok(Frame::data(Bytes::from_static(b"{\"email\": "))))
        .await
        .expect("part");
    assert!(
        tokio::time::timeout(Duration::from_millis(2500), &mut connection)
            .await
            .is_err(),
        "closed while a request was open"
    );
    // ... and open to new requests: no GOAWAY was sent.
    let healthz = sender
        .send_request(
            http::Request::get(format!("{}/healthz", app.base))
                .body(
                    http_body_util::Empty::<Bytes>::new()
                        .map_err(|e| match e {})
                        .boxed(),
                )
                .expect("request"),
        )
        .await
        .expect("a second request on the same connection");
    assert_eq!(healthz.status(), 200);
    tx.send(Ok(Frame::data(Bytes::from_static(
        b"\"a@b.example\", \"password\": \"x\"}",
    ))))
    .await
    .expect("rest");
    drop(tx);
    let response = answer.await.expect("task").expect("answer");
    assert_eq!(response.status(), 400, "a wrong login, answered");
    let _ = response.into_body().collect().await;

    // Then, idle, it is sent GOAWAY and ends although every ping is answered.
    let ended = tokio::time::timeout(Duration::from_secs(4), connection).await;
    assert!(ended.is_ok(), "an idle connection stayed open");
}

#[tokio::test]
async fn an_upload_while_redis_is_away_loses_nothing_and_starts_once_redis_is_back() {
    let redis = OwnRedis::start();
    let url = format!("redis://127.0.0.1:{}/", redis.port);
    let redis_args = [("--redis-url", url.as_str())];
    let app = spawn_app_with(Backend::Real, crate::pipeline::options(&redis_args)).await;
    let _worker = crate::pipeline::worker_of(&app, &redis_args).await;
    let token = crate::pipeline::admin(&app).await;
    let clips = crate::media::Clips::new();
    let bytes = std::fs::read(clips.clip("r.mp4", "320x240", 1, false, &[])).expect("clip");

    // Redis hangs: the upload is still accepted (its row and file are in the database and the
    // media folder; the queue is unreachable).
    redis.signal("-STOP");
    let (status, video) = crate::pipeline::post_form(
        &app,
        &token,
        &[("title", "During the outage")],
        Some(("r.mp4", bytes)),
    )
    .await;
    assert_eq!(status, 201, "{video}");
    let id = video["id"].as_i64().expect("id");
    let id = videoflix::domain::VideoId::parse(id, "id").expect("id");
    tokio::time::sleep(Duration::from_secs(3)).await; // the outage lasts a while
    redis.signal("-CONT");

    // Back: the job is queued and transcoded within a minute — long before the sweep (every
    // 5 min) would find it.
    let ready = async {
        loop {
            let row = app
                .services
                .store
                .video(id)
                .await
                .expect("read")
                .expect("row");
            if row.status == videoflix::domain::VideoStatus::Ready {
                return row;
            }
            assert_ne!(
                row.status,
                videoflix::domain::VideoStatus::Failed,
                "{row:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let row = tokio::time::timeout(Duration::from_secs(60), ready)
        .await
        .expect("transcoded once Redis was back");
    assert!(!row.media.renditions.0.is_empty(), "{row:?}");
}
