//! Catalog lists: filters, keyset or offset pages, and the total, on both backends (on SQLite
//! as one JSON row, see [`sqlite_videos`](super::videos)).

use serde::{Deserialize, Serialize};

use super::{
    Backend, Store, VideoRecord,
    videos::{VIDEO_SELECT, from_json, sqlite_json},
};
use crate::{
    domain::{Genre, Language, Ordering, PageToken, Timestamp, UserId, VideoId},
    error::AppResult,
};

/// A user's favorites `(video, None)` and positions `(video, Some(seconds))`.
pub type UserStateRows = Vec<(VideoId, Option<f64>)>;

/// Which videos a list shows.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize)]
pub struct VideoFilter {
    /// Only this genre.
    pub genre: Option<Genre>,
    /// Only this language.
    pub language: Option<Language>,
    /// Only videos uploaded by this user.
    pub uploaded_by: Option<UserId>,
    /// Only favorites of this user.
    pub favorites_of: Option<UserId>,
    /// Only videos uploaded at or after.
    pub uploaded_after: Option<Timestamp>,
    /// Only videos updated at or after.
    pub updated_after: Option<Timestamp>,
    /// Lower-cased substring of title or description.
    pub search: Option<String>,
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
        let p = sql.arg(Arg::I64(user.get()));
        conditions.push(format!("v.uploaded_by = {p}"));
    }
    if let Some(user) = filter.favorites_of {
        let p = sql.arg(Arg::I64(user.get()));
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM favorites f WHERE f.video_id = v.id AND f.user_id = {p})"
        ));
    }
    if let Some(at) = filter.uploaded_after {
        let p = sql.arg(Arg::Ts(at));
        conditions.push(format!("v.uploaded_at >= {p}"));
    }
    if let Some(at) = filter.updated_after {
        let p = sql.arg(Arg::Ts(at));
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
        let id = sql.arg(Arg::I64(token.id.get()));
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
            text: VIDEO_SELECT.clone(),
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
            Backend::Sqlite(pool) => sqlite_page(pool, list, &order, state_of).await?,
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
}

/// SQLite: the page and `state_of`'s favorites and progress as one row of two JSON arrays.
async fn sqlite_page(
    pool: &sqlx::SqlitePool,
    mut list: Sql,
    order: &str,
    state_of: Option<UserId>,
) -> AppResult<(Vec<VideoRecord>, Option<UserStateRows>)> {
    let mut sql = format!("SELECT ({})", sqlite_json(&list.text, order));
    if let Some(user) = state_of {
        let p = list.arg(Arg::I64(user.get()));
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
    Ok((from_json::<Vec<VideoRecord>>(&videos)?, state))
}
