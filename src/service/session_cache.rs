//! Verified sessions kept in memory, so the session check of every authenticated call costs no
//! database round trip — without giving up immediate revocation:
//!
//! - single process (the embedded SQLite default, [`SessionCache::local`]): every revocation
//!   (logout, password reset, refresh-token reuse, profile change, deletion) happens in this
//!   process and removes the entries synchronously, before the revoking call returns; a
//!   generation counter closes the race of a reader that loaded a session just before a
//!   revocation and stores it just after;
//! - several processes sharing Redis ([`SessionCache::shared`]): every revocation bumps a
//!   *stamp* in Redis (one for the session, one for its user, one for everyone) after its
//!   database commit; each call reads the three stamps in the one round trip it makes anyway
//!   ([`super::admission`]) and trusts an entry only if it was loaded under the same stamps.
//!   Stamps are read *before* loading, so an entry is never newer than its stamp. A call that
//!   cannot reach Redis checks the database and drops every entry of this process, so nothing
//!   loaded before an outage is trusted after it;
//! - PostgreSQL without Redis ([`SessionCache::disabled`]): the database on every call.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::{
    domain::UserId,
    kv::Redis,
    store::{SessionRecord, UserRecord},
};

/// A verified session and its user.
pub(crate) type Entry = Arc<(SessionRecord, UserRecord)>;

/// Handle to the session cache; cheap to clone.
#[derive(Clone)]
pub struct SessionCache {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    entries: moka::sync::Cache<String, Stamped>,
    generation: AtomicU64,
    /// Where the stamps live, when several processes serve.
    shared: Option<Redis>,
}

/// An entry and the stamps it was loaded under (shared mode).
#[derive(Clone)]
struct Stamped {
    entry: Entry,
    stamp: Option<Arc<str>>,
}

/// How long an entry may live at most (bounds the staleness of changes made by other programs
/// on the same database without going through this service).
const TTL: Duration = Duration::from_secs(60);

/// The same with stamps in Redis: shorter, as it also bounds how long a revocation whose stamp
/// could not be written (Redis unreachable from the revoking process only) goes unnoticed.
const SHARED_TTL: Duration = Duration::from_secs(10);

/// How long an unused stamp stays in Redis (a stamp that expired is seeded anew, which only
/// makes the next call read the database).
pub(crate) const STAMP_TTL_SECS: u64 = 2 * 24 * 3600;

/// Seeds a missing stamp with the server time in microseconds (never a value seen before).
pub(crate) const STAMP_SEED: &str = r"
local function stamp(key)
  local v = redis.call('GET', key)
  if not v then
    local t = redis.call('TIME')
    redis.call('SET', key, t[1] .. string.format('%06d', tonumber(t[2])), 'NX', 'EX', ARGV[1])
    v = redis.call('GET', key)
  end
  return v
end
";

static BUMP: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| {
    redis::Script::new(&format!(
        "{STAMP_SEED}stamp(KEYS[1])\nreturn redis.call('INCR', KEYS[1])"
    ))
});

impl SessionCache {
    /// No caching: every call reads the database.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// A cache for a single process (the embedded SQLite deployment).
    pub fn local() -> Self {
        Self {
            inner: Some(Arc::new(Inner::new(None))),
        }
    }

    /// A cache validated on every call by stamps in Redis, for several processes.
    pub fn shared(redis: Redis) -> Self {
        Self {
            inner: Some(Arc::new(Inner::new(Some(redis)))),
        }
    }

    /// The Redis keys of the stamps guarding `sid` of `user` (shared mode only), in the order
    /// their values make the stamp passed to [`Self::get_stamped`].
    pub(crate) fn stamp_keys(&self, sid: &str, user: UserId) -> Option<(Redis, [String; 3])> {
        let redis = self.inner.as_ref()?.shared.clone()?;
        let keys = [
            redis.key(&format!("auth:s:{sid}")),
            redis.key(&format!("auth:u:{user}")),
            redis.key("auth:all"),
        ];
        Some((redis, keys))
    }

    /// The cached entry for `sid`, if any (single-process mode).
    pub fn get(&self, sid: &str) -> Option<Entry> {
        let found = self.inner.as_ref()?.entries.get(sid)?;
        found.stamp.is_none().then_some(found.entry)
    }

    /// The cached entry for `sid` if it was loaded under `stamp` (shared mode).
    pub(crate) fn get_stamped(&self, sid: &str, stamp: &str) -> Option<Entry> {
        let found = self.inner.as_ref()?.entries.get(sid)?;
        (found.stamp.as_deref() == Some(stamp)).then_some(found.entry)
    }

    /// The current generation; pass it to [`Self::insert`] after loading from the database.
    pub fn generation(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.generation.load(Ordering::SeqCst))
    }

    /// Stores an entry loaded while the generation was `generation` (single-process mode).
    pub fn insert(&self, sid: &str, entry: Entry, generation: u64) {
        let Some(inner) = &self.inner else { return };
        if inner.shared.is_some() {
            return;
        }
        inner
            .entries
            .insert(sid.to_owned(), Stamped { entry, stamp: None });
        // An invalidation that ran while we were loading may have missed our entry.
        if inner.generation.load(Ordering::SeqCst) != generation {
            inner.entries.invalidate(sid);
        }
    }

    /// Stores an entry loaded after its stamps were read as `stamp` (shared mode).
    pub(crate) fn insert_stamped(&self, sid: &str, entry: Entry, stamp: &str) {
        if let Some(inner) = &self.inner {
            let stamp = Some(Arc::from(stamp));
            inner
                .entries
                .insert(sid.to_owned(), Stamped { entry, stamp });
        }
    }

    /// Drops every entry of this process (the stamps could not be read: nothing loaded before
    /// is trusted afterwards).
    pub(crate) fn forget_local(&self) {
        if let Some(inner) = &self.inner {
            inner.apply(None);
        }
    }

    /// Forgets one session everywhere.
    pub async fn invalidate_session(&self, sid: &str) {
        self.invalidate(&format!("s:{sid}")).await;
    }

    /// Forgets every session of a user everywhere.
    pub async fn invalidate_user(&self, user_id: UserId) {
        self.invalidate(&format!("u:{user_id}")).await;
    }

    /// Forgets everything everywhere.
    pub async fn invalidate_all(&self) {
        self.invalidate("all").await;
    }

    async fn invalidate(&self, what: &str) {
        let Some(inner) = &self.inner else { return };
        inner.apply(Some(what));
        if let Some(redis) = &inner.shared {
            bump(redis, &redis.key(&format!("auth:{what}"))).await;
        }
    }
}

/// Moves a stamp on, retrying briefly: every process stops trusting what it loaded under it.
async fn bump(redis: &Redis, key: &str) {
    let mut last_error = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(50 << attempt)).await;
        }
        let result = redis
            .bounded(async {
                let mut conn = redis.conn().await?;
                BUMP.key(key)
                    .arg(STAMP_TTL_SECS)
                    .invoke_async::<i64>(&mut *conn)
                    .await
                    .map_err(|e| crate::error::AppError::Unavailable(format!("redis: {e}")))
            })
            .await;
        match result {
            Ok(_) => return,
            Err(e) => last_error = e.to_string(),
        }
    }
    // Other processes see the revocation when their entries expire (SHARED_TTL) or when they
    // next fail to reach Redis; say so loudly.
    tracing::error!(error = %last_error, key, "session revocation could not be published");
}

impl Inner {
    fn new(shared: Option<Redis>) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(if shared.is_some() { SHARED_TTL } else { TTL })
                .support_invalidation_closures()
                .build(),
            generation: AtomicU64::new(0),
            shared,
        }
    }

    /// Forgets `s:<sid>`, `u:<user>`, or (`all` or `None`) everything in this process.
    fn apply(&self, what: Option<&str>) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        let what = what.unwrap_or("all");
        if let Some(sid) = what.strip_prefix("s:") {
            self.entries.invalidate(sid);
        } else if let Some(user) = what.strip_prefix("u:").and_then(|u| u.parse::<i64>().ok()) {
            let _ = self
                .entries
                .invalidate_entries_if(move |_, found| found.entry.1.id.get() == user);
        } else {
            self.entries.invalidate_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Timestamp;

    fn entry(sid: &str, user: i64) -> Entry {
        let now = Timestamp::now();
        Arc::new((
            SessionRecord {
                id: sid.into(),
                user_id: UserId::from_db(user),
                created_at: now,
                expires_at: now.plus_secs(60),
                revoked_at: None,
            },
            UserRecord {
                id: UserId::from_db(user),
                email: format!("u{user}@example.com"),
                password_hash: String::new(),
                is_active: true,
                is_superuser: false,
                is_guest: false,
                phone: String::new(),
                address: String::new(),
                created_at: now,
                last_login: None,
            },
        ))
    }

    #[tokio::test]
    async fn invalidation_by_session_user_and_all() {
        let cache = SessionCache::local();
        for (sid, user) in [("a", 1), ("b", 1), ("c", 2)] {
            cache.insert(sid, entry(sid, user), cache.generation());
        }
        assert!(cache.get("a").is_some());
        cache.invalidate_session("a").await;
        assert!(cache.get("a").is_none() && cache.get("b").is_some());
        cache.invalidate_user(UserId::from_db(1)).await;
        assert!(cache.get("b").is_none() && cache.get("c").is_some());
        cache.invalidate_all().await;
        assert!(cache.get("c").is_none());
    }

    #[tokio::test]
    async fn an_entry_loaded_before_a_revocation_is_not_kept() {
        let cache = SessionCache::local();
        let generation = cache.generation();
        // A revocation lands while the reader is still loading from the database.
        cache.invalidate_session("a").await;
        cache.insert("a", entry("a", 1), generation);
        assert!(cache.get("a").is_none());
    }

    #[test]
    fn a_disabled_cache_stores_nothing() {
        let cache = SessionCache::disabled();
        cache.insert("a", entry("a", 1), cache.generation());
        assert!(cache.get("a").is_none());
    }
}
