//! One audit row: a decision, the facts of its call, and the masked input.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::Serialize;
use sluice_engine::{Decision, DecisionInput};

use super::json_text;
use super::mask::masked_input_text;

/// What the gateway knows about the call beyond the decision.
#[derive(Debug, Clone, Default)]
pub struct CallFacts {
    /// The call's id, shared by its request and response decisions.
    pub request_id: String,
    /// Upstream HTTP status, when the call reached one.
    pub upstream_status: Option<i32>,
    /// Time to the upstream's answer, in milliseconds.
    pub upstream_ms: Option<f64>,
    /// The call so far, in milliseconds.
    pub total_ms: f64,
    /// Who caused an error: `client`, `upstream` or `internal`.
    pub error_source: Option<&'static str>,
    /// Cached input tokens reported by the upstream.
    pub cached_tokens: Option<i64>,
    /// Reasoning tokens reported by the upstream.
    pub reasoning_tokens: Option<i64>,
}

impl CallFacts {
    /// The facts of a decision on an upstream's answer: the HTTP status it came with and
    /// the time from asking to the answer.
    pub fn answered(status: u16, upstream_ms: f64) -> CallFacts {
        CallFacts {
            upstream_status: Some(i32::from(status)),
            upstream_ms: Some(upstream_ms),
            ..CallFacts::default()
        }
    }
}

/// A row of the `decisions` table.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    missing_docs,
    reason = "the columns are documented in schemas/audit.sql"
)]
pub struct Row {
    pub decision_id: String,
    pub request_id: Option<String>,
    pub time_micros: i64,
    pub surface: String,
    pub action: String,
    pub key_id: Option<String>,
    pub user_id: Option<String>,
    pub team: Option<String>,
    pub agent: Option<String>,
    pub resource_kind: Option<String>,
    pub resource_id: Option<String>,
    pub provider: Option<String>,
    pub deployment: Option<String>,
    pub allow: bool,
    pub reasons: String,
    pub obligations: String,
    pub findings: String,
    pub pii_count: i32,
    pub secret_count: i32,
    pub injection_score: f64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub cost_usd: f64,
    pub upstream_status: Option<i32>,
    pub decide_us: f64,
    pub upstream_ms: Option<f64>,
    pub total_ms: f64,
    pub revision: String,
    pub error_source: Option<String>,
    pub input: String,
}

/// The `findings` column: what the detectors found, by class and count, never the text.
/// Serialised straight from here: building it as a JSON tree first cost the writer a
/// twelfth of its time.
#[derive(Serialize)]
struct Summary<'a> {
    pii: BTreeMap<&'a str, u64>,
    secrets: BTreeMap<&'a str, u64>,
    injection_score: f64,
    injection_signals: &'a [String],
    tool_poisoning: usize,
}

fn count_by_class(spans: &[sluice_engine::input::Span]) -> BTreeMap<&str, u64> {
    let mut counts = BTreeMap::new();
    for span in spans {
        *counts.entry(span.class.as_str()).or_insert(0) += 1;
    }
    counts
}

fn time_micros(time: &str) -> i64 {
    time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000) as i64)
        .unwrap_or_else(|_| (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64)
}

fn clamp(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Row {
    /// The row of `decision` on `input`. Findings are summarised (classes and counts, never
    /// the matched text) and the input is stored masked.
    pub fn new(input: Cow<'_, DecisionInput>, decision: &Decision, call: &CallFacts) -> Row {
        let findings = &input.findings;
        let summary = Summary {
            pii: count_by_class(&findings.pii),
            secrets: count_by_class(&findings.secrets),
            injection_score: findings.injection.score,
            injection_signals: &findings.injection.signals,
            tool_poisoning: findings.tool_poisoning.len(),
        };
        let principal = &input.principal;
        let resource = &input.resource;
        Row {
            decision_id: decision.id.clone(),
            request_id: (!call.request_id.is_empty()).then(|| call.request_id.clone()),
            time_micros: time_micros(&input.time),
            surface: input.surface.as_str().to_string(),
            action: input.action.clone(),
            key_id: (!principal.key_id.is_empty()).then(|| principal.key_id.clone()),
            user_id: principal.user.clone(),
            team: principal.team.clone(),
            agent: principal.agent.clone(),
            resource_kind: Some(resource.kind.cedar_type().to_string()),
            resource_id: Some(resource.id.clone()),
            provider: resource.provider.clone(),
            deployment: resource.deployment.clone(),
            allow: decision.allow,
            reasons: json_text(&decision.reasons),
            obligations: json_text(&decision.obligations),
            findings: json_text(&summary),
            pii_count: i32::try_from(findings.pii.len()).unwrap_or(i32::MAX),
            secret_count: i32::try_from(findings.secrets.len()).unwrap_or(i32::MAX),
            injection_score: findings.injection.score,
            input_tokens: clamp(input.usage.input_tokens),
            output_tokens: clamp(input.usage.output_tokens),
            cached_tokens: call.cached_tokens,
            reasoning_tokens: call.reasoning_tokens,
            cost_usd: input.usage.cost_usd,
            upstream_status: call.upstream_status,
            decide_us: decision.timing.total_us,
            upstream_ms: call.upstream_ms,
            total_ms: call.total_ms,
            revision: decision.revision.clone(),
            // A decision that failed closed on an evaluation error is the gateway's own fault.
            error_source: call
                .error_source
                .or_else(|| {
                    decision
                        .reasons
                        .iter()
                        .any(|r| r.effect == sluice_engine::Effect::Error)
                        .then_some("internal")
                })
                .map(str::to_string),
            input: masked_input_text(input, decision),
        }
    }
}
