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

/// A chat call of `alice` (team platform) for `model`.
fn chat(
    http: &reqwest::blocking::Client,
    base: &str,
    model: &str,
    stream: bool,
) -> reqwest::blocking::Response {
    let body = json!({"model": model, "stream": stream,
        "messages": [{"role": "user", "content": "x"}]});
    http.post(format!("{base}/v1/chat/completions"))
        .bearer_auth(PLATFORM_KEY)
        .json(&body)
        .send()
        .unwrap()
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
        let response = chat(&http, &base, "gpt-4o", false);
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

#[test]
fn audit_query_prints_tables_csv_and_json_and_reads_exports_while_the_file_is_held() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.duckdb");
    let rows = sluice_tests::fill_audit_db(&path);
    let db = path.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = sluice_tests::sluice(dir.path(), args);
        let (stdout, stderr) = sluice_tests::text(&out);
        assert!(out.status.success(), "{args:?}: {stderr}");
        (stdout, stderr)
    };
    let (csv, _) = run(&[
        "audit",
        "query",
        "--db",
        db,
        "--format",
        "csv",
        "SELECT count(*) AS n FROM decisions",
    ]);
    assert_eq!(csv, format!("n\n{rows}\n"));
    let (table, _) = run(&[
        "audit",
        "query",
        "--db",
        db,
        "SELECT surface, count(*) AS n FROM decisions GROUP BY 1 ORDER BY 1",
    ]);
    assert!(
        table.starts_with("surface") && table.contains("prompt"),
        "{table}"
    );
    let file = sluice_tests::repo().join("examples/compliance/subject_access_request.sql");
    let (json, _) = run(&[
        "audit",
        "query",
        "--db",
        db,
        "--format",
        "json",
        "--var",
        "subject=alice",
        "--file",
        file.to_str().unwrap(),
    ]);
    let found: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(!found.as_array().unwrap().is_empty(), "{json}");

    // Rotate every (past) day to Parquet, then hold the file as a running gateway would.
    let exports = dir.path().join("exports");
    let config = sluice_server::audit::AuditConfig {
        path: path.clone(),
        export_dir: Some(exports.clone()),
        ..Default::default()
    };
    let held = sluice_server::audit::open(&path).unwrap();
    // The example inputs are dated; move them well into the past so every day is closed.
    held.execute_batch("UPDATE decisions SET time = time - INTERVAL 400 DAY")
        .unwrap();
    let report = sluice_server::audit::maintain::maintain(&held, &config).unwrap();
    assert_eq!(report.exported_rows as i64, rows);
    let (csv, stderr) = run(&[
        "audit",
        "query",
        "--db",
        db,
        "--exports",
        exports.to_str().unwrap(),
        "--format",
        "csv",
        "SELECT count(*) AS n FROM decisions",
    ]);
    assert_eq!(csv, format!("n\n{rows}\n"));
    assert!(stderr.contains("Parquet exports"), "{stderr}");
    drop(held);

    // Bad input: a clear error and exit 1.
    let out = sluice_tests::sluice(
        dir.path(),
        &["audit", "query", "--db", db, "SELEC nonsense"],
    );
    assert_eq!(out.status.code(), Some(1));
    let out = sluice_tests::sluice(
        dir.path(),
        &["audit", "query", "--db", "missing.duckdb", "SELECT 1"],
    );
    assert!(sluice_tests::text(&out).1.contains("does not exist"));
}

/// Sets the file-size limit of a running process (`prlimit` from util-linux): with a
/// 1-byte limit every write to the audit files fails with `EFBIG`, as on a full disk.
fn limit_file_size(pid: u32, limit: &str) {
    let status = std::process::Command::new("prlimit")
        .args(["--pid", &pid.to_string(), &format!("--fsize={limit}")])
        .status()
        .unwrap();
    assert!(status.success(), "prlimit {limit}");
}

fn metric(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

#[test]
fn a_disk_that_refuses_writes_fails_calls_closed_and_loses_no_accepted_row() {
    let mut gateway = Gateway::start();
    let base = gateway.server.url("");
    let http = client();
    let call = || {
        let response = chat(&http, &base, "gpt-4o", false);
        let status = response.status().as_u16();
        (status, response.json::<serde_json::Value>().unwrap())
    };
    let metrics = || {
        http.get(format!("{base}/metrics"))
            .send()
            .unwrap()
            .text()
            .unwrap()
    };
    assert_eq!(call().0, 200);

    // The disk "fills up": the writer's next batch fails, and from then on calls are
    // refused with 503 in the caller's format instead of being answered unrecorded.
    limit_file_size(gateway.server.child.id(), "1:unlimited");
    let started = Instant::now();
    let refusal = loop {
        let (status, body) = call();
        match status {
            200 => {}
            503 => break body,
            other => panic!("unexpected {other}: {body}"),
        }
        assert!(started.elapsed() < Duration::from_secs(10), "never refused");
        std::thread::sleep(Duration::from_millis(20));
    };
    let message = refusal["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("audit database cannot be written"),
        "{message}"
    );
    let text = metrics();
    assert_eq!(metric(&text, "sluice_audit_unwritable"), 1, "{text}");
    assert!(metric(&text, "sluice_audit_write_errors_total") >= 1);
    assert!(gateway.server.log().contains("refuses writes"));

    // Room again: the writer reopens the database, writes the rows it kept, and calls
    // are answered again.
    limit_file_size(gateway.server.child.id(), "unlimited:unlimited");
    let started = Instant::now();
    while call().0 != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never recovered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = metrics();
    assert_eq!(metric(&text, "sluice_audit_unwritable"), 0, "{text}");
    let queued = metric(&text, "sluice_audit_rows_total{outcome=\"queued\"}");
    assert!(
        gateway.server.terminate().success(),
        "{}",
        gateway.server.log()
    );
    let (rows, _) = audit_rows(&gateway.dir.path().join("sluice-audit.duckdb"));
    assert_eq!(rows as u64, queued, "every accepted row was written, once");
}

#[test]
fn an_audit_path_that_cannot_be_written_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    sluice_tests::write_file(dir.path(), "policies/allow.rego", "package sluice.x\n");
    // /proc accepts no new files, even from root.
    sluice_tests::write_file(
        dir.path(),
        "sluice.yaml",
        "listen: 127.0.0.1:0\npolicy_dir: policies\naudit: {path: /proc/sluice-audit.duckdb}\n",
    );
    let config = dir.path().join("sluice.yaml");
    let (status, log) = sluice_tests::server::run_until_exit(&[
        "serve".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
    ]);
    assert!(!status.success());
    assert!(
        log.contains("cannot open the audit database `/proc/sluice-audit.duckdb`"),
        "{log}"
    );
}

#[test]
fn a_call_that_fails_after_its_prompt_was_allowed_records_how_it_ended() {
    let mut gateway = Gateway::start();
    let base = gateway.server.url("");
    let http = client();
    let mut statuses = Vec::new();
    for model in ["broken", "hangs", "no-such-alias", "gpt-4o"] {
        statuses.push((model, chat(&http, &base, model, false).status().as_u16()));
    }
    assert_eq!(
        statuses,
        [
            ("broken", 502),
            ("hangs", 504),
            ("no-such-alias", 404),
            ("gpt-4o", 200)
        ]
    );
    assert!(gateway.server.terminate().success());
    let connection =
        duckdb::Connection::open(gateway.dir.path().join("sluice-audit.duckdb")).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT p.resource_id, p.allow, r.allow, r.error_source, r.upstream_status,
                    r.reasons->>'$[0].backend', r.reasons->>'$[0].message'
             FROM decisions p JOIN decisions r USING (request_id)
             WHERE p.surface = 'prompt' AND r.surface = 'response'
             ORDER BY p.time",
        )
        .unwrap();
    type Outcome = (
        String,
        bool,
        bool,
        Option<String>,
        Option<i32>,
        String,
        String,
    );
    let rows: Vec<Outcome> = statement
        .query_map([], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 4, "{rows:?}");
    let summary: Vec<_> = rows
        .iter()
        .map(|(model, prompt, response, source, status, backend, _)| {
            (
                model.as_str(),
                *prompt,
                *response,
                source.as_deref(),
                *status,
                backend.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "broken",
                true,
                false,
                Some("upstream"),
                Some(502),
                "gateway"
            ),
            ("hangs", true, false, Some("upstream"), Some(504), "gateway"),
            (
                "no-such-alias",
                true,
                false,
                Some("client"),
                None,
                "gateway"
            ),
            ("gpt-4o", true, true, None, Some(200), "engine"),
        ]
    );
    assert!(rows[0].6.contains("upstream"), "{rows:?}");
}

#[test]
fn a_stream_that_ends_before_its_answer_is_decided_still_leaves_a_row() {
    use std::io::Read as _;
    let mut gateway = Gateway::start();
    let base = gateway.server.url("");
    let http = client();
    let stream = |model: &str| chat(&http, &base, model, true);
    // The caller reads the start of a long stream, then walks away.
    let mut walked_away = stream("trickle");
    let mut start = [0u8; 64];
    assert!(walked_away.read(&mut start).unwrap() > 0);
    drop(walked_away);
    // The upstream breaks off a stream half-way.
    let cut = stream("cuts").text().unwrap();
    assert!(
        cut.contains("broke off") || cut.contains("before it was complete"),
        "{cut}"
    );
    // The gateway notices the caller is gone at its next write.
    std::thread::sleep(Duration::from_millis(600));
    assert!(gateway.server.terminate().success());

    let connection =
        duckdb::Connection::open(gateway.dir.path().join("sluice-audit.duckdb")).unwrap();
    let mut statement = connection
        .prepare(
            "SELECT p.resource_id, r.allow, r.error_source, r.reasons->>'$[0].message'
             FROM decisions p JOIN decisions r USING (request_id)
             WHERE p.surface = 'prompt' AND r.surface = 'response' ORDER BY p.time",
        )
        .unwrap();
    let rows: Vec<(String, bool, Option<String>, String)> = statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 2, "{rows:?}");
    let (model, allow, source, message) = &rows[0];
    assert_eq!(
        (model.as_str(), *allow, source.as_deref()),
        ("trickle", false, Some("client"))
    );
    assert!(message.contains("caller closed the stream"), "{message}");
    let (model, allow, source, _) = &rows[1];
    assert_eq!(
        (model.as_str(), *allow, source.as_deref()),
        ("cuts", false, Some("upstream"))
    );
}
