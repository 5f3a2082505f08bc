//! Page indexes: a list's total and the sort key of every [`ANCHOR_EVERY`]th row, built in one
//! statement and kept per filter and order while the catalog generation they were built at is
//! current. A numbered page then starts with a keyset seek from the nearest key before it and
//! skips fewer than [`ANCHOR_EVERY`] rows, and the total needs no count: neither grows with
//! the page number or the catalog.

use std::sync::Arc;

use sqlx::Row as _;

use super::{
    Store, Timestamp,
    listing::{Arg, Plan, SortKey, Start, VideoFilter, VideoQuery, bind_all},
};
use crate::{
    domain::{Ordering, VideoId},
    error::AppResult,
};

/// Every how many rows an index keeps a key.
pub(super) const ANCHOR_EVERY: i64 = 256;

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

    fn bytes(&self) -> u32 {
        let bytes = 64 + self.anchors.len() * std::mem::size_of::<SortKey>();
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }
}

/// The page indexes of one process, bounded in bytes.
#[derive(Clone)]
pub(crate) struct PageIndexes(moka::sync::Cache<PageKey, Arc<PageIndex>>);

impl PageIndexes {
    pub(super) fn new() -> Self {
        Self(
            moka::sync::Cache::builder()
                .max_capacity(INDEX_BYTES)
                .weigher(|key: &PageKey, index: &Arc<PageIndex>| {
                    let search = key.filter.search.as_ref().map_or(0, |q| q.as_str().len());
                    index
                        .bytes()
                        .saturating_add(u32::try_from(search).unwrap_or(u32::MAX))
                })
                .build(),
        )
    }

    pub(super) fn get(&self, key: &PageKey) -> Option<Arc<PageIndex>> {
        self.0.get(key)
    }
}

impl Store {
    /// Builds `key`'s index in one statement (the generation, the total and every
    /// [`ANCHOR_EVERY`]th key, read in one snapshot) and keeps it.
    pub(super) async fn build_page_index(&self, key: &PageKey) -> AppResult<Arc<PageIndex>> {
        let plan = Plan::new(self.dialect(), key);
        let sql = format!(
            "SELECT g.generation, a.total, a.sort_key, a.id, a.search_rank \
             FROM catalog_generation g LEFT JOIN ( \
               SELECT total, rn, sort_key, id, search_rank FROM ( \
                 SELECT v.id, v.{column} AS sort_key, {rank} AS search_rank, \
                   row_number() OVER (ORDER BY {order}) AS rn, COUNT(*) OVER () AS total \
                 FROM videos v{filter}) w \
               WHERE w.rn % {ANCHOR_EVERY} = 0 OR w.rn = 1 \
             ) a ON 1 = 1 ORDER BY a.rn",
            column = key.ordering.column(),
            rank = plan.rank_column(),
            order = plan.order_by_expr(),
            filter = plan.where_sql(),
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
                    ))
                })
                .collect::<Result<Vec<_>, _>>()?
        });
        let generation = rows.first().map_or(0, |row| row.0);
        let total = rows.first().and_then(|row| row.1).unwrap_or(0);
        let anchors = rows
            .iter()
            .filter_map(|(_, _, at, id, rank)| {
                Some(SortKey {
                    rank: (*rank)?,
                    micros: (*at)?.micros(),
                    id: (*id)?,
                })
            })
            // The first row is there for the total; the keys kept are every ANCHOR_EVERYth.
            .skip(1)
            .collect::<Vec<_>>();
        let index = Arc::new(PageIndex {
            generation,
            total,
            anchors,
        });
        self.pages.0.insert(key.clone(), Arc::clone(&index));
        Ok(index)
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
        }
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
