//! The optional `.manifest`: OPA's bundle manifest, plus Sluice's settings under `sluice`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::input::Surface;

/// The bundle manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// OPA: a revision string; Sluice derives its own from git or the content hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// OPA: the `data` paths this bundle owns; every Rego package must lie under one.
    #[serde(default = "default_roots")]
    pub roots: Vec<String>,
    /// OPA: free-form metadata.
    #[serde(default)]
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// OPA: the Rego version of the bundle; Sluice accepts only 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rego_version: Option<u8>,
    /// Sluice's settings.
    #[serde(default)]
    pub sluice: Settings,
}

impl Default for Manifest {
    fn default() -> Self {
        Manifest {
            revision: None,
            roots: default_roots(),
            metadata: serde_json::Map::new(),
            rego_version: None,
            sluice: Settings::default(),
        }
    }
}

fn default_roots() -> Vec<String> {
    vec!["sluice".to_string()]
}

impl Manifest {
    /// Parses and validates a manifest.
    pub fn parse(text: &str) -> Result<Manifest, serde_json::Error> {
        let manifest: Manifest = serde_json::from_str(text)?;
        if let Some(version) = manifest.rego_version
            && version != 1
        {
            return Err(serde::de::Error::custom(format!(
                "`rego_version` {version} is not supported, Sluice evaluates Rego v1 only"
            )));
        }
        for root in &manifest.roots {
            if root.is_empty() || root.starts_with('/') || root.ends_with('/') {
                return Err(serde::de::Error::custom(format!(
                    "root `{root}` must be a non-empty path like `sluice` or `sluice/models`"
                )));
            }
        }
        Ok(manifest)
    }

    /// Whether a Rego package path (`data.a.b`) lies under one of the roots.
    pub fn owns_package(&self, package: &str) -> bool {
        let path = package.strip_prefix("data.").unwrap_or(package);
        let path: Vec<&str> = path.split('.').collect();
        self.roots.iter().any(|root| {
            let root: Vec<&str> = root.split('/').collect();
            path.len() >= root.len() && path.iter().zip(&root).all(|(a, b)| a == b)
        })
    }
}

/// What the engine does where no policy allowed or denied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultEffect {
    /// Let it through.
    Allow,
    /// Refuse it.
    Deny,
}

/// What the engine does when evaluation fails.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail closed: the decision is a deny and the error is a reason.
    #[default]
    Deny,
    /// Fail open: the error is a reason but does not deny.
    Allow,
}

/// Sluice's settings in the manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Effect per surface where no policy decided; a surface not listed defaults to deny.
    #[serde(default)]
    pub defaults: BTreeMap<Surface, DefaultEffect>,
    /// What an evaluation error does, per surface; a surface not listed fails closed.
    #[serde(default)]
    pub on_error: BTreeMap<Surface, OnError>,
    /// Wall-clock limit of one Rego evaluation, in milliseconds. It bounds a policy that
    /// explodes; set it well above the normal evaluation time (microseconds), since a
    /// loaded machine stretches wall-clock time and a timeout fails closed.
    #[serde(default = "default_rego_timeout_ms")]
    pub rego_timeout_ms: u64,
    /// Whether a Rego builtin error (`sprintf` with a wrong verb, division by zero, a bad
    /// `to_number`) is an evaluation error, which fails closed and names the error in the
    /// reasons. OPA's default (`false`) makes the expression undefined instead, so a `deny`
    /// rule that hits such an error silently does not fire.
    #[serde(default = "default_true")]
    pub rego_strict_builtin_errors: bool,
    /// Which regorus evaluator serves decisions.
    #[serde(default)]
    pub rego_evaluator: RegoEvaluator,
}

/// The Rego evaluator that serves decisions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegoEvaluator {
    /// The tree-walking interpreter: OPA's semantics, errors and conflicts reported.
    #[default]
    Interpreter,
    /// regorus' register VM: several times faster. With `rego_strict_builtin_errors` an
    /// error inside a rule body, or a conflict between complete rules, fails the evaluation
    /// as in the interpreter (regorus is patched for it: `vendor/README.md`).
    Vm,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            defaults: BTreeMap::new(),
            on_error: BTreeMap::new(),
            rego_timeout_ms: default_rego_timeout_ms(),
            rego_strict_builtin_errors: true,
            rego_evaluator: RegoEvaluator::Interpreter,
        }
    }
}

fn default_rego_timeout_ms() -> u64 {
    250
}

fn default_true() -> bool {
    true
}

impl Settings {
    /// The effect where no policy decided.
    pub fn default_for(&self, surface: Surface) -> DefaultEffect {
        self.defaults
            .get(&surface)
            .copied()
            .unwrap_or(DefaultEffect::Deny)
    }

    /// What an evaluation error does.
    pub fn on_error_for(&self, surface: Surface) -> OnError {
        self.on_error.get(&surface).copied().unwrap_or_default()
    }
}
