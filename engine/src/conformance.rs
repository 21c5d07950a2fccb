//! Runs Cedar's integration-test format through Sluice's own Cedar loading path (policy
//! parsing and ids, schema building, strict validation, entity loading), so agreement with
//! the suite is agreement of the code that serves requests.
//!
//! A test file names a policy file, an entities file and a schema, whether the policies
//! should validate, and requests with the expected decision, reason and erroring policies.
//! File access goes through a reader callback: the engine stays free of IO.

use std::collections::{BTreeSet, HashMap};

use cedar_policy::{Authorizer, Decision, PolicySet};
use serde::Deserialize;

use crate::bundle::SourceFile;
use crate::cedar::{build_schema, load_entities, parse_policies, validate};
use crate::testing::cedar_json_request;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Case {
    policies: String,
    entities: String,
    schema: String,
    should_validate: bool,
    requests: Vec<CaseRequest>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CaseRequest {
    description: String,
    principal: serde_json::Value,
    action: serde_json::Value,
    resource: serde_json::Value,
    #[serde(default)]
    context: serde_json::Value,
    #[serde(default = "yes")]
    validate_request: bool,
    decision: String,
    #[serde(default)]
    reason: Vec<String>,
    #[serde(default)]
    errors: Vec<String>,
}

fn yes() -> bool {
    true
}

/// The outcome of one test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseReport {
    /// The test file.
    pub file: String,
    /// Requests in it.
    pub requests: usize,
    /// Disagreements with the expected results; empty when the file passes.
    pub failures: Vec<String>,
}

impl CaseReport {
    /// Whether every expectation of the file held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// Runs one test file. `read` returns a file's text given a path relative to the suite root.
pub fn run_case(
    file: &str,
    text: &str,
    read: &dyn Fn(&str) -> Result<String, String>,
) -> CaseReport {
    let mut report = CaseReport {
        file: file.to_string(),
        requests: 0,
        failures: Vec::new(),
    };
    let case: Case = match serde_json::from_str(text) {
        Ok(case) => case,
        Err(e) => {
            report.failures.push(format!("malformed test file: {e}"));
            return report;
        }
    };
    report.requests = case.requests.len();
    let load = |path: &str| -> Result<SourceFile, String> {
        read(path).map(|text| SourceFile {
            path: path.to_string(),
            text,
        })
    };
    let (policy_file, schema_file, entities_file) = match (
        load(&case.policies),
        load(&case.schema),
        load(&case.entities),
    ) {
        (Ok(p), Ok(s), Ok(e)) => (p, s, e),
        (p, s, e) => {
            for err in [p.err(), s.err(), e.err()].into_iter().flatten() {
                report.failures.push(err);
            }
            return report;
        }
    };

    let mut diagnostics = Vec::new();
    let mut policies = PolicySet::new();
    let mut origins = HashMap::new();
    let keep = |id: &str| id.to_string();
    parse_policies(
        &policy_file,
        &keep,
        &mut policies,
        &mut origins,
        &mut diagnostics,
    );
    if !diagnostics.is_empty() {
        report
            .failures
            .push(format!("policies do not parse: {}", join(&diagnostics)));
        return report;
    }
    let Some(schema) = build_schema(None, std::slice::from_ref(&schema_file), &mut diagnostics)
    else {
        report
            .failures
            .push(format!("schema does not parse: {}", join(&diagnostics)));
        return report;
    };
    validate(
        &schema,
        &policies,
        &origins,
        std::slice::from_ref(&policy_file),
        &mut diagnostics,
    );
    let validated = diagnostics.is_empty();
    if validated != case.should_validate {
        report.failures.push(format!(
            "validation: expected {}, got {} {}",
            case.should_validate,
            validated,
            join(&diagnostics)
        ));
    }
    diagnostics.clear();
    let Some(entities) = load_entities(
        &schema,
        std::slice::from_ref(&entities_file),
        &mut diagnostics,
    ) else {
        report
            .failures
            .push(format!("entities do not load: {}", join(&diagnostics)));
        return report;
    };

    let authorizer = Authorizer::new();
    for request in &case.requests {
        let built = cedar_json_request(
            &request.principal,
            &request.action,
            &request.resource,
            &request.context,
            request.validate_request.then_some(&schema),
        );
        let request_built = match built {
            Ok(r) => r,
            Err(e) => {
                report.failures.push(format!(
                    "`{}`: request does not build: {e}",
                    request.description
                ));
                continue;
            }
        };
        let response = authorizer.is_authorized(&request_built, &policies, &entities);
        let decision = match response.decision() {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        };
        let reason: BTreeSet<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        let errors: BTreeSet<String> = response
            .diagnostics()
            .errors()
            .map(|e| {
                let cedar_policy::AuthorizationError::PolicyEvaluationError(e) = e;
                e.policy_id().to_string()
            })
            .collect();
        let expected_reason: BTreeSet<String> = request.reason.iter().cloned().collect();
        let expected_errors: BTreeSet<String> = request.errors.iter().cloned().collect();
        if !decision.eq_ignore_ascii_case(&request.decision)
            || reason != expected_reason
            || errors != expected_errors
        {
            report.failures.push(format!(
                "`{}`: expected {} {:?} errors {:?}, got {} {:?} errors {:?}",
                request.description,
                request.decision,
                expected_reason,
                expected_errors,
                decision,
                reason,
                errors
            ));
        }
    }
    report
}

fn join(diagnostics: &[crate::diagnostic::Diagnostic]) -> String {
    diagnostics
        .iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}
