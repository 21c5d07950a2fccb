//! A compiled, validated bundle: the immutable snapshot every decision is made against.
//!
//! Combination (deny overrides):
//! 1. any Rego `deny` or Cedar `forbid` → deny;
//! 2. any evaluation error on a surface that fails closed (the default) → deny;
//! 3. else any Rego `allow` or Cedar `permit` → allow;
//! 4. else the surface default from the manifest (deny unless configured).

use std::time::Instant;

use crate::bundle::{Bundle, DefaultEffect, OnError, Settings};
use crate::cedar::{CedarBackend, CedarOutcome};
use crate::decision::{Backend, DECISION_VERSION, Decision, Effect, Obligations, Reason, Timing};
use crate::diagnostic::BundleError;
use crate::input::DecisionInput;
use crate::rego::{RegoBackend, RegoOutcome};

/// Everything needed to decide, compiled from one bundle.
#[derive(Debug)]
pub struct Policies {
    revision: String,
    settings: Settings,
    rego: Option<RegoBackend>,
    cedar: Option<CedarBackend>,
}

impl Policies {
    /// Compiles and validates every policy of the bundle; nothing is returned unless all of
    /// it is valid.
    pub fn compile(bundle: &Bundle, revision: String) -> Result<Policies, BundleError> {
        let mut diagnostics = Vec::new();
        let rego = match RegoBackend::compile(bundle) {
            Ok(rego) => rego,
            Err(mut d) => {
                diagnostics.append(&mut d);
                None
            }
        };
        let cedar = match CedarBackend::compile(bundle) {
            Ok(cedar) => cedar,
            Err(mut d) => {
                diagnostics.append(&mut d);
                None
            }
        };
        if !diagnostics.is_empty() {
            return Err(BundleError { diagnostics });
        }
        Ok(Policies {
            revision,
            settings: bundle.manifest.sluice.clone(),
            rego,
            cedar,
        })
    }

    /// The revision this snapshot was compiled from.
    pub fn revision(&self) -> &str {
        &self.revision
    }

    /// The Sluice settings of the bundle's manifest.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The Rego backend, if the bundle has Rego policies.
    pub fn rego(&self) -> Option<&RegoBackend> {
        self.rego.as_ref()
    }

    /// The Cedar backend, if the bundle has Cedar policies.
    pub fn cedar(&self) -> Option<&CedarBackend> {
        self.cedar.as_ref()
    }

    /// Decides `input` until the Rego VM's check against the interpreter is over (the first
    /// [`CHECKED_DECISIONS`](crate::rego::CHECKED_DECISIONS) decisions of a bundle served by
    /// the VM, each costing both evaluations), so that what is timed next is what a served
    /// decision costs; how many decisions that took (none when nothing is checked).
    pub fn finish_vm_check(&self, input: &DecisionInput) -> u32 {
        let mut made = 0;
        while self.rego().is_some_and(RegoBackend::checking) {
            self.evaluate(input);
            made += 1;
        }
        made
    }

    /// Decides one input. Never fails: errors become reasons and, unless the bundle says
    /// otherwise for the surface, a deny.
    pub fn evaluate(&self, input: &DecisionInput) -> Decision {
        let started = Instant::now();
        let mut rego_us = 0.0;
        let rego = self.rego.as_ref().map(|backend| {
            let rego_started = Instant::now();
            let outcome = match to_rego_value(input) {
                Ok(value) => backend.evaluate(value),
                Err(e) => Err(e),
            };
            rego_us = micros(rego_started);
            outcome.unwrap_or_else(|message| RegoOutcome {
                errors: vec![Reason {
                    backend: Backend::Rego,
                    effect: Effect::Error,
                    file: None,
                    rule: crate::rego::ENTRYPOINT.to_string(),
                    message: format!("Rego evaluation failed: {message}"),
                }],
                ..RegoOutcome::default()
            })
        });
        let mut cedar_us = 0.0;
        let cedar = self.cedar.as_ref().map(|backend| {
            let cedar_started = Instant::now();
            let outcome = backend.evaluate(input);
            cedar_us = micros(cedar_started);
            outcome
        });
        let mut decision = combine(input, &self.settings, rego, cedar);
        decision.revision = self.revision.clone();
        decision.timing = Timing {
            rego_us,
            cedar_us,
            total_us: micros(started),
        };
        decision
    }
}

fn micros(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1_000_000.0
}

/// The input as a Rego value.
pub fn to_rego_value(input: &DecisionInput) -> Result<regorus::Value, String> {
    crate::rego::to_value(input).map_err(|e| format!("cannot convert input: {e}"))
}

/// Combines the backends' outcomes (see the module documentation).
fn combine(
    input: &DecisionInput,
    settings: &Settings,
    rego: Option<RegoOutcome>,
    cedar: Option<CedarOutcome>,
) -> Decision {
    let rego = rego.unwrap_or_default();
    let cedar = cedar.unwrap_or_default();
    let surface = input.surface;

    let mut denies: Vec<Reason> = rego.denies;
    denies.extend(cedar.forbids);
    let mut errors: Vec<Reason> = rego.errors;
    errors.extend(cedar.errors);
    let mut allows: Vec<Reason> = rego.allows;
    allows.extend(cedar.permits);

    let fail_closed = settings.on_error_for(surface) == OnError::Deny;
    let allow;
    let mut reasons = Vec::new();
    if !denies.is_empty() {
        allow = false;
        reasons.extend(denies);
        reasons.extend(errors);
    } else if !errors.is_empty() && fail_closed {
        allow = false;
        reasons.extend(errors);
    } else if !allows.is_empty() {
        allow = true;
        reasons.extend(allows);
        reasons.extend(errors);
    } else {
        let default = settings.default_for(surface);
        allow = default == DefaultEffect::Allow;
        reasons.extend(errors);
        reasons.push(Reason {
            backend: Backend::Engine,
            effect: Effect::Default,
            file: None,
            rule: format!("defaults.{surface}"),
            message: format!(
                "no policy allowed or denied; the default for surface `{surface}` is {}",
                if allow { "allow" } else { "deny" }
            ),
        });
    }
    reasons.extend(rego.warns);
    let obligations = if allow {
        rego.obligations
    } else {
        // What is logged about a denied request is still governed by the policies.
        Obligations {
            mask: rego.obligations.mask,
            log_text: rego.obligations.log_text,
            flags: rego.obligations.flags,
            ..Obligations::default()
        }
    };
    Decision {
        version: DECISION_VERSION.to_string(),
        id: input.id.clone(),
        surface,
        allow,
        reasons,
        obligations,
        revision: String::new(),
        timing: Timing::default(),
    }
}

#[cfg(test)]
mod tests;
