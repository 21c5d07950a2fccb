//! Sluice's pure policy core.
//!
//! A [`Bundle`] is read from a policy directory (the only IO here), compiled into
//! [`Policies`] — Rego through regorus, Cedar through cedar-policy, both validated before
//! anything becomes active — and every [`DecisionInput`] is decided into a [`Decision`].
//! The engine never panics on any input: problems are [`Diagnostic`]s at load time and
//! reasons at decision time.

pub mod bundle;
pub mod cedar;
pub mod conformance;
pub mod decision;
pub mod diagnostic;
pub mod input;
pub mod inspect;
pub mod policies;
pub mod rego;
pub mod schema;
pub mod testing;

#[cfg(test)]
mod test_support;

pub use bundle::{Bundle, Manifest};
pub use decision::{Backend, Decision, Effect, Obligations, Reason};
pub use diagnostic::{BundleError, Diagnostic};
pub use input::{DecisionInput, Surface};
pub use policies::Policies;
