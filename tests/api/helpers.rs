//! `spawn_app()`: the real server on a random port with its own database (a SQLite file, or a
//! fresh PostgreSQL database), its own Redis key prefix, and a real SMTP server receiving its
//! mail ([`mail`]). Plus small clients for REST and gRPC ([`client`]).

#![allow(dead_code)]

mod client;
mod mail;
pub mod process;

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use sqlx::{Connection as _, Executor as _, PgConnection};
use tempfile::TempDir;
use tokio::sync::OnceCell;
use videoflix::{
    config::Settings,
    startup::{Application, Services},
};

pub use client::{PASSWORD, authed};
use mail::MailServer;

/// Which backends a test app uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file, in-process limiter, no Redis.
    Embedded,
    /// PostgreSQL + Redis on localhost.
    Real,
}

/// PostgreSQL server for tests (trust auth); override with `TEST_POSTGRES_URL`.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// Redis for tests; override with `TEST_REDIS_URL`.
pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/".to_owned())
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
    /// The `--flag value` pairs it was started with (a flag without a value has "").
    pub flags: Vec<(String, String)>,
    /// Stops the server (see [`TestApp::stop`]).
    stop: Stopper,
    _dir: Arc<TempDir>,
}

/// Anything serving the API at a base URL: an in-process [`TestApp`] or a
/// [`process::Process`] running `serve`.
pub trait Server {
    /// `http://127.0.0.1:<port>`.
    fn base(&self) -> &str;
}

impl Server for TestApp {
    fn base(&self) -> &str {
        &self.base
    }
}

impl Server for process::Process {
    fn base(&self) -> &str {
        &self.base
    }
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
    for (flag, value) in &defaults {
        args.push(flag.clone());
        if !value.is_empty() {
            args.push(value.clone());
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
        flags: defaults,
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

#[test]
fn only_test_names_over_a_day_old_are_cleaned_up() {
    assert!(stale("vf_test_1000_0123abcd"), "an old run");
    assert!(!stale(&test_name()), "this run");
    // Names of other tools or older layouts are never touched.
    assert!(!stale("vf_test_0123456789abcdef0123456789abcdef"));
    assert!(!stale("videoflix"));
}
