//! `spawn_app()`: the real server on a random port with its own database (a SQLite file, or a
//! fresh PostgreSQL database), its own Redis key prefix, and a real SMTP server receiving its
//! mail. Plus small clients for REST and gRPC.

#![allow(dead_code)]

use std::{
    net::{SocketAddr, TcpListener},
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::{Connection as _, Executor as _, PgConnection};
use tempfile::TempDir;
use tokio::sync::OnceCell;
use videoflix::{
    config::Settings,
    grpc::pb::{auth_service_client::AuthServiceClient, video_service_client::VideoServiceClient},
    startup::{Application, Services},
};

/// Which backends a test app uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file, in-process limiter, no Redis.
    Embedded,
    /// PostgreSQL + Redis on localhost.
    Real,
}

/// PostgreSQL server for tests (trust auth); override with `TEST_POSTGRES_URL`.
fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Redis for tests; override with `TEST_REDIS_URL`.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
}

/// A received e-mail.
#[derive(Clone, Debug)]
pub struct ReceivedMail {
    /// Envelope recipients.
    pub to: Vec<String>,
    /// Raw RFC 5322 message.
    pub raw: Vec<u8>,
}

impl ReceivedMail {
    /// Decoded subject.
    pub fn subject(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.subject().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Decoded text/plain body.
    pub fn text(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.body_text(0).map(|t| t.into_owned()))
            .unwrap_or_default()
    }

    /// Decoded text/html body.
    pub fn html(&self) -> String {
        mail_parser::MessageParser::default()
            .parse(&self.raw)
            .and_then(|m| m.body_html(0).map(|t| t.into_owned()))
            .unwrap_or_default()
    }

    /// `(uid, token)` of the first `…/{route}/{uid}/{token}/` link in the text body.
    pub fn link_parts(&self, route: &str) -> (String, String) {
        let text = self.text();
        let marker = format!("/{route}/");
        let start = text
            .find(&marker)
            .unwrap_or_else(|| panic!("no {route} link in mail: {text}"))
            + marker.len();
        let rest: Vec<&str> = text[start..].splitn(3, '/').collect();
        (rest[0].to_owned(), rest[1].to_owned())
    }
}

/// SMTP handler storing every message.
#[derive(Clone, Default)]
struct Collector {
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
    to: Vec<String>,
    data: Vec<u8>,
}

impl mailin_embedded::Handler for Collector {
    fn data_start(
        &mut self,
        _domain: &str,
        _from: &str,
        _is8bit: bool,
        to: &[String],
    ) -> mailin_embedded::Response {
        self.to = to.to_vec();
        self.data.clear();
        mailin_embedded::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> mailin_embedded::Response {
        if let Ok(mut inbox) = self.inbox.lock() {
            inbox.push(ReceivedMail {
                to: std::mem::take(&mut self.to),
                raw: std::mem::take(&mut self.data),
            });
        }
        mailin_embedded::response::OK
    }
}

/// A real SMTP server on a random local port, on its own thread.
#[derive(Clone)]
pub struct MailServer {
    pub port: u16,
    inbox: Arc<Mutex<Vec<ReceivedMail>>>,
}

impl MailServer {
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind smtp");
        let port = listener.local_addr().expect("smtp addr").port();
        let collector = Collector::default();
        let inbox = collector.inbox.clone();
        std::thread::spawn(move || {
            let mut server = mailin_embedded::Server::new(collector);
            server.with_name("test.smtp").with_tcp_listener(listener);
            if let Err(e) = server.serve() {
                eprintln!("test SMTP server stopped: {e}");
            }
        });
        Self { port, inbox }
    }

    /// Every message received so far.
    pub fn all(&self) -> Vec<ReceivedMail> {
        self.inbox.lock().map(|i| i.clone()).unwrap_or_default()
    }

    /// Messages to `recipient`.
    pub fn to(&self, recipient: &str) -> Vec<ReceivedMail> {
        self.all()
            .into_iter()
            .filter(|m| m.to.iter().any(|t| t.eq_ignore_ascii_case(recipient)))
            .collect()
    }

    /// Waits (up to 10 s) for the `n`-th message to `recipient` (1-based) and returns it.
    pub async fn wait_for(&self, recipient: &str, n: usize) -> ReceivedMail {
        for _ in 0..200 {
            let mails = self.to(recipient);
            if mails.len() >= n {
                return mails[n - 1].clone();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "no mail #{n} to {recipient} within 10 s; got {:?}",
            self.all().len()
        );
    }
}

/// The stop signal of a spawned server and its task.
type Stopper = Arc<
    Mutex<
        Option<(
            tokio::sync::oneshot::Sender<()>,
            tokio::task::JoinHandle<()>,
        )>,
    >,
>;

/// A running server.
pub struct TestApp {
    pub backend: Backend,
    pub port: u16,
    pub base: String,
    pub http: reqwest::Client,
    pub mail: MailServer,
    pub services: Services,
    pub settings: Settings,
    /// Stops the server (see [`TestApp::stop`]).
    stop: Stopper,
    _dir: Arc<TempDir>,
}

/// Knobs of [`spawn_app_with`].
#[derive(Clone, Default)]
pub struct AppOptions {
    /// Extra `--flag value` pairs (override the test defaults).
    pub args: Vec<(String, String)>,
    /// Share the database, Redis prefix, mail server and data folder of another app (to run
    /// several processes against one deployment).
    pub share_with: Option<Shared>,
    /// Run with the shipped rate limits (not the tests' generous ones).
    pub shipped_limits: bool,
}

/// Options with these extra `--flag value` pairs.
pub fn with(args: &[(&str, &str)]) -> AppOptions {
    AppOptions {
        args: args
            .iter()
            .map(|(f, v)| ((*f).to_owned(), (*v).to_owned()))
            .collect(),
        share_with: None,
        shipped_limits: false,
    }
}

/// What two app instances of one deployment share.
#[derive(Clone)]
pub struct Shared {
    database_url: String,
    redis_prefix: String,
    mail: MailServer,
    dir: Arc<TempDir>,
}

impl TestApp {
    /// The deployment this app belongs to, for a second process.
    pub fn shared(&self) -> Shared {
        Shared {
            database_url: self.settings.database_url.clone(),
            redis_prefix: self.settings.redis_prefix.clone(),
            mail: self.mail.clone(),
            dir: self._dir.clone(),
        }
    }
}

static PG_CLEANUP: OnceCell<()> = OnceCell::const_new();

/// Test databases and Redis prefixes are named `vf_test_<unix seconds>_<random>`: a run cleans
/// up only what is over a day old, never what a concurrent run (another checkout, nextest, CI
/// beside a developer) is using.
fn test_name() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("vf_test_{now}_{}", uuid::Uuid::new_v4().simple())
}

/// Whether `name` is a test name made over a day ago by [`test_name`].
fn stale(name: &str) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    name.strip_prefix("vf_test_")
        .and_then(|rest| rest.split('_').next())
        .and_then(|secs| secs.parse::<u64>().ok())
        .is_some_and(|made| made + 24 * 3600 < now)
}

/// Drops test databases and Redis keys over a day old (aborted runs), once per test process.
async fn cleanup_stale_databases() {
    PG_CLEANUP
        .get_or_init(|| async {
            if let Ok(mut conn) = PgConnection::connect(&postgres_admin_url()).await {
                let names: Vec<(String,)> = sqlx::query_as(
                    "SELECT datname FROM pg_database WHERE datname LIKE 'vf\\_test\\_%'",
                )
                .fetch_all(&mut conn)
                .await
                .unwrap_or_default();
                for (name,) in names.into_iter().filter(|(n,)| stale(n)) {
                    let _ = conn
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        )))
                        .await;
                }
            }
            if let Ok(client) = redis::Client::open(redis_url())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
            {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg("vf_test_*")
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                let old: Vec<&String> = keys
                    .iter()
                    .filter(|k| stale(k.split(':').next().unwrap_or("")))
                    .collect();
                for chunk in old.chunks(500) {
                    let _: Result<i64, _> =
                        redis::cmd("DEL").arg(chunk).query_async(&mut conn).await;
                }
            }
        })
        .await;
}

async fn create_postgres_database() -> String {
    let name = test_name();
    let mut conn = PgConnection::connect(&postgres_admin_url())
        .await
        .expect("PostgreSQL must be running for the Real backend tests (see README)");
    conn.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .await
        .expect("create test database");
    let mut url = url::Url::parse(&postgres_admin_url()).expect("postgres url");
    url.set_path(&name);
    url.to_string()
}

/// A second process of `first`'s deployment (same database, Redis prefix, mail server).
pub async fn spawn_peer(first: &TestApp, args: Vec<(String, String)>) -> TestApp {
    spawn_app_with(
        first.backend,
        AppOptions {
            args,
            share_with: Some(first.shared()),
            shipped_limits: false,
        },
    )
    .await
}

/// The real server with test defaults (throttling on, generous limits).
pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, AppOptions::default()).await
}

/// The real server with options.
pub async fn spawn_app_with(backend: Backend, options: AppOptions) -> TestApp {
    videoflix::telemetry::init();
    let (database_url, redis_prefix, mail, dir) = match options.share_with {
        Some(shared) => (
            shared.database_url,
            shared.redis_prefix,
            shared.mail,
            shared.dir,
        ),
        None => {
            let dir = Arc::new(tempfile::tempdir().expect("tempdir"));
            let database_url = match backend {
                Backend::Embedded => {
                    format!("sqlite://{}/videoflix.db?mode=rwc", dir.path().display())
                }
                Backend::Real => create_postgres_database().await,
            };
            cleanup_stale_databases().await;
            let prefix = test_name();
            (database_url, prefix, MailServer::start(), dir)
        }
    };
    let mut args: Vec<String> = vec!["videoflix".into()];
    let mut defaults: Vec<(String, String)> = vec![
        ("--database-url".into(), database_url),
        ("--redis-prefix".into(), redis_prefix),
        (
            "--smtp-url".into(),
            format!("smtp://127.0.0.1:{}", mail.port),
        ),
        (
            "--jwt-secret".into(),
            "test-secret-0123456789-abcdefghijklmnop".into(),
        ),
        ("--frontend-url".into(), "http://frontend.test/".into()),
        ("--public-url".into(), "http://127.0.0.1/".into()),
        (
            "--media-dir".into(),
            dir.path().join("media").display().to_string(),
        ),
        (
            "--mail-outbox-dir".into(),
            dir.path().join("outbox").display().to_string(),
        ),
        (
            "--export-dir".into(),
            dir.path().join("exports").display().to_string(),
        ),
        ("--throttle-login-account".into(), "1000/min".into()),
        ("--throttle-login-account-all".into(), "1000/min".into()),
        ("--throttle-login-address".into(), "1000/min".into()),
        ("--throttle-register".into(), "1000/min".into()),
        ("--throttle-refresh".into(), "1000/min".into()),
        ("--throttle-mail".into(), "1000/min".into()),
        ("--throttle-anon".into(), "1000/min".into()),
        ("--hash-concurrency".into(), "2".into()),
        ("--database-max-connections".into(), "5".into()),
    ];
    if options.shipped_limits {
        defaults.retain(|(flag, _)| !flag.starts_with("--throttle-"));
    }
    if backend == Backend::Real {
        defaults.push(("--redis-url".into(), redis_url()));
    }
    for (flag, value) in options.args {
        defaults.retain(|(f, _)| *f != flag);
        defaults.push((flag, value));
    }
    for (flag, value) in defaults {
        args.push(flag);
        if !value.is_empty() {
            args.push(value);
        }
    }
    let settings = Settings::from_args(args).expect("test settings");
    let app = Application::build(
        settings.clone(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        true,
    )
    .await
    .expect("build app");
    let port = app.port();
    let services = app.services().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        let stopped = async {
            let _ = stopped.await;
        };
        if let Err(e) = app.run_until(stopped).await {
            eprintln!("test server stopped: {e:#}");
        }
    });
    TestApp {
        backend,
        port,
        base: format!("http://127.0.0.1:{port}"),
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        mail,
        services,
        settings,
        stop: Arc::new(Mutex::new(Some((stop, server)))),
        _dir: dir,
    }
}

impl TestApp {
    /// Stops the server as SIGTERM would, and waits (at most 25 s) until it has stopped.
    pub async fn stop(&self) {
        let taken = self.stop.lock().ok().and_then(|mut s| s.take());
        if let Some((stop, server)) = taken {
            let _ = stop.send(());
            tokio::time::timeout(std::time::Duration::from_secs(25), server)
                .await
                .expect("the server did not stop")
                .expect("the server task");
        }
    }
}

/// A REST answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Asserts the status and returns self, printing the body on mismatch.
    #[track_caller]
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.text
        );
        self
    }

    /// Asserts the legacy error shape with this `type`.
    #[track_caller]
    pub fn expect_error(self, status: u16, kind: &str) -> Self {
        let me = self.expect(status);
        assert_eq!(me.body["type"], json!([kind]), "body: {}", me.text);
        assert!(
            me.body["message"].as_array().is_some_and(|m| !m.is_empty()),
            "body: {}",
            me.text
        );
        me
    }
}

impl TestApp {
    /// Waits (at most 10 s) until every mail the app queued was delivered or given up on.
    pub async fn mail_drained(&self) {
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.services.accounts.mailer().drained(),
        )
        .await
        .expect("the mail queue did not drain");
    }

    /// Sends a REST request; `token` goes out as `Authorization: Token …`.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Reply {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Token {token}"));
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body), None).await
    }

    pub async fn get_auth(&self, path: &str, token: &str) -> Reply {
        self.call(Method::GET, path, None, Some(token)).await
    }

    /// A gRPC AuthService client.
    pub async fn auth_client(&self) -> AuthServiceClient<tonic::transport::Channel> {
        AuthServiceClient::connect(self.base.clone())
            .await
            .expect("grpc connect")
    }

    /// A gRPC VideoService client.
    pub async fn video_client(&self) -> VideoServiceClient<tonic::transport::Channel> {
        VideoServiceClient::connect(self.base.clone())
            .await
            .expect("grpc connect")
    }

    /// Registers `email` over REST, activates it from the mailed link, and returns a login
    /// token.
    pub async fn active_user(&self, email: &str, password: &str) -> String {
        self.post(
            "/register/",
            json!({"email": email, "password": password, "confirm_password": password}),
        )
        .await
        .expect(201);
        let mail = self.mail.wait_for(email, 1).await;
        let (uid, token) = mail.link_parts("activate-account");
        self.post("/activate-account/", json!({"uid": uid, "token": token}))
            .await
            .expect(200);
        self.login(email, password).await
    }

    /// Logs in over REST and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let reply = self
            .post("/login/", json!({"email": email, "password": password}))
            .await
            .expect(200);
        reply.body["token"].as_str().expect("token").to_owned()
    }
}

/// Adds `authorization: Bearer …` to a gRPC request.
pub fn authed<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    request
}

/// A strong password for tests.
pub const PASSWORD: &str = "Tr1cky-Horse-Battery";

#[test]
fn only_test_names_over_a_day_old_are_cleaned_up() {
    assert!(stale("vf_test_1000_0123abcd"), "an old run");
    assert!(!stale(&test_name()), "this run");
    // Names of other tools or older layouts are never touched.
    assert!(!stale("vf_test_0123456789abcdef0123456789abcdef"));
    assert!(!stale("videoflix"));
}
