//! Catalog lists: filters, indexed search, keyset or numbered pages, and the total, on both
//! backends (on SQLite as one JSON row, see [`sqlite_videos`](super::videos)). Counts and the
//! positions behind page numbers come from a [`PageIndex`](super::pages::PageIndex) while the
//! catalog generation it was built at is current, so neither grows with the page number.

use serde::{Deserialize, Serialize};
use sqlx::{FromRow as _, Row as _};

use super::{
    Backend, Store, VideoRecord,
    pages::{PageIndex, PageKey},
    videos::{VIDEO_COLUMNS, from_json, sqlite_json},
};
use crate::{
    domain::{
        Genre, Language, Ordering, PageToken, SearchQuery, Timestamp, UserId, VideoId, WORST_RANK,
    },
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
    /// Only videos whose folded title or description contain this.
    pub search: Option<SearchQuery>,
}

/// One list request: filter, order, and either a keyset cursor or an offset.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct VideoQuery {
    /// Filter.
    pub filter: VideoFilter,
    /// Order ([`Ordering::Relevance`] without a search is the default order).
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

pub(super) enum Arg {
    I64(i64),
    Text(String),
    Ts(Timestamp),
}

/// The values of a statement's numbered placeholders, in order.
#[derive(Default)]
pub(super) struct Sql {
    pub(super) args: Vec<Arg>,
}

impl Sql {
    fn arg(&mut self, arg: Arg) -> String {
        self.args.push(arg);
        format!("${}", self.args.len())
    }
}

/// The SQL that differs between the databases.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Dialect {
    Postgres,
    Sqlite,
}

/// Where a list starts: after a row's key (keyset), then skipping `offset` rows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Start {
    pub(super) after: Option<SortKey>,
    pub(super) offset: i64,
}

/// A row's place in its order: search rank (0 unless by relevance), sort time, id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SortKey {
    pub(super) rank: i64,
    pub(super) micros: i64,
    pub(super) id: VideoId,
}

/// The filter, order and rank of one list, as SQL pieces over `videos v`.
pub(super) struct Plan {
    dialect: Dialect,
    pub(super) sql: Sql,
    /// `WHERE …` of the filter (with the cursor appended by [`Plan::seek`]).
    conditions: Vec<String>,
    /// The rank expression when ordering by relevance.
    rank: Option<String>,
    ordering: Ordering,
}

impl Plan {
    /// The filter of `key`, ordered by its ordering (relevance only with a search).
    pub(super) fn new(dialect: Dialect, key: &PageKey) -> Self {
        let mut plan = Self {
            dialect,
            sql: Sql::default(),
            conditions: Vec::new(),
            rank: None,
            ordering: key.ordering,
        };
        plan.filter(&key.filter);
        plan
    }

    fn filter(&mut self, filter: &VideoFilter) {
        if let Some(genre) = filter.genre {
            let p = self.sql.arg(Arg::Text(genre.as_str().into()));
            self.conditions.push(format!("v.genre = {p}"));
        }
        if let Some(language) = filter.language {
            let p = self.sql.arg(Arg::Text(language.as_str().into()));
            self.conditions.push(format!("v.language = {p}"));
        }
        if let Some(user) = filter.uploaded_by {
            let p = self.sql.arg(Arg::I64(user.get()));
            self.conditions.push(format!("v.uploaded_by = {p}"));
        }
        if let Some(user) = filter.favorites_of {
            let p = self.sql.arg(Arg::I64(user.get()));
            self.conditions.push(format!(
                "EXISTS (SELECT 1 FROM favorites f WHERE f.video_id = v.id AND f.user_id = {p})"
            ));
        }
        if let Some(at) = filter.uploaded_after {
            let p = self.sql.arg(Arg::Ts(at));
            self.conditions.push(format!("v.uploaded_at >= {p}"));
        }
        if let Some(at) = filter.updated_after {
            let p = self.sql.arg(Arg::Ts(at));
            self.conditions.push(format!("v.updated_at >= {p}"));
        }
        if let Some(search) = &filter.search {
            let condition = self.search(search);
            self.conditions.push(condition);
            if self.ordering == Ordering::Relevance {
                self.rank = Some(self.rank(search));
            }
        }
    }

    /// A substring match through the trigram index: FTS5 on SQLite (a phrase of at least
    /// three characters; shorter ones scan), `pg_trgm`'s GIN index behind `LIKE` on PostgreSQL.
    fn search(&mut self, search: &SearchQuery) -> String {
        let q = search.as_str();
        match self.dialect {
            Dialect::Sqlite if search.chars() >= 3 => {
                let p = self
                    .sql
                    .arg(Arg::Text(format!("\"{}\"", q.replace('"', "\"\""))));
                format!("v.id IN (SELECT rowid FROM videos_fts WHERE videos_fts MATCH {p})")
            }
            Dialect::Sqlite => {
                // '!' as the escape character; the folded text has no upper case for LIKE's
                // ASCII case folding to matter.
                let escaped = q.replace('!', "!!").replace('%', "!%").replace('_', "!_");
                let p = self.sql.arg(Arg::Text(format!("%{escaped}%")));
                format!("v.search_text LIKE {p} ESCAPE '!'")
            }
            Dialect::Postgres => {
                // The default escape character (a backslash): pg_trgm reads the pattern.
                let escaped = q
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                let p = self.sql.arg(Arg::Text(format!("%{escaped}%")));
                format!("v.search_text LIKE {p}")
            }
        }
    }

    /// [`SearchQuery::rank`] in SQL, over the folded title.
    fn rank(&mut self, search: &SearchQuery) -> String {
        let p = self.sql.arg(Arg::Text(search.as_str().to_owned()));
        let pos = match self.dialect {
            Dialect::Sqlite => "instr",
            Dialect::Postgres => "strpos",
        };
        format!(
            "CAST(CASE WHEN v.search_title = {p} THEN 0 \
             WHEN {pos}(v.search_title, {p}) = 1 THEN 1 \
             WHEN {pos}(' ' || v.search_title, ' ' || {p}) > 0 THEN 2 \
             WHEN {pos}(v.search_title, {p}) > 0 THEN 3 \
             ELSE {WORST_RANK} END AS BIGINT)"
        )
    }

    /// Only rows after `key` in this order.
    pub(super) fn seek(&mut self, key: SortKey) {
        let column = self.ordering.column();
        let op = if self.ordering.descending() { "<" } else { ">" };
        let ts = self.sql.arg(Arg::Ts(Timestamp::from_micros(key.micros)));
        let id = self.sql.arg(Arg::I64(key.id.get()));
        // A row-value comparison, which both databases run as a range of the (column, id)
        // index; PostgreSQL does not for the equivalent OR form and read every row before it.
        let after = format!("(v.{column}, v.id) {op} ({ts}, {id})");
        self.conditions.push(match self.rank.clone() {
            Some(rank) => {
                let r = self.sql.arg(Arg::I64(key.rank));
                format!("({rank} > {r} OR ({rank} = {r} AND {after}))")
            }
            None => after,
        });
    }

    /// `WHERE …`, or nothing.
    pub(super) fn where_sql(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// The rank as a column (a constant 0 unless by relevance).
    pub(super) fn rank_column(&self) -> String {
        self.rank
            .clone()
            .unwrap_or_else(|| "CAST(0 AS BIGINT)".to_owned())
    }

    /// The order as expressions over `videos v` (for a window, where no alias is in scope).
    pub(super) fn order_by_expr(&self) -> String {
        match &self.rank {
            Some(rank) => format!("{rank} ASC, {}", self.order_columns("v.")),
            None => self.order_columns("v."),
        }
    }

    fn order_columns(&self, prefix: &str) -> String {
        let direction = if self.ordering.descending() {
            "DESC"
        } else {
            "ASC"
        };
        let column = self.ordering.column();
        format!("{prefix}{column} {direction}, {prefix}id {direction}")
    }

    /// The order over `prefix`'s columns (`v.` in the query, empty over a subquery's output),
    /// the rank named `search_rank` first when by relevance.
    pub(super) fn order_by(&self, prefix: &str) -> String {
        let rank = if self.rank.is_some() {
            "search_rank ASC, "
        } else {
            ""
        };
        format!("{rank}{}", self.order_columns(prefix))
    }
}

/// Binds every argument of a [`Sql`] to a query, in order.
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
pub(super) use bind_all;

/// One page as read: the rows, the caller's state (SQLite), the catalog generation it saw.
pub(super) struct Read {
    videos: Vec<VideoRecord>,
    state: Option<UserStateRows>,
    generation: i64,
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

    /// A page, and on SQLite `state_of`'s state from the same statement. Lists of one
    /// user's favorites are small and change with that user's clicks: they are counted each
    /// time. Every other list takes its total and page positions from the list's
    /// [`PageIndex`], built once per catalog generation.
    async fn list_page(
        &self,
        query: &VideoQuery,
        state_of: Option<UserId>,
    ) -> AppResult<(VideoPage, Option<UserStateRows>)> {
        let key = PageKey::of(query);
        if query.filter.favorites_of.is_some() {
            let read = self.read_page(&key, query, None, state_of).await?;
            let total = match short_page_total(query, read.videos.len()) {
                Some(total) => total,
                None => self.count(&key).await?,
            };
            return Ok((
                VideoPage {
                    videos: read.videos,
                    total,
                },
                read.state,
            ));
        }
        let index = self.page_index(&key, None).await?;
        let mut read = self.read_page(&key, query, Some(&index), state_of).await?;
        let mut total = index.total;
        if read.generation != index.generation {
            // The catalog changed since the index was built: build it again, and read the
            // page again if the stale one placed it.
            let fresh = self.page_index(&key, Some(read.generation)).await?;
            if index.is_exact() || index.start(query.offset).after.is_some() {
                read = self.read_page(&key, query, Some(&fresh), state_of).await?;
            }
            total = fresh.total;
        }
        Ok((
            VideoPage {
                videos: read.videos,
                total,
            },
            read.state,
        ))
    }

    /// Reads one page: after the query's cursor, or at its offset (through `index`'s nearest
    /// position when it has one).
    async fn read_page(
        &self,
        key: &PageKey,
        query: &VideoQuery,
        index: Option<&PageIndex>,
        state_of: Option<UserId>,
    ) -> AppResult<Read> {
        if query.after.is_none()
            && let Some(ids) = index.and_then(|index| index.ids(query.offset, query.limit))
        {
            return self.read_ids(ids, state_of).await;
        }
        let start = match (&query.after, index) {
            (Some(token), _) => Start {
                after: Some(SortKey {
                    rank: token.rank,
                    micros: token.micros,
                    id: token.id,
                }),
                offset: 0,
            },
            (None, Some(index)) => index.start(query.offset),
            (None, None) => Start {
                after: None,
                offset: query.offset,
            },
        };
        let mut plan = Plan::new(self.dialect(), key);
        if let Some(after) = start.after {
            plan.seek(after);
        }
        let rank = plan.rank_column();
        // The page is chosen over narrow rows (id, rank, sort key) and only its rows are read
        // whole and joined with their uploader: a broad search sorts thousands of matches, and
        // sorting them with every column copied thousands of wide rows per request.
        // LIMIT and OFFSET are written as literals (integers, never client text): SQLite
        // re-prepares a statement whenever a parameter its LIMIT reads is bound again.
        let select = format!(
            "SELECT {}, p.search_rank AS search_rank, \
             (SELECT generation FROM catalog_generation) AS catalog_generation \
             FROM (SELECT v.id, {rank} AS search_rank FROM videos v{} \
                   ORDER BY {} LIMIT {} OFFSET {}) p \
             JOIN videos v ON v.id = p.id LEFT JOIN users u ON u.id = v.uploaded_by \
             ORDER BY {}",
            *VIDEO_COLUMNS,
            plan.where_sql(),
            plan.order_by("v."),
            query.limit,
            start.offset,
            plan.order_by("v."),
        );
        let order = plan.order_by("");
        self.run_page(&select, &order, plan.sql.args, state_of)
            .await
    }

    /// Runs a page's `select` (rows in `order`, each with the catalog generation).
    pub(super) async fn run_page(
        &self,
        select: &str,
        order: &str,
        args: Vec<Arg>,
        state_of: Option<UserId>,
    ) -> AppResult<Read> {
        match &self.backend {
            Backend::Postgres(pool) => {
                self.reachable()?;
                let rows = bind_all!(sqlx::query(sqlx::AssertSqlSafe(select.to_owned())), args)
                    .fetch_all(pool)
                    .await?;
                let generation = match rows.first() {
                    Some(row) => row.try_get("catalog_generation")?,
                    None => self.catalog_generation().await?,
                };
                let videos = rows
                    .iter()
                    .map(VideoRecord::from_row)
                    .collect::<Result<_, _>>()?;
                Ok(Read {
                    videos,
                    state: None,
                    generation,
                })
            }
            Backend::Sqlite(pool) => {
                self.reachable()?;
                sqlite_page(pool, args, select, order, state_of).await
            }
        }
    }

    pub(super) fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Postgres(_) => Dialect::Postgres,
            Backend::Sqlite(_) => Dialect::Sqlite,
        }
    }
}

/// The total a page already tells: a short first page, or any short non-empty page.
fn short_page_total(query: &VideoQuery, returned: usize) -> Option<i64> {
    let returned = i64::try_from(returned).unwrap_or(i64::MAX);
    (query.after.is_none() && returned < query.limit && (returned > 0 || query.offset == 0))
        .then_some(query.offset + returned)
}

/// SQLite: the page, `state_of`'s favorites and progress, and the catalog generation as one
/// row (two JSON arrays and a number).
async fn sqlite_page(
    pool: &sqlx::SqlitePool,
    mut args: Vec<Arg>,
    select: &str,
    order: &str,
    state_of: Option<UserId>,
) -> AppResult<Read> {
    let mut sql = format!("SELECT ({})", sqlite_json(select, order));
    if let Some(user) = state_of {
        args.push(Arg::I64(user.get()));
        let p = format!("${}", args.len());
        sql.push_str(&format!(
            ", (SELECT json_group_array(json_array(video_id, position)) FROM \
             (SELECT video_id, NULL AS position FROM favorites WHERE user_id = {p} \
             UNION ALL \
             SELECT video_id, position FROM watch_progress WHERE user_id = {p}))"
        ));
    } else {
        sql.push_str(", NULL");
    }
    sql.push_str(", (SELECT generation FROM catalog_generation)");
    let (videos, state, generation): (String, Option<String>, i64) =
        bind_all!(sqlx::query_as(sqlx::AssertSqlSafe(sql)), args)
            .fetch_one(pool)
            .await?;
    let state = state
        .map(|json| from_json::<UserStateRows>(&json))
        .transpose()?;
    Ok(Read {
        videos: from_json::<Vec<VideoRecord>>(&videos)?,
        state,
        generation,
    })
}
