//! The Redis connection pool (bb8-redis) shared by the rate limiter, the cache, the job queue and
//! the status events, with the key prefix that keeps deployments sharing one Redis apart.

use std::time::Duration;

use anyhow::Context as _;
use bb8_redis::{RedisConnectionManager, bb8};

use crate::error::{AppError, AppResult};

/// A pooled Redis client with a key namespace.
#[derive(Clone)]
pub struct Redis {
    pool: bb8::Pool<RedisConnectionManager>,
    client: redis::Client,
    prefix: String,
}

impl Redis {
    /// Connects and checks the server answers.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let manager = RedisConnectionManager::new(url).context("parsing REDIS_URL")?;
        let pool = bb8::Pool::builder()
            .max_size(32)
            .connection_timeout(Duration::from_secs(3))
            .build(manager)
            .await
            .context("building the Redis pool")?;
        let client = redis::Client::open(url).context("parsing REDIS_URL")?;
        let redis = Self {
            pool,
            client,
            prefix: prefix.trim_end_matches(':').to_owned(),
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

    /// A pooled connection.
    pub async fn conn(&self) -> AppResult<bb8::PooledConnection<'_, RedisConnectionManager>> {
        self.pool
            .get()
            .await
            .map_err(|e| AppError::Unavailable(format!("redis: {e}")))
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
        let mut conn = self.conn().await?;
        let _: String = redis::cmd("PING")
            .query_async(&mut *conn)
            .await
            .map_err(|e| AppError::Unavailable(format!("redis: {e}")))?;
        Ok(())
    }
}
