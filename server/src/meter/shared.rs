//! The ledger's counters in Redis, shared by every replica: reserving checks and takes room
//! on all of a call's counters in one Lua script (atomic in Redis), settling moves a
//! reservation to spend in another. A counter is a hash (`used`, `reserved`) per limit,
//! scope member and window, expiring an hour after its window ends.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::resp::{Client, RedisError, Reply};

/// What the gateway does when Redis cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Refuse calls with 503 until Redis answers again (budgets cannot be overrun).
    #[default]
    FailClosed,
    /// Let calls through unmetered, logging each failure.
    FailOpen,
}

/// Where budget counters live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `redis://host:port` of a Redis shared by every replica; counters stay in this
    /// process (and `budget_state_file`) when unset.
    pub redis_url: Option<String>,
    /// What happens while Redis cannot be reached.
    pub on_error: OnError,
}

/// Checks every counter, then reserves on all of them; or names the first without room.
/// KEYS: counters. ARGV: for each counter its limit, the amount, and when it expires.
/// Returns {0, taken...} or {index, taken}.
const RESERVE: &str = r"
local taken = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[i * 3 - 2])
  local amount = tonumber(ARGV[i * 3 - 1])
  local h = redis.call('HMGET', KEYS[i], 'used', 'reserved')
  local t = (tonumber(h[1]) or 0) + (tonumber(h[2]) or 0)
  if t + amount > limit then
    return {i, tostring(t)}
  end
  taken[i] = tostring(t)
end
for i = 1, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', ARGV[i * 3 - 1])
  redis.call('EXPIREAT', KEYS[i], ARGV[i * 3])
end
return {0, unpack(taken)}
";

/// Releases reservations and records spend. KEYS: pairs of (counter reserved on, counter of
/// the window the call ended in). ARGV: for each pair the amount reserved, the amount
/// spent, and when the second expires.
const SETTLE: &str = r"
for i = 1, #KEYS, 2 do
  local j = (i - 1) / 2 * 3
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', -tonumber(ARGV[j + 1]))
  end
  if tonumber(ARGV[j + 2]) ~= 0 then
    redis.call('HINCRBYFLOAT', KEYS[i + 1], 'used', ARGV[j + 2])
    redis.call('EXPIREAT', KEYS[i + 1], ARGV[j + 3])
  end
end
return 0
";

/// `used + reserved` of each counter.
const READ: &str = r"
local out = {}
for i = 1, #KEYS do
  local h = redis.call('HMGET', KEYS[i], 'used', 'reserved')
  out[i] = tostring((tonumber(h[1]) or 0) + (tonumber(h[2]) or 0))
end
return out
";

/// Every counter: its key, then its `used` and `reserved`.
const LIST: &str = r"
local out = {}
for _, key in ipairs(redis.call('KEYS', 'sluice:meter:*')) do
  local h = redis.call('HMGET', key, 'used', 'reserved')
  table.insert(out, key)
  table.insert(out, tostring(tonumber(h[1]) or 0))
  table.insert(out, tostring(tonumber(h[2]) or 0))
end
return out
";

/// One counter to reserve on.
#[derive(Debug, Clone)]
pub struct Take {
    /// The counter's key.
    pub key: String,
    /// Its limit.
    pub limit: f64,
    /// The amount to reserve.
    pub amount: f64,
    /// When it expires (Unix seconds).
    pub expire_at: i64,
}

/// One reservation to settle.
#[derive(Debug, Clone)]
pub struct Release {
    /// The counter reserved on.
    pub reserved_on: String,
    /// The counter of the window the call ended in.
    pub spent_on: String,
    /// The amount reserved.
    pub reserved: f64,
    /// The amount spent.
    pub spent: f64,
    /// When `spent_on` expires.
    pub expire_at: i64,
}

/// Counters in one Redis.
#[derive(Debug)]
pub struct Store {
    client: Client,
    /// What happens while Redis cannot be reached.
    pub on_error: OnError,
}

fn number(reply: &Reply) -> Result<f64, RedisError> {
    reply
        .text()
        .and_then(|t| t.parse::<f64>().ok())
        .ok_or_else(|| RedisError::Protocol(format!("not a number: {reply:?}")))
}

impl Store {
    /// A store for `config.redis_url`, if set.
    pub fn new(config: &StoreConfig) -> Result<Option<Store>, String> {
        config
            .redis_url
            .as_deref()
            .map(|url| {
                Ok(Store {
                    client: Client::new(url)?,
                    on_error: config.on_error,
                })
            })
            .transpose()
    }

    /// `used + reserved` of each counter.
    pub async fn read(&self, keys: &[String]) -> Result<Vec<f64>, RedisError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let reply = self.client.script(READ, keys, &[]).await?;
        reply.items().iter().map(number).collect()
    }

    /// Reserves on every counter, or returns the index of the first without room and what
    /// was taken of it; on success, what was taken of each before this call.
    pub async fn reserve(
        &self,
        takes: &[Take],
    ) -> Result<Result<Vec<f64>, (usize, f64)>, RedisError> {
        if takes.is_empty() {
            return Ok(Ok(Vec::new()));
        }
        let keys: Vec<String> = takes.iter().map(|t| t.key.clone()).collect();
        let args: Vec<String> = takes
            .iter()
            .flat_map(|t| {
                [
                    t.limit.to_string(),
                    t.amount.to_string(),
                    t.expire_at.to_string(),
                ]
            })
            .collect();
        let reply = self.client.script(RESERVE, &keys, &args).await?;
        let items = reply.items();
        let status = items
            .first()
            .and_then(|s| s.text())
            .and_then(|s| s.parse::<usize>().ok())
            .ok_or_else(|| RedisError::Protocol(format!("reserve answered {reply:?}")))?;
        let numbers: Vec<f64> = items.iter().skip(1).map(number).collect::<Result<_, _>>()?;
        Ok(if status == 0 {
            Ok(numbers)
        } else {
            Err((status - 1, numbers.first().copied().unwrap_or(0.0)))
        })
    }

    /// Every counter as (key, used, reserved), for the usage report (`KEYS`: an admin
    /// request, not the request path).
    pub async fn list(&self) -> Result<Vec<(String, f64, f64)>, RedisError> {
        let reply = self.client.script(LIST, &[], &[]).await?;
        reply
            .items()
            .chunks(3)
            .map(|triple| match triple {
                [key, used, reserved] => Ok((
                    key.text()
                        .ok_or_else(|| RedisError::Protocol("counter key".into()))?,
                    number(used)?,
                    number(reserved)?,
                )),
                _ => Err(RedisError::Protocol("counter list".into())),
            })
            .collect()
    }

    /// Settles reservations.
    pub async fn settle(&self, releases: &[Release]) -> Result<(), RedisError> {
        if releases.is_empty() {
            return Ok(());
        }
        let keys: Vec<String> = releases
            .iter()
            .flat_map(|r| [r.reserved_on.clone(), r.spent_on.clone()])
            .collect();
        let args: Vec<String> = releases
            .iter()
            .flat_map(|r| {
                [
                    r.reserved.to_string(),
                    r.spent.to_string(),
                    r.expire_at.to_string(),
                ]
            })
            .collect();
        self.client.script(SETTLE, &keys, &args).await.map(drop)
    }
}
