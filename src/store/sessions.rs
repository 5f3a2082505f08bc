//! Login sessions and their rotating refresh tokens.

use super::{Store, Timestamp, UserRecord};
use crate::{domain::UserId, error::AppResult};

/// A login session (a refresh-token family).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRecord {
    /// Random id, carried in access tokens as `sid`.
    pub id: String,
    /// Owner.
    pub user_id: UserId,
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

impl Store {
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
