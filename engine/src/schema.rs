//! JSON Schemas of the contracts, generated from the types. The committed files under
//! `schemas/` are checked against these by a test, so they never go stale.

use crate::decision::Decision;
use crate::input::DecisionInput;

/// `schemas/decision-input.schema.json`.
pub fn decision_input() -> serde_json::Value {
    let mut schema = schemars::schema_for!(DecisionInput).to_value();
    annotate(
        &mut schema,
        "https://sluice.dev/schemas/decision-input.schema.json",
    );
    schema
}

/// `schemas/decision.schema.json`.
pub fn decision() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Decision).to_value();
    annotate(
        &mut schema,
        "https://sluice.dev/schemas/decision.schema.json",
    );
    schema
}

fn annotate(schema: &mut serde_json::Value, id: &str) {
    if let Some(object) = schema.as_object_mut() {
        object.insert("$id".to_string(), serde_json::Value::String(id.to_string()));
    }
}
