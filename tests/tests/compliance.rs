//! Every query of the compliance pack (`examples/compliance/*.sql`) runs against a real
//! DuckDB audit file filled through Sluice's own writer with the default policies'
//! decisions on every example input, and answers what it is for.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use std::collections::BTreeMap;

/// Rows of a query as text, by column name.
fn query(connection: &duckdb::Connection, sql: &str) -> Vec<BTreeMap<String, String>> {
    let mut statement = connection.prepare(sql).unwrap();
    let mut rows = statement.query([]).unwrap();
    let names: Vec<String> = rows.as_ref().unwrap().column_names();
    let mut out = Vec::new();
    while let Some(r) = rows.next().unwrap() {
        let mut row = BTreeMap::new();
        for (i, name) in names.iter().enumerate() {
            let value: duckdb::types::Value = r.get(i).unwrap();
            row.insert(name.clone(), format!("{value:?}"));
        }
        out.push(row);
    }
    out
}

#[test]
fn every_compliance_query_answers_on_a_filled_database() {
    let repo = sluice_tests::repo();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.duckdb");
    let inputs = sluice_tests::fill_audit_db(&path);
    let connection = duckdb::Connection::open(&path).unwrap();
    let total: i64 = connection
        .query_row("SELECT count(*) FROM decisions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(total, inputs);
    connection
        .execute_batch("SET VARIABLE subject = 'alice';")
        .unwrap();

    let mut answered = BTreeMap::new();
    for entry in std::fs::read_dir(repo.join("examples/compliance")).unwrap() {
        let path = entry.unwrap().path();
        let sql = std::fs::read_to_string(&path).unwrap();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        answered.insert(name, query(&connection, &sql));
    }
    let names: Vec<&str> = answered.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "cost_by_team_agent_model_per_day",
            "denials_by_policy_and_team",
            "pii_exposure_by_team",
            "sessions_tainted_by_untrusted_content",
            "subject_access_request",
            "tool_calls_by_agent",
            "top_reasons",
        ]
    );
    // The examples named "denied" are denied by named rules, and show up by rule.
    let denials = &answered["denials_by_policy_and_team"];
    assert!(denials.len() >= 3, "{denials:?}");
    assert!(
        denials
            .iter()
            .any(|r| r["rule"].contains("models.not-allowed")),
        "{denials:?}"
    );
    assert!(!answered["pii_exposure_by_team"].is_empty());
    assert!(!answered["top_reasons"].is_empty());
    assert!(!answered["cost_by_team_agent_model_per_day"].is_empty());
    // Both tool-call examples, one allowed and one denied.
    let tools = &answered["tool_calls_by_agent"];
    let decisions: Vec<&str> = tools.iter().map(|r| r["decision"].as_str()).collect();
    assert!(
        decisions.iter().any(|d| d.contains("allowed"))
            && decisions.iter().any(|d| d.contains("denied")),
        "{tools:?}"
    );
    // The injected tool result flags its session; the write tool called after it is the
    // refusal the query pairs it with.
    let tainted = &answered["sessions_tainted_by_untrusted_content"];
    assert_eq!(tainted.len(), 1, "{tainted:?}");
    let row = &tainted[0];
    assert!(row["session_id"].contains("s-triage-7"), "{row:?}");
    assert!(row["flagged_by"].contains("mcp.tools.result"), "{row:?}");
    assert!(row["tool"].contains("github.create_issue"), "{row:?}");
    assert!(
        row["rule"].contains("tools.forbid-side-effects-after-untrusted-content"),
        "{row:?}"
    );
    // The subject-access request finds alice's decisions and only hers.
    let alice = &answered["subject_access_request"];
    assert!(!alice.is_empty());
    let expected = connection
        .query_row(
            "SELECT count(*) FROM decisions WHERE user_id = 'alice'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .unwrap();
    assert_eq!(alice.len() as i64, expected);
}
