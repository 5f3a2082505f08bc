//! Persistence: one [`Store`] over PostgreSQL (production) or SQLite (embedded default). Both run
//! the same SQL text (`$n` placeholders and `RETURNING` work on both), compiled once per backend
//! by [`on_pool!`]; each backend keeps its own migrations under `migrations/`.

use std::{path::Path, str::FromStr, time::Duration};

use anyhow::Context as _;
use sqlx::{
    PgPool, SqlitePool,
    postgres::PgPoolOptions,
    sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

pub use timestamp::Timestamp;

use crate::{
    domain::{Email, UserId},
    error::{AppError, AppResult},
};

/// Handle to the database; cheap to clone.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

#[derive(Clone)]
enum Backend {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// Runs `$body` with `$pool` bound to the concrete pool, once per backend, so the same query code
/// is type-checked against both drivers.
macro_rules! on_pool {
    ($self:ident, $pool:ident => $body:expr) => {
        match &$self.backend {
            Backend::Postgres($pool) => $body,
            Backend::Sqlite($pool) => $body,
        }
    };
}

mod admin;
mod backup;
mod jobs;
mod renditions;
mod timestamp;
mod videos;

pub use admin::UserFilter;
pub use backup::{ExportedFavorite, ExportedProgress, ImportWrites, ImportedVideo};
pub use jobs::{ExportRow, JobRow, JobRunRow};

pub use renditions::{Renditions, StoredRendition};

pub use videos::{
    Claim, MediaPaths, TranscodeClaim, UserStateRows, VideoFilter, VideoPage, VideoQuery,
    VideoRecord,
};

/// A stored account.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRecord {
    /// Primary key.
    pub id: i64,
    /// Normalised e-mail.
    pub email: String,
    /// Argon2id PHC string; empty when the account has no usable password.
    pub password_hash: String,
    /// Whether the account was activated.
    pub is_active: bool,
    /// Administrator flag.
    pub is_superuser: bool,
    /// Temporary demo account.
    pub is_guest: bool,
    /// Free-text phone number.
    pub phone: String,
    /// Free-text address.
    pub address: String,
    /// When the account was created.
    pub created_at: Timestamp,
    /// Last successful login.
    pub last_login: Option<Timestamp>,
}

impl UserRecord {
    /// The typed id.
    pub fn user_id(&self) -> UserId {
        UserId(self.id)
    }
}

/// A login session (a refresh-token family).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRecord {
    /// Random id, carried in access tokens as `sid`.
    pub id: String,
    /// Owner.
    pub user_id: i64,
    /// Start of the session.
    pub created_at: Timestamp,
    /// End of the session (refresh tokens die with it).
    pub expires_at: Timestamp,
    /// Set when revoked (logout, refresh-token reuse, password change).
    pub revoked_at: Option<Timestamp>,
}

impl SessionRecord {
    /// Whether the session can still be used at `now`.
    pub fn is_alive(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at > now
    }
}

/// Outcome of presenting a refresh token.
#[derive(Debug)]
pub enum RefreshUse {
    /// First use: the token is now spent; here is its session.
    Fresh(SessionRecord),
    /// The token had been used before: a sign of theft. This session has been revoked.
    Reused(String),
    /// No such token.
    Unknown,
}

/// Fields a user may change on their own profile.
#[derive(Clone, Debug, Default)]
pub struct ProfileUpdate {
    /// New phone, if given.
    pub phone: Option<String>,
    /// New address, if given.
    pub address: Option<String>,
}

/// A new account.
#[derive(Clone, Debug)]
pub struct NewUser<'a> {
    /// Normalised e-mail.
    pub email: &'a Email,
    /// PHC string or empty.
    pub password_hash: &'a str,
    /// Active from the start (superusers, guests).
    pub is_active: bool,
    /// Administrator.
    pub is_superuser: bool,
    /// Demo account.
    pub is_guest: bool,
}

const USER_COLUMNS: &str = "id, email, password_hash, is_active, is_superuser, is_guest, phone, \
                            address, created_at, last_login";

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
                .foreign_keys(true);
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
        Ok(Self { backend })
    }

    /// Applies pending migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.backend {
            Backend::Postgres(pool) => sqlx::migrate!("migrations/postgres").run(pool).await?,
            Backend::Sqlite(pool) => sqlx::migrate!("migrations/sqlite").run(pool).await?,
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

    /// Round trip to the database (readiness).
    pub async fn ping(&self) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query("SELECT 1").execute(pool).await?;
        });
        Ok(())
    }

    /// Closes every connection.
    pub async fn close(&self) {
        on_pool!(self, pool => pool.close().await);
    }

    // ---- users -------------------------------------------------------------------------------

    /// Inserts a user; [`AppError::EmailTaken`] if the e-mail exists.
    pub async fn create_user(&self, new: NewUser<'_>) -> AppResult<UserRecord> {
        let sql = format!(
            "INSERT INTO users (email, password_hash, is_active, is_superuser, is_guest, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {USER_COLUMNS}"
        );
        let result = on_pool!(self, pool => {
            sqlx::query_as::<_, UserRecord>(sqlx::AssertSqlSafe(sql))
                .bind(new.email.as_str())
                .bind(new.password_hash)
                .bind(new.is_active)
                .bind(new.is_superuser)
                .bind(new.is_guest)
                .bind(Timestamp::now())
                .fetch_one(pool)
                .await
        });
        result.map_err(|e| match e {
            sqlx::Error::Database(db) if db.is_unique_violation() => AppError::EmailTaken,
            other => other.into(),
        })
    }

    /// The user with this e-mail.
    pub async fn user_by_email(&self, email: &Email) -> AppResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, UserRecord>(sqlx::AssertSqlSafe(sql))
                .bind(email.as_str())
                .fetch_optional(pool)
                .await?
        }))
    }

    /// The user with this id.
    pub async fn user_by_id(&self, id: UserId) -> AppResult<Option<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, UserRecord>(sqlx::AssertSqlSafe(sql))
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Activates an inactive user; false if it was already active or does not exist.
    pub async fn activate_user(&self, id: UserId) -> AppResult<bool> {
        let done = on_pool!(self, pool => {
            sqlx::query("UPDATE users SET is_active = TRUE WHERE id = $1 AND NOT is_active")
                .bind(id.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done == 1)
    }

    /// Replaces the password hash, guarded by the hash the caller saw (so a reset link can be
    /// used once even when two requests race), and revokes every session of the user.
    pub async fn change_password(
        &self,
        id: UserId,
        expected_hash: &str,
        new_hash: &str,
    ) -> AppResult<bool> {
        let now = Timestamp::now();
        let changed = on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let changed = sqlx::query(
                "UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = $3",
            )
            .bind(new_hash)
            .bind(id.0)
            .bind(expected_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(id.0)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            changed
        });
        Ok(changed == 1)
    }

    /// Sets a user's password without conditions (administration commands).
    pub async fn set_password(&self, id: UserId, hash: &str) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
                .bind(hash)
                .bind(id.0)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Grants or removes administrator rights and activates the account.
    pub async fn set_superuser(&self, id: UserId, superuser: bool) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE users SET is_superuser = $1, is_active = TRUE WHERE id = $2")
                .bind(superuser)
                .bind(id.0)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records a successful login.
    pub async fn touch_last_login(&self, id: UserId) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE users SET last_login = $1 WHERE id = $2")
                .bind(Timestamp::now())
                .bind(id.0)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Updates the fields that are `Some` and returns the user.
    pub async fn update_profile(
        &self,
        id: UserId,
        update: &ProfileUpdate,
    ) -> AppResult<Option<UserRecord>> {
        let sql = format!(
            "UPDATE users SET phone = COALESCE($1, phone), address = COALESCE($2, address) \
             WHERE id = $3 RETURNING {USER_COLUMNS}"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, UserRecord>(sqlx::AssertSqlSafe(sql))
                .bind(update.phone.as_deref())
                .bind(update.address.as_deref())
                .bind(id.0)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Deletes a user (sessions and tokens go with it).
    pub async fn delete_user(&self, id: UserId) -> AppResult<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id.0)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    /// Deletes guest accounts created before `cutoff`; returns how many.
    pub async fn purge_guests(&self, cutoff: Timestamp) -> AppResult<u64> {
        Ok(on_pool!(self, pool => {
            sqlx::query("DELETE FROM users WHERE is_guest AND created_at < $1")
                .bind(cutoff)
                .execute(pool)
                .await?
                .rows_affected()
        }))
    }

    // ---- sessions ----------------------------------------------------------------------------

    /// Starts a session with its first refresh token. With `password_hash`, only if the user's
    /// password hash is still that one (checked in the same statement); returns whether the
    /// session was created.
    pub async fn create_session(
        &self,
        session: &SessionRecord,
        refresh_hash: &str,
        password_hash: Option<&str>,
    ) -> AppResult<bool> {
        Ok(on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let created = sqlx::query(
                "INSERT INTO sessions (id, user_id, created_at, expires_at) \
                 SELECT $1, $2, $3, $4 WHERE EXISTS \
                 (SELECT 1 FROM users WHERE id = $2 AND ($5 IS NULL OR password_hash = $5))",
            )
            .bind(&session.id)
            .bind(session.user_id)
            .bind(session.created_at)
            .bind(session.expires_at)
            .bind(password_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if created == 1 {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, session_id, created_at) \
                     VALUES ($1, $2, $3)",
                )
                .bind(refresh_hash)
                .bind(&session.id)
                .bind(session.created_at)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            created == 1
        }))
    }

    /// The session with this id.
    pub async fn session(&self, id: &str) -> AppResult<Option<SessionRecord>> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, SessionRecord>(
                "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions WHERE id = $1",
            )
            .bind(id)
            .fetch_optional(pool)
            .await?
        }))
    }

    /// A session and its user in one round trip (checked on every authenticated request).
    pub async fn session_with_user(
        &self,
        id: &str,
    ) -> AppResult<Option<(SessionRecord, UserRecord)>> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            user: UserRecord,
            session_created_at: Timestamp,
            expires_at: Timestamp,
            revoked_at: Option<Timestamp>,
        }
        let sql = "SELECT u.id, u.email, u.password_hash, u.is_active, u.is_superuser, u.is_guest, \
                   u.phone, u.address, u.created_at, u.last_login, \
                   s.created_at AS session_created_at, s.expires_at, s.revoked_at \
                   FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1";
        let row = on_pool!(self, pool => {
            sqlx::query_as::<_, Row>(sql).bind(id).fetch_optional(pool).await?
        });
        Ok(row.map(|r| {
            (
                SessionRecord {
                    id: id.to_owned(),
                    user_id: r.user.id,
                    created_at: r.session_created_at,
                    expires_at: r.expires_at,
                    revoked_at: r.revoked_at,
                },
                r.user,
            )
        }))
    }

    /// Revokes one session.
    pub async fn revoke_session(&self, id: &str) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(Timestamp::now())
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Spends a refresh token and stores its successor in the same session, atomically. A token
    /// presented twice revokes its session (RFC 6819 §5.2.2.3 refresh-token rotation).
    pub async fn rotate_refresh(&self, old_hash: &str, new_hash: &str) -> AppResult<RefreshUse> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let spent: Option<(String,)> = sqlx::query_as(
                "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL \
                 RETURNING session_id",
            )
            .bind(now)
            .bind(old_hash)
            .fetch_optional(&mut *tx)
            .await?;
            let outcome = match spent {
                Some((session_id,)) => {
                    let session = sqlx::query_as::<_, SessionRecord>(
                        "SELECT id, user_id, created_at, expires_at, revoked_at FROM sessions \
                         WHERE id = $1",
                    )
                    .bind(&session_id)
                    .fetch_one(&mut *tx)
                    .await?;
                    if session.is_alive(now) {
                        sqlx::query(
                            "INSERT INTO refresh_tokens (token_hash, session_id, created_at) \
                             VALUES ($1, $2, $3)",
                        )
                        .bind(new_hash)
                        .bind(&session_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    RefreshUse::Fresh(session)
                }
                None => {
                    let reused: Option<(String,)> = sqlx::query_as(
                        "SELECT session_id FROM refresh_tokens WHERE token_hash = $1",
                    )
                    .bind(old_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                    match reused {
                        Some((session_id,)) => {
                            sqlx::query(
                                "UPDATE sessions SET revoked_at = $1 WHERE id = $2 \
                                 AND revoked_at IS NULL",
                            )
                            .bind(now)
                            .bind(&session_id)
                            .execute(&mut *tx)
                            .await?;
                            RefreshUse::Reused(session_id)
                        }
                        None => RefreshUse::Unknown,
                    }
                }
            };
            tx.commit().await?;
            Ok(outcome)
        })
    }
}
