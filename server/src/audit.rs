//! The audit trail: one row per decision in an embedded DuckDB file, written off the
//! request path.
//!
//! Requests hand rows to a bounded queue; one writer thread owns the only connection and
//! appends them in batches (at most `batch_size` rows, at least every `flush_interval_ms`).
//! A full queue never drops a row silently: the configured policy either waits for room
//! (`block`, up to `block_timeout_ms`) or refuses, and the caller fails the request closed.
//! Shutdown closes the queue and the writer drains it before the process exits, so a
//! graceful stop loses nothing; a crash loses at most the rows of one flush interval (those
//! still queued or in the batch being built).

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use duckdb::Connection;
use duckdb::types::{TimeUnit, Value as DuckValue};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_engine::{Decision, DecisionInput};

pub mod maintain;
mod mask;
pub mod row;

pub use mask::{masked_input, masked_input_text};
pub use row::{CallFacts, Row};

/// The DDL, applied at startup.
pub const DDL: &str = include_str!("../../schemas/audit.sql");

/// The schema version this build writes.
pub const SCHEMA_VERSION: i32 = 1;

/// What a full queue does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFull {
    /// Wait up to `block_timeout_ms` for room, then fail the request closed.
    Block,
    /// Fail the request closed at once.
    FailClosed,
}

/// The audit configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Whether decisions are recorded.
    pub enabled: bool,
    /// The DuckDB file; relative paths are resolved against the config file's directory.
    pub path: PathBuf,
    /// Rows queued at most before `on_full` applies.
    pub queue_capacity: usize,
    /// Rows appended per batch at most. A full batch of at least 16,384 rows (one row
    /// group) skips DuckDB's write-ahead log: under heavy load the writer keeps up by
    /// writing larger, cheaper batches; under light load `flush_interval_ms` bounds the wait.
    pub batch_size: usize,
    /// Longest time a row waits in a batch before it is written, in milliseconds; what a
    /// crash can lose.
    pub flush_interval_ms: u64,
    /// What a full queue does.
    pub on_full: OnFull,
    /// How long `block` waits for room, in milliseconds.
    pub block_timeout_ms: u64,
    /// Days a row is kept (in the live table and in Parquet exports); forever when unset.
    pub retention_days: Option<u32>,
    /// Where closed days are rotated to Parquet files (`decisions-YYYY-MM-DD.parquet`);
    /// rows stay in the live table when unset. Relative paths are resolved like `path`.
    pub export_dir: Option<PathBuf>,
    /// How often rotation and retention run, in seconds (also once at startup).
    pub maintenance_interval_s: u64,
    /// DuckDB's memory limit for the audit database, in MiB (its own default is 80% of the
    /// machine's memory, too much for a process that shares the machine with traffic).
    pub memory_limit_mb: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            enabled: true,
            path: PathBuf::from("sluice-audit.duckdb"),
            queue_capacity: 16_384,
            batch_size: ROW_GROUP_ROWS,
            flush_interval_ms: 200,
            on_full: OnFull::Block,
            block_timeout_ms: 1_000,
            retention_days: None,
            export_dir: None,
            maintenance_interval_s: 3_600,
            memory_limit_mb: 256,
        }
    }
}

/// Why a row was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The queue stayed full.
    #[error("the audit queue is full: the decision cannot be recorded, so the request is refused")]
    Full,
    /// The database refuses writes (disk full, read-only, I/O error); the writer retries.
    #[error(
        "the audit database cannot be written (see the gateway's log): the decision cannot be recorded, so the request is refused"
    )]
    Unwritable,
    /// The writer has stopped (shutdown, or it failed).
    #[error("the audit writer is not running: the decision cannot be recorded")]
    Stopped,
}

/// Counters for `/metrics` and the status endpoint.
#[derive(Debug, Default)]
pub struct AuditCounters {
    /// Rows accepted into the queue.
    pub queued: AtomicU64,
    /// Rows written to the database.
    pub written: AtomicU64,
    /// Rows refused because the queue was full, the database was unwritable or the writer
    /// had stopped; each such request failed closed.
    pub refused: AtomicU64,
    /// Rows lost: accepted, but the database still refused them when the gateway stopped
    /// (each also logged).
    pub failed: AtomicU64,
    /// Write attempts the database refused; the rows were kept and retried.
    pub write_errors: AtomicU64,
    /// Whether the database refuses writes right now; requests fail closed meanwhile.
    pub unwritable: AtomicBool,
    /// Whether the writer runs on CPU time the request threads leave (`SCHED_IDLE`) right
    /// now; it runs at normal priority while rows pile up, or where it may not yield.
    pub yielding: AtomicBool,
    /// Set by [`Audit::shutdown`]: a writer retrying a refused batch gives up after a grace
    /// period instead of holding the process forever.
    stopping: AtomicBool,
}

/// What a request hands the writer: a row, or a decision whose row the writer builds.
#[derive(Debug)]
enum Entry {
    Row(Box<Row>),
    Decision(Box<Decided>),
}

/// A decision whose row is still to be built.
#[derive(Debug)]
struct Decided {
    input: DecisionInput,
    decision: Decision,
    facts: CallFacts,
}

impl Entry {
    fn into_row(self) -> Row {
        match self {
            Entry::Row(row) => *row,
            Entry::Decision(decided) => {
                let Decided {
                    input,
                    decision,
                    facts,
                } = *decided;
                Row::new(Cow::Owned(input), &decision, &facts)
            }
        }
    }
}

/// The most text (messages, documents, tool arguments and descriptions, in bytes) a
/// decision may carry for its row to be built by the writer: building a row (masking and
/// serialising the input, 10–12 µs) costs ten times as much as copying a small input, but a
/// queue of copied inputs must stay small in memory (at most 4 KiB of text each).
const DEFERRED_TEXT: usize = 4 * 1024;

/// Whether `input` carries at most `limit` bytes of text.
fn small(input: &DecisionInput, limit: usize) -> bool {
    fn within(value: &Value, budget: &mut usize) -> bool {
        match value {
            Value::String(s) => spend(budget, s.len()),
            Value::Array(items) => items.iter().all(|v| within(v, budget)),
            Value::Object(map) => map
                .iter()
                .all(|(k, v)| spend(budget, k.len()) && within(v, budget)),
            _ => spend(budget, 8),
        }
    }
    fn spend(budget: &mut usize, bytes: usize) -> bool {
        match budget.checked_sub(bytes) {
            Some(left) => {
                *budget = left;
                true
            }
            None => false,
        }
    }
    let content = &input.content;
    let mut budget = limit;
    let call = |c: &sluice_engine::input::ToolCall, budget: &mut usize| {
        spend(budget, c.name.len()) && within(&c.arguments, budget)
    };
    content.messages.iter().all(|m| {
        spend(&mut budget, m.content.len()) && m.tool_calls.iter().all(|c| call(c, &mut budget))
    }) && content.texts.iter().all(|t| spend(&mut budget, t.len()))
        && content.tool.iter().all(|c| call(c, &mut budget))
        && content.tools.iter().all(|t| {
            spend(&mut budget, t.description.len()) && within(&t.input_schema, &mut budget)
        })
        && content
            .documents
            .iter()
            .all(|d| spend(&mut budget, d.text.len()))
}

/// The handle requests use.
#[derive(Debug)]
pub struct Audit {
    sender: Mutex<Option<SyncSender<Entry>>>,
    config: AuditConfig,
    counters: Arc<AuditCounters>,
    writer: Mutex<Option<JoinHandle<()>>>,
}

/// Rows per row group of the audit file, and the default batch size. A transaction that
/// appends at least a row group's worth is compressed and written straight into the file as
/// whole row groups ("optimistic writes"); smaller ones go through DuckDB's write-ahead log
/// and are compressed again at each checkpoint, which costs about three times as much per
/// row. DuckDB's default row group (122,880 rows) would need batches, and memory, that
/// large; 16,384 rows still scan fast (a multiple of DuckDB's 2,048-row vector).
pub const ROW_GROUP_ROWS: usize = 16_384;

/// A string as an SQL literal.
pub(crate) fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Opens (or creates) the database and applies the schema; the error names the file.
pub fn open(path: &Path) -> anyhow::Result<Connection> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
        && !parent.is_dir()
    {
        anyhow::bail!(
            "cannot open the audit database `{}`: directory `{}` does not exist",
            path.display(),
            parent.display()
        );
    }
    let cannot_open = |e: duckdb::Error| {
        anyhow::anyhow!("cannot open the audit database `{}`: {e}", path.display())
    };
    let connection = Connection::open_in_memory().map_err(cannot_open)?;
    // Zero egress: never download an extension; Parquet and JSON are compiled in.
    connection
        .execute_batch(
            "SET autoinstall_known_extensions = false; SET autoload_known_extensions = false;",
        )
        .map_err(|e| anyhow::anyhow!("cannot configure the audit database: {e}"))?;
    // Attached rather than opened, for the row group size (an attach option).
    connection
        .execute_batch(&format!(
            "ATTACH {} AS audit (ROW_GROUP_SIZE {ROW_GROUP_ROWS}); USE audit;",
            literal(&path.to_string_lossy())
        ))
        .map_err(cannot_open)?;
    connection.execute_batch(DDL).map_err(|e| {
        anyhow::anyhow!(
            "cannot create the audit schema in `{}`: {e}",
            path.display()
        )
    })?;
    let version: Option<i32> = connection
        .query_row("SELECT max(version) FROM sluice_schema", [], |row| {
            row.get(0)
        })
        .map_err(|e| anyhow::anyhow!("cannot read the audit schema version: {e}"))?;
    match version {
        None => {
            connection
                .execute(
                    "INSERT INTO sluice_schema VALUES (?, now()::TIMESTAMP)",
                    [SCHEMA_VERSION],
                )
                .map_err(|e| anyhow::anyhow!("cannot record the audit schema version: {e}"))?;
        }
        Some(v) if v > SCHEMA_VERSION => anyhow::bail!(
            "the audit database `{}` has schema version {v}, newer than this Sluice ({SCHEMA_VERSION}); upgrade Sluice",
            path.display()
        ),
        Some(_) => {}
    }
    Ok(connection)
}

/// Opens the database for the writer, with its resource limits.
fn connect(config: &AuditConfig) -> anyhow::Result<Connection> {
    let connection = open(&config.path)?;
    // One thread: the writer appends serially, and DuckDB's worker threads would compete
    // with request handling for the CPU.
    connection
        .execute_batch(&format!(
            "SET memory_limit = '{}MiB'; SET threads = 1;",
            config.memory_limit_mb.max(16)
        ))
        .map_err(|e| anyhow::anyhow!("cannot configure the audit database: {e}"))?;
    Ok(connection)
}

impl Audit {
    /// Opens the database and starts the writer thread.
    pub fn start(config: AuditConfig) -> anyhow::Result<Audit> {
        let connection = connect(&config)?;
        let (sender, receiver) = std::sync::mpsc::sync_channel(config.queue_capacity.max(1));
        let counters = Arc::new(AuditCounters::default());
        let writer = {
            let counters = Arc::clone(&counters);
            let config = config.clone();
            std::thread::Builder::new()
                .name("sluice-audit".to_string())
                .spawn(move || write_loop(connection, receiver, &config, &counters))
                .map_err(|e| anyhow::anyhow!("cannot start the audit writer: {e}"))?
        };
        Ok(Audit {
            sender: Mutex::new(Some(sender)),
            config,
            counters,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The counters.
    pub fn counters(&self) -> &AuditCounters {
        &self.counters
    }

    /// Queues the row of a decision; an error means the caller must fail the request
    /// closed. The row of a small input is built by the writer, off the request path.
    pub fn record_decision(
        &self,
        input: &DecisionInput,
        decision: &Decision,
        facts: CallFacts,
    ) -> Result<(), AuditError> {
        let entry = if small(input, DEFERRED_TEXT) {
            Entry::Decision(Box::new(Decided {
                input: input.clone(),
                decision: decision.clone(),
                facts,
            }))
        } else {
            Entry::Row(Box::new(row(input, decision, &facts)))
        };
        self.queue(entry)
    }

    /// Queues a row; an error means the caller must fail the request closed.
    pub fn record(&self, row: Row) -> Result<(), AuditError> {
        self.queue(Entry::Row(Box::new(row)))
    }

    fn queue(&self, entry: Entry) -> Result<(), AuditError> {
        let sender = self
            .sender
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(sender) = sender else {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
            return Err(AuditError::Stopped);
        };
        // A row accepted now could only wait in memory for a disk that may not come back.
        let result = if self.counters.unwritable.load(Ordering::Relaxed) {
            Err(AuditError::Unwritable)
        } else {
            self.send(&sender, entry)
        };
        match &result {
            Ok(()) => {
                self.counters.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                tracing::error!(%error, "audit row refused");
            }
        }
        result
    }

    /// Queues a row, applying `on_full` when the queue is full.
    fn send(&self, sender: &SyncSender<Entry>, entry: Entry) -> Result<(), AuditError> {
        match sender.try_send(entry) {
            Ok(()) => Ok(()),
            Err(TrySendError::Disconnected(_)) => Err(AuditError::Stopped),
            Err(TrySendError::Full(entry)) => match self.config.on_full {
                OnFull::FailClosed => Err(AuditError::Full),
                OnFull::Block => {
                    let timeout = Duration::from_millis(self.config.block_timeout_ms);
                    let wait = || block(sender, entry, timeout);
                    // On the gateway's runtime, let the worker's other tasks move elsewhere
                    // while this request waits for room.
                    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
                        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                            tokio::task::block_in_place(wait)
                        }
                        _ => wait(),
                    }
                }
            },
        }
    }

    /// Closes the queue and waits until every queued row is written (or, if the database
    /// refuses writes, until the writer's grace period is over).
    pub fn shutdown(&self) {
        self.counters.stopping.store(true, Ordering::Relaxed);
        drop(
            self.sender
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer
            && writer.join().is_err()
        {
            tracing::error!("the audit writer panicked while draining");
        }
        tracing::info!(
            written = self.counters.written.load(Ordering::Relaxed),
            failed = self.counters.failed.load(Ordering::Relaxed),
            refused = self.counters.refused.load(Ordering::Relaxed),
            "audit drained"
        );
    }
}

/// Waits for room in the queue (std's bounded channel has no send with a timeout).
fn block(
    sender: &SyncSender<Entry>,
    mut entry: Entry,
    timeout: Duration,
) -> Result<(), AuditError> {
    let deadline = Instant::now() + timeout;
    loop {
        match sender.try_send(entry) {
            Ok(()) => return Ok(()),
            Err(TrySendError::Disconnected(_)) => return Err(AuditError::Stopped),
            Err(TrySendError::Full(back)) => {
                if Instant::now() >= deadline {
                    return Err(AuditError::Full);
                }
                entry = back;
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }
}

/// How long a stopping writer keeps retrying rows the database refuses.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// The longest pause between retries of a refused batch.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);

/// How long a writer holding rows pauses before it takes the rows queued meanwhile. Waking
/// the writer for every row would cost each request a futex wake and the writer a context
/// switch per row; at 100,000 rows/s a pause lets about 500 rows wait, well within the queue.
const DRAIN_PAUSE: Duration = Duration::from_millis(5);

/// The writer's side: the connection (reopened after a failure) and what it needs.
struct Writer<'a> {
    connection: Option<Connection>,
    config: &'a AuditConfig,
    counters: &'a AuditCounters,
}

fn write_loop(
    connection: Connection,
    receiver: Receiver<Entry>,
    config: &AuditConfig,
    counters: &AuditCounters,
) {
    // Writing costs a burst of CPU per batch (about 10 ms for 600 rows on the reference
    // machine); at normal priority it takes a core from the request threads for that long
    // and shows in the gateway's tail latency. So the writer runs on the time they leave,
    // until rows pile up (a machine too busy to leave it time): then at normal priority
    // until it has caught up, so that the backlog, and the memory it holds, stay small.
    // Where the process may not raise a thread's priority again, the writer stays at
    // normal priority: never stuck where it could starve.
    let adaptive = crate::sys::can_leave_idle();
    let mut idle = adaptive && crate::sys::run_when_idle(true);
    counters.yielding.store(idle, Ordering::Relaxed);
    if !adaptive {
        tracing::info!(
            "the audit writer runs at normal priority: yielding to requests needs CAP_SYS_NICE or an RLIMIT_NICE of 20 (README, Audit trail)"
        );
    }
    let behind = (config.queue_capacity / 4).max(1) as u64;
    let caught_up = behind / 4;
    let mut writer = Writer {
        connection: Some(connection),
        config,
        counters,
    };
    let interval = Duration::from_millis(config.flush_interval_ms.max(1));
    let batch_size = config.batch_size.max(1);
    let mut batch: Vec<Row> = Vec::with_capacity(batch_size);
    let mut oldest: Option<Instant> = None;
    let maintenance = Duration::from_secs(config.maintenance_interval_s.max(1));
    let mut maintained: Option<Instant> = None;
    loop {
        // Behind means rows waiting in the queue: the writer gets too little CPU to take
        // them. Its own batch, held for the flush interval, is not a sign of it (a long
        // interval at a high rate holds more than a quarter of the queue). Once behind,
        // it stays at normal priority until the rows are written, not merely taken.
        let unwritten = counters.queued.load(Ordering::Relaxed).saturating_sub(
            counters.written.load(Ordering::Relaxed) + counters.failed.load(Ordering::Relaxed),
        );
        let switch = if idle {
            unwritten.saturating_sub(batch.len() as u64) >= behind
        } else {
            adaptive && unwritten <= caught_up
        };
        if switch && crate::sys::run_when_idle(!idle) {
            idle = !idle;
            counters.yielding.store(idle, Ordering::Relaxed);
        }
        if maintained.is_none_or(|t| t.elapsed() >= maintenance)
            && let Some(connection) = &writer.connection
        {
            match maintain::maintain(connection, config) {
                Ok(report) if report != maintain::Report::default() => {
                    tracing::info!(?report, "audit maintenance");
                }
                Ok(_) => {}
                Err(error) => tracing::error!(%error, "audit maintenance failed"),
            }
            maintained = Some(Instant::now());
        }
        if batch.is_empty() {
            // Idle: the first row wakes the writer.
            match receiver.recv_timeout(interval) {
                Ok(entry) => {
                    oldest = Some(Instant::now());
                    batch.push(entry.into_row());
                }
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
        // Busy: the rows queued since are taken in bulk, between pauses, so that a request
        // queueing a row wakes nobody.
        let stopped = loop {
            if batch.len() >= batch_size {
                break false;
            }
            match receiver.try_recv() {
                Ok(entry) => batch.push(entry.into_row()),
                Err(TryRecvError::Empty) => break false,
                Err(TryRecvError::Disconnected) => break true,
            }
        };
        let waited = oldest.map_or(interval, |t| t.elapsed());
        if stopped {
            writer.flush(&mut batch);
            return;
        }
        if batch.len() >= batch_size || waited >= interval {
            writer.flush(&mut batch);
            oldest = None;
        } else {
            std::thread::sleep(DRAIN_PAUSE.min(interval - waited));
        }
    }
}

impl Writer<'_> {
    /// The connection, opened again if a failure dropped it.
    fn connection(&mut self) -> anyhow::Result<&Connection> {
        match &mut self.connection {
            Some(connection) => Ok(connection),
            slot @ None => Ok(slot.insert(connect(self.config)?)),
        }
    }

    /// Writes the batch, retrying (and reopening the database) for as long as it refuses;
    /// while it does, the gateway refuses requests. Rows are given up only when the
    /// gateway is stopping and the grace period is over.
    fn flush(&mut self, batch: &mut Vec<Row>) {
        if batch.is_empty() {
            return;
        }
        let count = batch.len() as u64;
        let mut delay = Duration::from_millis(100);
        let mut give_up: Option<Instant> = None;
        loop {
            let result = self
                .connection()
                .and_then(|connection| Ok(append(connection, batch)?));
            match result {
                Ok(()) => {
                    self.counters.written.fetch_add(count, Ordering::Relaxed);
                    if self.counters.unwritable.swap(false, Ordering::Relaxed) {
                        tracing::warn!(rows = count, "the audit database accepts writes again");
                    }
                    batch.clear();
                    return;
                }
                Err(error) => {
                    self.counters.write_errors.fetch_add(1, Ordering::Relaxed);
                    if !self.counters.unwritable.swap(true, Ordering::Relaxed) {
                        tracing::error!(
                            rows = count,
                            path = %self.config.path.display(),
                            %error,
                            "the audit database refuses writes: requests fail closed until it accepts them again; the rows are kept and retried"
                        );
                    }
                    // DuckDB invalidates a database after a failed write; start afresh
                    // (reopening also replays its write-ahead log).
                    self.connection = None;
                }
            }
            if self.counters.stopping.load(Ordering::Relaxed) {
                let deadline = *give_up.get_or_insert_with(|| Instant::now() + SHUTDOWN_GRACE);
                if Instant::now() >= deadline {
                    self.counters.failed.fetch_add(count, Ordering::Relaxed);
                    tracing::error!(
                        rows = count,
                        path = %self.config.path.display(),
                        "audit rows lost: the database still refused them when the gateway stopped"
                    );
                    batch.clear();
                    return;
                }
            }
            std::thread::sleep(delay);
            delay = (delay * 2).min(MAX_RETRY_DELAY);
        }
    }
}

fn timestamp(micros: i64) -> DuckValue {
    DuckValue::Timestamp(TimeUnit::Microsecond, micros)
}

/// Appends the rows in one transaction: all of them or none.
fn append(connection: &Connection, batch: &[Row]) -> duckdb::Result<()> {
    let mut appender = connection.appender("decisions")?;
    for row in batch {
        appender.append_row(duckdb::params![
            row.decision_id,
            row.request_id,
            timestamp(row.time_micros),
            row.surface,
            row.action,
            row.key_id,
            row.user_id,
            row.team,
            row.agent,
            row.resource_kind,
            row.resource_id,
            row.provider,
            row.deployment,
            row.allow,
            row.reasons,
            row.obligations,
            row.findings,
            row.pii_count,
            row.secret_count,
            row.injection_score,
            row.input_tokens,
            row.output_tokens,
            row.cached_tokens,
            row.reasoning_tokens,
            row.cost_usd,
            row.upstream_status,
            row.decide_us,
            row.upstream_ms,
            row.total_ms,
            row.revision,
            row.error_source,
            row.input,
        ])?;
    }
    appender.flush()
}

/// Builds the row of a decision.
pub fn row(input: &DecisionInput, decision: &Decision, call: &CallFacts) -> Row {
    Row::new(Cow::Borrowed(input), decision, call)
}

/// A JSON value as text for a JSON column.
fn json_text(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| Value::Null.to_string())
}

#[cfg(test)]
mod tests;
