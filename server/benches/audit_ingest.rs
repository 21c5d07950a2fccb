//! Audit ingest: rows per second through Sluice's writer (bounded queue, one DuckDB
//! connection, Appender batches) into a DuckDB file on disk, measured from the first
//! `record` until `shutdown` has drained and written everything. Target: ≥ 100,000 rows/s.
//!
//! Run: `cargo bench -p sluice-server --bench audit_ingest` (or with `--profile dev` to
//! reuse the test build's DuckDB, which is optimised there too, instead of compiling it
//! again for release). `SLUICE_AUDIT_ROWS` sets the row count (default 500,000); `SLUICE_AUDIT_BATCH`,
//! `SLUICE_AUDIT_FLUSH_MS`, `SLUICE_AUDIT_MEMORY_MB` and `SLUICE_AUDIT_QUEUE` override the
//! writer's defaults.

#![expect(
    clippy::unwrap_used,
    reason = "a benchmark harness stops loudly on a broken setup"
)]

use std::path::Path;
use std::time::Instant;

use sluice_engine::{Bundle, DecisionInput, Policies};
use sluice_server::audit::{Audit, AuditConfig, CallFacts, row};

mod common;

/// The allocator of the `sluice` binary, so that building rows costs here what it costs there.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    if !common::selected("audit_ingest") {
        return;
    }
    let rows: usize = common::env_number("SLUICE_AUDIT_ROWS", 500_000);
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    // Rows of every example input (each surface, allowed and denied), with their own ids and
    // times, so DuckDB compresses something like real traffic rather than one row repeated.
    let bundle = Bundle::load(&repo.join("policies")).unwrap();
    let policies = Policies::compile(&bundle, "bench".to_string()).unwrap();
    let mut decided = Vec::new();
    let mut paths: Vec<_> = std::fs::read_dir(repo.join("examples/inputs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    for path in paths {
        let input: DecisionInput =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let decision = policies.evaluate(&input);
        decided.push((input, decision));
    }
    // Building rows is the writer's work too (for small inputs, see `record_decision`).
    let builds = 20_000;
    let started = Instant::now();
    for (input, decision) in decided.iter().cycle().take(builds) {
        std::hint::black_box(row(input, decision, &CallFacts::default()));
    }
    println!(
        "audit row build: {:.2} µs per row ({} example inputs)",
        started.elapsed().as_secs_f64() * 1e6 / builds as f64,
        decided.len()
    );
    let templates: Vec<_> = decided
        .iter()
        .map(|(input, decision)| row(input, decision, &CallFacts::default()))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let audit = Audit::start(AuditConfig {
        path: dir.path().join("audit.duckdb"),
        // Measure the writer's pace: producers wait for room instead of failing.
        block_timeout_ms: 600_000,
        memory_limit_mb: common::env_number(
            "SLUICE_AUDIT_MEMORY_MB",
            AuditConfig::default().memory_limit_mb,
        ),
        queue_capacity: common::env_number(
            "SLUICE_AUDIT_QUEUE",
            AuditConfig::default().queue_capacity,
        ),
        batch_size: common::env_number("SLUICE_AUDIT_BATCH", AuditConfig::default().batch_size),
        flush_interval_ms: common::env_number(
            "SLUICE_AUDIT_FLUSH_MS",
            AuditConfig::default().flush_interval_ms,
        ),
        ..AuditConfig::default()
    })
    .unwrap();
    let cpu_before = common::cpu_seconds(Path::new("/proc/self/stat"));
    let started = Instant::now();
    for (i, template) in (0..rows).zip(templates.iter().cycle()) {
        let mut r = template.clone();
        r.decision_id = format!("d-{i}");
        r.request_id = Some(format!("r-{}", i / 2));
        r.time_micros += i as i64 * 250;
        audit.record(r).unwrap();
    }
    audit.shutdown();
    let elapsed = started.elapsed();
    let cpu = common::cpu_seconds(Path::new("/proc/self/stat")) - cpu_before;
    let written = audit
        .counters()
        .written
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(written as usize, rows);
    let size = std::fs::metadata(dir.path().join("audit.duckdb"))
        .map(|m| m.len())
        .unwrap_or(0);
    // Peak resident memory of the whole process (queue, batch and DuckDB's buffers).
    let peak_mb = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0);
    println!(
        "audit ingest: {rows} rows in {:.2} s = {:.0} rows/s (target >= 100000); file {:.1} MB; peak RSS {peak_mb:.0} MB; CPU {:.1} us per row (both threads: copying rows in, writing them)",
        elapsed.as_secs_f64(),
        rows as f64 / elapsed.as_secs_f64(),
        size as f64 / 1e6,
        cpu * 1e6 / rows as f64,
    );
}
