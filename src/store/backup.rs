//! Export reads (in id order, one batch at a time, so a large catalog is never held at once)
//! and the import's single transaction.

use std::sync::LazyLock;

use super::{Backend, Store, Timestamp, USER_COLUMNS, UserRecord, VideoRecord, videos};
use crate::{
    domain::{Rung, UserId, VideoId},
    error::AppResult,
};

/// A favorite as exported.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ExportedFavorite {
    /// Account.
    pub user_id: UserId,
    /// Video.
    pub video_id: VideoId,
    /// When it was marked.
    pub created_at: Timestamp,
}

/// Watch progress as exported.
#[derive(Clone, Debug, PartialEq, sqlx::FromRow)]
pub struct ExportedProgress {
    /// Account.
    pub user_id: UserId,
    /// Video.
    pub video_id: VideoId,
    /// Seconds watched.
    pub position: f64,
    /// Last update.
    pub updated_at: Timestamp,
}

/// A video to write as it stands in an import (validated by the caller).
#[derive(Clone, Debug)]
pub struct ImportedVideo {
    /// Every exported column, as a stored record (uploader contact fields unused).
    pub record: VideoRecord,
    /// Folded title and description ([`crate::domain::VideoMeta::search_text`]).
    pub search_text: String,
    /// Folded title.
    pub search_title: String,
}

/// Everything one import writes, in one transaction.
#[derive(Clone, Debug, Default)]
pub struct ImportWrites {
    /// Accounts to insert or replace (by id).
    pub users: Vec<UserRecord>,
    /// Videos to insert or replace (by id).
    pub videos: Vec<ImportedVideo>,
    /// Favorites to insert or replace.
    pub favorites: Vec<ExportedFavorite>,
    /// Progress to insert or replace.
    pub progress: Vec<ExportedProgress>,
}

/// The columns an import writes, the rungs' files last.
fn import_columns() -> Vec<&'static str> {
    let mut columns = vec![
        "id",
        "title",
        "description",
        "author",
        "genre",
        "language",
        "uploaded_by",
        "uploaded_at",
        "updated_at",
        "duration",
        "status",
        "status_reason",
        "search_text",
        "search_title",
    ];
    columns.extend(videos::media_columns());
    columns
}

/// Insert-or-replace of one video with every [`import_columns`] column.
static IMPORT_VIDEO_SQL: LazyLock<String> = LazyLock::new(|| {
    let columns = import_columns();
    let params: Vec<String> = (1..=columns.len()).map(|i| format!("${i}")).collect();
    let updates: Vec<String> = columns
        .iter()
        .skip(1)
        .map(|c| format!("{c} = excluded.{c}"))
        .collect();
    format!(
        "INSERT INTO videos ({}) VALUES ({}) ON CONFLICT (id) DO UPDATE SET {}, \
         claim_token = '', claimed_at = NULL",
        columns.join(", "),
        params.join(", "),
        updates.join(", ")
    )
});

impl Store {
    /// Up to `limit` videos with an id above `after`, in id order.
    pub async fn videos_after(
        &self,
        after: Option<VideoId>,
        limit: i64,
    ) -> AppResult<Vec<VideoRecord>> {
        let sql = format!(
            "{} WHERE v.id > $1 ORDER BY v.id LIMIT $2",
            *videos::VIDEO_SELECT
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, VideoRecord>(sqlx::AssertSqlSafe(sql))
                .bind(after.map_or(0, VideoId::get))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Up to `limit` accounts with an id above `after`, in id order.
    pub async fn users_after(
        &self,
        after: Option<UserId>,
        limit: i64,
    ) -> AppResult<Vec<UserRecord>> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id > $1 ORDER BY id LIMIT $2");
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, UserRecord>(sqlx::AssertSqlSafe(sql))
                .bind(after.map_or(0, UserId::get))
                .bind(limit)
                .fetch_all(pool)
                .await?
        }))
    }

    /// Up to `limit` favorites after the key `after` (user, video), in key order.
    pub async fn favorites_after(
        &self,
        after: Option<(UserId, VideoId)>,
        limit: i64,
    ) -> AppResult<Vec<ExportedFavorite>> {
        let after = after.map_or((0, 0), |(u, v)| (u.get(), v.get()));
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, ExportedFavorite>(
                "SELECT user_id, video_id, created_at FROM favorites \
                 WHERE user_id > $1 OR (user_id = $1 AND video_id > $2) \
                 ORDER BY user_id, video_id LIMIT $3",
            )
            .bind(after.0)
            .bind(after.1)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Up to `limit` progress rows after the key `after` (user, video), in key order.
    pub async fn progress_after(
        &self,
        after: Option<(UserId, VideoId)>,
        limit: i64,
    ) -> AppResult<Vec<ExportedProgress>> {
        let after = after.map_or((0, 0), |(u, v)| (u.get(), v.get()));
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, ExportedProgress>(
                "SELECT user_id, video_id, position, updated_at FROM watch_progress \
                 WHERE user_id > $1 OR (user_id = $1 AND video_id > $2) \
                 ORDER BY user_id, video_id LIMIT $3",
            )
            .bind(after.0)
            .bind(after.1)
            .bind(limit)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Writes an import in one transaction (all of it or none), then moves the id sequences
    /// past the highest ids so new rows never collide with imported ones.
    pub async fn apply_import(&self, writes: &ImportWrites) -> AppResult<()> {
        // Accounts before videos and videos before favorites and progress: rows point at them.
        let mut tx = ImportTx::begin(&self.backend).await?;
        tx.upsert_users(&writes.users).await?;
        tx.upsert_videos(&writes.videos).await?;
        tx.upsert_favorites(&writes.favorites).await?;
        tx.upsert_progress(&writes.progress).await?;
        tx.advance_id_sequences().await?;
        tx.commit().await?;
        self.catalog_changed().await;
        Ok(())
    }
}

/// The import's open transaction on the store's backend; dropped uncommitted, it rolls back.
enum ImportTx {
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection, once per backend (as
/// `on_pool!` does with pools), so each write is type-checked against both drivers.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match $tx {
            ImportTx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
            ImportTx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

impl ImportTx {
    async fn begin(backend: &Backend) -> AppResult<Self> {
        Ok(match backend {
            Backend::Postgres(pool) => Self::Postgres(pool.begin().await?),
            Backend::Sqlite(pool) => Self::Sqlite(pool.begin().await?),
        })
    }

    async fn commit(self) -> AppResult<()> {
        match self {
            Self::Postgres(tx) => tx.commit().await?,
            Self::Sqlite(tx) => tx.commit().await?,
        }
        Ok(())
    }

    /// Inserts the accounts, or replaces every column of those whose id exists.
    async fn upsert_users(&mut self, users: &[UserRecord]) -> AppResult<()> {
        let sql = format!(
            "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET email = excluded.email, \
             password_hash = excluded.password_hash, is_active = excluded.is_active, \
             is_superuser = excluded.is_superuser, is_guest = excluded.is_guest, \
             phone = excluded.phone, address = excluded.address, \
             created_at = excluded.created_at, last_login = excluded.last_login"
        );
        on_tx!(self, conn => {
            for u in users {
                sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
                    .bind(u.id)
                    .bind(&u.email)
                    .bind(&u.password_hash)
                    .bind(u.is_active)
                    .bind(u.is_superuser)
                    .bind(u.is_guest)
                    .bind(&u.phone)
                    .bind(&u.address)
                    .bind(u.created_at)
                    .bind(u.last_login)
                    .execute(&mut *conn)
                    .await?;
            }
        });
        Ok(())
    }

    /// Inserts the videos, or replaces those whose id exists ([`IMPORT_VIDEO_SQL`]).
    async fn upsert_videos(&mut self, videos: &[ImportedVideo]) -> AppResult<()> {
        on_tx!(self, conn => {
            for v in videos {
                let r = &v.record;
                let m = &r.media;
                let mut query = sqlx::query(sqlx::AssertSqlSafe(IMPORT_VIDEO_SQL.as_str()))
                    .bind(r.id)
                    .bind(&r.title)
                    .bind(&r.description)
                    .bind(&r.author)
                    .bind(r.genre)
                    .bind(r.language)
                    .bind(r.uploaded_by)
                    .bind(r.uploaded_at)
                    .bind(r.updated_at)
                    .bind(r.duration)
                    .bind(r.status)
                    .bind(&r.status_reason)
                    .bind(&v.search_text)
                    .bind(&v.search_title)
                    .bind(&m.video_file)
                    .bind(&m.poster)
                    .bind(&m.vtt_file)
                    .bind(&m.hls)
                    .bind(m.renditions.to_json());
                for rung in Rung::ALL {
                    query = query.bind(m.rungs.get(*rung));
                }
                query.execute(&mut *conn).await?;
            }
        });
        Ok(())
    }

    /// Inserts the favorites, or replaces the time of those already marked.
    async fn upsert_favorites(&mut self, favorites: &[ExportedFavorite]) -> AppResult<()> {
        on_tx!(self, conn => {
            for f in favorites {
                sqlx::query(
                    "INSERT INTO favorites (user_id, video_id, created_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (user_id, video_id) DO UPDATE SET created_at = excluded.created_at",
                )
                .bind(f.user_id)
                .bind(f.video_id)
                .bind(f.created_at)
                .execute(&mut *conn)
                .await?;
            }
        });
        Ok(())
    }

    /// Inserts the watch progress, or replaces the rows of the same account and video.
    async fn upsert_progress(&mut self, progress: &[ExportedProgress]) -> AppResult<()> {
        on_tx!(self, conn => {
            for p in progress {
                sqlx::query(
                    "INSERT INTO watch_progress (user_id, video_id, position, updated_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, video_id) DO UPDATE SET \
                     position = excluded.position, updated_at = excluded.updated_at",
                )
                .bind(p.user_id)
                .bind(p.video_id)
                .bind(p.position)
                .bind(p.updated_at)
                .execute(&mut *conn)
                .await?;
            }
        });
        Ok(())
    }

    /// Moves PostgreSQL's id sequences past the highest ids, explicit ids having bypassed them.
    async fn advance_id_sequences(&mut self) -> AppResult<()> {
        // SQLite's AUTOINCREMENT already moved past explicit ids.
        if let Self::Postgres(tx) = self {
            for table in ["users", "videos"] {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), \
                     COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) FROM {table}"
                );
                sqlx::query(sqlx::AssertSqlSafe(sql))
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }
}
