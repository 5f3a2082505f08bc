//! The Redis connection pool (bb8-redis) shared by the rate limiter, and later the cache and the
//! job queue, with the key prefix that keeps deployments sharing one Redis apart.

use std::time::Duration;

use anyhow::Context as _;
use bb8_redis::{RedisConnectionManager, bb8};

use crate::error::{AppError, AppResult};

/// A pooled Redis client with a key namespace.
#[derive(Clone)]
pub struct Redis {
    pool: bb8::Pool<RedisConnectionManager>,
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
        let redis = Self {
            pool,
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
