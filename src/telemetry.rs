//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as text or, with
//! `LOG_FORMAT=json`, one JSON object per line (with the request's and job's span fields).

use tracing_subscriber::{EnvFilter, fmt};

/// How log lines are written (`LOG_FORMAT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable text (the default).
    Pretty,
    /// One JSON object per line, for a log collector.
    Json,
}

impl LogFormat {
    /// `LOG_FORMAT` from the environment: `json` or `pretty` (default); anything else is an
    /// error named by the caller.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("LOG_FORMAT").as_deref() {
            Err(_) | Ok("" | "pretty" | "text") => Ok(Self::Pretty),
            Ok("json") => Ok(Self::Json),
            Ok(other) => Err(format!("LOG_FORMAT must be json or pretty, not {other:?}")),
        }
    }
}

/// Installs the global subscriber once; later calls are no-ops (tests call it per app).
pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,h2=warn,hyper=warn,tower=warn"));
    let format = LogFormat::from_env().unwrap_or_else(|e| {
        eprintln!("warning: {e}; writing text");
        LogFormat::Pretty
    });
    let builder = fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Pretty => builder.try_init(),
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
    };
}
