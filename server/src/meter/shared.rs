//! The ledger's counters in Redis, shared by every replica: reserving checks and takes room
//! on all of a call's counters in one Lua script (atomic in Redis), settling moves a
//! reservation to spend in another. A counter is a hash per limit, scope member and window:
//! `reserved`, and the spend in `used` (calendar windows) or in one field per bucket, `b`
//! and the bucket's start (rolling windows: only buckets from the oldest still in the window
//! count, older ones are deleted as spend is added). It expires an hour after its spend has
//! left its window.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::resp::{Client, RedisError, Reply};

/// What the gateway does when Redis cannot be reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Refuse calls with 503 until Redis answers again (budgets cannot be overrun, a
    /// session's flags cannot be missed).
    #[default]
    FailClosed,
    /// Let calls through without the shared state (unmetered; with this replica's own
    /// session state), logging each failure.
    FailOpen,
}

/// A Redis shared by the replicas (for budget counters, or sessions).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `redis://host:port` of a Redis shared by every replica; the state stays in this
    /// process (budgets also in `budget_state_file`) when unset.
    pub redis_url: Option<String>,
    /// What happens while Redis cannot be reached.
    pub on_error: OnError,
}

/// `taken(key, oldest)`: what a counter holds, its reservations included; bucket fields
/// older than `oldest` (Unix seconds) have left the window and do not count.
const TAKEN: &str = r"
local function taken(key, oldest)
  local h = redis.call('HGETALL', key)
  local t = 0
  for j = 1, #h, 2 do
    local field = h[j]
    if field == 'used' or field == 'reserved' or tonumber(string.sub(field, 2)) >= oldest then
      t = t + (tonumber(h[j + 1]) or 0)
    end
  end
  return t
end
";

/// Checks every counter, then reserves on all of them; or names the first without room.
/// KEYS: counters. ARGV: for each counter its limit, the amount, when it expires, and its
/// oldest bucket. Returns {0, taken...} or {index, taken}.
const RESERVE: &str = r"
local taken_now = {}
for i = 1, #KEYS do
  local limit = tonumber(ARGV[i * 4 - 3])
  local amount = tonumber(ARGV[i * 4 - 2])
  local t = taken(KEYS[i], tonumber(ARGV[i * 4]))
  if t + amount > limit then
    return {i, tostring(t)}
  end
  taken_now[i] = tostring(t)
end
for i = 1, #KEYS do
  redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', ARGV[i * 4 - 2])
  redis.call('EXPIREAT', KEYS[i], ARGV[i * 4 - 1])
end
return {0, unpack(taken_now)}
";

/// Releases reservations and records spend. KEYS: pairs of (counter reserved on, counter of
/// the window the call ended in). ARGV: for each pair the amount reserved, the amount
/// spent, when the second expires, the field spend goes to, and its oldest bucket (bucket
/// fields before it are deleted).
const SETTLE: &str = r"
for i = 1, #KEYS, 2 do
  local j = (i - 1) / 2 * 5
  if redis.call('EXISTS', KEYS[i]) == 1 then
    redis.call('HINCRBYFLOAT', KEYS[i], 'reserved', -tonumber(ARGV[j + 1]))
  end
  if tonumber(ARGV[j + 2]) ~= 0 then
    local key = KEYS[i + 1]
    redis.call('HINCRBYFLOAT', key, ARGV[j + 4], ARGV[j + 2])
    redis.call('EXPIREAT', key, ARGV[j + 3])
    local oldest = tonumber(ARGV[j + 5])
    for _, field in ipairs(redis.call('HKEYS', key)) do
      if string.sub(field, 1, 1) == 'b' and tonumber(string.sub(field, 2)) < oldest then
        redis.call('HDEL', key, field)
      end
    end
  end
end
return 0
";

/// What each counter holds. KEYS: counters. ARGV: the oldest bucket of each.
const READ: &str = r"
local out = {}
for i = 1, #KEYS do
  out[i] = tostring(taken(KEYS[i], tonumber(ARGV[i])))
end
return out
";

/// The counters KEYS, each as its key, how many fields follow, then the fields and values.
const LIST: &str = r"
local out = {}
for _, key in ipairs(KEYS) do
  local h = redis.call('HGETALL', key)
  table.insert(out, key)
  table.insert(out, tostring(#h / 2))
  for j = 1, #h do
    table.insert(out, h[j])
  end
end
return out
";

/// A counter's settled spend and reservations from its fields, counting the buckets from
/// `oldest_bucket` on.
pub fn tally(fields: &[(String, f64)], oldest_bucket: i64) -> (f64, f64) {
    let mut used = 0.0;
    let mut reserved = 0.0;
    for (field, value) in fields {
        match field.as_str() {
            "reserved" => reserved += value,
            "used" => used += value,
            bucket => {
                if bucket
                    .strip_prefix('b')
                    .and_then(|start| start.parse::<i64>().ok())
                    .is_some_and(|start| start >= oldest_bucket)
                {
                    used += value;
                }
            }
        }
    }
    (used, reserved)
}

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
    /// The oldest bucket of a rolling window that still counts (0 for other windows).
    pub oldest_bucket: i64,
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
    /// The field of `spent_on` the spend goes to: `used`, or a rolling window's bucket.
    pub field: String,
    /// When `spent_on` expires.
    pub expire_at: i64,
    /// The oldest bucket of a rolling window that still counts (0 for other windows).
    pub oldest_bucket: i64,
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

    /// What each counter, given with its oldest bucket, holds (spend and reservations).
    pub async fn read(&self, counters: &[(String, i64)]) -> Result<Vec<f64>, RedisError> {
        if counters.is_empty() {
            return Ok(Vec::new());
        }
        let (keys, oldest): (Vec<String>, Vec<String>) = counters
            .iter()
            .map(|(key, oldest)| (key.clone(), oldest.to_string()))
            .unzip();
        let reply = self.client.script(&READ_SCRIPT, &keys, &oldest).await?;
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
                    t.oldest_bucket.to_string(),
                ]
            })
            .collect();
        let reply = self.client.script(&RESERVE_SCRIPT, &keys, &args).await?;
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

    /// Every counter as its key and fields, for the usage report. The keys are walked
    /// with `SCAN`, a page at a time, so that a large keyspace (sessions share it) never
    /// holds Redis up for the replicas' request-path commands as `KEYS` would.
    pub async fn list(&self) -> Result<Vec<(String, Vec<(String, f64)>)>, RedisError> {
        let mut cursor = "0".to_string();
        let mut seen = std::collections::BTreeSet::new();
        let mut counters = Vec::new();
        loop {
            let reply = self
                .client
                .command(&[
                    b"SCAN",
                    cursor.as_bytes(),
                    b"MATCH",
                    b"sluice:meter:*",
                    b"COUNT",
                    b"1000",
                ])
                .await?;
            let [next, keys] = reply.items() else {
                return Err(RedisError::Protocol(format!("SCAN answered {reply:?}")));
            };
            // SCAN may return a key more than once.
            let keys: Vec<String> = keys
                .items()
                .iter()
                .filter_map(Reply::text)
                .filter(|key| seen.insert(key.clone()))
                .collect();
            if !keys.is_empty() {
                counters.extend(self.fields(&keys).await?);
            }
            cursor = next
                .text()
                .ok_or_else(|| RedisError::Protocol("SCAN cursor".into()))?;
            if cursor == "0" {
                return Ok(counters);
            }
        }
    }

    /// The fields of the counters `keys` (one page of a scan).
    async fn fields(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, Vec<(String, f64)>)>, RedisError> {
        let reply = self.client.script(LIST, keys, &[]).await?;
        let text = |reply: Option<&Reply>, what: &str| {
            reply
                .and_then(Reply::text)
                .ok_or_else(|| RedisError::Protocol(format!("counter list: {what}")))
        };
        let mut items = reply.items().iter();
        let mut counters = Vec::new();
        while let Some(key) = items.next() {
            let key = text(Some(key), "key")?;
            let count: usize = text(items.next(), "field count")?
                .parse()
                .map_err(|_| RedisError::Protocol("counter list: field count".into()))?;
            let mut fields = Vec::with_capacity(count);
            for _ in 0..count {
                let field = text(items.next(), "field")?;
                let value = items
                    .next()
                    .ok_or_else(|| RedisError::Protocol("counter list: value".into()))
                    .and_then(number)?;
                fields.push((field, value));
            }
            counters.push((key, fields));
        }
        Ok(counters)
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
                    r.field.clone(),
                    r.oldest_bucket.to_string(),
                ]
            })
            .collect();
        self.client.script(SETTLE, &keys, &args).await.map(drop)
    }
}

/// [`READ`] and [`RESERVE`] with the `taken` function in front.
static READ_SCRIPT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{TAKEN}{READ}"));
static RESERVE_SCRIPT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| format!("{TAKEN}{RESERVE}"));
