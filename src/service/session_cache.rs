//! Verified sessions kept in memory, so the session check of every authenticated call costs no
//! database round trip — without giving up immediate revocation:
//!
//! - every revocation (logout, password reset, refresh-token reuse, profile change, deletion)
//!   removes the entries locally and, when Redis is configured, publishes the removal to every
//!   other process, which applies it as soon as Redis delivers it;
//! - a generation counter closes the race of a reader that loaded a session just before a
//!   revocation and stores it just after: it re-checks the generation and drops its entry;
//! - while the invalidation feed is down the cache is bypassed (and emptied when it comes back);
//! - with PostgreSQL but no Redis (several processes could share the database without a feed)
//!   there is no cache at all.

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::Duration,
};

use tokio_stream::StreamExt as _;

use crate::{
    kv::Redis,
    store::{SessionRecord, UserRecord},
};

/// A verified session and its user.
pub type Entry = Arc<(SessionRecord, UserRecord)>;

/// Handle to the session cache; cheap to clone.
#[derive(Clone)]
pub struct SessionCache {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    entries: moka::sync::Cache<String, Entry>,
    generation: AtomicU64,
    healthy: AtomicBool,
    feed: Option<(Redis, String)>,
}

/// How long an entry may live at most (bounds the staleness of changes made by programs that
/// publish nothing, e.g. `createsuperuser`, and of a revocation whose publication failed).
const TTL: Duration = Duration::from_secs(60);

impl SessionCache {
    /// No caching: every call reads the database.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// A cache for a single process (the embedded SQLite deployment).
    pub fn local() -> Self {
        Self {
            inner: Some(Arc::new(Inner::new(None, true))),
        }
    }

    /// A cache kept coherent across processes through Redis pub/sub.
    pub fn shared(redis: Redis) -> Self {
        let channel = redis.key("auth:invalidate");
        let inner = Arc::new(Inner::new(Some((redis, channel)), false));
        tokio::spawn(subscribe(Arc::downgrade(&inner)));
        Self { inner: Some(inner) }
    }

    /// The cached entry for `sid`, if the cache is usable.
    pub fn get(&self, sid: &str) -> Option<Entry> {
        let inner = self.inner.as_ref()?;
        if !inner.healthy.load(Ordering::SeqCst) {
            return None;
        }
        inner.entries.get(sid)
    }

    /// The current generation; pass it to [`Self::insert`] after loading from the database.
    pub fn generation(&self) -> u64 {
        self.inner
            .as_ref()
            .map_or(0, |i| i.generation.load(Ordering::SeqCst))
    }

    /// Stores an entry loaded while the generation was `generation`.
    pub fn insert(&self, sid: &str, entry: Entry, generation: u64) {
        let Some(inner) = &self.inner else { return };
        if !inner.healthy.load(Ordering::SeqCst) {
            return;
        }
        inner.entries.insert(sid.to_owned(), entry);
        // An invalidation that ran while we were loading may have missed our entry.
        if inner.generation.load(Ordering::SeqCst) != generation {
            inner.entries.invalidate(sid);
        }
    }

    /// Forgets one session everywhere.
    pub async fn invalidate_session(&self, sid: &str) {
        self.invalidate(&format!("s:{sid}")).await;
    }

    /// Forgets every session of a user everywhere.
    pub async fn invalidate_user(&self, user_id: i64) {
        self.invalidate(&format!("u:{user_id}")).await;
    }

    /// Forgets everything everywhere.
    pub async fn invalidate_all(&self) {
        self.invalidate("*").await;
    }

    async fn invalidate(&self, message: &str) {
        let Some(inner) = &self.inner else { return };
        inner.apply(message);
        if let Some((redis, channel)) = &inner.feed {
            let published = match redis.conn().await {
                Ok(mut conn) => redis::cmd("PUBLISH")
                    .arg(channel)
                    .arg(message)
                    .query_async::<i64>(&mut *conn)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(e) = published {
                // Redis is unreachable for us, so most likely for the other processes' feeds
                // too, which then bypass their caches; log it in case it is only us.
                tracing::error!(error = %e, "publishing a session revocation failed");
            }
        }
    }
}

impl Inner {
    fn new(feed: Option<(Redis, String)>, healthy: bool) -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(TTL)
                .support_invalidation_closures()
                .build(),
            generation: AtomicU64::new(0),
            healthy: AtomicBool::new(healthy),
            feed,
        }
    }

    fn apply(&self, message: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        if let Some(sid) = message.strip_prefix("s:") {
            self.entries.invalidate(sid);
        } else if let Some(user) = message
            .strip_prefix("u:")
            .and_then(|u| u.parse::<i64>().ok())
        {
            let _ = self
                .entries
                .invalidate_entries_if(move |_, entry| entry.1.id == user);
        } else {
            self.entries.invalidate_all();
        }
    }

    fn set_healthy(&self, healthy: bool) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.entries.invalidate_all();
        self.healthy.store(healthy, Ordering::SeqCst);
    }
}

/// Follows the invalidation channel for as long as the cache exists, reconnecting with backoff.
async fn subscribe(inner: std::sync::Weak<Inner>) {
    let mut delay = Duration::from_millis(200);
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let Some((redis, channel)) = strong.feed.clone() else {
            return;
        };
        drop(strong);
        match redis.pubsub(&channel).await {
            Ok(mut stream) => {
                if let Some(strong) = inner.upgrade() {
                    strong.set_healthy(true);
                }
                delay = Duration::from_millis(200);
                while let Some(message) = stream.next().await {
                    let Some(strong) = inner.upgrade() else {
                        return;
                    };
                    match message.get_payload::<String>() {
                        Ok(payload) => strong.apply(&payload),
                        Err(_) => strong.apply("*"),
                    }
                }
                tracing::warn!("session invalidation feed closed; bypassing the session cache");
            }
            Err(e) => {
                tracing::warn!(error = %e, "session invalidation feed unavailable; retrying");
            }
        }
        if let Some(strong) = inner.upgrade() {
            strong.set_healthy(false);
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(5));
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
                user_id: user,
                created_at: now,
                expires_at: now.plus_secs(60),
                revoked_at: None,
            },
            UserRecord {
                id: user,
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
        cache.invalidate_user(1).await;
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
