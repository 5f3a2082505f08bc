//! One typed [`Settings`] struct, read from the command line, the environment and an optional
//! `.env` file (in that order of precedence), and validated once at start-up.

use std::{net::SocketAddr, path::PathBuf};

use clap::Args;
use url::Url;

use crate::domain::Rate;

mod redact;

/// The secret every fresh checkout would share; refused outside `--dev`.
pub const DEV_JWT_SECRET: &str = "videoflix-development-secret-do-not-use-in-production";

/// Everything the server, worker and commands need to know about their environment.
#[derive(Clone, Args)]
pub struct Settings {
    /// Database: `sqlite://path?mode=rwc` (embedded default) or `postgres://user@host/db`.
    #[arg(
        long,
        env = "DATABASE_URL",
        hide_env_values = true,
        default_value = "sqlite://data/videoflix.db?mode=rwc"
    )]
    pub database_url: String,

    /// Redis for cache, rate limits and queue; unset = in-process equivalents.
    #[arg(long, env = "REDIS_URL", hide_env_values = true)]
    pub redis_url: Option<String>,

    /// Milliseconds a Redis call may take before it counts as failed (then the cache is
    /// bypassed and limits hold in process; a few failures in a row open a breaker for 5 s).
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value_t = 100)]
    pub redis_timeout_ms: u64,

    /// Prefix of every Redis key, so several deployments (or tests) can share one Redis.
    #[arg(long, env = "REDIS_PREFIX", default_value = "videoflix")]
    pub redis_prefix: String,

    /// SMTP server, e.g. `smtp://user:pass@host:587` or `smtps://…`; unset = write `.eml` files to
    /// the outbox folder and log the links.
    #[arg(long, env = "SMTP_URL", hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// Folder for `.eml` files when no SMTP server is configured.
    #[arg(long, env = "MAIL_OUTBOX_DIR", default_value = "data/outbox")]
    pub mail_outbox_dir: PathBuf,

    /// Sender of every e-mail.
    #[arg(
        long,
        env = "MAIL_FROM",
        default_value = "Videoflix <noreply@videoflix.local>"
    )]
    pub mail_from: String,

    /// Public base URL of this server (used in media links).
    #[arg(long, env = "PUBLIC_URL", default_value = "http://localhost:8000/")]
    pub public_url: Url,

    /// Base URL of the web frontend; mails link to `{FRONTEND_URL}activate-account/…` and
    /// `{FRONTEND_URL}reset-password/…`.
    #[arg(long, env = "FRONTEND_URL", default_value = "http://localhost:4200/")]
    pub frontend_url: Url,

    /// Origins allowed by CORS (comma-separated); default: the frontend's origin (a local one
    /// by name and by IP), plus the usual development servers' origins with `--dev`.
    #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Folder holding uploaded and transcoded media.
    #[arg(long, env = "MEDIA_DIR", default_value = "data/media")]
    pub media_dir: PathBuf,

    /// The built web app served at `/app/` (`npm run build` in `web/` writes `web/dist`).
    #[arg(long, env = "WEB_DIR", default_value = "web/dist")]
    pub web_dir: PathBuf,

    /// Folder of catalog exports (`export-video-data`, the weekly export).
    #[arg(long, env = "EXPORT_DIR", default_value = "data/exports")]
    pub export_dir: PathBuf,

    /// When the scheduled export runs (six-field cron, seconds first, in SCHEDULE_TZ); stored in
    /// the database on first start, then changed with `videoflix jobs set export …`.
    #[arg(long, env = "EXPORT_SCHEDULE", default_value = "0 0 6 * * Sun")]
    pub export_schedule: String,

    /// Scheduled exports kept (older ones the scheduler wrote are deleted).
    #[arg(long, env = "EXPORT_KEEP", default_value_t = 8)]
    pub export_keep: usize,

    /// Time zone of the job schedules (IANA name).
    #[arg(long, env = "SCHEDULE_TZ", default_value = "UTC")]
    pub schedule_tz: chrono_tz::Tz,

    /// Secret signing access tokens and e-mailed links (at least 32 characters).
    #[arg(long, env = "JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Development mode: allows the built-in JWT secret.
    #[arg(long, env = "VIDEOFLIX_DEV")]
    pub dev: bool,

    /// Lifetime of an access token (`token` of `/login/`), in seconds.
    #[arg(long, env = "ACCESS_TOKEN_TTL", default_value_t = 24 * 3600)]
    pub access_token_ttl: u64,

    /// Lifetime of a session (its refresh token), in seconds.
    #[arg(long, env = "REFRESH_TOKEN_TTL", default_value_t = 7 * 24 * 3600)]
    pub refresh_token_ttl: u64,

    /// Lifetime of a session when the user ticked "remember me", in seconds.
    #[arg(long, env = "REMEMBER_ME_TTL", default_value_t = 30 * 24 * 3600)]
    pub remember_me_ttl: u64,

    /// Lifetime of an activation link, in seconds.
    #[arg(long, env = "ACTIVATION_TOKEN_TTL", default_value_t = 3 * 24 * 3600)]
    pub activation_token_ttl: u64,

    /// Lifetime of a password-reset link, in seconds.
    #[arg(long, env = "RESET_TOKEN_TTL", default_value_t = 24 * 3600)]
    pub reset_token_ttl: u64,

    /// Domain of generated guest e-mail addresses.
    #[arg(
        long,
        env = "GUEST_EMAIL_DOMAIN",
        default_value = "guest.videoflix.com"
    )]
    pub guest_email_domain: String,

    /// Guests older than this many seconds are purged.
    #[arg(long, env = "GUEST_TTL", default_value_t = 24 * 3600)]
    pub guest_ttl: u64,

    /// Bearer token `GET /metrics` requires (unset: the metrics are open, for a scraper on a
    /// private network).
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Master switch for rate limiting (false turns every limit off, for benchmarks and fuzzing).
    #[arg(long, env = "THROTTLE_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub throttle_enabled: bool,

    /// Login attempts allowed per account from one client address.
    #[arg(long, env = "THROTTLE_LOGIN_ACCOUNT", default_value = "5/min")]
    pub throttle_login_account: Rate,

    /// Failed logins per account from all addresses before addresses that failed on it wait
    /// (an address that has not failed, such as the owner's, still gets its attempt).
    #[arg(long, env = "THROTTLE_LOGIN_ACCOUNT_ALL", default_value = "100/hour")]
    pub throttle_login_account_all: Rate,

    /// Failed logins allowed per client address.
    #[arg(long, env = "THROTTLE_LOGIN_ADDRESS", default_value = "20/min")]
    pub throttle_login_address: Rate,

    /// Registrations allowed per client address.
    #[arg(long, env = "THROTTLE_REGISTER", default_value = "10/hour")]
    pub throttle_register: Rate,

    /// Refresh-token rotations (`/jwt/refresh/`, RefreshToken) allowed per client address.
    #[arg(long, env = "THROTTLE_REFRESH", default_value = "30/min")]
    pub throttle_refresh: Rate,

    /// Activation and reset mails allowed per client address and per account.
    #[arg(long, env = "THROTTLE_MAIL", default_value = "5/hour")]
    pub throttle_mail: Rate,

    /// Requests of anonymous clients per address (video endpoints).
    #[arg(long, env = "THROTTLE_ANON", default_value = "50/min")]
    pub throttle_anon: Rate,

    /// Requests per user (video endpoints), short window.
    #[arg(long, env = "THROTTLE_USER", default_value = "100/min")]
    pub throttle_user: Rate,

    /// Requests per user (video endpoints), daily window.
    #[arg(long, env = "THROTTLE_USER_DAY", default_value = "1000/day")]
    pub throttle_user_day: Rate,

    /// Cache catalog lists (Redis when configured, else in process).
    #[arg(long, env = "CACHE_ENABLED", default_value_t = true, action = clap::ArgAction::Set)]
    pub cache_enabled: bool,

    /// Seconds a cached catalog list lives (writes invalidate it at once anyway).
    #[arg(long, env = "CACHE_TTL", default_value_t = 900)]
    pub cache_ttl: u64,

    /// Trust `X-Forwarded-For` for the client address (only behind a reverse proxy).
    #[arg(long, env = "TRUST_PROXY_HEADERS")]
    pub trust_proxy_headers: bool,

    /// Maximum concurrent password hashes (argon2 is deliberately expensive).
    #[arg(long, env = "HASH_CONCURRENCY", default_value_t = 4)]
    pub hash_concurrency: usize,

    /// Maximum database connections of this process (default: 16 on PostgreSQL; on SQLite
    /// twice the cores, 4 to 16: reads run on the connections' own threads, and more of them
    /// than cores only adds their memory).
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS")]
    pub database_max_connections: Option<u32>,

    /// Milliseconds a SQLite statement waits for another writer before the request answers
    /// 503 (retry later).
    #[arg(long, env = "DATABASE_BUSY_TIMEOUT_MS", default_value_t = 5000)]
    pub database_busy_timeout_ms: u64,

    /// Connections served at once (further ones are closed at once).
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,

    /// Connections from one client address (an IPv6 client by its /64) at once.
    #[arg(long, env = "MAX_CONNECTIONS_PER_ADDRESS", default_value_t = 256)]
    pub max_connections_per_address: usize,

    /// Seconds a request's headers may take to arrive (also the idle time of a kept-alive
    /// HTTP/1.1 connection).
    #[arg(long, env = "HEADER_READ_TIMEOUT", default_value_t = 10)]
    pub header_read_timeout: u64,

    /// Seconds between HTTP/2 keep-alive pings; a peer that does not answer within as long is
    /// disconnected.
    #[arg(long, env = "HTTP2_KEEP_ALIVE", default_value_t = 20)]
    pub http2_keep_alive: u64,

    /// Seconds a connection may stay open with no request in progress (an HTTP/2 client that
    /// answers pings but sends nothing is sent GOAWAY).
    #[arg(long, env = "IDLE_TIMEOUT", default_value_t = 120)]
    pub idle_timeout: u64,

    /// Seconds a response may wait for a client that stopped reading (no byte of it accepted by
    /// the connection) before the connection is closed.
    #[arg(long, env = "WRITE_STALL_TIMEOUT", default_value_t = 60)]
    pub write_stall_timeout: u64,

    /// Seconds a stopping process gives requests in flight and transcode workers to finish
    /// (SIGTERM or SIGINT; a second signal exits at once).
    #[arg(long, env = "SHUTDOWN_GRACE", default_value_t = 20)]
    pub shutdown_grace: u64,

    /// Seconds a request body (other than an upload) may take to arrive in all.
    #[arg(long, env = "BODY_TIMEOUT", default_value_t = 30)]
    pub body_timeout: u64,

    /// Seconds an upload may go without sending a byte before it is dropped (and its partial
    /// file removed).
    #[arg(long, env = "UPLOAD_IDLE_TIMEOUT", default_value_t = 60)]
    pub upload_idle_timeout: u64,

    /// Largest picture (width × height) an upload may have; larger ones are refused at the probe,
    /// before decoding (default 8K UHD, 7680×4320).
    #[arg(long, env = "MEDIA_MAX_PIXELS", default_value_t = crate::media::DEFAULT_MAX_PIXELS)]
    pub media_max_pixels: u64,

    /// Largest accepted upload in bytes (default 4 GiB).
    #[arg(long, env = "UPLOAD_MAX_BYTES", default_value_t = 4 << 30)]
    pub upload_max_bytes: u64,

    /// Run transcode workers in this server process. Without Redis they always run here.
    #[arg(long, env = "WORKER")]
    pub worker: bool,

    /// Transcodes one process runs at once.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 1)]
    pub worker_concurrency: usize,

    /// Transcode attempts before a video is marked failed.
    #[arg(long, env = "TRANSCODE_MAX_ATTEMPTS", default_value_t = 3)]
    pub transcode_max_attempts: u32,

    /// Seconds before the first transcode retry (doubles each time).
    #[arg(long, env = "TRANSCODE_RETRY_DELAY", default_value_t = 10)]
    pub transcode_retry_delay: u64,

    /// Seconds a job may go without a heartbeat before another worker takes it over (Redis).
    #[arg(long, env = "JOB_VISIBILITY_TIMEOUT", default_value_t = 60)]
    pub job_visibility_timeout: u64,

    /// x264 preset of the renditions (slower = smaller files).
    #[arg(long, env = "TRANSCODE_PRESET", default_value = "medium")]
    pub transcode_preset: String,

    /// HLS segment length (and keyframe interval) in seconds.
    #[arg(long, env = "HLS_SEGMENT_SECONDS", default_value_t = 4)]
    pub hls_segment_seconds: u32,
}

/// The database a `DATABASE_URL` names, decided once from its scheme.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatabaseKind {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `sqlite:`.
    Sqlite,
}

impl DatabaseKind {
    /// The kind of `url`, or why it is none.
    pub fn of(url: &str) -> Result<Self, ConfigError> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Self::Postgres)
        } else if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else {
            Err(ConfigError(
                "DATABASE_URL must start with sqlite:, postgres:// or postgresql://".into(),
            ))
        }
    }
}

/// A configuration value that cannot work; reported before anything starts.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Settings {
    /// Parses settings from command-line style arguments (the environment fills what they do
    /// not give), e.g. `["videoflix", "--dev", "--database-url", "sqlite://x.db"]`.
    pub fn from_args<I, T>(args: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            settings: Settings,
        }
        <Only as clap::Parser>::try_parse_from(args).map(|o| o.settings)
    }

    /// Checks everything that can be checked without I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let secret = self.jwt_secret.as_deref().unwrap_or("");
        if !self.dev {
            if secret.is_empty() || secret == DEV_JWT_SECRET {
                return Err(ConfigError(
                    "JWT_SECRET is empty or the built-in development secret; set a random secret \
                     (e.g. `openssl rand -hex 32`) or pass --dev"
                        .into(),
                ));
            }
            if secret.len() < 32 {
                return Err(ConfigError(
                    "JWT_SECRET must be at least 32 characters".into(),
                ));
            }
        }
        DatabaseKind::of(&self.database_url)?;
        if let Err(e) = crate::jobs::Schedule::parse(&self.export_schedule) {
            return Err(ConfigError(format!("EXPORT_SCHEDULE: {}", e.message)));
        }
        if let Some(redis) = &self.redis_url
            && !(redis.starts_with("redis://") || redis.starts_with("rediss://"))
        {
            return Err(ConfigError(
                "REDIS_URL must start with redis:// or rediss://".into(),
            ));
        }
        for (name, url) in [
            ("PUBLIC_URL", &self.public_url),
            ("FRONTEND_URL", &self.frontend_url),
        ] {
            if !url.path().ends_with('/') {
                return Err(ConfigError(format!("{name} must end with '/'")));
            }
        }
        if self.access_token_ttl == 0 || self.refresh_token_ttl == 0 || self.remember_me_ttl == 0 {
            return Err(ConfigError("token lifetimes must be positive".into()));
        }
        if self.hash_concurrency == 0 {
            return Err(ConfigError("HASH_CONCURRENCY must be at least 1".into()));
        }
        if self.worker_concurrency == 0 || self.transcode_max_attempts == 0 {
            return Err(ConfigError(
                "WORKER_CONCURRENCY and TRANSCODE_MAX_ATTEMPTS must be at least 1".into(),
            ));
        }
        if !(1..=30).contains(&self.hls_segment_seconds) {
            return Err(ConfigError(
                "HLS_SEGMENT_SECONDS must be between 1 and 30".into(),
            ));
        }
        const PRESETS: [&str; 9] = [
            "ultrafast",
            "superfast",
            "veryfast",
            "faster",
            "fast",
            "medium",
            "slow",
            "slower",
            "veryslow",
        ];
        if !PRESETS.contains(&self.transcode_preset.as_str()) {
            return Err(ConfigError(format!(
                "TRANSCODE_PRESET must be one of {}",
                PRESETS.join(", ")
            )));
        }
        Ok(())
    }

    /// The secret actually used for signing.
    pub fn signing_secret(&self) -> &str {
        match self.jwt_secret.as_deref() {
            Some(s) if !s.is_empty() => s,
            _ => DEV_JWT_SECRET,
        }
    }

    /// Whether `serve` runs transcode workers in process.
    pub fn runs_worker(&self) -> bool {
        self.worker || self.redis_url.is_none()
    }

    /// The pool size: [`Self::database_max_connections`] or its default for the database.
    pub fn database_connections(&self) -> u32 {
        self.database_max_connections.unwrap_or_else(|| {
            if self.is_postgres() {
                16
            } else {
                let cores = std::thread::available_parallelism().map_or(2, usize::from);
                u32::try_from(cores.saturating_mul(2)).map_or(16, |n| n.clamp(4, 16))
            }
        })
    }

    /// Whether this process uses PostgreSQL (else SQLite).
    pub fn is_postgres(&self) -> bool {
        matches!(self.database_kind(), Ok(DatabaseKind::Postgres))
    }

    /// Which database `DATABASE_URL` names.
    pub fn database_kind(&self) -> Result<DatabaseKind, ConfigError> {
        DatabaseKind::of(&self.database_url)
    }

    /// Origins allowed by CORS, with the defaults applied.
    pub fn allowed_origins(&self) -> Vec<String> {
        if !self.cors_origins.is_empty() {
            return self
                .cors_origins
                .iter()
                .map(|o| o.trim().trim_end_matches('/').to_owned())
                .filter(|o| !o.is_empty())
                .collect();
        }
        let frontend = self.frontend_url.origin().ascii_serialization();
        let mut origins = vec![frontend.clone()];
        // A frontend on this machine is the same one by name and by IP.
        for (name, ip) in [
            ("//localhost", "//127.0.0.1"),
            ("//127.0.0.1", "//localhost"),
        ] {
            if frontend.contains(name) {
                origins.push(frontend.replacen(name, ip, 1));
            }
        }
        // The usual development servers' origins only in development: in production they would
        // let any page served on a user's machine call the API with the user's token.
        let dev_servers: &[&str] = if self.dev { &DEV_ORIGINS } else { &[] };
        for dev in dev_servers {
            if !origins.iter().any(|o| o == dev) {
                origins.push((*dev).to_owned());
            }
        }
        origins
    }

    /// Local address of the server as a [`SocketAddr`]-free description, for logs.
    pub fn describe_backends(&self) -> String {
        format!(
            "database={} redis={} mail={}",
            if self.is_postgres() {
                "postgres"
            } else {
                "sqlite"
            },
            if self.redis_url.is_some() {
                "redis"
            } else {
                "in-process"
            },
            if self.smtp_url.is_some() {
                "smtp"
            } else {
                "outbox"
            },
        )
    }
}

/// Origins of the usual frontend development servers (Angular, Live Server, React, Vite), by
/// name and by IP: allowed by default with `--dev`.
const DEV_ORIGINS: [&str; 8] = [
    "http://localhost:4200",
    "http://127.0.0.1:4200",
    "http://localhost:5500",
    "http://127.0.0.1:5500",
    "http://localhost:3000",
    "http://127.0.0.1:3000",
    "http://localhost:5173",
    "http://127.0.0.1:5173",
];

/// Address the server binds (separate from [`Settings`] because only `serve` needs it).
pub fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8000))
}
