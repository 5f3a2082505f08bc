//! PostgreSQL restarted under load: while it is down requests fail fast with 503 / UNAVAILABLE
//! and a JSON error (no 500, no hang), health and `/readyz` say so, and once it is back the pool
//! reconnects by itself, with nothing written before lost. The server is a cluster of the
//! test's own (initdb), so stopping it disturbs no other test.

use std::{
    path::PathBuf,
    process::Command,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use reqwest::Method;
use serde_json::{Value, json};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    catalog::{admin_token, create},
    helpers::{Backend, TestApp, spawn_app_with, with},
};

/// A PostgreSQL cluster in a temporary folder, on a free port; stopped when dropped.
struct OwnPostgres {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start() -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("PostgreSQL's server binaries (/usr/lib/postgresql/<version>/bin)")
            .filter_map(|e| Some(e.ok()?.path().join("bin")))
            .filter(|p| p.join("initdb").exists())
            .max()
            .expect("initdb");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let cluster = Self { dir, bin, port };
        // PostgreSQL refuses to run as root: as root, the cluster belongs to `postgres`.
        if cluster.as_root() {
            let owned = Command::new("chown")
                .args(["postgres"])
                .arg(cluster.dir.path())
                .status()
                .expect("chown");
            assert!(owned.success());
        }
        let data = cluster.data();
        cluster.run("initdb", &["-D", &data, "-U", "postgres", "--auth=trust"]);
        cluster.up();
        cluster
    }

    fn as_root(&self) -> bool {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0\n"))
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let output = if self.as_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(&program)
                .args(args)
                .output()
        } else {
            Command::new(&program).args(args).output()
        }
        .expect(tool);
        assert!(output.status.success(), "{tool}: {output:?}");
    }

    /// Starts the server and waits until it accepts connections.
    fn up(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        let data = self.data();
        self.run(
            "pg_ctl",
            &["-D", &data, "-o", &options, "-l", &log, "-w", "start"],
        );
    }

    /// Stops it as an operator's restart does (`-m fast`: sessions are terminated).
    fn down(&self) {
        let data = self.data();
        self.run("pg_ctl", &["-D", &data, "-m", "fast", "-w", "stop"]);
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let data = self.data();
        let program = self.bin.join("pg_ctl");
        let args = ["-D", data.as_str(), "-m", "immediate", "stop"];
        let _ = if self.as_root() {
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(program)
                .args(args)
                .output()
        } else {
            Command::new(program).args(args).output()
        };
    }
}

/// One answer under load: what was asked, its status, how long it took, its body.
#[derive(Debug)]
struct Answer {
    what: &'static str,
    at: Instant,
    status: u16,
    took: Duration,
    body: Value,
}

/// Answers recorded so far.
type Answers = Arc<Mutex<Vec<Answer>>>;

/// Reads and writes a video in a loop until `stop`, recording every answer.
fn load(
    app: &TestApp,
    token: &str,
    id: i64,
    stop: Arc<AtomicBool>,
) -> (Answers, tokio::task::JoinHandle<()>) {
    let (http, base, token) = (app.http.clone(), app.base.clone(), token.to_owned());
    let answers = Answers::default();
    let sink = answers.clone();
    let task = tokio::spawn(async move {
        let mut n = 0u64;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let (what, request) = if n.is_multiple_of(2) {
                ("read", http.get(format!("{base}/api/videos/{id}/")))
            } else {
                let body = json!({"description": format!("write {n}")});
                (
                    "write",
                    http.patch(format!("{base}/api/videos/{id}/")).json(&body),
                )
            };
            let started = Instant::now();
            let response = request
                .header("authorization", format!("Token {token}"))
                .timeout(Duration::from_secs(30))
                .send()
                .await
                .expect("an answer (no hang)");
            let status = response.status().as_u16();
            let body = response.json().await.unwrap_or(Value::Null);
            sink.lock().expect("answers").push(Answer {
                what,
                at: started,
                status,
                took: started.elapsed(),
                body,
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    (answers, task)
}

async fn grpc_health(app: &TestApp) -> ServingStatus {
    let channel = tonic::transport::Channel::from_shared(app.base.clone())
        .expect("uri")
        .connect()
        .await
        .expect("connect");
    let mut health = HealthClient::new(channel);
    let reply = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health");
    reply.into_inner().status()
}

/// Waits (bounded) until `/readyz` answers `status` and gRPC health is `serving`.
async fn wait_until(app: &TestApp, status: u16, serving: ServingStatus) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = app
            .call(Method::GET, "/readyz", None, None)
            .await
            .status
            .as_u16();
        if ready == status && grpc_health(app).await == serving {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "readyz {ready}, wanted {status} / {serving:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_fails_fast_with_503_and_the_pool_reconnects() {
    let postgres = OwnPostgres::start();
    let url = postgres.url();
    let app = spawn_app_with(
        Backend::Real,
        with(&[
            ("--database-url", url.as_str()),
            ("--throttle-user", "100000/min"),
            ("--throttle-user-day", "1000000/day"),
        ]),
    )
    .await;
    let token = admin_token(&app).await;
    let video = create(
        &app,
        &token,
        json!({"title": "Before the restart", "genre": "drama"}),
    )
    .await;
    let id = video["id"].as_i64().expect("id");
    let written = app
        .call(
            Method::PATCH,
            &format!("/api/videos/{id}/"),
            Some(json!({"title": "Written before the restart"})),
            Some(&token),
        )
        .await;
    written.expect(200);

    let stop = Arc::new(AtomicBool::new(false));
    let (answers, load) = load(&app, &token, id, stop.clone());
    postgres.down();
    // While it is down: readiness and health say so.
    wait_until(&app, 503, ServingStatus::NotServing).await;
    let detected = Instant::now();
    let refused = app
        .call(
            Method::PATCH,
            &format!("/api/videos/{id}/"),
            Some(json!({"title": "Written while it is down"})),
            Some(&token),
        )
        .await;
    assert_eq!(refused.status, 503, "{}", refused.text);
    assert!(
        detected.elapsed() < Duration::from_millis(500),
        "fails at once once known down"
    );
    assert_eq!(refused.body["type"], json!(["server"]), "{}", refused.text);
    let mut client = app.video_client().await;
    let grpc = client
        .get_video(crate::helpers::authed(
            videoflix::grpc::pb::GetVideoRequest {
                id,
                ..Default::default()
            },
            &token,
        ))
        .await;
    // The detail may come from the cache; if not, the error is UNAVAILABLE.
    if let Err(status) = grpc {
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    }

    // It stays down while the load gets a few refusals.
    let deadline = Instant::now() + Duration::from_secs(30);
    while answers
        .lock()
        .expect("answers")
        .iter()
        .filter(|a| a.status == 503)
        .count()
        < 5
    {
        assert!(Instant::now() < deadline, "no 503s under load");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Back up: the same server serves again by itself.
    let restarted = Instant::now();
    postgres.up();
    wait_until(&app, 200, ServingStatus::Serving).await;
    // The load's writes succeed again (it was not restarted), then it stops.
    let serving = Instant::now();
    let deadline = serving + Duration::from_secs(30);
    while !answers
        .lock()
        .expect("answers")
        .iter()
        .any(|a| a.what == "write" && a.status == 200 && a.at > serving)
    {
        assert!(
            Instant::now() < deadline,
            "the load's writes did not resume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::Relaxed);
    load.await.expect("load");
    let answers = std::mem::take(&mut *answers.lock().expect("answers"));

    // Nothing written before is lost; writes work again.
    let seen = app
        .get_auth(&format!("/api/videos/{id}/"), &token)
        .await
        .expect(200)
        .body;
    assert_eq!(seen["title"], "Written before the restart", "{seen}");
    let again = app
        .call(
            Method::PATCH,
            &format!("/api/videos/{id}/"),
            Some(json!({"title": "Written after"})),
            Some(&token),
        )
        .await;
    again.expect(200);

    // Under load: every answer was a success or a fast 503 with its JSON error, never a 500.
    assert!(answers.iter().any(|a| a.status == 503), "{answers:#?}");
    for answer in &answers {
        assert!(
            answer.status == 200
                || (answer.status == 503 && answer.body["type"] == json!(["server"])),
            "{answer:?}"
        );
        // Before the probe notices, a query waits out the pool's acquire timeout (5 s); once
        // it knows, the answer is immediate.
        assert!(answer.took < Duration::from_secs(7), "{answer:?}");
        if answer.at > detected && answer.at < restarted {
            assert!(answer.took < Duration::from_millis(500), "{answer:?}");
        }
    }
}
