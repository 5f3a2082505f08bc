//! Videos, favorites and watch progress.

use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use sqlx::{FromRow, Row};

use super::{Backend, Store};
use crate::{
    domain::{
        Genre, Language, Media, Renditions, Rung, RungFiles, Timestamp, UserId, VideoId, VideoMeta,
        VideoStatus,
    },
    error::AppResult,
};

/// A stored video with its uploader.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct VideoRecord {
    /// Primary key.
    pub id: VideoId,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Author.
    pub author: String,
    /// Genre, if any.
    pub genre: Option<Genre>,
    /// Language, if any.
    pub language: Option<Language>,
    /// Uploader (None once the uploader's account is gone).
    pub uploaded_by: Option<UserId>,
    /// Uploader e-mail.
    pub uploader_email: Option<String>,
    /// Uploader phone.
    pub uploader_phone: Option<String>,
    /// Uploader address.
    pub uploader_address: Option<String>,
    /// Upload time.
    pub uploaded_at: Timestamp,
    /// Last change.
    pub updated_at: Timestamp,
    /// Duration in seconds (0 until probed).
    pub duration: f64,
    /// Processing status.
    pub status: VideoStatus,
    /// Failure reason.
    pub status_reason: String,
    /// The video's files.
    #[sqlx(flatten)]
    pub media: Media,
}

/// The media columns, in one list generated from [`Rung::ALL`].
pub(super) fn media_columns() -> Vec<&'static str> {
    let mut columns = vec!["video_file", "poster", "vtt_file", "hls", "renditions"];
    columns.extend(Rung::ALL.iter().map(|rung| rung.column()));
    columns
}

impl<'r, R: Row> FromRow<'r, R> for Media
where
    &'r str: sqlx::ColumnIndex<R>,
    String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let mut rungs = RungFiles::default();
        for rung in Rung::ALL {
            rungs.set(*rung, row.try_get(rung.column())?);
        }
        let renditions: String = row.try_get("renditions")?;
        Ok(Self {
            video_file: row.try_get("video_file")?,
            poster: row.try_get("poster")?,
            vtt_file: row.try_get("vtt_file")?,
            hls: row.try_get("hls")?,
            rungs,
            renditions: Renditions::try_from(renditions).map_err(|e| {
                sqlx::Error::ColumnDecode {
                    index: "renditions".to_owned(),
                    source: e.into(),
                }
            })?,
        })
    }
}

/// Every [`VideoRecord`] column, as a `SELECT` list over `videos v` and `users u`.
pub(super) static VIDEO_COLUMNS: LazyLock<String> = LazyLock::new(|| {
    let media: Vec<String> = media_columns().iter().map(|c| format!("v.{c}")).collect();
    format!(
        "v.id, v.title, v.description, v.author, v.genre, v.language, v.uploaded_by, \
         u.email AS uploader_email, u.phone AS uploader_phone, u.address AS uploader_address, \
         v.uploaded_at, v.updated_at, v.duration, v.status, v.status_reason, {}",
        media.join(", ")
    )
});

/// What [`VIDEO_COLUMNS`] selects from.
pub(super) const VIDEO_FROM: &str = "FROM videos v LEFT JOIN users u ON u.id = v.uploaded_by";

/// `SELECT` of every [`VideoRecord`] column.
pub(super) static VIDEO_SELECT: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {} {VIDEO_FROM}", *VIDEO_COLUMNS));

/// Every column of [`VIDEO_SELECT`] as one JSON object (SQLite), shaped as [`VideoRecord`]'s
/// serde form (the files nested under `media`, the rungs' under `rungs`: nested, not flattened,
/// as serde reads a flattened struct through a buffered copy of every field); timestamps are
/// integer micros in both.
static VIDEO_JSON: LazyLock<String> = LazyLock::new(|| {
    let rungs: Vec<String> = Rung::ALL
        .iter()
        .map(|rung| format!("'{}', r.{}", rung.as_str(), rung.column()))
        .collect();
    format!(
        "json_object('id', r.id, 'title', r.title, 'description', r.description, \
         'author', r.author, 'genre', r.genre, 'language', r.language, \
         'uploaded_by', r.uploaded_by, 'uploader_email', r.uploader_email, \
         'uploader_phone', r.uploader_phone, 'uploader_address', r.uploader_address, \
         'uploaded_at', r.uploaded_at, 'updated_at', r.updated_at, 'duration', r.duration, \
         'status', r.status, 'status_reason', r.status_reason, 'media', json_object( \
           'video_file', r.video_file, 'poster', r.poster, 'vtt_file', r.vtt_file, \
           'hls', r.hls, 'renditions', r.renditions, 'rungs', json_object({})))",
        rungs.join(", ")
    )
});

/// SQLite: `sql` (a [`VIDEO_SELECT`] ordered by `order`, over columns of its output) as one row
/// holding a JSON array. sqlx runs every SQLite connection on its own thread and hands each row,
/// with a copy of each value, to the async side one at a time; for a page of 50 videos those
/// hand-offs (thread wake-ups, cross-thread frees) cost more than the query itself.
async fn sqlite_videos<'q>(
    pool: &sqlx::SqlitePool,
    query: sqlx::query::QueryAs<'q, sqlx::Sqlite, (String,), sqlx::sqlite::SqliteArguments>,
) -> AppResult<Vec<VideoRecord>> {
    let (json,) = query.fetch_one(pool).await?;
    from_json(&json)
}

pub(super) fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> AppResult<T> {
    serde_json::from_str(json).map_err(|e| {
        crate::error::AppError::Internal(anyhow::Error::new(e).context("decoding SQLite JSON"))
    })
}

/// Wraps `sql` for [`sqlite_videos`]; `order` is its ORDER BY over output columns.
pub(super) fn sqlite_json(sql: &str, order: &str) -> String {
    format!(
        "SELECT json_group_array({} ORDER BY {order}) FROM ({sql}) AS r",
        *VIDEO_JSON
    )
}

impl Store {
    /// Every video with a genre, newest first (for the categorized view).
    pub async fn videos_with_genre(&self) -> AppResult<Vec<VideoRecord>> {
        let sql = format!(
            "{} WHERE v.genre IS NOT NULL ORDER BY v.uploaded_at DESC, v.id DESC",
            *VIDEO_SELECT
        );
        match &self.backend {
            Backend::Postgres(pool) => Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .fetch_all(pool)
                .await?),
            Backend::Sqlite(pool) => {
                let sql = sqlite_json(&sql, "uploaded_at DESC, id DESC");
                sqlite_videos(pool, sqlx::query_as(sqlx::AssertSqlSafe(sql))).await
            }
        }
    }

    /// The `limit` newest videos, without `exclude`.
    pub async fn recent_videos(
        &self,
        exclude: Option<VideoId>,
        limit: i64,
    ) -> AppResult<Vec<VideoRecord>> {
        let sql = format!(
            "{} WHERE v.id <> $1 ORDER BY v.uploaded_at DESC, v.id DESC LIMIT {limit}",
            *VIDEO_SELECT
        );
        let exclude = exclude.map_or(-1, VideoId::get);
        match &self.backend {
            Backend::Postgres(pool) => Ok(sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(exclude)
                .fetch_all(pool)
                .await?),
            Backend::Sqlite(pool) => {
                let sql = sqlite_json(&sql, "uploaded_at DESC, id DESC");
                let query = sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(exclude);
                sqlite_videos(pool, query).await
            }
        }
    }

    /// One video.
    pub async fn video(&self, id: VideoId) -> AppResult<Option<VideoRecord>> {
        let sql = format!("{} WHERE v.id = $1", *VIDEO_SELECT);
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, VideoRecord>(sqlx::AssertSqlSafe(sql))
                .bind(id)
                .fetch_optional(pool)
                .await?
        }))
    }

    /// Inserts a video (status pending, no media) and returns it.
    pub async fn create_video(
        &self,
        meta: &VideoMeta,
        uploaded_by: UserId,
    ) -> AppResult<VideoRecord> {
        let now = Timestamp::now();
        let (id,): (VideoId,) = on_pool!(self, pool => {
            sqlx::query_as(
                "INSERT INTO videos (title, description, author, genre, language, uploaded_by, \
                 uploaded_at, updated_at, search_text, search_title) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9) \
                 RETURNING id",
            )
            .bind(&meta.title)
            .bind(&meta.description)
            .bind(&meta.author)
            .bind(meta.genre)
            .bind(meta.language)
            .bind(uploaded_by)
            .bind(now)
            .bind(meta.search_text())
            .bind(meta.search_title())
            .fetch_one(pool)
            .await?
        });
        self.catalog_changed().await;
        self.video(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("video {id} vanished after insert").into())
    }

    /// Replaces the metadata of a video if its `updated_at` is still `seen` (the row as the
    /// caller read it); None when it changed meanwhile or is gone.
    pub async fn update_video(
        &self,
        id: VideoId,
        meta: &VideoMeta,
        seen: Timestamp,
    ) -> AppResult<Option<VideoRecord>> {
        let changed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE videos SET title = $1, description = $2, author = $3, genre = $4, \
                 language = $5, search_text = $6, search_title = $7, updated_at = $8 \
                 WHERE id = $9 AND updated_at = $10",
            )
            .bind(&meta.title)
            .bind(&meta.description)
            .bind(&meta.author)
            .bind(meta.genre)
            .bind(meta.language)
            .bind(meta.search_text())
            .bind(meta.search_title())
            .bind(Timestamp::now().max(seen.plus_micros(1)))
            .bind(id)
            .bind(seen)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Ok(None);
        }
        self.catalog_changed().await;
        self.video(id).await
    }

    /// Deletes a video (favorites and progress go with it); false if it did not exist.
    pub async fn delete_video(&self, id: VideoId) -> AppResult<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM videos WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        if n == 1 {
            self.catalog_changed().await;
        }
        Ok(n == 1)
    }
}

impl Store {
    /// Folds the search columns of rows written before they were folded (those whose
    /// `search_title` is empty; every title has a character), a batch at a time. Run after the
    /// migrations; rows already folded are not touched.
    pub(super) async fn fold_search_columns(&self) -> AppResult<usize> {
        let mut after = 0_i64;
        let mut folded = 0;
        loop {
            let rows: Vec<(VideoId, String, String)> = on_pool!(self, pool => {
                sqlx::query_as(
                    "SELECT id, title, description FROM videos \
                     WHERE search_title = '' AND id > $1 ORDER BY id LIMIT 500",
                )
                .bind(after)
                .fetch_all(pool)
                .await?
            });
            let Some(last) = rows.last() else {
                break;
            };
            after = last.0.get();
            let count = rows.len();
            // One transaction a batch: one commit instead of one per row.
            on_pool!(self, pool => {
                let mut tx = pool.begin().await?;
                for (id, title, description) in &rows {
                    let text = crate::domain::fold_search(&format!("{title} {description}"));
                    sqlx::query(
                        "UPDATE videos SET search_text = $1, search_title = $2 WHERE id = $3",
                    )
                    .bind(&text)
                    .bind(crate::domain::fold_search(title))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                }
                tx.commit().await?
            });
            folded += count;
        }
        if folded > 0 {
            self.catalog_changed().await;
        }
        Ok(folded)
    }
}
