use super::*;

fn report(files: &[(&str, &str)], options: TestOptions) -> TestReport {
    let bundle = Bundle::from_sources(files.iter().copied()).unwrap();
    run(
        &bundle,
        &TestOptions {
            timeout_ms: 2000,
            ..options
        },
    )
    .unwrap()
}

const POLICY: &str = "package sluice.m\n\ndeny contains \"big\" if input.n > 10\n";
const OTHER: &str = "package sluice.other\n\nsmall if {\n  input.n < 3\n}\n";
const TESTS: &str = r#"package sluice.m_test

import data.sluice.m

test_big if {
  m.deny == {"big"} with input as {"n": 11}
}

test_wrong if {
  count(m.deny) == 1 with input as {"n": 1}
}

# test_in_a_comment if true

test_error if {
  x := 1 / 0
  x > 0
}

todo_later if false

test_prints if {
  print("n is", 4)
  true
}
"#;

#[test]
fn rego_tests_pass_fail_error_and_skip() {
    let r = report(
        &[("m.rego", POLICY), ("m_test.rego", TESTS)],
        TestOptions::default(),
    );
    let outcomes: Vec<(&str, Outcome)> = r
        .results
        .iter()
        .map(|t| (t.name.as_str(), t.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("test_big", Outcome::Pass),
            ("test_wrong", Outcome::Fail),
            ("test_error", Outcome::Error),
            ("todo_later", Outcome::Skip),
            ("test_prints", Outcome::Pass),
        ]
    );
    let big = &r.results[0];
    assert_eq!(
        (big.location.file.as_str(), big.location.row),
        ("m_test.rego", 5)
    );
    assert_eq!(big.package, "data.sluice.m_test");
    assert!(r.results[4].output.iter().any(|l| l.contains("n is 4")));
}

#[test]
fn run_filters_by_full_name() {
    let options = TestOptions {
        run: Some(regex::Regex::new("m_test.test_b").unwrap()),
        ..TestOptions::default()
    };
    let r = report(&[("m.rego", POLICY), ("m_test.rego", TESTS)], options);
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].full_name(), "data.sluice.m_test.test_big");
}

#[test]
fn coverage_counts_policy_lines_only() {
    let options = TestOptions {
        coverage: true,
        ..TestOptions::default()
    };
    let r = report(
        &[
            ("m.rego", POLICY),
            ("other.rego", OTHER),
            ("m_test.rego", TESTS),
        ],
        options,
    );
    let coverage = r.coverage.unwrap();
    let files: Vec<&str> = coverage.files.iter().map(|f| f.file.as_str()).collect();
    assert_eq!(files, ["m.rego", "other.rego"]);
    assert!(coverage.files[0].not_covered.is_empty(), "{coverage:?}");
    // `small` is never evaluated by the tests.
    assert!(coverage.files[1].not_covered.contains(&4), "{coverage:?}");
    assert!(coverage.coverage > 0.0 && coverage.coverage < 100.0);
}

#[test]
fn a_test_that_explodes_errors_instead_of_hanging() {
    let test = "package sluice.x_test\n\ntest_slow if {\n  n := numbers.range(1, 5000)\n  count([1 | some a in n; some b in n]) > 0\n}\n";
    let bundle = Bundle::from_sources([("x_test.rego", test)]).unwrap();
    let r = run(
        &bundle,
        &TestOptions {
            timeout_ms: 20,
            ..TestOptions::default()
        },
    )
    .unwrap();
    assert_eq!(r.results[0].outcome, Outcome::Error);
}

const CEDAR: &str = r#"@id("payments-chat") permit (principal in Sluice::Team::"payments", action == Sluice::Action::"llm.chat", resource);"#;

fn context() -> serde_json::Value {
    serde_json::json!({
        "surface": "prompt", "stream": false,
        "findings": {"pii_count": 0, "pii_classes": [], "secret_count": 0, "secret_classes": [],
                     "injection_score": 0, "injection_signals": [], "tool_poisoning_count": 0},
        "usage": {"input_tokens": 0, "output_tokens": 0, "cost_micro_usd": 0},
        "budget_used_pct": 0, "session": {"turn": 1, "flags": []}
    })
}

#[test]
fn cedar_tests_in_the_run_tests_format() {
    let tests = serde_json::json!([
        {"name": "payments may chat",
         "request": {"principal": "Sluice::Key::\"k1\"", "action": "Sluice::Action::\"llm.chat\"",
                     "resource": "Sluice::Model::\"gpt-4o\"", "context": context()},
         "entities": [{"uid": {"type": "Sluice::Key", "id": "k1"}, "attrs": {"roles": []},
                       "parents": [{"type": "Sluice::Team", "id": "payments"}]},
                      {"uid": {"type": "Sluice::Team", "id": "payments"}, "attrs": {}, "parents": []}],
         "decision": "allow", "reason": ["payments-chat"], "num_errors": 0},
        {"name": "expects the wrong thing",
         "request": {"principal": {"type": "Sluice::Key", "id": "k2"}, "action": "Sluice::Action::\"llm.chat\"",
                     "resource": "Sluice::Model::\"gpt-4o\"", "context": context()},
         "entities": [{"uid": {"type": "Sluice::Key", "id": "k2"}, "attrs": {"roles": []}, "parents": []}],
         "decision": "allow", "reason": [], "num_errors": 0},
        {"name": "bad context",
         "request": {"principal": "Sluice::Key::\"k1\"", "action": "Sluice::Action::\"llm.chat\"",
                     "resource": "Sluice::Model::\"gpt-4o\"", "context": {"surface": 1}},
         "entities": [], "decision": "deny", "reason": [], "num_errors": 0}
    ])
    .to_string();
    let r = report(
        &[("c.cedar", CEDAR), ("c.cedartest.json", &tests)],
        TestOptions::default(),
    );
    let outcomes: Vec<Outcome> = r.results.iter().map(|t| t.outcome).collect();
    assert_eq!(outcomes, [Outcome::Pass, Outcome::Fail, Outcome::Error]);
    assert!(
        r.results[1]
            .message
            .as_deref()
            .unwrap()
            .contains("decision: expected `allow`, got `deny`")
    );
    assert_eq!(
        r.results[0].full_name(),
        "c.cedartest.json#payments may chat"
    );
}

#[test]
fn malformed_test_files_are_load_errors() {
    let bundle =
        Bundle::from_sources([("c.cedar", CEDAR), ("c.cedartest.json", "[{\"name\": 1}]")])
            .unwrap();
    let err = run(&bundle, &TestOptions::default()).unwrap_err();
    assert_eq!(err.diagnostics[0].file, "c.cedartest.json");
    assert!(check(&bundle).is_err());

    let bundle =
        Bundle::from_sources([("x_test.rego", "package sluice.x_test\n\ntest_a if {\n")]).unwrap();
    assert!(run(&bundle, &TestOptions::default()).is_err());
    assert!(check(&bundle).is_err());
}
