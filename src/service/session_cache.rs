//! Verified sessions kept in memory, so the session check of every authenticated call costs no
//! database round trip — without giving up immediate revocation:
//!
//! - only a single-process deployment (the embedded SQLite default) uses it, where every
//!   revocation (logout, password reset, refresh-token reuse, profile change, deletion) happens
//!   in this process and removes the entries synchronously, before the revoking call returns;
//! - a generation counter closes the race of a reader that loaded a session just before a
//!   revocation and stores it just after: it re-checks the generation and drops its entry;
//! - deployments that may run several processes (PostgreSQL, Redis) check the database on every
//!   call: a cross-process notification could arrive after the next request, and revocation
//!   must be immediate.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::{
    domain::UserId,
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
    entries: moka::sync::Cache<String, Entry>,
    generation: AtomicU64,
}

/// How long an entry may live at most (bounds the staleness of changes made by other programs
/// on the same database, e.g. `createsuperuser` promoting a logged-in user).
const TTL: Duration = Duration::from_secs(60);

impl SessionCache {
    /// No caching: every call reads the database.
    pub fn disabled() -> Self {
        Self { inner: None }
    }

    /// A cache for a single process (the embedded SQLite deployment).
    pub fn local() -> Self {
        Self {
            inner: Some(Arc::new(Inner::new())),
        }
    }

    /// The cached entry for `sid`, if any.
    pub fn get(&self, sid: &str) -> Option<Entry> {
        self.inner.as_ref()?.entries.get(sid)
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
    pub async fn invalidate_user(&self, user_id: UserId) {
        self.invalidate(&format!("u:{user_id}")).await;
    }

    /// Forgets everything everywhere.
    pub async fn invalidate_all(&self) {
        self.invalidate("*").await;
    }

    async fn invalidate(&self, message: &str) {
        if let Some(inner) = &self.inner {
            inner.apply(message);
        }
    }
}

impl Inner {
    fn new() -> Self {
        Self {
            entries: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(TTL)
                .support_invalidation_closures()
                .build(),
            generation: AtomicU64::new(0),
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
                .invalidate_entries_if(move |_, entry| entry.1.id.get() == user);
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
