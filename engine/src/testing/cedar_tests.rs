//! Cedar tests in the Cedar CLI `run-tests` format: a JSON array of
//! `{name, request: {principal, action, resource, context}, entities, decision, reason,
//! num_errors}`, run against the bundle's validated policies, schema and entities.

use std::str::FromStr;
use std::time::Instant;

use cedar_policy::{Authorizer, Context, Decision, Entities, EntityUid, Request, Schema};
use serde::Deserialize;

use super::{Location, Outcome, TestOptions, TestResult, selected};
use crate::bundle::{Bundle, SourceFile, json_diagnostic};
use crate::cedar::{CedarBackend, miette_message};
use crate::diagnostic::{BundleError, Diagnostic};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CedarTest {
    name: String,
    request: TestRequest,
    #[serde(default)]
    entities: Vec<serde_json::Value>,
    decision: String,
    #[serde(default)]
    reason: Vec<String>,
    #[serde(default)]
    num_errors: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRequest {
    principal: serde_json::Value,
    action: serde_json::Value,
    resource: serde_json::Value,
    #[serde(default)]
    context: serde_json::Value,
}

/// An entity uid written as `Type::"id"` or `{"type": ..., "id": ...}`.
pub fn parse_uid(value: &serde_json::Value) -> Result<EntityUid, String> {
    match value {
        serde_json::Value::String(s) => {
            EntityUid::from_str(s).map_err(|e| format!("invalid entity uid `{s}`: {e}"))
        }
        other => EntityUid::from_json(other.clone())
            .map_err(|e| format!("invalid entity uid `{other}`: {e}")),
    }
}

/// Diagnostics for Cedar test files that are not well-formed.
/// A request from the JSON of a test: uids as `Type::"id"` or `{"type", "id"}`, a context
/// object (`null` for none), validated against `schema` when one is given.
pub fn json_request(
    principal: &serde_json::Value,
    action: &serde_json::Value,
    resource: &serde_json::Value,
    context: &serde_json::Value,
    schema: Option<&Schema>,
) -> Result<Request, String> {
    let principal = parse_uid(principal)?;
    let action = parse_uid(action)?;
    let resource = parse_uid(resource)?;
    let context_json = match context {
        serde_json::Value::Null => serde_json::json!({}),
        other => other.clone(),
    };
    let context = Context::from_json_value(context_json, schema.map(|s| (s, &action)))
        .map_err(|e| format!("invalid context: {}", miette_message(&e)))?;
    Request::new(principal, action, resource, context, schema)
        .map_err(|e| format!("invalid request: {}", miette_message(&e)))
}

pub(super) fn check(bundle: &Bundle) -> Vec<Diagnostic> {
    bundle
        .cedar_tests
        .iter()
        .filter_map(|file| {
            serde_json::from_str::<Vec<CedarTest>>(&file.text)
                .err()
                .map(|e| json_diagnostic(file, &e))
        })
        .collect()
}

pub(super) fn run(bundle: &Bundle, options: &TestOptions) -> Result<Vec<TestResult>, BundleError> {
    if bundle.cedar_tests.is_empty() {
        return Ok(Vec::new());
    }
    let backend =
        CedarBackend::compile(bundle).map_err(|diagnostics| BundleError { diagnostics })?;
    let Some(backend) = backend else {
        return Err(BundleError::one(Diagnostic::file(
            bundle
                .cedar_tests
                .first()
                .map(|f| f.path.clone())
                .unwrap_or_default(),
            "Cedar tests found but the bundle has no Cedar policy",
        )));
    };
    let mut results = Vec::new();
    let mut diagnostics = Vec::new();
    for file in &bundle.cedar_tests {
        let tests: Vec<CedarTest> = match serde_json::from_str(&file.text) {
            Ok(tests) => tests,
            Err(e) => {
                diagnostics.push(json_diagnostic(file, &e));
                continue;
            }
        };
        for test in tests {
            let full = format!("{}#{}", file.path, test.name);
            if !selected(options, &full) {
                continue;
            }
            results.push(run_one(&backend, file, test));
        }
    }
    if diagnostics.is_empty() {
        Ok(results)
    } else {
        Err(BundleError { diagnostics })
    }
}

fn run_one(backend: &CedarBackend, file: &SourceFile, test: CedarTest) -> TestResult {
    let row = find_row(&file.text, &test.name);
    let started = Instant::now();
    let verdict = verdict(backend, &test);
    let duration = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    let (outcome, message) = match verdict {
        Ok(None) => (Outcome::Pass, None),
        Ok(Some(why)) => (Outcome::Fail, Some(why)),
        Err(why) => (Outcome::Error, Some(why)),
    };
    TestResult {
        language: "cedar",
        location: Location {
            file: file.path.clone(),
            row,
            col: 1,
        },
        package: file.path.clone(),
        name: test.name,
        outcome,
        message,
        duration,
        output: Vec::new(),
    }
}

/// `Ok(None)` when the test passes, `Ok(Some(why))` when it fails, `Err` when it cannot run.
fn verdict(backend: &CedarBackend, test: &CedarTest) -> Result<Option<String>, String> {
    let schema = backend.schema();
    let r = &test.request;
    let request = json_request(
        &r.principal,
        &r.action,
        &r.resource,
        &r.context,
        Some(schema),
    )?;
    let extra = Entities::from_json_value(
        serde_json::Value::Array(test.entities.clone()),
        Some(schema),
    )
    .map_err(|e| format!("invalid entities: {}", miette_message(&e)))?;
    // A test's entities are its fixtures: they replace bundle entities with the same uid.
    let kept = backend
        .entities()
        .iter()
        .filter(|e| extra.get(&e.uid()).is_none())
        .cloned();
    let entities = Entities::from_entities(kept.chain(extra.iter().cloned()), None)
        .map_err(|e| format!("invalid entities: {}", miette_message(&e)))?;
    let response = Authorizer::new().is_authorized(&request, backend.policies(), &entities);
    let decision = match response.decision() {
        Decision::Allow => "allow",
        Decision::Deny => "deny",
    };
    let mut reason: Vec<String> = response
        .diagnostics()
        .reason()
        .map(|id| id.to_string())
        .collect();
    reason.sort();
    let mut expected_reason = test.reason.clone();
    expected_reason.sort();
    let errors: Vec<String> = response
        .diagnostics()
        .errors()
        .map(|e| e.to_string())
        .collect();
    let mut problems = Vec::new();
    if !decision.eq_ignore_ascii_case(&test.decision) {
        problems.push(format!(
            "decision: expected `{}`, got `{decision}`",
            test.decision
        ));
    }
    if reason != expected_reason {
        problems.push(format!(
            "reason: expected {expected_reason:?}, got {reason:?}"
        ));
    }
    if errors.len() != test.num_errors {
        problems.push(format!(
            "errors: expected {}, got {} {errors:?}",
            test.num_errors,
            errors.len()
        ));
    }
    Ok(if problems.is_empty() {
        None
    } else {
        Some(problems.join("; "))
    })
}

fn find_row(text: &str, name: &str) -> u32 {
    let needle = serde_json::to_string(name).unwrap_or_default();
    (1u32..)
        .zip(text.lines())
        .find(|(_, line)| line.contains(&needle))
        .map(|(row, _)| row)
        .unwrap_or(1)
}
