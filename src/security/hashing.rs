//! Argon2id with OWASP's parameters (the crate defaults: m = 19 MiB, t = 2, p = 1), run on
//! tokio's blocking pool under a semaphore so a burst of logins cannot starve the executor or
//! exhaust memory.

use std::sync::Arc;

use anyhow::Context as _;
use argon2::{Argon2, PasswordHash, PasswordHasher as _, PasswordVerifier as _};
use tokio::sync::Semaphore;
use tracing::Instrument as _;

use crate::error::{AppError, AppResult};

/// Longest a hash may wait for a permit.
const QUEUE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Hashes and verifies passwords.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// A real hash of a random password, verified when an account does not exist so that the
    /// answer takes as long as for a wrong password (no account enumeration by timing).
    decoy: Arc<tokio::sync::OnceCell<String>>,
}

impl Hasher {
    /// At most `concurrency` hashes run at once.
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            decoy: Arc::new(tokio::sync::OnceCell::new()),
        }
    }

    /// Hashes `password` into a PHC string.
    pub async fn hash(&self, password: &str) -> AppResult<String> {
        let password = password.to_owned();
        self.blocking(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|h| h.to_string())
                .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))
        })
        .await
    }

    /// Whether `password` matches `phc`. An empty or malformed `phc` never matches (but still
    /// costs one hash, like a wrong password).
    pub async fn verify(&self, password: &str, phc: &str) -> AppResult<bool> {
        let usable = !phc.is_empty();
        let phc = if usable {
            phc.to_owned()
        } else {
            self.decoy_hash().await?
        };
        let password = password.to_owned();
        self.blocking(move || {
            let Ok(parsed) = PasswordHash::new(&phc) else {
                return Ok(false);
            };
            Ok(Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok())
        })
        .await
        .map(|ok| ok && usable)
    }

    /// Spends the time of one verification without an account (see `decoy`).
    pub async fn verify_decoy(&self, password: &str) -> AppResult<()> {
        let decoy = self.decoy_hash().await?;
        self.verify(password, &decoy).await.map(|_| ())
    }

    async fn decoy_hash(&self) -> AppResult<String> {
        self.decoy
            .get_or_try_init(|| async {
                let random: [u8; 16] = rand::random();
                self.hash(&hex::encode(random)).await
            })
            .await
            .cloned()
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> AppResult<T> {
        // A flood of logins must not queue without bound behind the hashing permits: past the
        // deadline the caller gets 503 and can retry.
        let _permit = tokio::time::timeout(QUEUE_DEADLINE, self.permits.acquire())
            .await
            .map_err(|_| AppError::Unavailable("password hashing is overloaded".into()))?
            .map_err(|_| AppError::Unavailable("hasher closed".into()))?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(f))
            .instrument(tracing::debug_span!("argon2"))
            .await
            .context("argon2 task panicked")?
            .map_err(AppError::Internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_verifies_only_its_password() {
        let hasher = Hasher::new(2);
        let phc = hasher.hash("correct horse").await.expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify("correct horse", &phc).await.expect("verify"));
        assert!(!hasher.verify("wrong horse", &phc).await.expect("verify"));
    }

    #[tokio::test]
    async fn empty_and_garbage_hashes_never_match() {
        let hasher = Hasher::new(1);
        assert!(!hasher.verify("", "").await.expect("verify"));
        assert!(!hasher.verify("x", "not-a-phc").await.expect("verify"));
    }
}
