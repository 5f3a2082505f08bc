//! Videos, favorites and watch progress.

use serde::{Deserialize, Serialize};

use super::{Backend, Renditions, Store, Timestamp};
use crate::{
    domain::{Genre, Language, Ordering, PageToken, UserId, VideoMeta},
    error::AppResult,
};

/// A stored video with its uploader.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct VideoRecord {
    /// Primary key.
    pub id: i64,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Author.
    pub author: String,
    /// Genre wire name, if any.
    pub genre: Option<String>,
    /// Language wire name, if any.
    pub language: Option<String>,
    /// Uploader id (None once the uploader's account is gone).
    pub uploaded_by: Option<i64>,
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
    /// Processing status wire name.
    pub status: String,
    /// Failure reason.
    pub status_reason: String,
    /// Original file, relative to MEDIA_DIR.
    pub video_file: String,
    /// Poster image.
    pub poster: String,
    /// Thumbnails WebVTT.
    pub vtt_file: String,
    /// 360p MP4.
    pub hd360: String,
    /// 480p MP4.
    pub hd480: String,
    /// 720p MP4.
    pub hd720: String,
    /// 1080p MP4.
    pub hd1080: String,
    /// HLS master playlist.
    pub hls: String,
    /// The renditions the transcode wrote.
    #[sqlx(try_from = "String")]
    pub renditions: Renditions,
}

impl VideoRecord {
    /// Typed genre.
    pub fn genre(&self) -> Option<Genre> {
        self.genre.as_deref().and_then(|g| g.parse().ok())
    }

    /// Typed language.
    pub fn language(&self) -> Option<Language> {
        self.language.as_deref().and_then(|l| l.parse().ok())
    }
}

pub(super) const VIDEO_SELECT: &str = "SELECT v.id, v.title, v.description, v.author, v.genre, v.language, \
    v.uploaded_by, u.email AS uploader_email, u.phone AS uploader_phone, \
    u.address AS uploader_address, v.uploaded_at, v.updated_at, v.duration, v.status, \
    v.status_reason, v.video_file, v.poster, v.vtt_file, v.hd360, v.hd480, v.hd720, v.hd1080, \
    v.hls, v.renditions FROM videos v LEFT JOIN users u ON u.id = v.uploaded_by";

/// Every column of [`VIDEO_SELECT`] as one JSON object (SQLite), named as [`VideoRecord`]'s
/// serde fields; timestamps are integer micros in both.
const VIDEO_JSON: &str = "json_object(\
    'id', r.id, 'title', r.title, 'description', r.description, 'author', r.author, \
    'genre', r.genre, 'language', r.language, 'uploaded_by', r.uploaded_by, \
    'uploader_email', r.uploader_email, 'uploader_phone', r.uploader_phone, \
    'uploader_address', r.uploader_address, 'uploaded_at', r.uploaded_at, \
    'updated_at', r.updated_at, 'duration', r.duration, 'status', r.status, \
    'status_reason', r.status_reason, 'video_file', r.video_file, 'poster', r.poster, \
    'vtt_file', r.vtt_file, 'hd360', r.hd360, 'hd480', r.hd480, 'hd720', r.hd720, \
    'hd1080', r.hd1080, 'hls', r.hls, 'renditions', r.renditions)";

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

fn from_json<T: serde::de::DeserializeOwned>(json: &str) -> AppResult<T> {
    serde_json::from_str(json).map_err(|e| {
        crate::error::AppError::Internal(anyhow::Error::new(e).context("decoding SQLite JSON"))
    })
}

/// Wraps `sql` for [`sqlite_videos`]; `order` is its ORDER BY over output columns.
fn sqlite_json(sql: &str, order: &str) -> String {
    format!("SELECT json_group_array({VIDEO_JSON} ORDER BY {order}) FROM ({sql}) AS r")
}

/// A user's favorites `(video, None)` and positions `(video, Some(seconds))`.
pub type UserStateRows = Vec<(i64, Option<f64>)>;

/// Which videos a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct VideoFilter {
    /// Only this genre.
    pub genre: Option<Genre>,
    /// Only this language.
    pub language: Option<Language>,
    /// Only videos uploaded by this user.
    pub uploaded_by: Option<i64>,
    /// Only favorites of this user.
    pub favorites_of: Option<i64>,
    /// Only videos uploaded at or after.
    pub uploaded_after: Option<i64>,
    /// Only videos updated at or after.
    pub updated_after: Option<i64>,
    /// Lower-cased substring of title or description.
    pub search: Option<String>,
}

impl Serialize for Genre {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl Serialize for Language {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One list request: filter, order, and either a keyset cursor or an offset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VideoQuery {
    /// Filter.
    pub filter: VideoFilter,
    /// Order.
    pub ordering: Ordering,
    /// Start after this row (keyset).
    pub after: Option<PageToken>,
    /// Rows to skip (offset pagination; 0 with a cursor).
    pub offset: i64,
    /// Rows to return.
    pub limit: i64,
}

/// A page of videos and the total count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VideoPage {
    /// The videos.
    pub videos: Vec<VideoRecord>,
    /// How many match the filter.
    pub total: i64,
}

enum Arg {
    I64(i64),
    Text(String),
    Ts(Timestamp),
}

/// SQL text with numbered placeholders and their values in order.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }
}

/// Appends `WHERE …` for `filter` (and the cursor) to `sql`.
fn where_clause(sql: &mut Sql, filter: &VideoFilter, after: Option<&PageToken>) {
    let mut conditions: Vec<String> = Vec::new();
    if let Some(genre) = filter.genre {
        let p = sql.arg(Arg::Text(genre.as_str().into()));
        conditions.push(format!("v.genre = {p}"));
    }
    if let Some(language) = filter.language {
        let p = sql.arg(Arg::Text(language.as_str().into()));
        conditions.push(format!("v.language = {p}"));
    }
    if let Some(user) = filter.uploaded_by {
        let p = sql.arg(Arg::I64(user));
        conditions.push(format!("v.uploaded_by = {p}"));
    }
    if let Some(user) = filter.favorites_of {
        let p = sql.arg(Arg::I64(user));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM favorites f WHERE f.video_id = v.id AND f.user_id = {p})"
        ));
    }
    if let Some(micros) = filter.uploaded_after {
        let p = sql.arg(Arg::Ts(Timestamp::from_micros(micros)));
        conditions.push(format!("v.uploaded_at >= {p}"));
    }
    if let Some(micros) = filter.updated_after {
        let p = sql.arg(Arg::Ts(Timestamp::from_micros(micros)));
        conditions.push(format!("v.updated_at >= {p}"));
    }
    if let Some(search) = &filter.search {
        // '!' as the escape character means the same in SQLite and PostgreSQL whatever
        // standard_conforming_strings says (a backslash would not).
        let escaped = search
            .replace('!', "!!")
            .replace('%', "!%")
            .replace('_', "!_");
        let p = sql.arg(Arg::Text(format!("%{escaped}%")));
        conditions.push(format!("v.search_text LIKE {p} ESCAPE '!'"));
    }
    if let Some(token) = after {
        let column = token.ordering.column();
        let op = if token.ordering.descending() {
            "<"
        } else {
            ">"
        };
        let ts = sql.arg(Arg::Ts(Timestamp::from_micros(token.micros)));
        let id = sql.arg(Arg::I64(token.id));
        conditions.push(format!(
            "(v.{column} {op} {ts} OR (v.{column} = {ts} AND v.id {op} {id}))"
        ));
    }
    if !conditions.is_empty() {
        sql.text.push_str(" WHERE ");
        sql.text.push_str(&conditions.join(" AND "));
    }
}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut query = $query;
        for arg in $args {
            query = match arg {
                Arg::I64(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Ts(v) => query.bind(v),
            };
        }
        query
    }};
}

impl Store {
    /// One page of videos matching `query`, with the total count.
    pub async fn list_videos(&self, query: &VideoQuery) -> AppResult<VideoPage> {
        Ok(self.list_page(query, None).await?.0)
    }

    /// [`Store::list_videos`] and [`Store::user_state`] of `user` at once: one round trip on
    /// SQLite, for reads that no cache serves.
    pub async fn list_videos_with_state(
        &self,
        query: &VideoQuery,
        user: UserId,
    ) -> AppResult<(VideoPage, UserStateRows)> {
        let (page, state) = self.list_page(query, Some(user)).await?;
        let state = match state {
            Some(state) => state,
            None => self.user_state(user).await?,
        };
        Ok((page, state))
    }

    /// A page, and on SQLite `state_of`'s state from the same statement.
    async fn list_page(
        &self,
        query: &VideoQuery,
        state_of: Option<UserId>,
    ) -> AppResult<(VideoPage, Option<UserStateRows>)> {
        let mut list = Sql {
            text: VIDEO_SELECT.to_owned(),
            args: Vec::new(),
        };
        where_clause(&mut list, &query.filter, query.after.as_ref());
        let direction = if query.ordering.descending() {
            "DESC"
        } else {
            "ASC"
        };
        // LIMIT and OFFSET are written as literals (integers, never client text): SQLite
        // re-prepares a statement whenever a parameter its LIMIT reads is bound again.
        list.text.push_str(&format!(
            " ORDER BY v.{col} {direction}, v.id {direction} LIMIT {limit} OFFSET {offset}",
            col = query.ordering.column(),
            limit = query.limit,
            offset = query.offset,
        ));
        let mut count = Sql {
            text: "SELECT COUNT(*) FROM videos v".to_owned(),
            args: Vec::new(),
        };
        where_clause(&mut count, &query.filter, None);
        let order = format!(
            "{col} {direction}, id {direction}",
            col = query.ordering.column()
        );
        let (videos, state) = match &self.backend {
            Backend::Postgres(pool) => {
                let videos = bind_all!(
                    sqlx::query_as::<_, VideoRecord>(sqlx::AssertSqlSafe(list.text)),
                    list.args
                )
                .fetch_all(pool)
                .await?;
                (videos, None)
            }
            Backend::Sqlite(pool) => {
                let mut sql = format!("SELECT ({})", sqlite_json(&list.text, &order));
                if let Some(user) = state_of {
                    let p = list.arg(Arg::I64(user.0));
                    sql.push_str(&format!(
                        ", (SELECT json_group_array(json_array(video_id, position)) FROM \
                         (SELECT video_id, NULL AS position FROM favorites WHERE user_id = {p} \
                         UNION ALL \
                         SELECT video_id, position FROM watch_progress WHERE user_id = {p}))"
                    ));
                } else {
                    sql.push_str(", NULL");
                }
                let (videos, state): (String, Option<String>) =
                    bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), list.args)
                        .fetch_one(pool)
                        .await?;
                let state = state
                    .map(|json| from_json::<UserStateRows>(&json))
                    .transpose()?;
                (from_json::<Vec<VideoRecord>>(&videos)?, state)
            }
        };
        // A short first (or any non-empty last) offset page already tells the total.
        let returned = i64::try_from(videos.len()).unwrap_or(i64::MAX);
        let total = if query.after.is_none()
            && returned < query.limit
            && (returned > 0 || query.offset == 0)
        {
            query.offset + returned
        } else {
            on_pool!(self, pool => {
                let (total,): (i64,) = bind_all!(
                    sqlx::query_as(sqlx::AssertSqlSafe(count.text)),
                    count.args
                )
                .fetch_one(pool)
                .await?;
                total
            })
        };
        Ok((VideoPage { videos, total }, state))
    }

    /// Every video with a genre, newest first (for the categorized view).
    pub async fn videos_with_genre(&self) -> AppResult<Vec<VideoRecord>> {
        let sql = format!(
            "{VIDEO_SELECT} WHERE v.genre IS NOT NULL ORDER BY v.uploaded_at DESC, v.id DESC"
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
        exclude: Option<i64>,
        limit: i64,
    ) -> AppResult<Vec<VideoRecord>> {
        let sql = format!(
            "{VIDEO_SELECT} WHERE v.id <> $1 ORDER BY v.uploaded_at DESC, v.id DESC LIMIT {limit}"
        );
        let exclude = exclude.unwrap_or(-1);
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
    pub async fn video(&self, id: i64) -> AppResult<Option<VideoRecord>> {
        let sql = format!("{VIDEO_SELECT} WHERE v.id = $1");
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
        let (id,): (i64,) = on_pool!(self, pool => {
            sqlx::query_as(
                "INSERT INTO videos (title, description, author, genre, language, uploaded_by, \
                 uploaded_at, updated_at, search_text) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8) \
                 RETURNING id",
            )
            .bind(&meta.title)
            .bind(&meta.description)
            .bind(&meta.author)
            .bind(meta.genre.map(Genre::as_str))
            .bind(meta.language.map(Language::as_str))
            .bind(uploaded_by.0)
            .bind(now)
            .bind(meta.search_text())
            .fetch_one(pool)
            .await?
        });
        self.video(id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("video {id} vanished after insert").into())
    }

    /// Replaces the metadata of a video; None if it does not exist.
    pub async fn update_video(&self, id: i64, meta: &VideoMeta) -> AppResult<Option<VideoRecord>> {
        let changed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE videos SET title = $1, description = $2, author = $3, genre = $4, \
                 language = $5, search_text = $6, updated_at = $7 WHERE id = $8",
            )
            .bind(&meta.title)
            .bind(&meta.description)
            .bind(&meta.author)
            .bind(meta.genre.map(Genre::as_str))
            .bind(meta.language.map(Language::as_str))
            .bind(meta.search_text())
            .bind(Timestamp::now())
            .bind(id)
            .execute(pool)
            .await?
            .rows_affected()
        });
        if changed == 0 {
            return Ok(None);
        }
        self.video(id).await
    }

    /// Deletes a video (favorites and progress go with it); false if it did not exist.
    pub async fn delete_video(&self, id: i64) -> AppResult<bool> {
        let n = on_pool!(self, pool => {
            sqlx::query("DELETE FROM videos WHERE id = $1")
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n == 1)
    }

    // ---- per-user state ----------------------------------------------------------------------

    /// Marks a favorite (idempotent); false if the video does not exist.
    pub async fn add_favorite(&self, user: UserId, video: i64) -> AppResult<bool> {
        let result = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO favorites (user_id, video_id, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id, video_id) DO NOTHING",
            )
            .bind(user.0)
            .bind(video)
            .bind(Timestamp::now())
            .execute(pool)
            .await
            .map(|_| ())
        });
        match result {
            Ok(()) => Ok(true),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Removes a favorite (idempotent).
    pub async fn remove_favorite(&self, user: UserId, video: i64) -> AppResult<()> {
        on_pool!(self, pool => {
            sqlx::query("DELETE FROM favorites WHERE user_id = $1 AND video_id = $2")
                .bind(user.0)
                .bind(video)
                .execute(pool)
                .await?;
        });
        Ok(())
    }

    /// Records a playback position (upsert); false if the video does not exist.
    pub async fn save_progress(
        &self,
        user: UserId,
        video: i64,
        position: f64,
    ) -> AppResult<Option<Timestamp>> {
        let now = Timestamp::now();
        let result = on_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO watch_progress (user_id, video_id, position, updated_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (user_id, video_id) \
                 DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at",
            )
            .bind(user.0)
            .bind(video)
            .bind(position)
            .bind(now)
            .execute(pool)
            .await
            .map(|_| ())
        });
        match result {
            Ok(()) => Ok(Some(now)),
            Err(sqlx::Error::Database(e)) if e.is_foreign_key_violation() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The user's favorites and positions in one round trip: `(video, Some(position))` for
    /// progress rows, `(video, None)` for favorites.
    pub async fn user_state(&self, user: UserId) -> AppResult<UserStateRows> {
        Ok(on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT video_id, NULL AS position FROM favorites WHERE user_id = $1 \
                 UNION ALL \
                 SELECT video_id, position FROM watch_progress WHERE user_id = $1",
            )
            .bind(user.0)
            .fetch_all(pool)
            .await?
        }))
    }

    /// Videos the user started and has not finished (position > 0 and, when the duration is
    /// known, before the last 5 %), most recently watched first.
    pub async fn continue_watching(
        &self,
        user: UserId,
        limit: i64,
        offset: i64,
    ) -> AppResult<Vec<VideoRecord>> {
        let sql = format!(
            "{VIDEO_SELECT} JOIN watch_progress p ON p.video_id = v.id WHERE p.user_id = $1 \
             AND p.position > 0 AND (v.duration <= 0 OR p.position < v.duration * 0.95) \
             ORDER BY p.updated_at DESC, v.id DESC LIMIT {limit} OFFSET {offset}"
        );
        Ok(on_pool!(self, pool => {
            sqlx::query_as::<_, VideoRecord>(sqlx::AssertSqlSafe(sql))
                .bind(user.0)
                .fetch_all(pool)
                .await?
        }))
    }
}

/// The files a finished transcode wrote, relative to MEDIA_DIR.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MediaPaths {
    /// Poster JPEG.
    pub poster: String,
    /// Thumbnails WebVTT.
    pub vtt_file: String,
    /// Progressive MP4 per rendition ('' when the source is too small for it).
    pub hd360: String,
    /// 480p MP4.
    pub hd480: String,
    /// 720p MP4.
    pub hd720: String,
    /// 1080p MP4.
    pub hd1080: String,
    /// HLS master playlist.
    pub hls: String,
    /// Every rendition written.
    pub renditions: Renditions,
}

/// What a claim of a transcode found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The job holds the video now.
    Started(TranscodeClaim),
    /// A live job holds it.
    Busy,
    /// Nothing to do: finished, failed, deleted or without a source.
    Done,
}

/// A transcode that may start: where the source is and how often it was tried.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TranscodeClaim {
    /// Source file, relative to MEDIA_DIR.
    pub video_file: String,
    /// Attempts including this one.
    pub transcode_attempts: i64,
}

impl Store {
    /// Points a video at its uploaded source.
    pub async fn set_video_source(&self, id: i64, video_file: &str) -> AppResult<()> {
        let now = Timestamp::now();
        on_pool!(self, pool => {
            sqlx::query("UPDATE videos SET video_file = $1, updated_at = $2 WHERE id = $3")
                .bind(video_file)
                .bind(now)
                .bind(id)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(())
    }

    /// Gives a transcode of video `id` to the job `token`: a pending video, or a processing one
    /// whose job has not shown it is alive since `stale_before` (its worker died). The attempt
    /// is counted.
    pub async fn claim_transcode(
        &self,
        id: i64,
        token: &str,
        stale_before: Timestamp,
    ) -> AppResult<Claim> {
        let now = Timestamp::now();
        let claimed = on_pool!(self, pool => {
            sqlx::query_as::<_, TranscodeClaim>(
                "UPDATE videos SET status = 'processing', status_reason = '', \
                 transcode_attempts = transcode_attempts + 1, claim_token = $1, claimed_at = $2, \
                 updated_at = $2 \
                 WHERE id = $3 AND video_file <> '' AND (status = 'pending' OR \
                 (status = 'processing' AND (claimed_at IS NULL OR claimed_at < $4))) \
                 RETURNING video_file, transcode_attempts",
            )
            .bind(token)
            .bind(now)
            .bind(id)
            .bind(stale_before)
            .fetch_optional(pool)
            .await?
        });
        if let Some(claim) = claimed {
            return Ok(Claim::Started(claim));
        }
        let status: Option<(String,)> = on_pool!(self, pool => {
            sqlx::query_as("SELECT status FROM videos WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await?
        });
        Ok(match status {
            Some((status,)) if status == "processing" => Claim::Busy,
            _ => Claim::Done,
        })
    }

    /// Whether the job `token` holds video `id` and showed it is alive since `fresh_after`.
    pub async fn live_claim(
        &self,
        id: i64,
        token: &str,
        fresh_after: Timestamp,
    ) -> AppResult<bool> {
        let row: Option<(i64,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id FROM videos WHERE id = $1 AND claim_token = $2 \
                 AND status = 'processing' AND claimed_at >= $3",
            )
            .bind(id)
            .bind(token)
            .bind(fresh_after)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.is_some())
    }

    /// Shows the job `token` is alive; false when it no longer holds the video (deleted, or
    /// taken over after it went quiet).
    pub async fn heartbeat_transcode(&self, id: i64, token: &str) -> AppResult<bool> {
        let now = Timestamp::now();
        let changed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE videos SET claimed_at = $1 \
                 WHERE id = $2 AND claim_token = $3 AND status = 'processing'",
            )
            .bind(now)
            .bind(id)
            .bind(token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Records a finished transcode of the job `token`; false if the video was deleted or
    /// another job holds it now (then these outputs are not used).
    pub async fn finish_transcode(
        &self,
        id: i64,
        token: &str,
        media: &MediaPaths,
        duration: f64,
    ) -> AppResult<bool> {
        let now = Timestamp::now();
        let result = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE videos SET status = 'ready', status_reason = '', poster = $1, \
                 vtt_file = $2, hd360 = $3, hd480 = $4, hd720 = $5, hd1080 = $6, hls = $7, \
                 duration = $8, updated_at = $9, claim_token = '', renditions = $12 \
                 WHERE id = $10 AND claim_token = $11 AND status = 'processing'",
            )
            .bind(&media.poster)
            .bind(&media.vtt_file)
            .bind(&media.hd360)
            .bind(&media.hd480)
            .bind(&media.hd720)
            .bind(&media.hd1080)
            .bind(&media.hls)
            .bind(duration)
            .bind(now)
            .bind(id)
            .bind(token)
            .bind(media.renditions.to_json())
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(result > 0)
    }

    /// Ends the job `token`'s hold with `status` (`pending` to retry, `failed` for good) and a
    /// reason; false if it no longer held the video.
    pub async fn set_transcode_status(
        &self,
        id: i64,
        token: &str,
        status: &str,
        reason: &str,
    ) -> AppResult<bool> {
        let now = Timestamp::now();
        let changed = on_pool!(self, pool => {
            sqlx::query(
                "UPDATE videos SET status = $1, status_reason = $2, updated_at = $3, \
                 claim_token = '' WHERE id = $4 AND claim_token = $5 AND status = 'processing'",
            )
            .bind(status)
            .bind(reason)
            .bind(now)
            .bind(id)
            .bind(token)
            .execute(pool)
            .await?
            .rows_affected()
        });
        Ok(changed > 0)
    }

    /// Videos whose transcode has not finished (for the start-up sweep).
    pub async fn unfinished_videos(&self) -> AppResult<Vec<i64>> {
        let rows: Vec<(i64,)> = on_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id FROM videos WHERE status IN ('pending', 'processing') \
                 AND video_file <> '' ORDER BY id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }
}
