//! Response cache with versioned scopes: Redis when configured (shared by every process), else
//! an in-process moka cache. Writers bump a scope's version after their commit; readers read the
//! version *before* loading, so an entry computed from old data is stored under the old version
//! and never served again — invalidation is immediate on every process, with no race.

use std::{
    any::Any,
    collections::HashMap,
    future::Future,
    sync::{Arc, LazyLock, Mutex},
    time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};

use crate::{domain::UserId, error::AppResult, kv::Redis};

/// Scope of every shared catalog entry: bumped by every write that changes what a video list
/// shows (the store does it, see [`crate::store::Store::with_cache`]).
pub const CATALOG: &str = "catalog";

/// What the in-process cache holds at most, in bytes (as weighed by its entries' JSON length).
pub const MEMORY_BYTES: u64 = 32 << 20;

/// Scope of one user's favorites and watch progress.
pub fn user_scope(user: UserId) -> String {
    format!("user:{user}")
}

/// Cache handle; cheap to clone.
#[derive(Clone)]
pub struct Cache {
    backend: Backend,
    ttl: Duration,
}

#[derive(Clone)]
enum Backend {
    Disabled,
    Memory(Arc<Memory>),
    Redis(Redis),
}

/// Typed values: a hit costs a clone, not a deserialisation.
type AnyValue = Arc<dyn Any + Send + Sync>;

/// A value with what it weighs: its key and its JSON form's length in bytes, a measure of the
/// heap it holds that needs no knowledge of its type.
#[derive(Clone)]
struct Entry {
    value: AnyValue,
    weight: u32,
}

struct Memory {
    /// Random per process, so versions (which restart at 0) never repeat across restarts.
    epoch: u64,
    versions: Mutex<HashMap<String, u64>>,
    entries: moka::future::Cache<String, Entry>,
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

/// A missing version key (new deployment, or evicted by a `maxmemory` policy) is seeded with the
/// server time in microseconds, so versions never run backwards onto old entries.
const SEED: &str = r"
local function version(key)
  local v = redis.call('GET', key)
  if not v then
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])), 'NX')
    v = redis.call('GET', key)
  end
  return v
end
";

/// Reads a scope's version and the entry under it in one round trip.
const GET_SCRIPT: &str = r"
local v = version(KEYS[1])
return {v, redis.call('GET', ARGV[1] .. v .. ARGV[2])}
";

/// Moves a scope to a new version.
const BUMP_SCRIPT: &str = r"
version(KEYS[1])
return redis.call('INCR', KEYS[1])
";

const VERSIONS_SCRIPT: &str = r"
local out = {}
for i, key in ipairs(KEYS) do out[i] = version(key) end
return out
";

// Built (and SHA1-hashed for EVALSHA) once, not on every cache access.
static GET: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&format!("{SEED}{GET_SCRIPT}")));
static VERSIONS: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&format!("{SEED}{VERSIONS_SCRIPT}")));
static BUMP: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&format!("{SEED}{BUMP_SCRIPT}")));

impl Cache {
    /// An in-process cache holding entries for `ttl`, about `bytes` of them at most (each
    /// weighed by its key and JSON length).
    pub fn memory(ttl: Duration, bytes: u64) -> Self {
        Self {
            backend: Backend::Memory(Arc::new(Memory {
                epoch: rand::random(),
                versions: Mutex::new(HashMap::new()),
                entries: moka::future::Cache::builder()
                    .max_capacity(bytes)
                    .weigher(|_, entry: &Entry| entry.weight)
                    .time_to_live(ttl)
                    .build(),
            })),
            ttl,
        }
    }

    /// A cache in Redis shared by every process.
    pub fn redis(redis: Redis, ttl: Duration) -> Self {
        Self {
            backend: Backend::Redis(redis),
            ttl,
        }
    }

    /// No caching at all (benchmarks of the uncached path).
    pub fn disabled() -> Self {
        Self {
            backend: Backend::Disabled,
            ttl: Duration::ZERO,
        }
    }

    /// The value cached under `key` in `scope`, or `load()`'s result, which is then cached.
    pub async fn get_or_load<T, F, Fut>(&self, scope: &str, key: &str, load: F) -> AppResult<T>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = AppResult<T>>,
    {
        match &self.backend {
            Backend::Disabled => load().await,
            Backend::Memory(memory) => {
                let version = memory.version(scope);
                let full = format!("{scope}:{version}:{key}");
                if let Some(entry) = memory.entries.get(&full).await
                    && let Some(value) = entry.value.downcast_ref::<T>()
                {
                    crate::monitoring::cache_lookup(true);
                    return Ok(value.clone());
                }
                crate::monitoring::cache_lookup(false);
                let value = load().await?;
                let entry = Entry {
                    weight: weight(&full, &value),
                    value: Arc::new(value.clone()) as AnyValue,
                };
                memory.entries.insert(full, entry).await;
                Ok(value)
            }
            Backend::Redis(redis) => {
                let version_key = redis.key(&format!("cache:{scope}:version"));
                let prefix = redis.key(&format!("cache:{scope}:"));
                let suffix = format!(":{key}");
                // Redis down or slow: the cache is bypassed (the breaker makes that instant).
                let found = redis
                    .bounded(async {
                        let mut conn = redis.conn().await?;
                        GET.key(&version_key)
                            .arg(&prefix)
                            .arg(&suffix)
                            .invoke_async::<(String, Option<Vec<u8>>)>(&mut *conn)
                            .await
                            .map_err(unavailable)
                    })
                    .await
                    .map_err(|e| tracing::debug!(error = %e, "cache read failed"))
                    .ok();
                let Some((version, cached)) = found else {
                    crate::monitoring::cache_lookup(false);
                    return load().await;
                };
                if let Some(value) = cached.and_then(|b| serde_json::from_slice(&b).ok()) {
                    crate::monitoring::cache_lookup(true);
                    return Ok(value);
                }
                crate::monitoring::cache_lookup(false);
                let value = load().await?;
                if let Ok(bytes) = serde_json::to_vec(&value) {
                    let result = redis
                        .bounded(async {
                            let mut conn = redis.conn().await?;
                            redis::cmd("SET")
                                .arg(format!("{prefix}{version}{suffix}"))
                                .arg(bytes)
                                .arg("EX")
                                .arg(self.ttl.as_secs().max(1))
                                .query_async::<()>(&mut *conn)
                                .await
                                .map_err(unavailable)
                        })
                        .await;
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "cache write failed");
                    }
                }
                Ok(value)
            }
        }
    }

    /// Whether entries are kept at all.
    pub fn is_enabled(&self) -> bool {
        !matches!(self.backend, Backend::Disabled)
    }

    /// The current versions of `scopes`, as one string that changes whenever any of them is
    /// invalidated (and differs across restarts and Redis flushes). `None` when the cache is off
    /// or unreachable: then nothing can be validated against it.
    pub async fn versions(&self, scopes: &[&str]) -> Option<String> {
        match &self.backend {
            Backend::Disabled => None,
            Backend::Memory(memory) => {
                let versions = memory.versions.lock().ok()?;
                let mut out = format!("m{:x}", memory.epoch);
                for scope in scopes {
                    let version = versions.get(*scope).copied().unwrap_or(0);
                    out.push_str(&format!(".{version}"));
                }
                Some(out)
            }
            Backend::Redis(redis) => {
                let mut invocation = VERSIONS.prepare_invoke();
                for scope in scopes {
                    invocation.key(redis.key(&format!("cache:{scope}:version")));
                }
                redis
                    .bounded(async {
                        let mut conn = redis.conn().await?;
                        invocation
                            .invoke_async::<Vec<String>>(&mut *conn)
                            .await
                            .map_err(unavailable)
                    })
                    .await
                    .map_err(|e| tracing::debug!(error = %e, "cache versions read failed"))
                    .ok()
                    .map(|v| format!("r.{}", v.join(".")))
            }
        }
    }

    /// Makes every entry of `scope` unreachable, on every process.
    pub async fn invalidate(&self, scope: &str) {
        match &self.backend {
            Backend::Disabled => {}
            Backend::Memory(memory) => {
                if let Ok(mut versions) = memory.versions.lock() {
                    *versions.entry(scope.to_owned()).or_default() += 1;
                }
            }
            Backend::Redis(redis) => {
                let key = redis.key(&format!("cache:{scope}:version"));
                let mut last_error = String::new();
                for attempt in 0..3u32 {
                    if attempt > 0 {
                        if redis.is_down() {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
                    }
                    let result = redis
                        .bounded(async {
                            let mut conn = redis.conn().await?;
                            BUMP.key(&key)
                                .invoke_async::<i64>(&mut *conn)
                                .await
                                .map(|_| ())
                                .map_err(unavailable)
                        })
                        .await
                        .map_err(|e| e.to_string());
                    match result {
                        Ok(()) => return,
                        Err(e) => last_error = e,
                    }
                }
                // The entries expire within the TTL; say so loudly.
                tracing::error!(error = %last_error, scope, "cache invalidation failed");
            }
        }
    }
}

fn unavailable(e: redis::RedisError) -> crate::error::AppError {
    crate::error::AppError::Unavailable(format!("redis: {e}"))
}

impl Memory {
    fn version(&self, scope: &str) -> u64 {
        self.versions
            .lock()
            .map(|v| v.get(scope).copied().unwrap_or(0))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_cache_serves_until_its_scope_is_invalidated() {
        let cache = Cache::memory(Duration::from_secs(60), 1 << 20);
        let first: u32 = cache
            .get_or_load("s", "k", || async { Ok(1) })
            .await
            .expect("load");
        let cached: u32 = cache
            .get_or_load("s", "k", || async { Ok(2) })
            .await
            .expect("hit");
        assert_eq!((first, cached), (1, 1));
        cache.invalidate("other").await;
        let still: u32 = cache
            .get_or_load("s", "k", || async { Ok(3) })
            .await
            .expect("hit");
        assert_eq!(still, 1);
        cache.invalidate("s").await;
        let fresh: u32 = cache
            .get_or_load("s", "k", || async { Ok(4) })
            .await
            .expect("miss");
        assert_eq!(fresh, 4);
    }

    #[tokio::test]
    async fn memory_cache_is_bounded_in_bytes() {
        let cache = Cache::memory(Duration::from_secs(60), 100_000);
        for i in 0..100 {
            let _: String = cache
                .get_or_load("s", &i.to_string(), || async { Ok("x".repeat(10_000)) })
                .await
                .expect("load");
        }
        let Backend::Memory(memory) = &cache.backend else {
            panic!("a memory cache");
        };
        memory.entries.run_pending_tasks().await;
        // 100 values of ~10 kB each: about 10 fit in 100 kB.
        assert!(
            memory.entries.weighted_size() <= 100_000,
            "{} bytes",
            memory.entries.weighted_size()
        );
        assert!(
            memory.entries.entry_count() <= 10,
            "{} entries",
            memory.entries.entry_count()
        );
    }
}
