//! Persistence: one [`Store`] over PostgreSQL (production) or SQLite (embedded default). Both run
//! the same SQL text (`$n` placeholders and `RETURNING` work on both), compiled once per backend
//! by `on_pool!`; each backend keeps its own migrations under `migrations/`.

use std::{
    path::Path,
    str::FromStr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use anyhow::Context as _;
use sqlx::{
    Connection as _, PgPool, SqlitePool,
    postgres::{PgConnection, PgPoolOptions},
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use crate::domain::Timestamp;
use crate::{
    cache::{self, Cache},
    domain::UserId,
    error::{AppError, AppResult},
};

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    /// Bumped after every committed write that changes what cached reads show: the one place
    /// that keeps the response cache honest.
    cache: Cache,
    /// Set while the health probe finds PostgreSQL unreachable: queries then fail at once as
    /// UNAVAILABLE instead of each waiting out the pool's acquire timeout.
    unreachable: Arc<AtomicBool>,
    /// Totals and page positions of lists, per filter and order (see [`pages`]).
    pages: pages::PageIndexes,
}

/// How long a health probe waits for the database.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
enum Backend {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the concrete pool, once per backend, so the same query code
/// is type-checked against both drivers; fails at once while the database is known to be
/// unreachable (see [`Store::ping`]).
macro_rules! on_pool {
    ($self:ident, $pool:ident => $body:expr) => {{
        $self.reachable()?;
        on_any_pool!($self, $pool => $body)
    }};
}

/// [`on_pool!`] without the reachability check (the probe itself, pool statistics, closing).
macro_rules! on_any_pool {
    ($self:ident, $pool:ident => $body:expr) => {
        match &$self.backend {
            $crate::store::Backend::Postgres($pool) => $body,
            $crate::store::Backend::Sqlite($pool) => $body,
        }
    };
}

mod admin;
mod backup;
mod columns;
mod jobs;
mod listing;
mod pages;
mod sessions;
mod timestamp;
mod transcodes;
mod user_state;
mod users;
mod videos;

pub use admin::UserFilter;
pub use backup::{ExportedFavorite, ExportedProgress, ImportWrites, ImportedVideo};
pub use jobs::{ExportRow, JobRow, JobRunRow};
pub use listing::{UserStateRows, VideoFilter, VideoPage, VideoQuery};
pub use sessions::{RefreshUse, SessionRecord};
pub use transcodes::{Claim, TranscodeClaim};
pub(crate) use users::USER_COLUMNS;
pub use users::{NewUser, ProfileUpdate, UserRecord};
pub use videos::VideoRecord;

/// What a failed statement means for the caller: a unique-constraint violation becomes
/// `taken` (e-mail taken, name in use), anything else stays a database error. The one place
/// that reads constraint violations.
pub(crate) fn unique_violation(e: sqlx::Error, taken: AppError) -> AppError {
    match e {
        sqlx::Error::Database(db) if db.is_unique_violation() => taken,
        other => other.into(),
    }
}

/// Whether a statement failed on a foreign key (the row it points at is gone).
pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_foreign_key_violation())
}

impl Store {
    /// Connects to `database_url`, a `kind` database (creating the SQLite file and its folder
    /// when needed). A
    /// SQLite statement waits at most `busy_timeout` for another writer, then fails as
    /// UNAVAILABLE (503, retry), not as an internal error.
    pub async fn connect(
        kind: crate::config::DatabaseKind,
        database_url: &str,
        max_connections: u32,
        busy_timeout: Duration,
    ) -> anyhow::Result<Self> {
        let backend = if kind == crate::config::DatabaseKind::Postgres {
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect(database_url)
                .await
                .context("connecting to PostgreSQL")?;
            Backend::Postgres(pool)
        } else {
            let options = SqliteConnectOptions::from_str(database_url)
                .context("parsing the SQLite DATABASE_URL")?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(busy_timeout)
                .foreign_keys(true)
                // 512 KiB of page cache per pooled connection instead of SQLite's 2 MiB: the
                // operating system caches the file for all of them, and 16 private copies of
                // the hot pages made the server's memory grow with the catalog.
                .pragma("cache_size", "-512");
            if let Some(parent) = Path::new(options.get_filename()).parent()
                && !parent.as_os_str().is_empty()
            {
                tokio::fs::create_dir_all(parent)
                    .await
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(options)
                .await
                .context("opening the SQLite database")?;
            Backend::Sqlite(pool)
        };
        Ok(Self {
            backend,
            cache: Cache::disabled(),
            unreachable: Arc::new(AtomicBool::new(false)),
            pages: pages::PageIndexes::new(),
        })
    }

    /// This store, invalidating `cache` after each write: catalog writes (videos, their media,
    /// uploaders' profiles, imports) bump the shared catalog scope, a user's favorites and
    /// progress that user's scope.
    pub fn with_cache(mut self, cache: Cache) -> Self {
        self.cache = cache;
        self
    }

    /// After a committed write to anything a video list shows.
    async fn catalog_changed(&self) {
        self.cache.invalidate(cache::CATALOG).await;
    }

    /// After a committed write to `user`'s favorites or progress.
    async fn user_state_changed(&self, user: UserId) {
        self.cache.invalidate(&cache::user_scope(user)).await;
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
            Backend::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
        }
        let folded = self.fold_search_columns().await?;
        if folded > 0 {
            tracing::info!(videos = folded, "search text folded");
        }
        Ok(())
    }

    /// Name of the backend, for logs and readiness output.
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Postgres(_) => "postgres",
            Backend::Sqlite(_) => "sqlite",
        }
    }

    /// Connections of the pool: (open, idle).
    pub fn pool_stats(&self) -> (u32, u32) {
        on_any_pool!(self, pool => (pool.size(), u32::try_from(pool.num_idle()).unwrap_or(u32::MAX)))
    }

    /// Round trip to the database (readiness, the health watcher). PostgreSQL counts as
    /// unreachable when neither the pool nor a new connection answers within a second (a pool
    /// that is merely busy is not down); until a probe succeeds again, queries fail at once.
    pub async fn ping(&self) -> AppResult<()> {
        let via_pool = tokio::time::timeout(PROBE_TIMEOUT, async {
            on_any_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(drop))
        })
        .await;
        let error = match via_pool {
            Ok(Ok(())) => {
                self.unreachable.store(false, Ordering::Relaxed);
                return Ok(());
            }
            Ok(Err(e)) => AppError::from(e),
            Err(_) => AppError::Unavailable("database: no answer within a second".into()),
        };
        if let Backend::Postgres(pool) = &self.backend {
            let direct = tokio::time::timeout(
                PROBE_TIMEOUT,
                PgConnection::connect_with(&pool.connect_options()),
            )
            .await;
            let answers = match direct {
                Ok(Ok(connection)) => {
                    let _ = connection.close().await;
                    true
                }
                _ => false,
            };
            self.unreachable.store(!answers, Ordering::Relaxed);
        }
        Err(error)
    }

    /// Fails while the last probe found the database unreachable.
    fn reachable(&self) -> AppResult<()> {
        if self.unreachable.load(Ordering::Relaxed) {
            return Err(AppError::Unavailable(
                "database: unreachable (health probe)".into(),
            ));
        }
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        on_any_pool!(self, pool => pool.close().await);
    }
}
