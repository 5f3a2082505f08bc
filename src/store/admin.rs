//! Account administration: listing with search and filters, flags, and the superuser count
//! that keeps the last superuser from being removed.

use super::{Store, USER_COLUMNS, UserRecord};
use crate::{domain::UserId, error::AppResult};

/// Which accounts to list.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// Lower-case substring of the e-mail; empty for all.
    pub search: String,
    /// Only active (or inactive) accounts.
    pub is_active: Option<bool>,
    /// Only superusers (or not).
    pub is_superuser: Option<bool>,
    /// Only guests (or not).
    pub is_guest: Option<bool>,
}

impl Store {
    /// Up to `limit` accounts matching `filter` with an id above `after`, in id order.
    pub async fn list_users(
        &self,
        filter: &UserFilter,
        after: i64,
        limit: i64,
    ) -> AppResult<Vec<UserRecord>> {
        let pattern = format!(
            "%{}%",
            filter
                .search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let sql = format!(
            "SELECT {USER_COLUMNS} FROM users WHERE id > $1 AND email LIKE $2 ESCAPE '\\' \
             AND (CAST($3 AS BOOLEAN) IS NULL OR is_active = CAST($3 AS BOOLEAN)) \
             AND (CAST($4 AS BOOLEAN) IS NULL OR is_superuser = CAST($4 AS BOOLEAN)) \
             AND (CAST($5 AS BOOLEAN) IS NULL OR is_guest = CAST($5 AS BOOLEAN)) \
             ORDER BY id LIMIT $6"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, UserRecord>(sqlx::AssertSqlSafe(sql))
                .bind(after)
                .bind(&pattern)
                .bind(filter.is_active)
                .bind(filter.is_superuser)
                .bind(filter.is_guest)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Activates or deactivates an account.
    pub async fn set_user_active(&self, id: UserId, active: bool) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query("UPDATE users SET is_active = $1 WHERE id = $2")
                .bind(active)
                .bind(id)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Active superusers other than `except`.
    pub async fn other_active_superusers(&self, except: UserId) -> AppResult<i64> {
        let (n,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT COUNT(*) FROM users WHERE is_superuser AND is_active AND id <> $1",
            )
            .bind(except)
            .fetch_one(pool)
            .await?
        });
        Ok(n)
    }
}
