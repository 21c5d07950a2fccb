use std::path::Path;

use sluice_engine::{Bundle, Policies};

use super::*;

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// An example input and the default policies' decision on it.
fn decided(name: &str) -> (DecisionInput, Decision) {
    let text =
        std::fs::read_to_string(repo().join(format!("examples/inputs/{name}.json"))).unwrap();
    let input: DecisionInput = serde_json::from_str(&text).unwrap();
    let bundle = Bundle::load(&repo().join("policies")).unwrap();
    let policies = Policies::compile(&bundle, "test-rev".to_string()).unwrap();
    let decision = policies.evaluate(&input);
    (input, decision)
}

fn config(dir: &Path) -> AuditConfig {
    AuditConfig {
        path: dir.join("audit.duckdb"),
        batch_size: 100,
        flush_interval_ms: 20,
        ..AuditConfig::default()
    }
}

fn count(path: &Path) -> i64 {
    let connection = Connection::open(path).unwrap();
    connection
        .query_row("SELECT count(*) FROM decisions", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn rows_are_written_with_their_columns_and_queryable_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let audit = Audit::start(config(dir.path())).unwrap();
    let (input, decision) = decided("prompt-model-not-allowed");
    let facts = CallFacts {
        request_id: "req-1".to_string(),
        upstream_status: None,
        total_ms: 1.5,
        error_source: Some("client"),
        ..CallFacts::default()
    };
    audit.record(row(&input, &decision, &facts)).unwrap();
    audit.shutdown();
    assert_eq!(audit.counters().written.load(Ordering::Relaxed), 1);

    let connection = Connection::open(dir.path().join("audit.duckdb")).unwrap();
    let (surface, allow, team, rule, revision, source): (String, bool, String, String, String, String) =
        connection
            .query_row(
                "SELECT surface, allow, team, reasons->>'$[0].rule', revision, error_source FROM decisions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
            )
            .unwrap();
    assert_eq!(surface, "prompt");
    assert!(!allow);
    assert_eq!(Some(team), input.principal.team);
    assert_eq!(rule, decision.reasons[0].rule);
    assert_eq!(revision, "test-rev");
    assert_eq!(source, "client");
    let version: i32 = connection
        .query_row("SELECT max(version) FROM sluice_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// A decision handed to `record_decision` lands as the row `row` builds, whether the
/// writer builds it (a small input) or the request does (more text than a queue of copied
/// inputs should hold).
#[test]
fn a_decision_lands_as_its_row_whoever_builds_it() {
    let (small_input, decision) = decided("prompt-pii-redacted");
    let mut large_input = small_input.clone();
    large_input.content.messages[0].content = "lorem ipsum ".repeat(400);
    assert!(small(&small_input, DEFERRED_TEXT));
    assert!(!small(&large_input, DEFERRED_TEXT));
    let mut tool_input = decided("tool-call-permitted").0;
    assert!(small(&tool_input, DEFERRED_TEXT));
    if let Some(tool) = tool_input.content.tool.as_mut() {
        tool.arguments = serde_json::json!({"body": "x".repeat(DEFERRED_TEXT)});
    }
    assert!(!small(&tool_input, DEFERRED_TEXT));

    let dir = tempfile::tempdir().unwrap();
    let audit = Audit::start(config(dir.path())).unwrap();
    let mut expected = Vec::new();
    for (i, input) in [&small_input, &large_input].into_iter().enumerate() {
        let facts = CallFacts {
            request_id: format!("req-{i}"),
            total_ms: 2.5,
            ..CallFacts::default()
        };
        expected.push(row(input, &decision, &facts));
        audit.record_decision(input, &decision, facts).unwrap();
    }
    audit.shutdown();
    let connection = Connection::open(dir.path().join("audit.duckdb")).unwrap();
    for want in expected {
        let (id, findings, stored): (String, String, String) = connection
            .query_row(
                "SELECT decision_id, findings::VARCHAR, input::VARCHAR FROM decisions WHERE request_id = ?",
                [want.request_id.clone().unwrap()],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        assert_eq!(id, want.decision_id);
        let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        assert_eq!(json(&findings), json(&want.findings));
        assert_eq!(json(&stored), json(&want.input));
        assert!(stored.contains("[omitted: "), "{stored}");
    }
}

#[test]
fn full_batches_land_as_whole_row_groups_of_the_configured_size() {
    let dir = tempfile::tempdir().unwrap();
    let audit = Audit::start(AuditConfig {
        batch_size: ROW_GROUP_ROWS,
        flush_interval_ms: 60_000,
        // Room for every row: this is about how batches land, not whether the writer keeps
        // up with a loop that only enqueues (on a loaded machine it may not, and `record`
        // then refuses with `Full`).
        queue_capacity: 2 * ROW_GROUP_ROWS + 10,
        ..config(dir.path())
    })
    .unwrap();
    let (input, decision) = decided("prompt-allowed");
    let template = row(&input, &decision, &CallFacts::default());
    for i in 0..2 * ROW_GROUP_ROWS + 10 {
        let mut r = template.clone();
        r.decision_id = format!("d-{i}");
        audit.record(r).unwrap();
    }
    audit.shutdown();
    let connection = Connection::open(dir.path().join("audit.duckdb")).unwrap();
    let groups: Vec<(i64, i64)> = connection
        .prepare(
            "SELECT row_group_id, max(start + count) - min(start) FROM pragma_storage_info('decisions') \
             WHERE column_name = 'decision_id' GROUP BY ALL ORDER BY 1",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    // DuckDB's default row group (122,880 rows) would hold all of them in one.
    let sizes: Vec<i64> = groups.iter().map(|g| g.1).collect();
    assert_eq!(
        sizes,
        [ROW_GROUP_ROWS as i64, ROW_GROUP_ROWS as i64, 10],
        "{groups:?}"
    );
    let distinct: i64 = connection
        .query_row(
            "SELECT count(DISTINCT decision_id) FROM decisions",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(distinct, 2 * ROW_GROUP_ROWS as i64 + 10);
}

#[test]
fn shutdown_drains_every_queued_row() {
    let dir = tempfile::tempdir().unwrap();
    let audit = Audit::start(AuditConfig {
        // A long interval: only the drain on shutdown can write the last rows.
        flush_interval_ms: 60_000,
        batch_size: 1_000,
        ..config(dir.path())
    })
    .unwrap();
    let (input, decision) = decided("prompt-allowed");
    let template = row(&input, &decision, &CallFacts::default());
    for i in 0..20_500 {
        let mut r = template.clone();
        r.decision_id = format!("d-{i}");
        audit.record(r).unwrap();
    }
    audit.shutdown();
    assert_eq!(count(&dir.path().join("audit.duckdb")), 20_500);
    // Recording after shutdown is refused, never silently dropped.
    assert_eq!(audit.record(template), Err(AuditError::Stopped));
    assert_eq!(audit.counters().refused.load(Ordering::Relaxed), 1);
}

#[test]
fn a_full_queue_fails_closed_or_blocks_then_fails() {
    let (input, decision) = decided("prompt-allowed");
    let template = row(&input, &decision, &CallFacts::default());
    for (on_full, wait) in [(OnFull::FailClosed, 0), (OnFull::Block, 50)] {
        // A queue of one with nobody reading it.
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        let audit = Audit {
            sender: Mutex::new(Some(sender)),
            config: AuditConfig {
                on_full,
                block_timeout_ms: wait,
                ..AuditConfig::default()
            },
            counters: Arc::new(AuditCounters::default()),
            writer: Mutex::new(None),
        };
        audit.record(template.clone()).unwrap();
        let started = Instant::now();
        assert_eq!(audit.record(template.clone()), Err(AuditError::Full));
        assert!(started.elapsed() >= Duration::from_millis(wait));
        assert_eq!(audit.counters().refused.load(Ordering::Relaxed), 1);
        // Room again: accepted.
        drop(receiver.recv().unwrap());
        audit.record(template.clone()).unwrap();
    }
}

#[test]
fn stored_inputs_omit_text_and_apply_policy_masks() {
    let (mut input, mut decision) = decided("prompt-pii-redacted");
    input
        .content
        .documents
        .push(sluice_engine::input::Document {
            text: "internal memo".to_string(),
            ..Default::default()
        });
    decision.obligations.mask = vec![
        sluice_engine::decision::Mask {
            pointer: "/principal/user".to_string(),
            replacement: None,
        },
        sluice_engine::decision::Mask {
            pointer: "/request/client_address".to_string(),
            replacement: Some("x.x.x.x".to_string()),
        },
    ];
    input.request.client_address = Some("10.1.2.3".to_string());
    input.principal.user = Some("alice".to_string());
    let stored = masked_input(&input, &decision);
    let text = stored.to_string();
    for message in &input.content.messages {
        if !message.content.is_empty() {
            assert!(!text.contains(&message.content), "{text}");
        }
    }
    assert!(!text.contains("internal memo"));
    assert!(text.contains("[omitted: 13 chars]"));
    assert!(stored["principal"].get("user").is_none());
    assert_eq!(stored["request"]["client_address"], "x.x.x.x");
    // The row summarises findings by class, never their text.
    let r = row(&input, &decision, &CallFacts::default());
    let findings: Value = serde_json::from_str(&r.findings).unwrap();
    assert_eq!(
        findings["pii"]
            .as_object()
            .map(|m| m.values().filter_map(Value::as_u64).sum::<u64>()),
        Some(input.findings.pii.len() as u64)
    );
}

#[test]
fn the_typed_stored_input_is_the_masked_tree_serialised() {
    let names: Vec<String> = std::fs::read_dir(repo().join("examples/inputs"))
        .unwrap()
        .map(|entry| {
            let path = entry.unwrap().path();
            path.file_stem().unwrap().to_string_lossy().into_owned()
        })
        .collect();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        let (mut input, mut decision) = decided(&name);
        // Every content field the default omits, empty ones included.
        let call = sluice_engine::input::ToolCall {
            name: "lookup".to_string(),
            arguments: serde_json::json!({"query": "naïve ☕", "n": 3}),
            ..Default::default()
        };
        input.content.messages.push(sluice_engine::input::Message {
            role: "assistant".to_string(),
            content: String::new(),
            tool_calls: vec![
                call.clone(),
                sluice_engine::input::ToolCall {
                    arguments: Value::String(String::new()),
                    ..call.clone()
                },
            ],
        });
        input.content.texts.extend([String::new(), "é".repeat(3)]);
        input.content.documents.push(Default::default());
        for log_text in [false, true] {
            decision.obligations.log_text = log_text;
            let tree = masked_input(&input, &decision).to_string();
            assert_eq!(
                masked_input_text(std::borrow::Cow::Borrowed(&input), &decision),
                tree,
                "{name}"
            );
            assert_eq!(
                masked_input_text(std::borrow::Cow::Owned(input.clone()), &decision),
                tree,
                "{name}"
            );
        }
    }
}

#[test]
fn a_policy_may_keep_the_text_but_never_a_finding_in_clear() {
    let (mut input, mut decision) = decided("prompt-pii-redacted");
    decision.obligations.log_text = true;
    let stored = masked_input(&input, &decision);
    assert_eq!(
        stored["content"]["messages"][0]["content"],
        "Customer [email] paid with [credit_card], why was it declined?"
    );

    // Overlapping matches merge; a match that does not fit its text (here: an offset
    // inside a multi-byte character) omits the whole text instead of storing it.
    input.content.messages[0].content = "mail é@x.io now".to_string();
    input.findings.pii = vec![
        sluice_engine::input::Span {
            class: "email".to_string(),
            pointer: "/content/messages/0/content".to_string(),
            start: 5,
            end: 12,
            ..Default::default()
        },
        sluice_engine::input::Span {
            class: "domain".to_string(),
            pointer: "/content/messages/0/content".to_string(),
            start: 8,
            end: 12,
            ..Default::default()
        },
    ];
    let stored = masked_input(&input, &decision);
    assert_eq!(
        stored["content"]["messages"][0]["content"],
        "mail [email][domain] now"
    );
    input.findings.pii[0].start = 6;
    let stored = masked_input(&input, &decision);
    assert_eq!(
        stored["content"]["messages"][0]["content"],
        "[omitted: 15 chars]"
    );
}

#[test]
fn opening_checks_the_directory_and_the_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let err = open(&dir.path().join("missing/audit.duckdb")).unwrap_err();
    assert!(err.to_string().contains("does not exist"), "{err}");
    let path = dir.path().join("audit.duckdb");
    drop(open(&path).unwrap());
    // Reopening keeps one version row.
    let connection = open(&path).unwrap();
    let rows: i64 = connection
        .query_row("SELECT count(*) FROM sluice_schema", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
    connection
        .execute(
            "INSERT INTO sluice_schema VALUES (99, now()::TIMESTAMP)",
            [],
        )
        .unwrap();
    drop(connection);
    let err = open(&path).unwrap_err();
    assert!(err.to_string().contains("newer than this Sluice"), "{err}");
}

#[test]
fn blocking_for_room_inside_the_gateway_runtime_does_not_stall_it() {
    let (input, decision) = decided("prompt-allowed");
    let template = row(&input, &decision, &CallFacts::default());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (sender, _receiver) = std::sync::mpsc::sync_channel(1);
    let audit = Arc::new(Audit {
        sender: Mutex::new(Some(sender)),
        config: AuditConfig {
            on_full: OnFull::Block,
            block_timeout_ms: 300,
            ..AuditConfig::default()
        },
        counters: Arc::new(AuditCounters::default()),
        writer: Mutex::new(None),
    });
    audit.record(template.clone()).unwrap();
    runtime.block_on(async {
        // The only worker waits for room; a timer on the same runtime still fires.
        let ticked = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Instant::now()
        });
        let audit = Arc::clone(&audit);
        let refused = tokio::spawn(async move { (audit.record(template), Instant::now()) });
        let (result, refused_at) = refused.await.unwrap();
        assert_eq!(result, Err(AuditError::Full));
        assert!(ticked.await.unwrap() < refused_at);
    });
}

#[test]
fn closed_days_rotate_to_parquet_and_retention_deletes_old_rows_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let exports = dir.path().join("exports");
    let config = AuditConfig {
        path: dir.path().join("audit.duckdb"),
        export_dir: Some(exports.clone()),
        retention_days: Some(30),
        ..AuditConfig::default()
    };
    let connection = open(&config.path).unwrap();
    let (input, decision) = decided("prompt-allowed");
    let template = row(&input, &decision, &CallFacts::default());
    let now = (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64;
    let day = 86_400_000_000i64;
    // 2 rows today, 3 two days ago, 1 forty days ago.
    let ages = [0, 0, 2, 2, 2, 40];
    let rows: Vec<Row> = ages
        .iter()
        .enumerate()
        .map(|(i, age)| Row {
            decision_id: format!("d-{i}"),
            time_micros: now - age * day,
            ..template.clone()
        })
        .collect();
    append(&connection, &rows).unwrap();

    let report = maintain::maintain(&connection, &config).unwrap();
    // Both closed days were exported; the forty-day-old file then expired.
    assert_eq!(report.exported_rows, 4);
    assert_eq!(report.exported_files.len(), 2);
    assert_eq!(report.expired_files, 1);
    let live: i64 = connection
        .query_row("SELECT count(*) FROM decisions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(live, 2, "only today's rows stay live");
    // The live table and the exports answer together; the expired day is gone.
    let (all, distinct): (i64, i64) = connection
        .query_row(
            "SELECT count(*), count(DISTINCT decision_id) FROM all_decisions",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((all, distinct), (5, 5));
    let files: Vec<String> = std::fs::read_dir(&exports)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with("decisions-") && files[0].ends_with(".parquet"));
    // A second pass has nothing to do and exports nothing twice.
    let again = maintain::maintain(&connection, &config).unwrap();
    assert_eq!(again, maintain::Report::default());
}

/// Whether the writer yields (`AuditCounters::yielding`), once it is `expected` (or
/// whatever it is after 10 s).
fn yielding(audit: &Audit, expected: bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let seen = audit.counters().yielding.load(Ordering::Relaxed);
        if seen == expected || Instant::now() >= deadline {
            return seen;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The writer yields the CPU to request threads (`SCHED_IDLE`) while it keeps up, and
/// takes normal priority when rows pile up, where the process may (the tests run with
/// the privilege to; without it the writer stays at normal priority throughout).
#[cfg(target_os = "linux")]
#[test]
fn the_writer_runs_on_spare_time_until_rows_pile_up() {
    assert!(
        crate::sys::can_leave_idle(),
        "the tests run where priorities can be raised"
    );
    let dir = tempfile::tempdir().unwrap();
    let (input, decision) = decided("prompt-allowed");
    let template = row(&input, &decision, &CallFacts::default());
    let audit = Audit::start(config(dir.path())).unwrap();
    audit.record(template.clone()).unwrap();
    assert!(yielding(&audit, true), "a writer keeping up yields");
    audit.shutdown();
    assert_eq!(count(&dir.path().join("audit.duckdb")), 1);

    // The next two rely on the writer getting CPU time when the test expects it to. On a
    // machine loaded by other tests a SCHED_IDLE writer can be starved long enough to fall
    // behind for real (and rightly leave idle), so each is tried up to three times; a writer
    // that never behaves so fails all three.
    let long_flush = |dir: &Path| AuditConfig {
        queue_capacity: 64,
        flush_interval_ms: 60_000,
        batch_size: 1_000,
        ..config(dir)
    };
    let record = |audit: &Audit, i: usize| {
        let mut r = template.clone();
        r.decision_id = format!("d-{i}");
        audit.record(r).unwrap();
    };

    // Rows the writer holds for a flush a minute away are not a backlog, however many.
    with_retries(|| {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::start(long_flush(dir.path())).unwrap();
        for i in 0..40 {
            record(&audit, i);
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(Duration::from_millis(100));
        let held = yielding(&audit, true);
        audit.shutdown();
        assert_eq!(count(&dir.path().join("audit.duckdb")), 40);
        held.then_some(())
            .ok_or("a writer holding its batch still yields")
    });

    // A quarter of the queue arriving between two of the writer's drains is: it takes
    // normal priority, and keeps it until those rows are written.
    with_retries(|| {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::start(long_flush(dir.path())).unwrap();
        record(&audit, 100);
        std::thread::sleep(Duration::from_millis(50));
        // Sixty rows in a burst much shorter than the writer's pause: whether it drains
        // once in the middle or not, one of its looks sees at least thirty, above 16.
        for i in 101..161 {
            record(&audit, i);
        }
        let behind = !yielding(&audit, false);
        std::thread::sleep(Duration::from_millis(100));
        let stays = !audit.counters().yielding.load(Ordering::Relaxed);
        audit.shutdown();
        assert_eq!(count(&dir.path().join("audit.duckdb")), 61);
        match (behind, stays) {
            (false, _) => Err("a writer behind does not yield"),
            (true, false) => Err("nor does it yield again before the rows are written"),
            (true, true) => Ok(()),
        }
    });
}

/// Runs a scheduling-dependent check up to three times; fails with every attempt's reason
/// if none passes.
fn with_retries(check: impl Fn() -> Result<(), &'static str>) {
    let mut reasons = Vec::new();
    for _ in 0..3 {
        match check() {
            Ok(()) => return,
            Err(reason) => reasons.push(reason),
        }
    }
    panic!("{reasons:?}");
}

#[test]
fn the_findings_column_counts_classes_and_keeps_its_layout() {
    let (mut input, decision) = decided("prompt-allowed");
    let span = |class: &str| sluice_engine::input::Span {
        class: class.to_string(),
        pointer: "/content/messages/0/content".to_string(),
        ..Default::default()
    };
    input.findings.pii = vec![span("email"), span("phone"), span("email")];
    input.findings.secrets = vec![span("aws_access_key")];
    input.findings.injection.score = 0.75;
    input.findings.injection.signals = vec!["override".to_string(), "persona".to_string()];
    input.findings.tool_poisoning = vec![sluice_engine::input::ToolPoisoning {
        tool: "search".to_string(),
        signal: "hidden_instruction".to_string(),
    }];
    let r = row(&input, &decision, &CallFacts::default());
    // The text compliance queries read, key order included.
    assert_eq!(
        r.findings,
        r#"{"pii":{"email":2,"phone":1},"secrets":{"aws_access_key":1},"injection_score":0.75,"injection_signals":["override","persona"],"tool_poisoning":1}"#
    );
    input.findings = Default::default();
    let r = row(&input, &decision, &CallFacts::default());
    assert_eq!(
        r.findings,
        r#"{"pii":{},"secrets":{},"injection_score":0.0,"injection_signals":[],"tool_poisoning":0}"#
    );
}
