//! The entries a process keeps in memory: typed values (a hit costs a clone, not a
//! deserialisation), bounded in bytes as weighed by their JSON length.

use std::{any::Any, sync::Arc, time::Duration};

use serde::Serialize;

/// Typed values: a hit costs a clone, not a deserialisation.
type AnyValue = Arc<dyn Any + Send + Sync>;

/// A value with what it weighs: its key and its JSON form's length in bytes, a measure of the
/// heap it holds that needs no knowledge of its type.
#[derive(Clone)]
struct Entry {
    value: AnyValue,
    weight: u32,
}

/// Typed entries in this process, bounded in bytes, keyed by `scope:version:key`.
pub(super) struct Local(moka::future::Cache<String, Entry>);

impl Local {
    pub(super) fn new(ttl: Duration, bytes: u64) -> Self {
        Self(
            moka::future::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, entry: &Entry| entry.weight)
                .time_to_live(ttl)
                .build(),
        )
    }

    pub(super) async fn get<T: Clone + 'static>(&self, key: &str) -> Option<T> {
        let entry = self.0.get(key).await?;
        entry.value.downcast_ref::<T>().cloned()
    }

    pub(super) async fn insert<T: Serialize + Send + Sync + 'static>(&self, key: String, value: T) {
        let entry = Entry {
            weight: weight(&key, &value),
            value: Arc::new(value) as AnyValue,
        };
        self.0.insert(key, entry).await;
    }
}

/// Counts the bytes written to it.
struct ByteCount(usize);

impl std::io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// What an entry weighs: `key` and `value`'s JSON length, counted without building it.
fn weight(key: &str, value: &impl Serialize) -> u32 {
    let mut count = ByteCount(key.len());
    // A value that does not serialise is weighed by its key alone.
    let _ = serde_json::to_writer(&mut count, value);
    u32::try_from(count.0).unwrap_or(u32::MAX)
}

#[cfg(test)]
impl Local {
    pub(super) async fn settle(&self) {
        self.0.run_pending_tasks().await;
    }

    pub(super) fn weighted_size(&self) -> u64 {
        self.0.weighted_size()
    }

    pub(super) fn entry_count(&self) -> u64 {
        self.0.entry_count()
    }
}
