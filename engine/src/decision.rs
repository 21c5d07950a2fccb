//! The decision: what the engine concluded, why, and what the gateway must do about it.
//!
//! A versioned contract; `schemas/decision.schema.json` is generated from these types.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::input::Surface;

/// Version of the decision contract.
pub const DECISION_VERSION: &str = "1";

/// The outcome of evaluating every policy on one decision input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Contract version, `"1"`.
    pub version: String,
    /// The id of the decision input this decides.
    pub id: String,
    /// The surface of the input.
    pub surface: Surface,
    /// Whether the request (or response) may proceed.
    pub allow: bool,
    /// Why: every deny, the allows that carried the decision, errors, and defaults applied.
    pub reasons: Vec<Reason>,
    /// What the gateway must do when it proceeds.
    pub obligations: Obligations,
    /// The policy bundle revision that decided.
    pub revision: String,
    /// Time spent, per backend.
    pub timing: Timing,
}

/// One reason of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Which part of the engine produced it.
    pub backend: Backend,
    /// What it says about the decision.
    pub effect: Effect,
    /// The policy file (relative to the bundle root), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The Rego rule path (e.g. `data.sluice.models.deny`), the rule id a policy gave,
    /// or the Cedar policy id (from `@id("...")`).
    pub rule: String,
    /// Human-readable message.
    pub message: String,
}

/// The backend that produced a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backend {
    /// A Rego policy.
    Rego,
    /// A Cedar policy.
    Cedar,
    /// The engine itself (defaults, combination errors).
    Engine,
    /// The gateway: how a call ended when there was no answer to decide on (an upstream
    /// failure, a timeout, an unknown model alias); recorded in the audit trail, never
    /// produced by policy evaluation.
    Gateway,
}

/// The effect of a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// The rule denies.
    Deny,
    /// The rule allows.
    Allow,
    /// The rule warns without denying.
    Warn,
    /// Evaluation failed; with fail-closed the decision is a deny.
    Error,
    /// No rule allowed or denied; the surface default decided.
    Default,
}

/// What the gateway must do with a request it lets through.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Obligations {
    /// Content to rewrite before forwarding.
    #[serde(default)]
    pub redact: Vec<Redaction>,
    /// A route override (model, deployment or provider).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<Route>,
    /// Headers to add to the upstream request.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// JSON pointers of the decision input to erase or replace in the audit log.
    #[serde(default)]
    pub mask: Vec<Mask>,
    /// A tighter rate limit to apply to this principal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throttle: Option<Throttle>,
    /// Keep the message, document and tool-argument text in the audit log (it is omitted
    /// by default). Detected PII and secrets in it are still replaced by their class, and
    /// `mask` still applies. Any policy asking is enough; kept on a deny too.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub log_text: bool,
    /// Session flags to set (e.g. `untrusted_content_read`): later decisions of the same
    /// session see them in `input.session.flags`, on every surface. Kept on a deny too
    /// (what a session was shown, or tried, stays known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
}

impl Obligations {
    /// Whether no obligation is set.
    pub fn is_empty(&self) -> bool {
        self.redact.is_empty()
            && self.route.is_none()
            && self.headers.is_empty()
            && self.mask.is_empty()
            && self.throttle.is_none()
            && !self.log_text
            && self.flags.is_empty()
    }
}

/// One redaction: by detector class, by regular expression, or of a JSON pointer.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// A detector class (`email`, `credit_card`, ...) whose matches are replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// A regular expression whose matches are replaced.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// A JSON pointer into the decision input whose text is replaced whole.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    /// The replacement text; default `[REDACTED:<class>]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
    /// How a detector class's matches are replaced; default `mask`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<RedactMode>,
}

/// How a redacted match is replaced.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RedactMode {
    /// The replacement (default `[REDACTED:<class>]`).
    Mask,
    /// All but the last four characters starred: `****1234`.
    Partial,
    /// A keyed hash of the value, stable per team: `[EMAIL:3f9a0c1d2b4e5f60]`; needs
    /// `redaction.hash_key_file` in the gateway's configuration.
    Hash,
    /// A placeholder numbered within the request (`[EMAIL_1]`; the same value gets the
    /// same placeholder), restored to the value in the answer the caller receives: the
    /// model never sees the value, the caller does not lose it.
    Tokenize,
}

/// A route override.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// A model alias to use instead of the requested one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// A specific deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// A provider to prefer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
}

/// A masking instruction for the audit log.
#[derive(
    Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Mask {
    /// JSON pointer into the decision input (e.g. `/content/messages`).
    pub pointer: String,
    /// A replacement value; the field is removed when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replacement: Option<String>,
}

/// A rate limit imposed by policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// Requests per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u64>,
    /// Tokens per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
}

/// Time spent deciding, in microseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Timing {
    /// Rego evaluation.
    pub rego_us: f64,
    /// Cedar authorisation.
    pub cedar_us: f64,
    /// The whole decision, including input conversion and combination.
    pub total_us: f64,
}
