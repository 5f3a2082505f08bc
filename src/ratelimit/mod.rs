//! Rate limits: GCRA (the generic cell rate algorithm, as in governor and redis-cell) with one
//! semantics on two backends — a Lua script on Redis, so every process shares the counters, or an
//! in-process table when no Redis is configured. A `Rate` of N/period admits N requests at once,
//! then one every period/N.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use crate::{
    domain::Rate,
    error::{AppError, AppResult},
    kv::Redis,
};

/// Shared limiter; cheap to clone.
#[derive(Clone)]
pub struct RateLimiter {
    backend: Backend,
    enabled: bool,
}

#[derive(Clone)]
enum Backend {
    Memory(Arc<Memory>),
    /// Shared through Redis, with an in-process limiter for while Redis is away.
    Redis(Redis, Arc<Memory>),
}

struct Memory {
    epoch: Instant,
    /// Theoretical arrival time (ms since `epoch`) per key.
    tat: Mutex<HashMap<String, u64>>,
}

/// Whether a check spends a cell (a request) or only looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Count this request.
    Consume,
    /// Only tell whether a request would pass now.
    Peek,
}

/// A limit charged to one key (e.g. a user's calls per minute).
#[derive(Clone, Debug)]
pub struct Limit {
    /// What is counted (without the Redis prefix).
    pub key: String,
    /// How many per period.
    pub rate: Rate,
}

/// A limit as the GCRA counts it: its Redis key, the interval between cells and the period,
/// both in milliseconds.
pub type Cells = (String, u64, u64);

/// `rate` as (interval, period) in milliseconds.
fn cells(rate: Rate) -> (u64, u64) {
    let period_ms = u64::try_from(rate.period.as_millis()).unwrap_or(u64::MAX / 4);
    ((period_ms / u64::from(rate.limit)).max(1), period_ms)
}

/// The GCRA step for `KEYS[i]` with `interval` and `period` at `now` (ms), charging when it
/// admits; the wait in ms, 0 when admitted. Shared by the limiter's own script and
/// [`crate::service::admission`]'s.
pub(crate) const GCRA_LUA: &str = r"
local function gcra(key, interval, period, now, charge)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - period
  if allow_at > now then return allow_at - now end
  if charge then redis.call('SET', key, new_tat, 'PX', math.max(1, new_tat - now)) end
  return 0
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
";

const GCRA_SCRIPT: &str = r"
return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), now_ms(), ARGV[3] == '1')
";

impl RateLimiter {
    /// An in-process limiter.
    pub fn memory(enabled: bool) -> Self {
        Self {
            backend: Backend::Memory(Arc::new(Memory::new())),
            enabled,
        }
    }

    /// A limiter shared through Redis.
    pub fn redis(redis: Redis, enabled: bool) -> Self {
        Self {
            backend: Backend::Redis(redis, Arc::new(Memory::new())),
            enabled,
        }
    }

    /// `Ok` if a request under `key` is within `rate`; else [`AppError::RateLimited`] with the
    /// time until one would pass. While Redis is unreachable (or slow), the limit holds in
    /// this process instead: never off, and no request waits for a dead Redis.
    pub async fn check(&self, key: &str, rate: Rate, mode: Mode) -> AppResult<()> {
        if !self.enabled {
            return Ok(());
        }
        let (interval_ms, period_ms) = cells(rate);
        let wait_ms = match &self.backend {
            Backend::Memory(memory) => memory.check(key, interval_ms, period_ms, mode),
            Backend::Redis(redis, fallback) => {
                match redis
                    .bounded(redis_check(redis, key, interval_ms, period_ms, mode))
                    .await
                {
                    Ok(wait) => wait,
                    // Redis down: limits are never off, they hold per process meanwhile.
                    Err(_) => fallback.check(key, interval_ms, period_ms, mode),
                }
            }
        };
        if wait_ms == 0 {
            Ok(())
        } else {
            Err(Self::refused(wait_ms))
        }
    }

    /// `limits` as another Redis script charges them: `Some(vec![])` when limits are off,
    /// `None` when they are not kept in Redis (then [`Self::check`] each).
    pub fn redis_cells(&self, limits: &[Limit]) -> Option<Vec<Cells>> {
        if !self.enabled {
            return Some(Vec::new());
        }
        let Backend::Redis(redis, _) = &self.backend else {
            return None;
        };
        Some(
            limits
                .iter()
                .map(|limit| {
                    let (interval, period) = cells(limit.rate);
                    (redis.key(&format!("rl:{}", limit.key)), interval, period)
                })
                .collect(),
        )
    }

    /// The answer to a request that must wait `wait_ms`.
    pub fn refused(wait_ms: u64) -> AppError {
        crate::monitoring::rate_limited();
        AppError::RateLimited {
            retry_after: Duration::from_millis(wait_ms),
        }
    }

    /// Forgets `key` (e.g. the failed-login count after a successful login).
    pub async fn reset(&self, key: &str) {
        match &self.backend {
            Backend::Memory(memory) => {
                if let Ok(mut map) = memory.tat.lock() {
                    map.remove(key);
                }
            }
            Backend::Redis(redis, fallback) => {
                if let Ok(mut map) = fallback.tat.lock() {
                    map.remove(key);
                }
                let full = redis.key(&format!("rl:{key}"));
                let _ = redis
                    .bounded(async {
                        let mut conn = redis.conn().await?;
                        redis::cmd("DEL")
                            .arg(full)
                            .query_async::<()>(&mut *conn)
                            .await
                            .map_err(|e| AppError::Unavailable(format!("redis: {e}")))
                    })
                    .await;
            }
        }
    }
}

impl Memory {
    fn new() -> Self {
        Self {
            epoch: Instant::now(),
            tat: Mutex::new(HashMap::new()),
        }
    }

    fn check(&self, key: &str, interval: u64, period: u64, mode: Mode) -> u64 {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX / 4);
        let Ok(mut map) = self.tat.lock() else {
            return 0;
        };
        if map.len() > 100_000 {
            map.retain(|_, tat| *tat > now);
        }
        let tat = map.get(key).copied().unwrap_or(now).max(now);
        let new_tat = tat + interval;
        let allow_at = new_tat.saturating_sub(period);
        if allow_at > now {
            return allow_at - now;
        }
        if mode == Mode::Consume {
            map.insert(key.to_owned(), new_tat);
        }
        0
    }
}

async fn redis_check(
    redis: &Redis,
    key: &str,
    interval: u64,
    period: u64,
    mode: Mode,
) -> AppResult<u64> {
    // Built (and SHA1-hashed for EVALSHA) once, not on every request.
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(&format!("{GCRA_LUA}{GCRA_SCRIPT}")));
    let mut conn = redis.conn().await?;
    SCRIPT
        .key(redis.key(&format!("rl:{key}")))
        .arg(interval)
        .arg(period)
        .arg(if mode == Mode::Consume { "1" } else { "0" })
        .invoke_async::<u64>(&mut *conn)
        .await
        .map_err(|e| AppError::Unavailable(format!("redis: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(s: &str) -> Rate {
        s.parse().expect("rate")
    }

    #[tokio::test]
    async fn memory_limiter_admits_the_burst_then_refuses_with_a_delay() {
        let limiter = RateLimiter::memory(true);
        for _ in 0..3 {
            limiter
                .check("k", rate("3/min"), Mode::Consume)
                .await
                .expect("within limit");
        }
        let err = limiter
            .check("k", rate("3/min"), Mode::Consume)
            .await
            .expect_err("limited");
        match err {
            AppError::RateLimited { retry_after } => {
                assert!(
                    retry_after > Duration::from_secs(15) && retry_after <= Duration::from_secs(20)
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        // Other keys are independent; peeking never spends.
        limiter
            .check("other", rate("1/min"), Mode::Peek)
            .await
            .expect("peek");
        limiter
            .check("other", rate("1/min"), Mode::Peek)
            .await
            .expect("peek again");
        limiter.reset("k").await;
        limiter
            .check("k", rate("3/min"), Mode::Consume)
            .await
            .expect("reset");
    }

    #[tokio::test]
    async fn a_disabled_limiter_never_refuses() {
        let limiter = RateLimiter::memory(false);
        for _ in 0..100 {
            limiter
                .check("k", rate("1/hour"), Mode::Consume)
                .await
                .expect("disabled");
        }
    }
}
