//! Page indexes: a list's total and the sort key of every [`ANCHOR_EVERY`]th row, built in one
//! statement and kept per filter and order while the catalog generation they were built at is
//! current. A numbered page then starts with a keyset seek from the nearest key before it and
//! skips fewer than [`ANCHOR_EVERY`] rows, and the total needs no count: neither grows with
//! the page number or the catalog.
//!
//! A search's matches have no index order to seek in (their rank is computed, and the text
//! index yields them unordered), so a search of at most [`EXACT_MAX`] matches keeps every
//! match's id in order: its numbered pages are then read by id, without ranking the matches
//! again. Its first request, and the first after any catalog write, still reads them all.

use std::sync::Arc;

use sqlx::Row as _;

use super::{
    Store, Timestamp,
    listing::{Arg, Plan, Read, SortKey, Start, VideoFilter, VideoQuery, bind_all},
    videos::{VIDEO_COLUMNS, VIDEO_FROM},
};
use crate::{
    domain::{Ordering, UserId, VideoId},
    error::AppResult,
};

/// Every how many rows an index keeps a key.
pub(super) const ANCHOR_EVERY: i64 = 256;

/// The most matches a search's index keeps every id of.
pub(super) const EXACT_MAX: i64 = 20_000;

/// Bytes of memory the page indexes of one process may take.
const INDEX_BYTES: u64 = 4 * 1024 * 1024;

/// What a page index is for: one filter in one order.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct PageKey {
    pub(super) filter: VideoFilter,
    pub(super) ordering: Ordering,
}

impl PageKey {
    /// The list `query` pages through (relevance without a search is the default order).
    pub(super) fn of(query: &VideoQuery) -> Self {
        let ordering = match (query.ordering, &query.filter.search) {
            (Ordering::Relevance, None) => Ordering::default(),
            (ordering, _) => ordering,
        };
        Self {
            filter: query.filter.clone(),
            ordering,
        }
    }
}

/// A list's total and every [`ANCHOR_EVERY`]th key, at one catalog generation.
#[derive(Debug)]
pub(crate) struct PageIndex {
    pub(super) generation: i64,
    pub(super) total: i64,
    /// `anchors[i]` is the key of row number `(i + 1) * ANCHOR_EVERY` (1-based).
    anchors: Vec<SortKey>,
    /// Every row's id in order (searches of at most [`EXACT_MAX`] matches).
    ids: Option<Vec<VideoId>>,
}

impl PageIndex {
    /// Where the row at `offset` (0-based) is reached from: the nearest kept key before it.
    pub(super) fn start(&self, offset: i64) -> Start {
        let chunk = usize::try_from(offset / ANCHOR_EVERY)
            .unwrap_or(0)
            .min(self.anchors.len());
        match chunk.checked_sub(1).and_then(|i| self.anchors.get(i)) {
            Some(key) => Start {
                after: Some(*key),
                offset: offset - i64::try_from(chunk).unwrap_or(0) * ANCHOR_EVERY,
            },
            None => Start {
                after: None,
                offset,
            },
        }
    }

    /// The ids of rows `offset..offset + limit` when every id is kept.
    pub(super) fn ids(&self, offset: i64, limit: i64) -> Option<&[VideoId]> {
        let ids = self.ids.as_deref()?;
        let at = |n: i64| usize::try_from(n).unwrap_or(0).min(ids.len());
        ids.get(at(offset)..at(offset.saturating_add(limit)))
    }

    /// Whether every row's id is kept (a page may have been read from them).
    pub(super) fn is_exact(&self) -> bool {
        self.ids.is_some()
    }

    fn bytes(&self) -> u32 {
        let bytes = 64
            + self.anchors.len() * std::mem::size_of::<SortKey>()
            + self.ids.as_ref().map_or(0, Vec::len) * std::mem::size_of::<VideoId>();
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// The page indexes of one process, bounded in bytes, and one lock per list being built, so
/// that the requests arriving after a catalog write wait for one build instead of each
/// reading every row again.
#[derive(Clone)]
pub(crate) struct PageIndexes {
    built: moka::sync::Cache<PageKey, Arc<PageIndex>>,
    building: moka::sync::Cache<PageKey, Arc<tokio::sync::Mutex<()>>>,
    builds: Arc<std::sync::atomic::AtomicU64>,
}

impl PageIndexes {
    pub(super) fn new() -> Self {
        Self {
            built: moka::sync::Cache::builder()
                .max_capacity(INDEX_BYTES)
                .weigher(|key: &PageKey, index: &Arc<PageIndex>| {
                    let search = key.filter.search.as_ref().map_or(0, |q| q.as_str().len());
                    index
                        .bytes()
                        .saturating_add(u32::try_from(search).unwrap_or(u32::MAX))
                })
                .build(),
            building: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(std::time::Duration::from_secs(60))
                .build(),
            builds: Arc::default(),
        }
    }
}

impl Store {
    /// How many page indexes this store has built (each reads every row of its list).
    pub fn page_index_builds(&self) -> u64 {
        self.pages.builds.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `key`'s index: the one kept, unless `generation` is given and the kept one was built at
    /// another; else built once however many requests ask at the same time.
    pub(super) async fn page_index(
        &self,
        key: &PageKey,
        generation: Option<i64>,
    ) -> AppResult<Arc<PageIndex>> {
        let kept = || {
            self.pages
                .built
                .get(key)
                .filter(|index| generation.is_none_or(|g| index.generation == g))
        };
        if let Some(index) = kept() {
            return Ok(index);
        }
        let lock = self
            .pages
            .building
            .get_with_by_ref(key, || Arc::new(tokio::sync::Mutex::new(())));
        let _building = lock.lock().await;
        // Built by the request this one waited for?
        if let Some(index) = kept() {
            return Ok(index);
        }
        self.build_page_index(key).await
    }

    /// Builds `key`'s index in one statement (the generation, the total and every
    /// [`ANCHOR_EVERY`]th key — every key of a search with at most [`EXACT_MAX`] matches —
    /// read in one snapshot) and keeps it.
    async fn build_page_index(&self, key: &PageKey) -> AppResult<Arc<PageIndex>> {
        self.pages
            .builds
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        crate::monitoring::page_index_built();
        let plan = Plan::new(self.dialect(), key);
        let exact = key.filter.search.is_some();
        let sql = format!(
            "SELECT g.generation, a.total, a.sort_key, a.id, a.search_rank, a.rn \
             FROM catalog_generation g LEFT JOIN ( \
               SELECT total, rn, sort_key, id, search_rank FROM ( \
                 SELECT v.id, v.{column} AS sort_key, {rank} AS search_rank, \
                   row_number() OVER (ORDER BY {order}) AS rn, COUNT(*) OVER () AS total \
                 FROM videos v{filter}) w \
               WHERE w.rn % {ANCHOR_EVERY} = 0 OR w.rn = 1{every} \
             ) a ON 1 = 1 ORDER BY a.rn",
            column = key.ordering.column(),
            rank = plan.rank_column(),
            order = plan.order_by_expr(),
            filter = plan.where_sql(),
            every = if exact {
                format!(" OR w.total <= {EXACT_MAX}")
            } else {
                String::new()
            },
        );
        let rows = on_pool!(self, pool => {
            bind_all!(sqlx::query(sqlx::AssertSqlSafe(sql)), plan.sql.args)
                .fetch_all(pool)
                .await?
                .iter()
                .map(|row| {
                    Ok::<_, sqlx::Error>((
                        row.try_get::<i64, _>(0)?,
                        row.try_get::<Option<i64>, _>(1)?,
                        row.try_get::<Option<Timestamp>, _>(2)?,
                        row.try_get::<Option<VideoId>, _>(3)?,
                        row.try_get::<Option<i64>, _>(4)?,
                        row.try_get::<Option<i64>, _>(5)?,
                    ))
                })
                .collect::<Result<Vec<_>, _>>()?
        });
        let generation = rows.first().map_or(0, |row| row.0);
        let total = rows.first().and_then(|row| row.1).unwrap_or(0);
        let anchors = rows
            .iter()
            // The first row is there for the total; the keys kept are every ANCHOR_EVERYth.
            .filter(|row| row.5.is_some_and(|rn| rn % ANCHOR_EVERY == 0))
            .filter_map(|(_, _, at, id, rank, _)| {
                Some(SortKey {
                    rank: (*rank)?,
                    micros: (*at)?.micros(),
                    id: (*id)?,
                })
            })
            .collect::<Vec<_>>();
        let ids = (exact && total <= EXACT_MAX)
            .then(|| rows.iter().filter_map(|row| row.3).collect::<Vec<_>>());
        let index = Arc::new(PageIndex {
            generation,
            total,
            anchors,
            ids,
        });
        self.pages.built.insert(key.clone(), Arc::clone(&index));
        Ok(index)
    }
}

impl Store {
    /// How many videos match `key`'s filter.
    pub(super) async fn count(&self, key: &PageKey) -> AppResult<i64> {
        let plan = Plan::new(self.dialect(), key);
        let sql = format!("SELECT COUNT(*) FROM videos v{}", plan.where_sql());
        Ok(on_pool!(self, pool => {
            let (total,): (i64,) = bind_all!(
                sqlx::query_as(sqlx::AssertSqlSafe(sql)),
                plan.sql.args
            )
            .fetch_one(pool)
            .await?;
            total
        }))
    }

    /// The catalog's generation now.
    pub(super) async fn catalog_generation(&self) -> AppResult<i64> {
        Ok(on_pool!(self, pool => {
            let (generation,): (i64,) =
                sqlx::query_as("SELECT generation FROM catalog_generation")
                    .fetch_one(pool)
                    .await?;
            generation
        }))
    }

    /// Reads the rows of `ids`, in that order (a page of a search whose index keeps every id).
    /// The statement's text depends only on how many ids there are, so it is prepared once.
    pub(super) async fn read_ids(
        &self,
        ids: &[VideoId],
        state_of: Option<UserId>,
    ) -> AppResult<Read> {
        let args: Vec<Arg> = ids.iter().map(|id| Arg::I64(id.get())).collect();
        let (list, position) = if ids.is_empty() {
            ("NULL".to_owned(), "0".to_owned())
        } else {
            let list = (1..=ids.len())
                .map(|n| format!("${n}"))
                .collect::<Vec<_>>()
                .join(",");
            let arms: String = (1..=ids.len())
                .map(|n| format!(" WHEN ${n} THEN {n}"))
                .collect();
            (list, format!("CASE v.id{arms} END"))
        };
        let select = format!(
            "SELECT {}, {position} AS search_rank, \
             (SELECT generation FROM catalog_generation) AS catalog_generation \
             {VIDEO_FROM} WHERE v.id IN ({list}) ORDER BY search_rank",
            *VIDEO_COLUMNS,
        );
        self.run_page(&select, "search_rank", args, state_of).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(total: i64) -> PageIndex {
        let anchors = (1..=total / ANCHOR_EVERY)
            .map(|n| SortKey {
                rank: 0,
                micros: -n,
                id: VideoId::from_db(n * ANCHOR_EVERY),
            })
            .collect();
        PageIndex {
            generation: 1,
            total,
            anchors,
            ids: None,
        }
    }

    #[test]
    fn a_search_index_with_every_id_slices_pages_from_them() {
        let ids: Vec<VideoId> = (1..=45).map(VideoId::from_db).collect();
        let exact = PageIndex {
            ids: Some(ids),
            ..index(45)
        };
        let page = |offset, limit| {
            exact
                .ids(offset, limit)
                .map(|ids| ids.iter().map(|id| id.get()).collect::<Vec<_>>())
        };
        assert_eq!(page(0, 3), Some(vec![1, 2, 3]));
        assert_eq!(page(20, 21), Some((21..=41).collect()));
        assert_eq!(page(40, 21), Some((41..=45).collect()));
        assert_eq!(page(45, 21), Some(Vec::new()));
        assert_eq!(page(900, 21), Some(Vec::new()));
        assert!(exact.is_exact());
        assert_eq!(index(45).ids(0, 3), None);
    }

    #[test]
    fn a_numbered_page_starts_from_the_nearest_key_before_it() {
        let index = index(1000);
        assert_eq!(
            index.start(0),
            Start {
                after: None,
                offset: 0
            }
        );
        assert_eq!(index.start(255).offset, 255);
        assert_eq!(index.start(255).after, None);
        let at_256 = index.start(256);
        assert_eq!(at_256.after.map(|k| k.id.get()), Some(256));
        assert_eq!(at_256.offset, 0);
        let deep = index.start(900);
        assert_eq!(deep.after.map(|k| k.id.get()), Some(768));
        assert_eq!(deep.offset, 900 - 768);
        // Past the last key: from the last key.
        let past = index.start(5000);
        assert_eq!(past.after.map(|k| k.id.get()), Some(768));
        assert_eq!(past.offset, 5000 - 768);
        assert_eq!(
            super::PageIndex {
                anchors: Vec::new(),
                ..index
            }
            .start(900)
            .offset,
            900
        );
    }
}
