//! No panic on any input: arbitrary and mutated policy files, manifests, data, entities,
//! Cedar tests and decision inputs either load or fail with diagnostics, and every decision
//! comes back well-formed.
#![expect(
    clippy::unwrap_used,
    reason = "test setup: a failure is a test failure"
)]

use std::path::Path;
use std::sync::OnceLock;

use proptest::prelude::*;
use sluice_engine::testing::TestOptions;
use sluice_engine::{Bundle, DecisionInput, Policies};

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// Real files of the default policy repo, to mutate.
fn seeds() -> &'static Vec<(String, String)> {
    static SEEDS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    SEEDS.get_or_init(|| {
        let bundle = Bundle::load(&repo().join("policies")).unwrap();
        bundle
            .rego
            .iter()
            .chain(&bundle.rego_tests)
            .chain(&bundle.cedar)
            .chain(&bundle.cedar_schemas)
            .chain(&bundle.cedar_entities)
            .chain(&bundle.cedar_tests)
            .map(|f| (f.path.clone(), f.text.clone()))
            .collect()
    })
}

fn default_policies() -> &'static Policies {
    static POLICIES: OnceLock<Policies> = OnceLock::new();
    POLICIES.get_or_init(|| {
        let bundle = Bundle::load(&repo().join("policies")).unwrap();
        Policies::compile(&bundle, "test".to_string()).unwrap()
    })
}

/// A file's text with a byte range replaced: realistic near-misses of valid policies.
fn mutate(text: &str, at: usize, len: usize, insert: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let at = at % (bytes.len() + 1);
    let end = (at + len).min(bytes.len());
    bytes.splice(at..end, insert.bytes());
    String::from_utf8_lossy(&bytes).into_owned()
}

fn load_and_run(files: Vec<(String, String)>) {
    let sources: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, t)| (p.as_str(), t.as_str()))
        .collect();
    if let Ok(bundle) = Bundle::from_sources(sources) {
        let _ = Policies::compile(&bundle, String::new());
        let options = TestOptions {
            timeout_ms: 200,
            ..TestOptions::default()
        };
        let _ = sluice_engine::testing::run(&bundle, &options);
    }
}

const NAMES: [&str; 8] = [
    "a.rego",
    "a_test.rego",
    "a.cedar",
    "a.cedarschema",
    "entities.json",
    "a.cedartest.json",
    "data.yaml",
    ".manifest",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn mutated_policy_files_never_panic(
        seed in 0usize..1000,
        at in 0usize..10_000,
        len in 0usize..40,
        insert in prop::sample::select(vec!["", "{", "}", "\"", "[", "]", "::", " if ", "when {", "@id(", "\u{0}", "é", "\n", "1e999", "null", "deny contains"]),
    ) {
        let files = seeds();
        let (path, text) = &files[seed % files.len()];
        let mut bundle: Vec<(String, String)> = files.clone();
        if let Some(file) = bundle.iter_mut().find(|(p, _)| p == path) {
            file.1 = mutate(text, at, len, insert);
        }
        load_and_run(bundle);
    }

    #[test]
    fn arbitrary_text_in_any_file_kind_never_panics(
        kind in 0usize..NAMES.len(),
        text in "\\PC{0,200}",
    ) {
        load_and_run(vec![(NAMES[kind].to_string(), text)]);
    }

    #[test]
    fn arbitrary_decision_inputs_decide_without_panicking(
        surface in prop::sample::select(vec!["prompt", "response", "retrieval", "tool", "memory", "a2a"]),
        action in "[a-z.:_]{0,30}",
        key in "\\PC{0,20}",
        kind in prop::sample::select(vec!["model", "tool", "mcp_server", "agent", "datasource", "memory"]),
        id in "\\PC{0,30}",
        score in prop::num::f64::ANY,
        cost in prop::num::f64::ANY,
        used in prop::num::f64::ANY,
        args in "\\PC{0,60}",
    ) {
        let arguments: serde_json::Value =
            serde_json::from_str(&args).unwrap_or(serde_json::Value::String(args));
        let json = serde_json::json!({
            "version": "1", "id": "d", "time": "t", "surface": surface, "action": action,
            "principal": {"key_id": key, "team": id, "agent": key, "roles": [id]},
            "resource": {"kind": kind, "id": id, "server": key},
            "content": {"tool": {"name": id, "arguments": arguments}},
            "findings": {"injection": {"score": if score.is_finite() { score } else { 0.5 }}},
            "usage": {"cost_usd": if cost.is_finite() { cost } else { 1.0 }},
            "limits": [{"scope": "team", "id": id, "kind": "cost_usd", "window": "day",
                        "limit": 10.0, "used": if used.is_finite() { used } else { 0.0 }}]
        });
        let input: DecisionInput = serde_json::from_value(json).unwrap();
        let decision = default_policies().evaluate(&input);
        prop_assert!(!decision.reasons.is_empty(), "every decision says why");
        prop_assert_eq!(decision.id, "d");
    }
}
