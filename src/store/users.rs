//! Accounts.

use super::{Store, Timestamp};
use crate::{
    domain::{Email, UserId},
    error::{AppError, AppResult},
};

/// A stored account.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct UserRecord {
    /// Primary key.
    pub id: UserId,
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
        self.id
    }
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

pub(crate) const USER_COLUMNS: &str = "id, email, password_hash, is_active, is_superuser, is_guest, phone, \
                            address, created_at, last_login";

impl Store {
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
        result.map_err(|e| super::unique_violation(e, AppError::EmailTaken))
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
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Activates an inactive user; false if it was already active or does not exist.
    pub async fn activate_user(&self, id: UserId) -> AppResult<bool> {
        let done = on_pool!(self, pool => {
            sqlx::query("UPDATE users SET is_active = TRUE WHERE id = $1 AND NOT is_active")
                .bind(id)
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
            .bind(id)
            .bind(expected_hash)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 1 {
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
                )
                .bind(now)
                .bind(id)
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
                .bind(id)
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
                .bind(id)
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
                .bind(id)
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
        let user = on_pool!(self, pool => {
            sqlx::query_as::<_, UserRecord>(sqlx::AssertSqlSafe(sql))
                .bind(update.phone.as_deref())
                .bind(update.address.as_deref())
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        if user.is_some() {
            // Videos show their uploader's profile.
            self.catalog_changed().await;
        }
        Ok(user)
    }

    /// Deletes a user (sessions and tokens go with it).
    pub async fn delete_user(&self, id: UserId) -> AppResult<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM users WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 1 {
            // Their videos lose their uploader.
            self.catalog_changed().await;
        }
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
}
