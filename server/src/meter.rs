//! Budgets and rate limits: reserve-then-settle accounting per scope, in memory (one node).
//!
//! Every call first **reserves** its estimate (one request, its input tokens, its estimated
//! cost) against every limit that applies to its principal, all or nothing, under one lock:
//! concurrent calls see each other's reservations, so together they cannot overrun a limit
//! by more than what one call's estimate underestimates. When the call ends — answered,
//! failed, or cut off by the caller mid-stream — the reservation is **settled** with the
//! actual usage. A reservation dropped without being settled is charged its estimate, so a
//! forgotten settle errs on the side of the budget.

pub mod prices;
pub mod resp;
pub mod saved;
pub mod shared;
pub mod tokens;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sluice_engine::input::Limit;

/// Whose usage a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One API key.
    Key,
    /// One user.
    User,
    /// One team.
    Team,
    /// One agent.
    Agent,
    /// The whole organisation (every call).
    Org,
    /// A budget several keys draw from: the limit's `id` names it, `keys` lists them.
    Shared,
}

impl Scope {
    fn as_str(self) -> &'static str {
        match self {
            Scope::Key => "key",
            Scope::User => "user",
            Scope::Team => "team",
            Scope::Agent => "agent",
            Scope::Org => "org",
            Scope::Shared => "shared",
        }
    }
}

/// What a limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Calls.
    Requests,
    /// Input plus output tokens.
    Tokens,
    /// Cost in US dollars.
    CostUsd,
    /// Calls in flight at once (no window: a call counts until it ends).
    Concurrent,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Requests => "requests",
            Kind::Tokens => "tokens",
            Kind::CostUsd => "cost_usd",
            Kind::Concurrent => "concurrent",
        }
    }
}

/// The window a limit counts usage in: a calendar period of `budget_time_zone`, or the
/// last N hours. Written as its name: `minute`, `hour`, `day`, `month`, `rolling_<N>h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Window {
    /// A calendar minute.
    Minute,
    /// A calendar hour.
    Hour,
    /// A calendar day.
    Day,
    /// A calendar month.
    Month,
    /// The last N hours (`rolling_<N>h`, N from 1 to 8,784), sliding: usage leaves the
    /// window N hours after it was spent, in steps of a sixtieth of the window (N minutes).
    RollingHours(u32),
}

impl TryFrom<String> for Window {
    type Error = String;

    fn try_from(name: String) -> Result<Window, String> {
        let rolling = name
            .strip_prefix("rolling_")
            .and_then(|rest| rest.strip_suffix('h'))
            .and_then(|hours| hours.parse::<u32>().ok());
        match (name.as_str(), rolling) {
            ("minute", _) => Ok(Window::Minute),
            ("hour", _) => Ok(Window::Hour),
            ("day", _) => Ok(Window::Day),
            ("month", _) => Ok(Window::Month),
            (_, Some(hours)) => Ok(Window::RollingHours(hours)),
            _ => Err(format!(
                "unknown window `{name}`: minute, hour, day, month or rolling_<N>h (e.g. rolling_24h)"
            )),
        }
    }
}

impl From<Window> for String {
    fn from(window: Window) -> String {
        window.name()
    }
}

impl JsonSchema for Window {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Window".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The window a limit counts usage in: a calendar `minute`, `hour`, \
                `day` or `month` of `budget_time_zone`, or `rolling_<N>h`, the last N hours \
                (1 to 8784; usage leaves it N hours after it was spent, in steps of N minutes).",
            "type": "string",
            "pattern": "^(minute|hour|day|month|rolling_[0-9]+h)$"
        })
    }
}

/// How many buckets a rolling window keeps: spend leaves it at most a sixtieth of the window
/// late.
const ROLLING_BUCKETS: i64 = 60;

/// The longest rolling window, in hours: a leap year.
const LONGEST_ROLLING_HOURS: u32 = 8_784;

impl Window {
    fn name(self) -> String {
        match self {
            Window::Minute => "minute".into(),
            Window::Hour => "hour".into(),
            Window::Day => "day".into(),
            Window::Month => "month".into(),
            Window::RollingHours(hours) => format!("rolling_{hours}h"),
        }
    }

    /// A rolling window's bucket length in seconds (a sixtieth of it: N minutes).
    fn bucket(self) -> Option<i64> {
        match self {
            Window::RollingHours(hours) => Some(i64::from(hours.max(1)) * 60),
            Window::Minute | Window::Hour | Window::Day | Window::Month => None,
        }
    }

    /// The window holding `now` (Unix seconds) in `zone`, as its start and end: calendar
    /// minutes, hours, days and months of the zone's wall clock (a day across a daylight
    /// saving change has 23 or 25 hours); for a rolling window, the buckets it covers, from
    /// the oldest to the end of the current one (when the oldest leaves).
    fn bounds(self, now: i64, zone: &jiff::tz::TimeZone) -> (i64, i64) {
        let fixed = |length: i64| {
            let start = now.div_euclid(length) * length;
            (start, start + length)
        };
        if let Some(bucket) = self.bucket() {
            let (current, end) = fixed(bucket);
            return (current - (ROLLING_BUCKETS - 1) * bucket, end);
        }
        // Minutes are the same everywhere; hours too, except in zones offset by a part of
        // an hour, which the wall-clock path below handles.
        if self == Window::Minute {
            return fixed(60);
        }
        let zoned = || -> Result<(i64, i64), jiff::Error> {
            let at = jiff::Timestamp::from_second(now)?.to_zoned_datetime(zone.clone());
            let (start, next) = match self {
                Window::Minute | Window::Hour | Window::RollingHours(_) => {
                    let start = at.with().minute(0).second(0).subsec_nanosecond(0).build()?;
                    let next = start.checked_add(jiff::Span::new().hours(1))?;
                    (start, next)
                }
                Window::Day => {
                    let start = at.start_of_day()?;
                    let next = start.tomorrow()?.start_of_day()?;
                    (start, next)
                }
                Window::Month => {
                    let start = at.first_of_month()?.start_of_day()?;
                    let next = start
                        .checked_add(jiff::Span::new().months(1))?
                        .start_of_day()?;
                    (start, next)
                }
            };
            Ok((start.timestamp().as_second(), next.timestamp().as_second()))
        };
        zoned().unwrap_or_else(|_| match self {
            Window::Minute => fixed(60),
            Window::Hour | Window::RollingHours(_) => fixed(3_600),
            Window::Day | Window::Month => fixed(86_400),
        })
    }
}

/// One configured limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitConfig {
    /// Whose usage it counts.
    pub scope: Scope,
    /// The one id it applies to (a team name, a key id); unset: every id of the scope, each
    /// with its own counter.
    #[serde(default)]
    pub id: Option<String>,
    /// The key ids that draw from a `shared` budget (only for scope `shared`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keys: Vec<String>,
    /// What it counts.
    pub kind: Kind,
    /// When it resets; required for every kind but `concurrent`, which has none.
    #[serde(default)]
    pub window: Option<Window>,
    /// The most that may be used in one window (or be in flight, for `concurrent`).
    pub limit: f64,
}

impl LimitConfig {
    /// A limit of `limit` per `window` for every member of `scope`, each with its own
    /// counter.
    pub fn every(scope: Scope, kind: Kind, window: Window, limit: f64) -> LimitConfig {
        LimitConfig {
            scope,
            id: None,
            keys: Vec::new(),
            kind,
            window: Some(window),
            limit,
        }
    }

    /// The window holding `now`, as its start and end; a limit without a window (calls in
    /// flight) has one that never ends.
    fn bounds(&self, now: i64, zone: &jiff::tz::TimeZone) -> (i64, i64) {
        self.window.map_or((0, i64::MAX), |w| w.bounds(now, zone))
    }

    /// Which window a counter's state belongs to at `now`: a calendar window's start; 0 for
    /// a rolling window (one counter whose buckets age out) and for calls in flight.
    fn period(&self, now: i64, zone: &jiff::tz::TimeZone) -> i64 {
        match self.window {
            Some(window) if window.bucket().is_none() => window.bounds(now, zone).0,
            _ => 0,
        }
    }

    /// A rolling window's bucket length in seconds.
    fn bucket(&self) -> Option<i64> {
        self.window.and_then(Window::bucket)
    }

    fn window_name(&self) -> String {
        self.window.map_or_else(|| "in_flight".into(), Window::name)
    }

    /// What is wrong with this limit, if anything: it needs a window unless it is
    /// `concurrent`, and a limit of 0 or more.
    pub fn problem(&self) -> Option<String> {
        if !(self.limit.is_finite() && self.limit >= 0.0) {
            return Some(format!("must be a number of 0 or more, not {}", self.limit));
        }
        match (self.scope, self.id.is_some(), self.keys.is_empty()) {
            (Scope::Shared, true, false) => {}
            (Scope::Shared, _, _) => {
                return Some(
                    "a `shared` budget needs an `id` and the `keys` that draw from it".into(),
                );
            }
            (_, _, false) => return Some("only a `shared` budget lists `keys`".into()),
            _ => {}
        }
        if let Some(Window::RollingHours(hours)) = self.window
            && !(1..=LONGEST_ROLLING_HOURS).contains(&hours)
        {
            return Some(format!(
                "a rolling window is 1 to {LONGEST_ROLLING_HOURS} hours long, not {hours}"
            ));
        }
        match (self.kind, self.window) {
            (Kind::Concurrent, Some(_)) => {
                Some("a `concurrent` limit has no window (calls count while in flight)".into())
            }
            (Kind::Concurrent, None) | (_, Some(_)) => None,
            (kind, None) => Some(format!(
                "a `{}` limit needs a window: minute, hour, day, month or rolling_<N>h",
                kind.as_str()
            )),
        }
    }
}

/// Who is calling, by scope.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subject {
    /// The API key's id.
    pub key: String,
    /// The user, if the key names one.
    pub user: Option<String>,
    /// The team, if any.
    pub team: Option<String>,
    /// The agent, if any.
    pub agent: Option<String>,
}

impl Subject {
    /// The scopes of a principal.
    pub fn of(principal: &sluice_engine::input::Principal) -> Subject {
        Subject {
            key: principal.key_id.clone(),
            user: principal.user.clone(),
            team: principal.team.clone(),
            agent: principal.agent.clone(),
        }
    }

    fn id(&self, scope: Scope) -> Option<&str> {
        match scope {
            Scope::Key => Some(self.key.as_str()),
            Scope::User => self.user.as_deref(),
            Scope::Team => self.team.as_deref(),
            Scope::Agent => self.agent.as_deref(),
            Scope::Org => Some("org"),
            Scope::Shared => None,
        }
    }
}

/// What a call uses (estimated before, actual after).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// Input plus output tokens.
    pub tokens: f64,
    /// Cost in US dollars.
    pub cost_usd: f64,
}

impl Usage {
    fn of(self, kind: Kind) -> f64 {
        match kind {
            Kind::Requests | Kind::Concurrent => 1.0,
            Kind::Tokens => self.tokens,
            Kind::CostUsd => self.cost_usd,
        }
    }
}

/// One counter's state, for `GET /admin/usage` and `sluice usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRow {
    /// `key`, `user`, `team`, `agent` or `org`.
    pub scope: String,
    /// The scope's id.
    pub id: String,
    /// `requests`, `tokens` or `cost_usd`.
    pub kind: String,
    /// `minute`, `hour`, `day` or `month`.
    pub window: String,
    /// Start of the current window, Unix seconds.
    pub window_start: i64,
    /// End of the current window (when it resets), Unix seconds.
    pub window_end: i64,
    /// The limit per window.
    pub limit: f64,
    /// Settled usage in the current window.
    pub used: f64,
    /// Estimates of calls in flight.
    pub reserved: f64,
    /// What is left: `limit - used - reserved`, at least 0.
    pub remaining: f64,
}

/// A counter as saved across restarts: what it counts and its spend in one window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Saved {
    /// Whose usage.
    pub scope: Scope,
    /// The id the limit is bound to, if any.
    pub limit_id: Option<String>,
    /// What it counts.
    pub kind: Kind,
    /// Its window.
    pub window: Option<Window>,
    /// The scope member counted.
    pub id: String,
    /// The window the spend belongs to (its start, Unix seconds).
    pub window_start: i64,
    /// Settled usage plus reservations still open when saved.
    pub used: f64,
    /// A rolling window's settled usage per bucket, as (bucket start, amount); `used` less
    /// their sum is the reservations.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buckets: Vec<(i64, f64)>,
}

/// What is left of the tightest limit of one kind, for rate-limit response headers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Headroom {
    /// What the limit counts.
    pub kind: Kind,
    /// The limit per window.
    pub limit: f64,
    /// What is left, this call included.
    pub remaining: f64,
    /// When its window resets, Unix seconds.
    pub reset_at: i64,
}

/// Keeps, per kind, the headroom with the least remaining.
fn tightest(headroom: &mut Vec<Headroom>, candidate: Headroom) {
    match headroom.iter_mut().find(|h| h.kind == candidate.kind) {
        Some(h) if candidate.remaining < h.remaining => *h = candidate,
        Some(_) => {}
        None => headroom.push(candidate),
    }
}

/// A limit a call would overrun.
#[derive(Debug, Clone, PartialEq)]
pub struct Exceeded {
    /// The limit and its state before this call.
    pub limit: Limit,
    /// Seconds until its window resets.
    pub retry_after_s: u64,
    /// The limit that refused, with nothing left.
    pub headroom: Headroom,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct CounterKey {
    limit: usize,
    id: String,
}

#[derive(Debug, Clone, Default)]
struct Counter {
    /// The window it counts ([`LimitConfig::period`]).
    window_start: i64,
    used: f64,
    reserved: f64,
    /// A rolling window's settled usage per bucket, as (bucket start, amount), oldest
    /// first; `used` is their sum.
    buckets: std::collections::VecDeque<(i64, f64)>,
}

impl Counter {
    /// The counter of `limit` at `now`: a new calendar window starts empty, a rolling one
    /// forgets the buckets that have left it.
    fn current(&mut self, limit: &LimitConfig, now: i64, zone: &jiff::tz::TimeZone) -> &mut Self {
        let period = limit.period(now, zone);
        if self.window_start != period {
            *self = Counter {
                window_start: period,
                ..Counter::default()
            };
        }
        if limit.bucket().is_some() {
            let (first, _) = limit.bounds(now, zone);
            let before = self.buckets.len();
            while self
                .buckets
                .front()
                .is_some_and(|(start, _)| *start < first)
            {
                self.buckets.pop_front();
            }
            if self.buckets.len() != before {
                self.used = self
                    .buckets
                    .iter()
                    .fold(0.0, |sum, (_, amount)| sum + amount);
            }
        }
        self
    }

    /// Records `amount` spent at `at` (in its bucket, for a rolling window).
    fn spend(&mut self, limit: &LimitConfig, at: i64, amount: f64) {
        if amount == 0.0 {
            return;
        }
        self.used += amount;
        let Some(length) = limit.bucket() else { return };
        let start = at.div_euclid(length) * length;
        let place = self.buckets.partition_point(|(s, _)| *s < start);
        match self.buckets.get_mut(place) {
            Some((s, spent)) if *s == start => *spent += amount,
            _ => self.buckets.insert(place, (start, amount)),
        }
    }
}

/// The single-node ledger.
#[derive(Debug)]
pub struct Ledger {
    /// The configured limits, then the two a policy's `throttle` obligation sets per call
    /// (requests and tokens per minute of the key; their amounts come with each call).
    limits: Vec<LimitConfig>,
    /// How many of `limits` are configured.
    configured: usize,
    counters: Mutex<HashMap<CounterKey, Counter>>,
    /// Bumped by every change, so a saver writes only when there is something new.
    changes: std::sync::atomic::AtomicU64,
    /// Redis, when the counters are shared by several replicas.
    shared: Option<Arc<shared::Store>>,
    /// The time zone calendar windows follow.
    zone: jiff::tz::TimeZone,
}

/// A call's reserved estimate, to be settled with its actual usage.
#[derive(Debug)]
pub struct Reservation {
    ledger: Arc<Ledger>,
    /// Each counter, the window it was reserved in, and the amount.
    held: Vec<(CounterKey, i64, f64)>,
    estimate: Usage,
    settled: std::sync::atomic::AtomicBool,
    headroom: Vec<Headroom>,
}

impl Ledger {
    /// A ledger for the configured limits.
    pub fn new(limits: Vec<LimitConfig>) -> Arc<Ledger> {
        Ledger::with_store(limits, None, jiff::tz::TimeZone::UTC)
    }

    /// A ledger whose counters live in `shared` (Redis) when given, with calendar windows
    /// in `zone`.
    pub fn with_store(
        mut limits: Vec<LimitConfig>,
        shared: Option<shared::Store>,
        zone: jiff::tz::TimeZone,
    ) -> Arc<Ledger> {
        let configured = limits.len();
        for kind in [Kind::Requests, Kind::Tokens] {
            limits.push(LimitConfig::every(
                Scope::Key,
                kind,
                Window::Minute,
                f64::INFINITY,
            ));
        }
        Arc::new(Ledger {
            limits,
            configured,
            counters: Mutex::new(HashMap::new()),
            changes: std::sync::atomic::AtomicU64::new(0),
            shared: shared.map(Arc::new),
            zone,
        })
    }

    /// The limits that apply to `subject`, with the counter each one uses.
    fn applicable<'a>(
        &'a self,
        subject: &'a Subject,
    ) -> impl Iterator<Item = (&'a LimitConfig, CounterKey)> + 'a {
        self.limits
            .iter()
            .take(self.configured)
            .enumerate()
            .filter_map(move |(index, limit)| {
                let id = match limit.scope {
                    Scope::Shared if limit.keys.contains(&subject.key) => limit.id.as_deref()?,
                    Scope::Shared => return None,
                    scope => subject.id(scope)?,
                };
                if limit.id.as_deref().is_some_and(|only| only != id) {
                    return None;
                }
                Some((
                    limit,
                    CounterKey {
                        limit: index,
                        id: id.to_string(),
                    },
                ))
            })
    }

    fn describe(limit: &LimitConfig, id: &str, used: f64) -> Limit {
        Limit {
            scope: limit.scope.as_str().to_string(),
            id: id.to_string(),
            kind: limit.kind.as_str().to_string(),
            window: limit.window_name(),
            limit: limit.limit,
            used,
        }
    }

    /// The state of every limit of `subject` at `now` (Unix seconds), for the decision
    /// input: `used` counts settled usage and other calls' open reservations.
    pub fn state(&self, subject: &Subject, now: i64) -> Vec<Limit> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        self.applicable(subject)
            .map(|(limit, key)| {
                let id = key.id.clone();
                let counter = counters
                    .entry(key)
                    .or_default()
                    .current(limit, now, &self.zone);
                Ledger::describe(limit, &id, counter.used + counter.reserved)
            })
            .collect()
    }

    /// How many changes the ledger has seen.
    pub fn changes(&self) -> u64 {
        self.changes.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Every counter with spend, for saving: open reservations count as spent, so a crash
    /// mid-call errs on the side of the budget.
    pub fn snapshot(&self) -> Vec<Saved> {
        let counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut saved: Vec<Saved> = counters
            .iter()
            .filter(|(_, c)| c.used + c.reserved > 0.0)
            .filter_map(|(key, counter)| {
                // Calls in flight end with the process; they are not spend.
                let limit = self
                    .limits
                    .get(key.limit)
                    .filter(|l| l.window.is_some() && key.limit < self.configured)?;
                Some(Saved {
                    scope: limit.scope,
                    limit_id: limit.id.clone(),
                    kind: limit.kind,
                    window: limit.window,
                    id: key.id.clone(),
                    window_start: counter.window_start,
                    used: counter.used + counter.reserved,
                    buckets: counter.buckets.iter().copied().collect(),
                })
            })
            .collect();
        saved.sort_by(|a, b| (&a.id, a.window_start).cmp(&(&b.id, b.window_start)));
        saved
    }

    /// Takes back saved spend whose window is still current at `now`, for the limits that
    /// are still configured (the same scope, id, kind and window; the amount may change).
    /// Returns how many counters were restored.
    pub fn restore(&self, saved: &[Saved], now: i64) -> usize {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut restored = 0;
        for entry in saved {
            let found = self.limits.iter().take(self.configured).position(|l| {
                l.scope == entry.scope
                    && l.id == entry.limit_id
                    && l.kind == entry.kind
                    && l.window == entry.window
            });
            let Some(index) = found else { continue };
            let Some(limit) = self.limits.get(index) else {
                continue;
            };
            if entry.window_start != limit.period(now, &self.zone) {
                continue;
            }
            let key = CounterKey {
                limit: index,
                id: entry.id.clone(),
            };
            let counter = counters
                .entry(key)
                .or_default()
                .current(limit, now, &self.zone);
            // A rolling window's buckets go back where they were (the stale ones leave it
            // again below); what they do not hold was reserved, and counts as spent now.
            let mut open = entry.used;
            for &(start, amount) in &entry.buckets {
                counter.spend(limit, start, amount);
                open -= amount;
            }
            counter.spend(limit, now, open.max(0.0));
            counter.current(limit, now, &self.zone);
            restored += 1;
        }
        restored
    }

    /// The counter of every configured limit bound to one id: the usage report lists them
    /// used or not.
    fn bound_keys(&self) -> impl Iterator<Item = CounterKey> + '_ {
        self.limits
            .iter()
            .take(self.configured)
            .enumerate()
            .filter_map(|(index, limit)| {
                Some(CounterKey {
                    limit: index,
                    id: limit.id.clone()?,
                })
            })
    }

    /// [`usage`](Self::usage), from Redis when counters are shared.
    pub async fn usage_async(&self, now: i64) -> Result<Vec<UsageRow>, resp::RedisError> {
        let Some(store) = &self.shared else {
            return Ok(self.usage(now));
        };
        let mut found: HashMap<CounterKey, Counter> = self
            .bound_keys()
            .map(|key| (key, Counter::default()))
            .collect();
        for (name, fields) in store.list().await? {
            for (index, limit) in self.limits.iter().take(self.configured).enumerate() {
                let period = limit.period(now, &self.zone);
                let prefix = self.redis_key(
                    limit,
                    &CounterKey {
                        limit: index,
                        id: String::new(),
                    },
                    period,
                );
                let Some(id) = name.strip_prefix(&prefix) else {
                    continue;
                };
                let key = CounterKey {
                    limit: index,
                    id: id.to_string(),
                };
                let (used, reserved) = shared::tally(&fields, self.oldest_bucket(limit, now));
                found.insert(
                    key,
                    Counter {
                        window_start: period,
                        used,
                        reserved,
                        buckets: std::collections::VecDeque::new(),
                    },
                );
            }
        }
        Ok(self.rows(found.into_iter(), now))
    }

    /// Usage rows of counters, sorted by scope, id, kind and window.
    fn rows(
        &self,
        counters: impl Iterator<Item = (CounterKey, Counter)>,
        now: i64,
    ) -> Vec<UsageRow> {
        let mut rows: Vec<UsageRow> = counters
            .filter(|(key, _)| key.limit < self.configured)
            .filter_map(|(key, mut counter)| {
                let limit = self.limits.get(key.limit)?;
                let (start, end) = limit.bounds(now, &self.zone);
                let counter = counter.current(limit, now, &self.zone);
                Some(UsageRow {
                    scope: limit.scope.as_str().to_string(),
                    id: key.id.clone(),
                    kind: limit.kind.as_str().to_string(),
                    window: limit.window_name(),
                    window_start: start,
                    window_end: end,
                    limit: limit.limit,
                    used: counter.used,
                    reserved: counter.reserved,
                    remaining: (limit.limit - counter.used - counter.reserved).max(0.0),
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            (&a.scope, &a.id, &a.kind, &a.window).cmp(&(&b.scope, &b.id, &b.kind, &b.window))
        });
        rows
    }

    /// Every counter in its current window at `now`: each limit bound to an id, used or
    /// not, and each scope member a limit without id has counted; sorted by scope, id,
    /// kind and window.
    pub fn usage(&self, now: i64) -> Vec<UsageRow> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        for key in self.bound_keys() {
            counters.entry(key).or_default();
        }
        self.rows(counters.iter().map(|(k, c)| (k.clone(), c.clone())), now)
    }

    /// The refusal of a call that `limit`, with `taken` used, has no room for.
    fn exceeded(
        &self,
        limit: &LimitConfig,
        key: &CounterKey,
        taken: f64,
        now: i64,
    ) -> Box<Exceeded> {
        let (_, end) = limit.bounds(now, &self.zone);
        Box::new(Exceeded {
            limit: Ledger::describe(limit, &key.id, taken),
            // Room in a concurrency limit comes back when a call ends: soon.
            retry_after_s: u64::try_from(end.saturating_sub(now))
                .unwrap_or(0)
                .clamp(1, if limit.window.is_some() { u64::MAX } else { 1 }),
            headroom: Headroom {
                kind: limit.kind,
                limit: limit.limit,
                remaining: 0.0,
                reset_at: end,
            },
        })
    }

    /// What is left of `limit` once `taken` is used.
    fn headroom(&self, limit: &LimitConfig, taken: f64, now: i64) -> Headroom {
        Headroom {
            kind: limit.kind,
            limit: limit.limit,
            remaining: limit.limit - taken,
            reset_at: limit.bounds(now, &self.zone).1,
        }
    }

    /// The Redis key of a counter in the window `period` ([`LimitConfig::period`]); the
    /// member's id goes last, so ids may hold any character.
    fn redis_key(&self, limit: &LimitConfig, key: &CounterKey, period: i64) -> String {
        let bound = if key.limit >= self.configured {
            "throttle".to_string()
        } else {
            limit
                .id
                .as_deref()
                .map_or("*".to_string(), |id| id.replace(':', "%3A"))
        };
        format!(
            "sluice:meter:{period}:{}:{bound}:{}:{}:{}",
            limit.scope.as_str(),
            limit.kind.as_str(),
            limit.window_name(),
            key.id
        )
    }

    /// When a counter of `limit` written at `now` may be forgotten: an hour after its
    /// calendar window; for a rolling window, an hour after what is spent now has left it;
    /// a concurrency counter an hour after its last call (so a replica that died mid-call
    /// does not hold places forever).
    fn expire_at(&self, limit: &LimitConfig, now: i64) -> i64 {
        match limit.bucket() {
            Some(bucket) => now.saturating_add(bucket * ROLLING_BUCKETS + 3_600),
            None if limit.window.is_some() => limit.bounds(now, &self.zone).1.saturating_add(3_600),
            None => now + 3_600,
        }
    }

    /// The start of the oldest bucket a rolling window of `limit` still holds at `now`;
    /// 0 for other windows (their counters hold no buckets).
    fn oldest_bucket(&self, limit: &LimitConfig, now: i64) -> i64 {
        if limit.bucket().is_some() {
            limit.bounds(now, &self.zone).0
        } else {
            0
        }
    }

    /// The field of a Redis counter that spend at `now` goes to: `used`, or a rolling
    /// window's bucket (`b` and its start).
    fn spend_field(limit: &LimitConfig, now: i64) -> String {
        limit.bucket().map_or_else(
            || "used".to_string(),
            |length| format!("b{}", now.div_euclid(length) * length),
        )
    }

    /// Whether counters are shared through Redis.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// What happens while the shared store cannot be reached.
    pub fn on_error(&self) -> shared::OnError {
        self.shared
            .as_ref()
            .map_or(shared::OnError::FailClosed, |s| s.on_error)
    }

    /// [`state`](Self::state), from Redis when counters are shared.
    pub async fn state_async(
        &self,
        subject: &Subject,
        now: i64,
    ) -> Result<Vec<Limit>, resp::RedisError> {
        let Some(store) = &self.shared else {
            return Ok(self.state(subject, now));
        };
        let planned: Vec<_> = self.applicable(subject).collect();
        let counters: Vec<(String, i64)> = planned
            .iter()
            .map(|(limit, key)| {
                (
                    self.redis_key(limit, key, limit.period(now, &self.zone)),
                    self.oldest_bucket(limit, now),
                )
            })
            .collect();
        let taken = store.read(&counters).await?;
        Ok(planned
            .iter()
            .zip(taken)
            .map(|((limit, key), taken)| Ledger::describe(limit, &key.id, taken))
            .collect())
    }

    /// [`reserve_throttled`](Self::reserve_throttled), in Redis when counters are shared:
    /// one script checks and takes room on every counter, atomically for all replicas.
    pub async fn reserve_async(
        self: &Arc<Self>,
        subject: &Subject,
        estimate: Usage,
        now: i64,
        throttle: Option<&sluice_engine::decision::Throttle>,
    ) -> Result<Result<Reservation, Box<Exceeded>>, resp::RedisError> {
        let Some(store) = &self.shared else {
            return Ok(self.reserve_throttled(subject, estimate, now, throttle));
        };
        let planned = self.planned(subject, throttle);
        let takes: Vec<shared::Take> = planned
            .iter()
            .map(|(limit, key)| shared::Take {
                key: self.redis_key(limit, key, limit.period(now, &self.zone)),
                limit: limit.limit,
                amount: estimate.of(limit.kind),
                expire_at: self.expire_at(limit, now),
                oldest_bucket: self.oldest_bucket(limit, now),
            })
            .collect();
        match store.reserve(&takes).await? {
            Err((index, taken)) => {
                let Some((limit, key)) = planned.get(index) else {
                    return Err(resp::RedisError::Protocol(format!(
                        "reserve named counter {index} of {}",
                        planned.len()
                    )));
                };
                Ok(Err(self.exceeded(limit, key, taken, now)))
            }
            Ok(taken) => {
                let mut headroom = Vec::new();
                let mut held = Vec::new();
                for ((limit, key), taken) in planned.iter().zip(taken) {
                    let amount = estimate.of(limit.kind);
                    tightest(&mut headroom, self.headroom(limit, taken + amount, now));
                    held.push((key.clone(), limit.period(now, &self.zone), amount));
                }
                Ok(Ok(Reservation::new(self, held, estimate, headroom)))
            }
        }
    }

    /// A reservation holding nothing, for a call let through unmetered.
    pub fn unmetered(self: &Arc<Self>) -> Reservation {
        Reservation::new(self, Vec::new(), Usage::default(), Vec::new())
    }

    /// Settles in Redis, off the caller's path; a failure is logged (the reservation then
    /// lapses with its counter).
    fn release_shared(
        &self,
        store: &Arc<shared::Store>,
        held: &[(CounterKey, i64, f64)],
        actual: Usage,
        now: i64,
    ) {
        let releases: Vec<shared::Release> = held
            .iter()
            .filter_map(|(key, reserved_in, amount)| {
                let limit = self.limits.get(key.limit)?;
                Some(shared::Release {
                    reserved_on: self.redis_key(limit, key, *reserved_in),
                    spent_on: self.redis_key(limit, key, limit.period(now, &self.zone)),
                    reserved: *amount,
                    spent: if limit.kind == Kind::Concurrent {
                        0.0
                    } else {
                        actual.of(limit.kind)
                    },
                    field: Ledger::spend_field(limit, now),
                    expire_at: self.expire_at(limit, now),
                    oldest_bucket: self.oldest_bucket(limit, now),
                })
            })
            .collect();
        let store = Arc::clone(store);
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(error) = store.settle(&releases).await {
                        tracing::error!(%error, "cannot settle a budget reservation in Redis");
                    }
                });
            }
            Err(_) => tracing::error!("cannot settle a budget reservation: no async runtime"),
        }
    }

    /// The limits a call of `subject` reserves on, with their counters: the configured
    /// ones that apply, then the `throttle` obligation's.
    fn planned<'a>(
        &'a self,
        subject: &'a Subject,
        throttle: Option<&sluice_engine::decision::Throttle>,
    ) -> Vec<(std::borrow::Cow<'a, LimitConfig>, CounterKey)> {
        let throttled = throttle.into_iter().flat_map(|t| {
            [t.requests_per_minute, t.tokens_per_minute]
                .into_iter()
                .enumerate()
                .filter_map(|(offset, amount)| {
                    let index = self.configured + offset;
                    let limit = LimitConfig {
                        limit: amount? as f64,
                        ..self.limits.get(index)?.clone()
                    };
                    let key = CounterKey {
                        limit: index,
                        id: subject.key.clone(),
                    };
                    Some((std::borrow::Cow::Owned(limit), key))
                })
        });
        let limits = self
            .applicable(subject)
            .map(|(limit, key)| (std::borrow::Cow::Borrowed(limit), key))
            .chain(throttled);
        limits.collect()
    }

    /// Reserves `estimate` (and one request) against every limit of `subject`, all or
    /// nothing; the first limit it would overrun otherwise.
    pub fn reserve(
        self: &Arc<Self>,
        subject: &Subject,
        estimate: Usage,
        now: i64,
    ) -> Result<Reservation, Box<Exceeded>> {
        self.reserve_throttled(subject, estimate, now, None)
    }

    /// `reserve`, with the per-minute request and token limits a policy's `throttle`
    /// obligation sets for the caller's key on top of the configured ones.
    pub fn reserve_throttled(
        self: &Arc<Self>,
        subject: &Subject,
        estimate: Usage,
        now: i64,
        throttle: Option<&sluice_engine::decision::Throttle>,
    ) -> Result<Reservation, Box<Exceeded>> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let mut held = Vec::new();
        let mut headroom = Vec::new();
        let limits = self.planned(subject, throttle);
        for (limit, key) in limits {
            let limit: &LimitConfig = &limit;
            let amount = estimate.of(limit.kind);
            let counter = counters
                .entry(key.clone())
                .or_default()
                .current(limit, now, &self.zone);
            let taken = counter.used + counter.reserved;
            if taken + amount > limit.limit {
                return Err(self.exceeded(limit, &key, taken, now));
            }
            tightest(&mut headroom, self.headroom(limit, taken + amount, now));
            held.push((key, counter.window_start, amount));
        }
        for (key, _, amount) in &held {
            if let Some(counter) = counters.get_mut(key) {
                counter.reserved += amount;
            }
        }
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(Reservation::new(self, held, estimate, headroom))
    }

    fn release(&self, held: &[(CounterKey, i64, f64)], actual: Usage, now: i64) {
        if let Some(store) = &self.shared {
            self.release_shared(store, held, actual, now);
            return;
        }
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        for (key, reserved_in, amount) in held {
            let Some(limit) = self.limits.get(key.limit) else {
                continue;
            };
            let counter = counters.entry(key.clone()).or_default();
            if counter.window_start == *reserved_in {
                counter.reserved = (counter.reserved - amount).max(0.0);
            }
            // A call that outlives its window is charged to the window it ends in, so a
            // stream across midnight still counts against a daily budget.
            if limit.kind != Kind::Concurrent {
                counter
                    .current(limit, now, &self.zone)
                    .spend(limit, now, actual.of(limit.kind));
            }
        }
        self.changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
    }
}

impl Reservation {
    fn new(
        ledger: &Arc<Ledger>,
        held: Vec<(CounterKey, i64, f64)>,
        estimate: Usage,
        headroom: Vec<Headroom>,
    ) -> Reservation {
        Reservation {
            ledger: Arc::clone(ledger),
            held,
            estimate,
            settled: std::sync::atomic::AtomicBool::new(false),
            headroom,
        }
    }

    /// What was reserved.
    pub fn estimate(&self) -> Usage {
        self.estimate
    }

    /// Per kind, what is left of the tightest limit once this call is counted.
    pub fn headroom(&self) -> &[Headroom] {
        &self.headroom
    }

    /// Replaces the estimate with the actual usage at `now` (Unix seconds); only the first
    /// settlement counts.
    pub fn settle(&self, actual: Usage, now: i64) {
        if !self.settled.swap(true, std::sync::atomic::Ordering::AcqRel) {
            self.ledger.release(&self.held, actual, now);
        }
    }

    /// Settles a call that failed before the upstream served it: it still counts as a
    /// request, but uses no tokens and costs nothing.
    pub fn refund(&self) {
        self.settle(Usage::default(), now());
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.settle(self.estimate, now());
    }
}

/// Unix seconds now.
pub fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[cfg(test)]
mod tests;
