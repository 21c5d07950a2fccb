//! Sessions across surfaces: an agent's calls on every surface — prompts, tool calls and
//! their results, retrievals, memory, other agents — tied together by one session id, so a
//! decision can see what the session was shown before (its flags) and how far along it is
//! (its turn).
//!
//! A session belongs to the API key that opened it: the same id sent with another key is
//! another session, so no caller can read or taint someone else's. Sessions live in this
//! process; one idle for longer than the configured time is forgotten. At capacity the
//! least recently used session without flags goes first, so flooding the table with new
//! sessions cannot wash a flagged one out while unflagged ones remain.
//!
//! With `sessions.store.redis_url`, every replica shares each session's turn and flags
//! through Redis (one hash per session, expiring when idle), so content flagged on one
//! replica taints the session's calls on all of them. A flag is written as soon as its
//! decision is made, and retried while Redis is away; this replica's own flags count at
//! once whatever Redis says. While Redis cannot be read, `on_error: fail_closed` (the
//! default) refuses calls that carry a session id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_engine::input::Session;

use crate::meter::resp::{Client, RedisError, Reply};
use crate::meter::shared::{OnError, StoreConfig};

/// How sessions are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Minutes without a call after which a session is forgotten.
    pub idle_minutes: u64,
    /// The most sessions kept at once in this process (a Redis store keeps every session
    /// until it is idle).
    pub max_sessions: usize,
    /// A Redis shared by every replica (`{redis_url, on_error: fail_closed|fail_open}`);
    /// sessions stay in this process when unset.
    pub store: StoreConfig,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_minutes: 24 * 60,
            max_sessions: 100_000,
            store: StoreConfig::default(),
        }
    }
}

/// A new turn: its number, the session's flags (each once, in the order first set), and
/// the hash's expiry. KEYS: the session. ARGV: idle time in milliseconds.
const OPEN: &str = r"
local turn = redis.call('HINCRBY', KEYS[1], 'turn', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return {turn, redis.call('HGETALL', KEYS[1])}
";

/// Adds flags to a session, each once, numbered in the order first set. KEYS: the
/// session. ARGV: idle time in milliseconds, then the flags.
const FLAG: &str = r"
for i = 2, #ARGV do
  local field = 'flag:' .. ARGV[i]
  if redis.call('HEXISTS', KEYS[1], field) == 0 then
    redis.call('HSET', KEYS[1], field, redis.call('HINCRBY', KEYS[1], 'flags', 1))
  end
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
";

/// The longest session id accepted, in bytes: ids are names, not data, and each is kept
/// (and in Redis, part of a key) for as long as the session lives.
pub const MAX_ID_BYTES: usize = 256;

/// Why a session could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The id is longer than [`MAX_ID_BYTES`].
    #[error("a session id is at most {MAX_ID_BYTES} bytes; this one has {0}")]
    TooLong(usize),
    /// The shared store cannot be read, and fails closed.
    #[error(transparent)]
    Unavailable(#[from] RedisError),
}

/// How long a flag that Redis did not take is retried before it is given up (and logged).
const FLAG_RETRY_FOR: Duration = Duration::from_secs(30);

/// Sessions in a Redis shared by the replicas.
#[derive(Debug)]
struct Shared {
    client: Arc<Client>,
    on_error: OnError,
}

/// The Redis key of session `id` of API key `key`; the key's length keeps the two apart
/// whatever they contain.
fn redis_key(key: &str, id: &str) -> String {
    format!("sluice:session:{}:{key}:{id}", key.len())
}

/// Turn and flags from the reply of [`OPEN`].
fn opened(reply: &Reply) -> Result<(u64, Vec<String>), RedisError> {
    let unexpected = || RedisError::Protocol(format!("unexpected session reply {reply:?}"));
    let [Reply::Integer(turn), Reply::Array(Some(fields))] = reply.items() else {
        return Err(unexpected());
    };
    let mut flags: Vec<(i64, String)> = Vec::new();
    for pair in fields.chunks(2) {
        let [name, order] = pair else {
            return Err(unexpected());
        };
        let (Some(name), Some(order)) = (name.text(), order.text()) else {
            return Err(unexpected());
        };
        if let Some(flag) = name.strip_prefix("flag:") {
            flags.push((order.parse().unwrap_or(i64::MAX), flag.to_string()));
        }
    }
    flags.sort();
    Ok((
        u64::try_from(*turn).unwrap_or(0),
        flags.into_iter().map(|(_, flag)| flag).collect(),
    ))
}

#[derive(Debug)]
struct Entry {
    turn: u64,
    flags: Vec<String>,
    seen: Instant,
}

/// The sessions of this process, by API key and session id, and the shared store.
#[derive(Debug)]
pub struct Sessions {
    entries: Mutex<HashMap<(String, String), Entry>>,
    idle: Duration,
    max: usize,
    shared: Option<Shared>,
}

impl Sessions {
    /// An empty table; an error names a `store.redis_url` that is not a Redis address.
    pub fn new(config: &SessionConfig) -> Result<Sessions, String> {
        let shared = match &config.store.redis_url {
            Some(url) => Some(Shared {
                client: Arc::new(Client::new(url)?),
                on_error: config.store.on_error,
            }),
            None => None,
        };
        Ok(Sessions {
            entries: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(config.idle_minutes.saturating_mul(60)),
            max: config.max_sessions.max(1),
            shared,
        })
    }

    /// A new turn of session `id` of `key`, as [`Sessions::begin`], with the turn and the
    /// flags every replica gave it when the sessions are shared. An error means Redis could
    /// not be read and the store fails closed.
    pub async fn open(&self, key: &str, id: Option<&str>) -> Result<Session, OpenError> {
        if let Some(id) = id
            && id.len() > MAX_ID_BYTES
        {
            return Err(OpenError::TooLong(id.len()));
        }
        let local = self.begin(key, id);
        let (Some(shared), Some(id)) = (&self.shared, local.id.as_deref()) else {
            return Ok(local);
        };
        let idle = self.idle.as_millis().max(1).to_string();
        let reply = shared
            .client
            .script(OPEN, &[redis_key(key, id)], &[idle])
            .await
            .and_then(|reply| opened(&reply));
        match reply {
            Ok((turn, mut flags)) => {
                // This replica's own flags count even before Redis has them.
                for flag in local.flags {
                    if !flags.contains(&flag) {
                        flags.push(flag);
                    }
                }
                Ok(Session {
                    id: local.id,
                    turn,
                    flags,
                })
            }
            Err(error) if shared.on_error == OnError::FailOpen => {
                tracing::warn!(%error, "shared sessions unavailable; this replica's session state is used (sessions.store.on_error: fail_open)");
                Ok(local)
            }
            Err(error) => {
                tracing::error!(%error, "shared sessions unavailable; refusing the call (sessions.store.on_error: fail_closed)");
                Err(OpenError::Unavailable(error))
            }
        }
    }

    /// A new turn of session `id` of `key`, opened if new: the turn's number (from 1) and
    /// the flags set so far. Without an id, a call has no session (turn 0, no flags).
    pub fn begin(&self, key: &str, id: Option<&str>) -> Session {
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            return Session::default();
        };
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = (key.to_string(), id.to_string());
        if !entries.contains_key(&slot) && entries.len() >= self.max {
            self.make_room(&mut entries, now);
        }
        let entry = entries.entry(slot).or_insert(Entry {
            turn: 0,
            flags: Vec::new(),
            seen: now,
        });
        if now.duration_since(entry.seen) > self.idle {
            entry.turn = 0;
            entry.flags.clear();
        }
        entry.turn += 1;
        entry.seen = now;
        Session {
            id: Some(id.to_string()),
            turn: entry.turn,
            flags: entry.flags.clone(),
        }
    }

    /// Adds `flags` to session `id` of `key` (each once, in the order first set). With a
    /// shared store, also starts writing them there: the write, to wait for before the
    /// answer leaves.
    pub fn flag(
        &self,
        key: &str,
        id: Option<&str>,
        flags: &[String],
    ) -> Option<tokio::task::JoinHandle<()>> {
        let id = id.filter(|id| !id.is_empty())?;
        if flags.is_empty() {
            return None;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get_mut(&(key.to_string(), id.to_string())) {
            for flag in flags {
                if !entry.flags.contains(flag) {
                    entry.flags.push(flag.clone());
                }
            }
        }
        drop(entries);
        let shared = self.shared.as_ref()?;
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let mut args = vec![self.idle.as_millis().max(1).to_string()];
        args.extend(flags.iter().cloned());
        Some(runtime.spawn(write_flags(
            Arc::clone(&shared.client),
            redis_key(key, id),
            args,
        )))
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no session is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets idle sessions; if none was idle, the least recently used sixty-fourth of
    /// the table, sessions without flags first (so the cost of a full table is paid once
    /// per many new sessions, not on each).
    fn make_room(&self, entries: &mut HashMap<(String, String), Entry>, now: Instant) {
        let before = entries.len();
        entries.retain(|_, e| now.duration_since(e.seen) <= self.idle);
        if entries.len() < before {
            return;
        }
        let mut order: Vec<(bool, Instant, &(String, String))> = entries
            .iter()
            .map(|(slot, e)| (!e.flags.is_empty(), e.seen, slot))
            .collect();
        let evict = (self.max / 64).max(1).min(order.len());
        if evict < order.len() {
            order.select_nth_unstable_by_key(evict, |(flagged, seen, _)| (*flagged, *seen));
        }
        let victims: Vec<(String, String)> = order
            .iter()
            .take(evict)
            .map(|(_, _, slot)| (*slot).clone())
            .collect();
        for victim in victims {
            entries.remove(&victim);
        }
    }
}

/// Writes flags to the shared store, retrying with backoff while Redis is away.
async fn write_flags(client: Arc<Client>, session: String, args: Vec<String>) {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match client
            .script(FLAG, std::slice::from_ref(&session), &args)
            .await
        {
            Ok(_) => return,
            Err(error) if started.elapsed() >= FLAG_RETRY_FOR => {
                tracing::error!(%error, session = %session, flags = ?args.get(1..), "a session flag could not be shared; other replicas do not see it");
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "a session flag is not shared yet; retrying");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

#[cfg(test)]
mod tests;
