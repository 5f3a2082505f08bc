//! Response cache with versioned scopes: Redis when configured (shared by every process), else
//! an in-process moka cache. Writers bump a scope's version after their commit; readers read the
//! version *before* loading, so an entry computed from old data is stored under the old version
//! and never served again — invalidation is immediate on every process, with no race.

use std::{
    collections::HashMap,
    future::Future,
    sync::{
        Arc, LazyLock, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::{Serialize, de::DeserializeOwned};

mod local;

use local::Local;

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
    /// Invalidations made by this process (see [`Versions`]).
    bumps: Arc<AtomicU64>,
}

#[derive(Clone)]
enum Backend {
    Disabled,
    Memory(Arc<Memory>),
    /// Shared entries in Redis, and the ones this process read or wrote kept in process under
    /// the version they were read at (so a request that knows the versions reads them from
    /// memory, and a bumped version makes them unreachable here too).
    Redis(Redis, Arc<Local>),
}

/// The versions of the scopes one request may read, read from Redis once, in the round trip
/// that checks the caller's session ([`crate::service::Accounts::authenticate`]). Used only
/// while this process has invalidated nothing since they were read: a request that writes
/// (or runs beside a write here) reads its versions again, so it sees its own writes.
#[derive(Clone, Debug)]
pub struct Versions {
    read: Arc<[(String, String)]>,
    /// This process's invalidation count when they were read.
    bumps: u64,
}

impl Versions {
    fn get(&self, scope: &str) -> Option<&str> {
        self.read
            .iter()
            .find(|(s, _)| s == scope)
            .map(|(_, v)| v.as_str())
    }
}

struct Memory {
    /// Random per process, so versions (which restart at 0) never repeat across restarts.
    epoch: u64,
    versions: Mutex<HashMap<String, u64>>,
    entries: Local,
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
                entries: Local::new(ttl, bytes),
            })),
            ttl,
            bumps: Arc::default(),
        }
    }

    /// A cache in Redis shared by every process, with about `bytes` of what this process read
    /// kept in process (valid only under the version it was read at).
    pub fn redis(redis: Redis, ttl: Duration, bytes: u64) -> Self {
        Self {
            backend: Backend::Redis(redis, Arc::new(Local::new(ttl, bytes))),
            ttl,
            bumps: Arc::default(),
        }
    }

    /// The Redis keys holding `scopes`' versions (for a caller that reads them together with
    /// other keys in one script, [`Self::SEED`]); `None` unless the cache is in Redis.
    pub fn version_keys(&self, scopes: &[&str]) -> Option<Vec<String>> {
        match &self.backend {
            Backend::Redis(redis, _) => Some(
                scopes
                    .iter()
                    .map(|scope| redis.key(&format!("cache:{scope}:version")))
                    .collect(),
            ),
            _ => None,
        }
    }

    /// `versions`, read for `scopes` (in order) from the keys [`Self::version_keys`] named.
    pub fn versions_read(&self, scopes: &[&str], versions: Vec<String>) -> Versions {
        Versions {
            read: scopes
                .iter()
                .map(|s| (*s).to_owned())
                .zip(versions)
                .collect(),
            bumps: self.bumps.load(Ordering::SeqCst),
        }
    }

    /// The version `known` holds for `scope`, if this process invalidated nothing since.
    fn known<'a>(&self, known: Option<&'a Versions>, scope: &str) -> Option<&'a str> {
        let known = known.filter(|k| k.bumps == self.bumps.load(Ordering::SeqCst))?;
        known.get(scope)
    }

    /// The Lua function `version(key)` that reads a version key, seeding a missing one.
    pub const SEED: &'static str = SEED;

    /// No caching at all (benchmarks of the uncached path).
    pub fn disabled() -> Self {
        Self {
            backend: Backend::Disabled,
            ttl: Duration::ZERO,
            bumps: Arc::default(),
        }
    }

    /// The value cached under `key` in `scope`, or `load()`'s result, which is then cached. A
    /// request that already read its scopes' versions (`known`, with its session check) reads
    /// an entry this process holds under them without any round trip.
    pub async fn get_or_load<T, F, Fut>(
        &self,
        known: Option<&Versions>,
        scope: &str,
        key: &str,
        load: F,
    ) -> AppResult<T>
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
                if let Some(value) = memory.entries.get::<T>(&full).await {
                    crate::monitoring::cache_lookup(true);
                    return Ok(value);
                }
                crate::monitoring::cache_lookup(false);
                let value = load().await?;
                memory.entries.insert(full, value.clone()).await;
                Ok(value)
            }
            Backend::Redis(redis, local) => {
                self.redis_get(redis, local, scope, self.known(known, scope), key, load)
                    .await
            }
        }
    }

    /// A Redis read: under the version the request already knows (from this process's
    /// entries when it holds one, else one `GET`), or with the scope's version read in the
    /// same round trip. A miss loads, stores in Redis and keeps the value in process under
    /// that version.
    async fn redis_get<T, F, Fut>(
        &self,
        redis: &Redis,
        local: &Local,
        scope: &str,
        known: Option<&str>,
        key: &str,
        load: F,
    ) -> AppResult<T>
    where
        T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
        F: FnOnce() -> Fut,
        Fut: Future<Output = AppResult<T>>,
    {
        if let Some(version) = known
            && let Some(value) = local.get::<T>(&format!("{scope}:{version}:{key}")).await
        {
            crate::monitoring::cache_lookup(true);
            return Ok(value);
        }
        // Redis down or slow: the cache is bypassed (the breaker makes that instant).
        let found = redis
            .bounded(async {
                let mut conn = redis.conn().await?;
                match known {
                    Some(version) => redis::cmd("GET")
                        .arg(redis.key(&format!("cache:{scope}:{version}:{key}")))
                        .query_async::<Option<Vec<u8>>>(&mut *conn)
                        .await
                        .map(|cached| (version.to_owned(), cached)),
                    None => {
                        GET.key(redis.key(&format!("cache:{scope}:version")))
                            .arg(redis.key(&format!("cache:{scope}:")))
                            .arg(format!(":{key}"))
                            .invoke_async::<(String, Option<Vec<u8>>)>(&mut *conn)
                            .await
                    }
                }
                .map_err(unavailable)
            })
            .await
            .map_err(|e| tracing::debug!(error = %e, "cache read failed"))
            .ok();
        let Some((version, cached)) = found else {
            crate::monitoring::cache_lookup(false);
            return load().await;
        };
        let local_key = format!("{scope}:{version}:{key}");
        if let Some(value) = cached.and_then(|b| serde_json::from_slice::<T>(&b).ok()) {
            crate::monitoring::cache_lookup(true);
            local.insert(local_key, value.clone()).await;
            return Ok(value);
        }
        crate::monitoring::cache_lookup(false);
        let value = load().await?;
        if let Ok(bytes) = serde_json::to_vec(&value) {
            let result = redis
                .bounded(async {
                    let mut conn = redis.conn().await?;
                    redis::cmd("SET")
                        .arg(redis.key(&format!("cache:{scope}:{version}:{key}")))
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
        local.insert(local_key, value.clone()).await;
        Ok(value)
    }

    /// Whether entries are kept at all.
    pub fn is_enabled(&self) -> bool {
        !matches!(self.backend, Backend::Disabled)
    }

    /// The current versions of `scopes`, as one string that changes whenever any of them is
    /// invalidated (and differs across restarts and Redis flushes). `None` when the cache is off
    /// or unreachable: then nothing can be validated against it. Versions the request already
    /// read (`known`) are not read again.
    pub async fn versions(&self, known: Option<&Versions>, scopes: &[&str]) -> Option<String> {
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
            Backend::Redis(redis, _) => {
                if let Some(read) = scopes
                    .iter()
                    .map(|scope| self.known(known, scope))
                    .collect::<Option<Vec<_>>>()
                {
                    return Some(format!("r.{}", read.join(".")));
                }
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
        self.bumps.fetch_add(1, Ordering::SeqCst);
        match &self.backend {
            Backend::Disabled => {}
            Backend::Memory(memory) => {
                if let Ok(mut versions) = memory.versions.lock() {
                    *versions.entry(scope.to_owned()).or_default() += 1;
                }
            }
            Backend::Redis(redis, _) => {
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
            .get_or_load(None, "s", "k", || async { Ok(1) })
            .await
            .expect("load");
        let cached: u32 = cache
            .get_or_load(None, "s", "k", || async { Ok(2) })
            .await
            .expect("hit");
        assert_eq!((first, cached), (1, 1));
        cache.invalidate("other").await;
        let still: u32 = cache
            .get_or_load(None, "s", "k", || async { Ok(3) })
            .await
            .expect("hit");
        assert_eq!(still, 1);
        cache.invalidate("s").await;
        let fresh: u32 = cache
            .get_or_load(None, "s", "k", || async { Ok(4) })
            .await
            .expect("miss");
        assert_eq!(fresh, 4);
    }

    #[tokio::test]
    async fn memory_cache_is_bounded_in_bytes() {
        let cache = Cache::memory(Duration::from_secs(60), 100_000);
        for i in 0..100 {
            let _: String = cache
                .get_or_load(None, "s", &i.to_string(), || async {
                    Ok("x".repeat(10_000))
                })
                .await
                .expect("load");
        }
        let Backend::Memory(memory) = &cache.backend else {
            panic!("a memory cache");
        };
        memory.entries.settle().await;
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
