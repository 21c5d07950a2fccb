//! The committed JSON Schemas match the types, and every example input in the repository
//! validates against the decision-input schema and deserialises into the type.
//!
//! Regenerate with `SLUICE_UPDATE_SCHEMAS=1 cargo test -p sluice-engine --test schemas`.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check_committed(name: &str, generated: serde_json::Value) {
    let path = repo().join("schemas").join(name);
    let text = serde_json::to_string_pretty(&generated).unwrap() + "\n";
    if std::env::var_os("SLUICE_UPDATE_SCHEMAS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == text,
        "schemas/{name} is stale: regenerate it with `SLUICE_UPDATE_SCHEMAS=1 cargo test -p sluice-engine --test schemas`"
    );
}

#[test]
fn decision_input_schema_is_current() {
    check_committed(
        "decision-input.schema.json",
        sluice_engine::schema::decision_input(),
    );
}

#[test]
fn decision_schema_is_current() {
    check_committed("decision.schema.json", sluice_engine::schema::decision());
}

/// Every `*.json` decision input under `examples/inputs/` and every `input*.json` under
/// `policies/`.
fn example_inputs() -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![repo().join("examples"), repo().join("policies")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            let in_inputs = path.parent().is_some_and(|p| p.ends_with("inputs"));
            if name.ends_with(".json") && (in_inputs || name.starts_with("input")) {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn example_inputs_validate_against_the_schema() {
    let schema = sluice_engine::schema::decision_input();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let inputs = example_inputs();
    for path in &inputs {
        let value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| e.to_string())
            .collect();
        assert!(errors.is_empty(), "{}: {errors:?}", path.display());
        serde_json::from_value::<sluice_engine::DecisionInput>(value)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

#[test]
fn the_schema_rejects_what_the_type_rejects() {
    let schema = sluice_engine::schema::decision_input();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let good = serde_json::json!({
        "version": "1", "id": "d", "time": "2026-01-01T00:00:00Z", "surface": "prompt",
        "action": "llm.chat", "principal": {"key_id": "k"}, "resource": {"kind": "model", "id": "m"}
    });
    assert!(validator.is_valid(&good));
    let mut unknown = good.clone();
    unknown["principal"]["admin"] = serde_json::json!(true);
    assert!(!validator.is_valid(&unknown));
    assert!(serde_json::from_value::<sluice_engine::DecisionInput>(unknown).is_err());
    let mut bad_surface = good.clone();
    bad_surface["surface"] = serde_json::json!("email");
    assert!(!validator.is_valid(&bad_surface));
}
