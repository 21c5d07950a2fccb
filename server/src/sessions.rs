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

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_engine::input::Session;

/// How sessions are kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// Minutes without a call after which a session is forgotten.
    pub idle_minutes: u64,
    /// The most sessions kept at once.
    pub max_sessions: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            idle_minutes: 24 * 60,
            max_sessions: 100_000,
        }
    }
}

#[derive(Debug)]
struct Entry {
    turn: u64,
    flags: Vec<String>,
    seen: Instant,
}

/// The sessions of this process, by API key and session id.
#[derive(Debug)]
pub struct Sessions {
    entries: Mutex<HashMap<(String, String), Entry>>,
    idle: Duration,
    max: usize,
}

impl Sessions {
    /// An empty table.
    pub fn new(config: &SessionConfig) -> Sessions {
        Sessions {
            entries: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(config.idle_minutes.saturating_mul(60)),
            max: config.max_sessions.max(1),
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

    /// Adds `flags` to session `id` of `key` (each once, in the order first set).
    pub fn flag(&self, key: &str, id: Option<&str>, flags: &[String]) {
        let Some(id) = id.filter(|id| !id.is_empty()) else {
            return;
        };
        if flags.is_empty() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get_mut(&(key.to_string(), id.to_string())) {
            for flag in flags {
                if !entry.flags.contains(flag) {
                    entry.flags.push(flag.clone());
                }
            }
        }
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

#[cfg(test)]
mod tests;
