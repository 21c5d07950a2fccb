use super::*;
use crate::decision::Effect;

fn bundle(files: &[(&str, &str)]) -> Bundle {
    Bundle::from_sources(files.iter().copied()).unwrap()
}

fn input(extra: serde_json::Value) -> Value {
    let mut base = serde_json::json!({
        "surface": "prompt", "action": "llm.chat",
        "principal": {"key_id": "k1", "team": "payments"},
        "resource": {"kind": "model", "id": "gpt-4o"}
    });
    if let (Some(base), Some(extra)) = (base.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            base.insert(k.clone(), v.clone());
        }
    }
    Value::from(base)
}

#[test]
fn the_entrypoint_collects_every_package_and_attributes_reasons_to_files() {
    let b = bundle(&[
        (
            "models.rego",
            "package sluice.models\n\ndeny contains sprintf(\"model %s\", [input.resource.id]) if input.resource.id == \"gpt-4o\"\n",
        ),
        (
            "teams/teams.rego",
            "package sluice.teams\n\ndeny contains {\"msg\": \"no team\", \"rule\": \"teams.required\"} if not input.principal.team\nallow if input.principal.team == \"payments\"\n",
        ),
        (
            "lib/helpers.rego",
            "package sluice.lib\n\nis_big(x) if x > 10\n",
        ),
    ]);
    let backend = RegoBackend::compile(&b).unwrap().unwrap();
    let paths: Vec<&str> = backend.packages().iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["data.sluice.models", "data.sluice.teams"]);
    let outcome = backend.evaluate(input(serde_json::json!({}))).unwrap();
    assert_eq!(outcome.denies.len(), 1);
    assert_eq!(outcome.denies[0].message, "model gpt-4o");
    assert_eq!(outcome.denies[0].file.as_deref(), Some("models.rego"));
    assert_eq!(outcome.denies[0].rule, "data.sluice.models.deny");
    assert_eq!(outcome.allows.len(), 1);
    assert_eq!(outcome.allows[0].file.as_deref(), Some("teams/teams.rego"));

    let outcome = backend
        .evaluate(input(serde_json::json!({"principal": {"key_id": "k"}, "resource": {"kind": "model", "id": "x"}})))
        .unwrap();
    assert_eq!(outcome.denies.len(), 1);
    assert_eq!(outcome.denies[0].message, "no team");
    assert_eq!(outcome.denies[0].rule, "teams.required");
    assert!(outcome.allows.is_empty());
}

#[test]
fn obligations_are_read_and_merged() {
    let b = bundle(&[
        (
            "a.rego",
            r#"package sluice.a

redact contains "email" if true
redact contains {"pattern": "ACME-[0-9]+", "replacement": "[ticket]"} if true
route := {"model": "gpt-4o-mini"} if true
headers := {"X-Team": input.principal.team} if true
mask contains "/content/messages" if true
throttle := {"requests_per_minute": 60} if true
warn contains "careful" if true
log_text if input.principal.team == "payments"
flag contains "pii_seen" if true
flag contains "untrusted_content_read" if true
"#,
        ),
        (
            "b.rego",
            r#"package sluice.b

throttle := {"requests_per_minute": 10, "tokens_per_minute": 500} if true
route := "gpt-4o-mini" if true
flag contains "pii_seen" if true
"#,
        ),
    ]);
    let backend = RegoBackend::compile(&b).unwrap().unwrap();
    let outcome = backend.evaluate(input(serde_json::json!({}))).unwrap();
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    let o = &outcome.obligations;
    assert_eq!(o.redact.len(), 2);
    assert_eq!(o.redact[0].class.as_deref(), Some("email"));
    assert_eq!(o.redact[1].pattern.as_deref(), Some("ACME-[0-9]+"));
    assert_eq!(
        o.route.as_ref().unwrap().model.as_deref(),
        Some("gpt-4o-mini")
    );
    assert_eq!(
        o.headers.get("x-team").map(String::as_str),
        Some("payments")
    );
    assert_eq!(o.mask[0].pointer, "/content/messages");
    assert!(o.log_text);
    // Flags are merged across packages, each once.
    let mut flags = o.flags.clone();
    flags.sort();
    assert_eq!(flags, ["pii_seen", "untrusted_content_read"]);
    let t = o.throttle.as_ref().unwrap();
    assert_eq!(
        (t.requests_per_minute, t.tokens_per_minute),
        (Some(10), Some(500))
    );
    assert_eq!(outcome.warns.len(), 1);
    assert_eq!(outcome.warns[0].effect, Effect::Warn);
}

#[test]
fn malformed_and_conflicting_obligations_are_errors() {
    let b = bundle(&[
        (
            "a.rego",
            r#"package sluice.a

redact contains {"colour": "red"} if true
redact contains {"pattern": "("} if true
route := "model-a" if true
mask contains "content" if true
headers := {"x-n": 1} if true
log_text := "yes" if true
flag contains 7 if true
"#,
        ),
        (
            "b.rego",
            "package sluice.b\n\nroute := \"model-b\" if true\n",
        ),
    ]);
    let backend = RegoBackend::compile(&b).unwrap().unwrap();
    let outcome = backend.evaluate(input(serde_json::json!({}))).unwrap();
    let messages: Vec<&str> = outcome.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(outcome.errors.len(), 7, "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("a session flag must be a non-empty string"))
    );
    assert!(
        messages
            .iter()
            .any(|m| m.contains("log_text must be a boolean"))
    );
    assert!(messages.iter().any(|m| m.contains("malformed redaction")));
    assert!(
        messages
            .iter()
            .any(|m| m.contains("not a valid regular expression"))
    );
    assert!(messages.iter().any(|m| m.contains("conflicting route")));
    assert!(messages.iter().any(|m| m.contains("not a JSON pointer")));
    assert!(messages.iter().any(|m| m.contains("must be a string")));
    assert!(outcome.errors.iter().all(|e| e.effect == Effect::Error));
}

/// A rule is skipped only when it holds its own default: `false` where an object or
/// null is the default is still read, and still an error.
#[test]
fn only_a_rules_own_default_is_skipped() {
    let b = bundle(&[
        ("c.rego", "package sluice.c\n\nheaders := false if true\n"),
        ("e.rego", "package sluice.e\n\nthrottle := false if true\n"),
        ("f.rego", "package sluice.f\n\nroute := 7 if true\n"),
        (
            "d.rego",
            "package sluice.d\n\nallow := false\ndeny contains \"no\" if false\n",
        ),
    ]);
    let backend = RegoBackend::compile(&b).unwrap().unwrap();
    let outcome = backend.evaluate(input(serde_json::json!({}))).unwrap();
    let messages: Vec<&str> = outcome.errors.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(outcome.errors.len(), 3, "{messages:?}");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("headers must be an object"))
    );
    assert!(messages.iter().any(|m| m.contains("malformed throttle")));
    assert!(messages.iter().any(|m| m.contains("malformed route")));
    assert!(outcome.denies.is_empty() && outcome.allows.is_empty());
}

#[test]
fn syntax_errors_name_file_line_and_column() {
    let b = bundle(&[(
        "p/bad.rego",
        "package sluice.bad\n\ndeny contains msg if {\n  msg := \n}\n",
    )]);
    let diagnostics = RegoBackend::compile(&b).unwrap_err();
    assert_eq!(diagnostics.len(), 1);
    let d = &diagnostics[0];
    assert_eq!(d.file, "p/bad.rego");
    assert!(d.line >= 4 && d.column > 0, "{d}");
}

#[test]
fn rego_v0_syntax_is_rejected() {
    let b = bundle(&[(
        "old.rego",
        "package sluice.old\n\ndeny[msg] { msg := \"x\" }\n",
    )]);
    let diagnostics = RegoBackend::compile(&b).unwrap_err();
    assert_eq!(diagnostics[0].file, "old.rego");
}

#[test]
fn packages_outside_the_roots_and_the_reserved_rule_are_errors() {
    let b = bundle(&[("x.rego", "package other\n\ndeny contains \"x\" if true\n")]);
    let diagnostics = RegoBackend::compile(&b).unwrap_err();
    assert!(
        diagnostics[0].message.contains("outside the bundle roots"),
        "{}",
        diagnostics[0]
    );

    let b = bundle(&[("s.rego", "package sluice\n\ndecision := 1\n")]);
    let diagnostics = RegoBackend::compile(&b).unwrap_err();
    assert!(
        diagnostics[0].message.contains("reserved"),
        "{}",
        diagnostics[0]
    );

    // Policies in package `sluice` itself are fine.
    let b = bundle(&[(
        "s.rego",
        "package sluice\n\ndeny contains \"root\" if true\n",
    )]);
    let backend = RegoBackend::compile(&b).unwrap().unwrap();
    let outcome = backend.evaluate(input(serde_json::json!({}))).unwrap();
    assert_eq!(outcome.denies[0].message, "root");
}

#[test]
fn a_policy_that_explodes_is_stopped_by_the_time_limit() {
    let b = bundle(&[
        (".manifest", r#"{"sluice": {"rego_timeout_ms": 20}}"#),
        (
            "slow.rego",
            "package sluice.slow\n\ndeny contains \"slow\" if {\n  input.resource.id == \"slow\"\n  n := numbers.range(1, 5000)\n  count([1 | some a in n; some b in n; a + b > 0]) > 0\n}\n",
        ),
    ]);
    let backend = RegoBackend::compile(&b).unwrap().unwrap();
    assert_eq!(backend.timeout(), Duration::from_millis(20));
    let result = backend.evaluate(input(
        serde_json::json!({"resource": {"kind": "model", "id": "slow"}}),
    ));
    let message = result.unwrap_err();
    assert!(
        message.contains("time") || message.contains("limit"),
        "{message}"
    );
    // The same engine keeps working for other inputs.
    let outcome = backend.evaluate(input(serde_json::json!({}))).unwrap();
    assert!(outcome.denies.is_empty());
}

#[test]
fn conflicting_complete_rules_fail_at_evaluation_not_silently() {
    let b = bundle(&[(
        "c.rego",
        "package sluice.c\n\nroute := \"a\" if input.action == \"llm.chat\"\nroute := \"b\" if input.action == \"llm.chat\"\n",
    )]);
    let backend = RegoBackend::compile(&b).unwrap().unwrap();
    assert!(backend.evaluate(input(serde_json::json!({}))).is_err());
}

#[test]
fn data_documents_are_mounted_at_their_directory() {
    let b = bundle(&[
        ("models/data.json", r#"{"allowed": ["gpt-4o-mini"]}"#),
        (
            "m.rego",
            "package sluice.m\n\ndeny contains \"not allowed\" if not input.resource.id in data.models.allowed\n",
        ),
    ]);
    let backend = RegoBackend::compile(&b).unwrap().unwrap();
    assert_eq!(
        backend
            .evaluate(input(serde_json::json!({})))
            .unwrap()
            .denies
            .len(),
        1
    );
    let ok = input(serde_json::json!({"resource": {"kind": "model", "id": "gpt-4o-mini"}}));
    assert!(backend.evaluate(ok).unwrap().denies.is_empty());
}

#[test]
fn the_diagnostic_parser_reads_regorus_positions() {
    let d = regorus_diagnostic(
        "a.rego",
        "\n--> a.rego:3:7\n  |\n3 | x\n  |       ^\nerror: unexpected token",
    );
    assert_eq!((d.line, d.column), (3, 7));
    assert_eq!(d.message, "unexpected token");
    let d = regorus_diagnostic("a.rego", "something else");
    assert_eq!(
        (d.line, d.column, d.message.as_str()),
        (0, 0, "something else")
    );
}

#[test]
fn the_vm_fails_closed_where_the_interpreter_does() {
    // A deny whose message cannot be formatted, and complete rules that conflict: errors
    // in both evaluators (vendor/regorus is patched for the VM), so the decision fails
    // closed. A body whose condition is false stays undefined in both.
    let policies = [
        "package sluice.a\n\ndeny contains sprintf(\"cost %d\", [input.c]) if input.c > 1\n",
        "package sluice.a\n\nroute := \"a\" if input.x\nroute := \"b\" if input.x\n",
        "package sluice.a\n\ndeny contains \"x\" if { some v in input.list; to_number(v) > 1 }\n",
    ];
    let erroring = || Value::from(serde_json::json!({"c": 2.5, "x": true, "list": ["a"]}));
    let quiet = || Value::from(serde_json::json!({"c": 0, "x": false, "list": []}));
    for policy in policies {
        let interpreted = bundle(&[("a.rego", policy)]);
        let backend = RegoBackend::compile(&interpreted).unwrap().unwrap();
        assert!(!backend.serves_with_vm());
        assert!(backend.evaluate(erroring()).is_err(), "{policy}");
        let vm = bundle(&[
            (".manifest", r#"{"sluice": {"rego_evaluator": "vm"}}"#),
            ("a.rego", policy),
        ]);
        let backend = RegoBackend::compile(&vm).unwrap().unwrap();
        assert!(backend.serves_with_vm(), "{:?}", backend.vm_unavailable());
        assert!(backend.run_vm(erroring()).unwrap().is_err(), "VM: {policy}");
        assert!(backend.evaluate(erroring()).is_err(), "{policy}");
        let outcome = backend.evaluate(quiet()).unwrap();
        assert!(outcome.denies.is_empty() && outcome.obligations.route.is_none());
        assert!(backend.vm_divergence().is_none(), "{policy}");
        // OPA's lenient mode, asked for: the erroring rules are undefined.
        let lenient = bundle(&[
            (
                ".manifest",
                r#"{"sluice": {"rego_evaluator": "vm", "rego_strict_builtin_errors": false}}"#,
            ),
            ("a.rego", policy),
        ]);
        let backend = RegoBackend::compile(&lenient).unwrap().unwrap();
        if !policy.contains("route") {
            let outcome = backend.run_vm(erroring()).unwrap().unwrap();
            assert_eq!(outcome, backend.interpret(erroring()).unwrap(), "{policy}");
        }
    }
}

#[test]
fn a_vm_that_disagrees_with_the_interpreter_hands_the_bundle_to_it() {
    // Without strict errors the VM leaves conflicting complete rules undefined, while the
    // interpreter reports the conflict: the first such decision is the interpreter's, and
    // so is every later one.
    let lenient = bundle(&[
        (
            ".manifest",
            r#"{"sluice": {"rego_evaluator": "vm", "rego_strict_builtin_errors": false}}"#,
        ),
        (
            "a.rego",
            "package sluice.a\n\nroute := \"a\" if input.x\nroute := \"b\" if input.x\n",
        ),
    ]);
    let backend = RegoBackend::compile(&lenient).unwrap().unwrap();
    let calm = || Value::from(serde_json::json!({"x": false}));
    let conflict = || Value::from(serde_json::json!({"x": true}));
    assert!(backend.evaluate(calm()).is_ok());
    assert!(backend.serves_with_vm() && backend.vm_divergence().is_none());
    assert!(
        backend.run_vm(conflict()).unwrap().is_ok(),
        "the lenient VM"
    );
    assert!(
        backend.evaluate(conflict()).is_err(),
        "the interpreter's answer"
    );
    assert!(!backend.serves_with_vm());
    let why = backend.vm_divergence().unwrap();
    assert!(why.contains("the interpreter gave an error"), "{why}");
    assert!(backend.evaluate(conflict()).is_err());
}

#[test]
fn after_the_checked_decisions_the_vm_serves_alone() {
    let b = bundle(&[
        (".manifest", r#"{"sluice": {"rego_evaluator": "vm"}}"#),
        (
            "a.rego",
            "package sluice.a\n\ndeny contains \"no\" if input.x\n",
        ),
    ]);
    let backend = RegoBackend::compile(&b).unwrap().unwrap();
    assert!(backend.checking());
    for _ in 0..CHECKED_DECISIONS + 10 {
        let outcome = backend
            .evaluate(Value::from(serde_json::json!({"x": true})))
            .unwrap();
        assert_eq!(outcome.denies.len(), 1);
    }
    assert_eq!(backend.checked.load(Ordering::Relaxed), CHECKED_DECISIONS);
    assert!(backend.serves_with_vm());
    assert!(!backend.checking());
}

#[test]
fn vm_and_interpreter_agree_on_the_default_policies_for_every_example() {
    let mut bundle = crate::test_support::default_policies();
    bundle.manifest.sluice.rego_evaluator = RegoEvaluator::Vm;
    let backend = RegoBackend::compile(&bundle).unwrap().unwrap();
    let examples = crate::test_support::example_inputs();
    assert!(examples.len() >= 6);
    for (path, input) in examples {
        let value = crate::policies::to_rego_value(&input).unwrap();
        let interpreted = backend.interpret(value.clone()).unwrap();
        let vm = backend
            .run_vm(value)
            .expect("the default policies compile to the VM")
            .unwrap();
        assert_eq!(interpreted, vm, "{}", path.display());
    }
}

#[test]
fn packages_whose_names_are_not_identifiers_still_contribute() {
    let b = bundle(&[
        (
            "t.rego",
            "package sluice[\"team-a\"]\n\ndeny contains \"quoted package\" if true\n",
        ),
        (
            "t_test.rego",
            "package sluice[\"team-a_test\"]\n\ntest_quoted if { data.sluice[\"team-a\"].deny == {\"quoted package\"} }\n",
        ),
    ]);
    let backend = RegoBackend::compile(&b).unwrap().unwrap();
    let outcome = backend.evaluate(input(serde_json::json!({}))).unwrap();
    assert_eq!(outcome.denies[0].message, "quoted package");
    let report = crate::testing::run(
        &b,
        &crate::testing::TestOptions {
            timeout_ms: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(
        report.results[0].outcome,
        crate::testing::Outcome::Pass,
        "{report:?}"
    );
}

#[test]
fn inputs_become_the_values_their_json_would_parse_to() {
    let examples = crate::test_support::example_inputs();
    assert!(examples.len() >= 6);
    for (path, input) in examples {
        let direct = super::to_value(&input).unwrap();
        let parsed = Value::from_json_str(&serde_json::to_string(&input).unwrap()).unwrap();
        assert_eq!(direct, parsed, "{}", path.display());
    }
    // Shapes the input types do not use today, so that a new field cannot change meaning.
    let odd = serde_json::json!({
        "n": [0, -3, 18446744073709551615u64, 2.5, 1e300, -0.0],
        "s": "é\u{1F600}", "b": [true, false], "z": null, "nested": {"a": {"b": []}, "e": {}}
    });
    assert_eq!(
        super::to_value(&odd).unwrap(),
        Value::from_json_str(&odd.to_string()).unwrap()
    );
    let keyed: std::collections::BTreeMap<u32, &str> = [(1, "x"), (20, "y")].into();
    assert_eq!(
        super::to_value(&keyed).unwrap(),
        Value::from_json_str(r#"{"1": "x", "20": "y"}"#).unwrap()
    );
    // A map that names a key twice: the later value wins, as in serde_json, and the keys
    // come out sorted whatever order they went in.
    struct Repeated;
    impl serde::Serialize for Repeated {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap as _;
            let mut map = s.serialize_map(Some(4))?;
            map.serialize_entry("b", &1)?;
            map.serialize_entry("c", &2)?;
            map.serialize_entry("a", &3)?;
            map.serialize_entry("b", &4)?;
            map.end()
        }
    }
    assert_eq!(
        super::to_value(&Repeated).unwrap(),
        Value::from_json_str(r#"{"a": 3, "b": 4, "c": 2}"#).unwrap()
    );
    assert_eq!(
        serde_json::to_value(Repeated).unwrap(),
        serde_json::json!({"a": 3, "b": 4, "c": 2})
    );
    let bad: std::collections::HashMap<Vec<u8>, u8> = [(vec![1], 1)].into();
    assert!(super::to_value(&bad).is_err());
    assert_eq!(super::to_value(&f64::NAN).unwrap(), Value::Null);
}
