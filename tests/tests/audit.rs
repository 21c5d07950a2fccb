//! The audit trail end to end: the real gateway writing a real DuckDB file, stopped
//! gracefully under load (nothing lost) and killed (at most one flush interval lost).

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use sluice_tests::gateway_setup::{Gateway, MARKETING_KEY, PLATFORM_KEY};
use sluice_tests::server::client;

/// Decisions one call makes, from what its caller saw: a prompt deny is one, an answered
/// call two (prompt and response).
fn decisions_of(status: u16) -> u64 {
    match status {
        200 => 2,
        403 => 1,
        other => panic!("unexpected status {other}"),
    }
}

fn audit_rows(path: &std::path::Path) -> (i64, i64) {
    let connection = duckdb::Connection::open(path).unwrap();
    connection
        .query_row(
            "SELECT count(*), count(DISTINCT request_id) FROM decisions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap()
}

/// Callers hammering the gateway until `stop`; returns the decisions they caused.
fn callers(
    base: &str,
    threads: usize,
    stop: &Arc<AtomicBool>,
    made: &Arc<AtomicU64>,
) -> Vec<std::thread::JoinHandle<()>> {
    (0..threads)
        .map(|t| {
            let base = base.to_string();
            let stop = Arc::clone(stop);
            let made = Arc::clone(made);
            std::thread::spawn(move || {
                let http = client();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    // Every fourth call is denied on its prompt.
                    let key = if (i + t as u64).is_multiple_of(4) {
                        MARKETING_KEY
                    } else {
                        PLATFORM_KEY
                    };
                    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": format!("call {i}")}]});
                    match http
                        .post(format!("{base}/v1/chat/completions"))
                        .bearer_auth(key)
                        .json(&body)
                        .send()
                    {
                        Ok(response) => {
                            made.fetch_add(decisions_of(response.status().as_u16()), Ordering::SeqCst);
                        }
                        // Refused at connect once the gateway stops listening: no decision.
                        Err(_) => break,
                    }
                    i += 1;
                }
            })
        })
        .collect()
}

#[test]
fn sigterm_under_load_loses_no_decision() {
    let mut gateway = Gateway::start();
    let base = gateway.server.url("");
    let stop = Arc::new(AtomicBool::new(false));
    let made = Arc::new(AtomicU64::new(0));
    let threads = callers(&base, 8, &stop, &made);
    std::thread::sleep(Duration::from_millis(800));
    // Stop while calls are in flight: graceful shutdown finishes them and drains the queue.
    assert!(
        gateway.server.terminate().success(),
        "{}",
        gateway.server.log()
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let made = made.load(Ordering::SeqCst);
    assert!(made > 50, "the load was real: {made} decisions");
    let (rows, calls) = audit_rows(&gateway.dir.path().join("sluice-audit.duckdb"));
    assert_eq!(rows as u64, made, "one row per decision made");
    assert!(calls > 0);
}

#[test]
fn a_killed_gateway_loses_at_most_one_flush_interval() {
    let mut gateway = Gateway::start();
    let base = gateway.server.url("");
    let http = client();
    // Sequential calls, each timestamped, then SIGKILL right after the last answer.
    let mut made: Vec<(Instant, u64)> = Vec::new();
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(1_500) {
        let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]});
        let response = http
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(PLATFORM_KEY)
            .json(&body)
            .send()
            .unwrap();
        made.push((Instant::now(), decisions_of(response.status().as_u16())));
    }
    let killed = Instant::now();
    gateway.server.child.kill().unwrap();
    gateway.server.child.wait().unwrap();
    let total: u64 = made.iter().map(|(_, n)| n).sum();
    // The documented bound: rows of one flush interval (200 ms by default), with a margin
    // for the time the last batch takes to reach the disk.
    let window = Duration::from_millis(200 + 100);
    let recent: u64 = made
        .iter()
        .filter(|(at, _)| killed.duration_since(*at) <= window)
        .map(|(_, n)| n)
        .sum();
    // Reopening replays DuckDB's write-ahead log.
    let (rows, _) = audit_rows(&gateway.dir.path().join("sluice-audit.duckdb"));
    let lost = total - rows as u64;
    assert!(
        lost <= recent,
        "lost {lost} of {total} decisions; only the last {recent} were within one flush interval"
    );
    assert!(rows > 0);
}
