//! The Redis connection pool (bb8-redis) shared by the rate limiter, the cache, the job queue and
//! the status events, with the key prefix that keeps deployments sharing one Redis apart.
//!
//! Every pooled call is bounded by a short timeout (`REDIS_TIMEOUT_MS`), and a circuit breaker
//! stands in front of the pool: after a few failures in a row Redis counts as down, calls fail
//! at once for a few seconds (so a dead Redis costs a request nothing), then one call tries it
//! again. Callers fall back to their in-process equivalents meanwhile. The breaker logs when it
//! opens and when Redis is back, not for every request.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context as _;
use bb8_redis::{RedisConnectionManager, bb8};

use crate::error::{AppError, AppResult};

/// A pooled Redis client with a key namespace.
#[derive(Clone)]
pub struct Redis {
    pool: bb8::Pool<RedisConnectionManager>,
    /// One multiplexed connection (reconnecting by itself) for the call every request makes
    /// ([`crate::service::admission`]): concurrent requests share its socket, their commands
    /// pipelined, instead of each taking a pooled connection.
    shared: Arc<redis::aio::ConnectionManager>,
    client: Arc<redis::Client>,
    prefix: String,
    breaker: Arc<Breaker>,
}

/// Failures in a row that open the breaker.
const TRIP_AFTER: u32 = 3;
/// How long an open breaker refuses calls before one may try Redis again.
const OPEN_FOR: Duration = Duration::from_secs(5);

/// The call timeout, consecutive failures, and until when calls are refused.
struct Breaker {
    timeout: Duration,
    failures: AtomicU32,
    /// Failed calls since start (reported by `/readyz`).
    failed_total: std::sync::atomic::AtomicU64,
    open_until: Mutex<Option<Instant>>,
}

impl Breaker {
    fn allows(&self) -> bool {
        let Ok(mut open) = self.open_until.lock() else {
            return true;
        };
        match *open {
            Some(until) if Instant::now() < until => false,
            Some(_) => {
                // Half open: this call tries Redis; a failure opens the breaker again.
                *open = Some(Instant::now() + OPEN_FOR);
                true
            }
            None => true,
        }
    }

    fn success(&self) {
        self.failures.store(0, Ordering::Relaxed);
        if let Ok(mut open) = self.open_until.lock()
            && open.take().is_some()
        {
            tracing::info!("Redis is reachable again");
        }
    }

    fn failure(&self, why: &str) {
        self.failed_total.fetch_add(1, Ordering::Relaxed);
        let failures = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if failures >= TRIP_AFTER
            && let Ok(mut open) = self.open_until.lock()
        {
            if open.is_none() {
                tracing::error!(
                    error = why,
                    "Redis unavailable: using in-process limits and no shared cache until it returns"
                );
            }
            *open = Some(Instant::now() + OPEN_FOR);
        }
    }

    fn is_open(&self) -> bool {
        self.open_until
            .lock()
            .map(|open| open.is_some_and(|until| Instant::now() < until))
            .unwrap_or(false)
    }
}

impl Redis {
    /// Connects and checks the server answers; each pooled call may take at most `timeout`.
    pub async fn connect(url: &str, prefix: &str, timeout: Duration) -> anyhow::Result<Self> {
        let manager = RedisConnectionManager::new(url).context("parsing REDIS_URL")?;
        let pool = bb8::Pool::builder()
            .max_size(32)
            .connection_timeout(timeout)
            // Connections are made in the background, not by a request waiting for one.
            .min_idle(Some(2))
            .build(manager)
            .await
            .context("building the Redis pool")?;
        let client = redis::Client::open(url).context("parsing REDIS_URL")?;
        let shared = redis::aio::ConnectionManager::new_lazy_with_config(
            client.clone(),
            redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Some(timeout))
                .set_response_timeout(Some(timeout))
                .set_number_of_retries(1),
        )
        .map(Arc::new)
        .context("building the shared Redis connection")?;
        let redis = Self {
            pool,
            shared,
            client: Arc::new(client),
            prefix: prefix.trim_end_matches(':').to_owned(),
            breaker: Arc::new(Breaker {
                timeout,
                failures: AtomicU32::new(0),
                failed_total: std::sync::atomic::AtomicU64::new(0),
                open_until: Mutex::new(None),
            }),
        };
        redis
            .ping()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("connecting to Redis")?;
        Ok(redis)
    }

    /// `prefix:part`.
    pub fn key(&self, part: &str) -> String {
        format!("{}:{part}", self.prefix)
    }

    /// A pooled connection (refused at once while the breaker is open). Use it inside
    /// [`Redis::bounded`].
    pub async fn conn(&self) -> AppResult<bb8::PooledConnection<'_, RedisConnectionManager>> {
        if !self.breaker.allows() {
            return Err(AppError::Unavailable(
                "redis: unavailable (breaker open)".into(),
            ));
        }
        self.pool
            .get()
            .await
            .map_err(|e| AppError::Unavailable(format!("redis: {e}")))
    }

    /// The shared multiplexed connection (use it inside [`Redis::bounded`]; refused at once
    /// while the breaker is open).
    pub fn multiplexed(&self) -> AppResult<redis::aio::ConnectionManager> {
        if !self.breaker.allows() {
            return Err(AppError::Unavailable(
                "redis: unavailable (breaker open)".into(),
            ));
        }
        Ok(redis::aio::ConnectionManager::clone(&self.shared))
    }

    /// Runs `call` (which takes its connection from [`Redis::conn`]) within the call timeout,
    /// counting its outcome on the breaker.
    pub async fn bounded<T>(
        &self,
        call: impl std::future::Future<Output = AppResult<T>>,
    ) -> AppResult<T> {
        if self.breaker.is_open() {
            return Err(AppError::Unavailable(
                "redis: unavailable (breaker open)".into(),
            ));
        }
        match tokio::time::timeout(self.breaker.timeout, call).await {
            Ok(Ok(value)) => {
                self.breaker.success();
                Ok(value)
            }
            Ok(Err(e)) => {
                self.breaker.failure(&e.to_string());
                Err(e)
            }
            Err(_) => {
                self.breaker.failure("timed out");
                Err(AppError::Unavailable(format!(
                    "redis: no answer within {} ms",
                    self.breaker.timeout.as_millis()
                )))
            }
        }
    }

    /// Whether Redis counts as down right now.
    pub fn is_down(&self) -> bool {
        self.breaker.is_open()
    }

    /// Redis calls that failed or timed out since this process started.
    pub fn failed_calls(&self) -> u64 {
        self.breaker.failed_total.load(Ordering::Relaxed)
    }

    /// A connection of its own with no response timeout, for blocking reads (`XREADGROUP …
    /// BLOCK`) and pub/sub: a pooled connection gives up after 500 ms while the server still
    /// holds the read, and the next entry would go to that dead read.
    pub async fn dedicated(&self) -> AppResult<redis::aio::MultiplexedConnection> {
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(None);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| AppError::Unavailable(format!("redis: {e}")))
    }

    /// A pub/sub connection.
    pub async fn pubsub(&self) -> AppResult<redis::aio::PubSub> {
        self.client
            .get_async_pubsub()
            .await
            .map_err(|e| AppError::Unavailable(format!("redis: {e}")))
    }

    /// Round trip to the server (readiness).
    pub async fn ping(&self) -> AppResult<()> {
        // The readiness probe tries Redis even while the breaker is open: it is how a
        // recovery is seen (and it closes the breaker).
        let ping = async {
            let mut conn = self
                .pool
                .get()
                .await
                .map_err(|e| AppError::Unavailable(format!("redis: {e}")))?;
            let _: String = redis::cmd("PING")
                .query_async(&mut *conn)
                .await
                .map_err(|e| AppError::Unavailable(format!("redis: {e}")))?;
            Ok::<(), AppError>(())
        };
        match tokio::time::timeout(self.breaker.timeout.max(Duration::from_millis(500)), ping).await
        {
            Ok(Ok(())) => {
                self.breaker.success();
                Ok(())
            }
            Ok(Err(e)) => {
                self.breaker.failure(&e.to_string());
                Err(e)
            }
            Err(_) => {
                self.breaker.failure("timed out");
                Err(AppError::Unavailable("redis: no answer".into()))
            }
        }
    }
}
