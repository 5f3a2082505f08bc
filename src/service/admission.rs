//! One Redis round trip per authenticated call (several processes sharing Redis): a single
//! script reads the stamps that say whether the caller's session is still trusted
//! ([`super::SessionCache`]), the versions of the cache scopes the call will read
//! ([`crate::cache::Versions`]) and charges the caller's rate limits. A cached read then needs
//! nothing else: no database query, no second Redis call.

use std::sync::LazyLock;

use crate::{
    cache::Cache,
    error::{AppError, AppResult},
    kv::Redis,
    ratelimit::{Cells, GCRA_LUA, Limit},
};

use super::session_cache::{STAMP_SEED, STAMP_TTL_SECS};

/// What a call reads and charges together with its session check.
#[derive(Clone, Debug, Default)]
pub struct Prefetch {
    /// Cache scopes whose versions the call reads.
    pub scopes: Vec<String>,
    /// Rate limits charged to the caller.
    pub limits: Vec<Limit>,
}

/// What the script answered.
#[derive(Debug)]
pub(crate) struct Admitted {
    /// The session's stamps, joined: equal to the stamp of an entry loaded under them.
    pub stamp: String,
    /// The scopes' versions, in the order asked.
    pub versions: Vec<String>,
    /// Milliseconds to wait before a limit admits the call; 0 when it was admitted.
    pub wait_ms: u64,
}

/// KEYS: 3 stamps, `ARGV[2]` cache versions, then one key per limit;
/// ARGV: the stamps' TTL, the number of versions, then interval and period per limit.
/// Limits are charged in order and the first that refuses stops (as separate checks would).
const ADMIT: &str = r"
local out = {}
for i = 1, 3 do out[i] = stamp(KEYS[i]) end
local versions = tonumber(ARGV[2])
for i = 4, 3 + versions do out[i] = version(KEYS[i]) end
local wait = 0
local first = 4 + versions
if #KEYS >= first then
  local now = now_ms()
  for i = first, #KEYS do
    local j = 3 + 2 * (i - first)
    wait = gcra(KEYS[i], tonumber(ARGV[j]), tonumber(ARGV[j + 1]), now, true)
    if wait > 0 then break end
  end
end
out[#out + 1] = tostring(wait)
return out
";

static SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&format!("{STAMP_SEED}{}{GCRA_LUA}{ADMIT}", Cache::SEED)));

/// Runs the script: `stamps` guard the session, `versions` are cache version keys, `cells` the
/// limits to charge.
pub(crate) async fn admit(
    redis: &Redis,
    stamps: &[String; 3],
    versions: &[String],
    cells: &[Cells],
) -> AppResult<Admitted> {
    let mut invocation = SCRIPT.prepare_invoke();
    for key in stamps.iter().chain(versions) {
        invocation.key(key);
    }
    invocation.arg(STAMP_TTL_SECS).arg(versions.len());
    for (key, interval, period) in cells {
        invocation.key(key).arg(*interval).arg(*period);
    }
    let mut answer = redis
        .bounded(async {
            let mut conn = redis.multiplexed()?;
            invocation
                .invoke_async::<Vec<String>>(&mut conn)
                .await
                .map_err(|e| AppError::Unavailable(format!("redis: {e}")))
        })
        .await?;
    let malformed = || AppError::Unavailable("redis: unexpected answer to the admission".into());
    if answer.len() != 3 + versions.len() + 1 {
        return Err(malformed());
    }
    let wait_ms = answer
        .pop()
        .and_then(|w| w.parse::<u64>().ok())
        .ok_or_else(malformed)?;
    let versions = answer.split_off(3);
    Ok(Admitted {
        stamp: answer.join("."),
        versions,
        wait_ms,
    })
}
