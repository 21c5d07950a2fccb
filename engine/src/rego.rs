//! The Rego backend (regorus).
//!
//! Policies extend partial rules in packages under the bundle roots (`deny contains msg if
//! ...`, `allow if ...`, `redact contains "email" if ...`, `route := {...} if ...`). At load
//! time Sluice finds which packages declare which of these rules and generates the one
//! entrypoint, `data.sluice.decision`: an object keyed by package path holding each
//! package's rule values. One evaluation of that rule yields everything, and every deny is
//! attributed to its package and file. The rules used are plain Rego v1, so the same
//! policies run unchanged under OPA.

mod outcome;
mod to_value;
mod vm;

pub use to_value::to_value;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::num::NonZeroU32;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use regorus::utils::limits::ExecutionTimerConfig;
use regorus::{Engine, Value};

pub use outcome::RegoOutcome;

use crate::bundle::{Bundle, RegoEvaluator, SourceFile};
use crate::diagnostic::Diagnostic;

/// The documented entrypoint every bundle gets.
pub const ENTRYPOINT: &str = "data.sluice.decision";

/// Path label of the generated entrypoint module.
pub const ENTRYPOINT_FILE: &str = "<sluice entrypoint>";

/// The rules Sluice reads from every package under the roots.
pub const DECISION_RULES: [&str; 10] = [
    "deny", "allow", "warn", "redact", "route", "headers", "mask", "throttle", "log_text", "flag",
];

/// A package under the roots and the files that declare each decision rule in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageRules {
    /// `data.`-prefixed package path, e.g. `data.sluice.models`.
    pub path: String,
    /// Rule name → files declaring it.
    pub rules: BTreeMap<&'static str, Vec<String>>,
}

/// A compiled Rego policy set, shareable across threads.
#[derive(Debug)]
pub struct RegoBackend {
    /// The prepared interpreter: serves when the VM cannot compile the bundle, and is the
    /// reference the VM is tested against.
    engine: Engine,
    /// The VM program, when the bundle selects the VM (`rego_evaluator: vm`) and compiles
    /// to it; decisions are then served by it.
    vm: Option<vm::VmPool>,
    /// Why a bundle that selects the VM does not compile to it.
    vm_unavailable: Option<String>,
    /// Decisions so far that the interpreter checked the VM on ([`CHECKED_DECISIONS`]).
    checked: AtomicU32,
    /// The first decision the VM and the interpreter disagreed on: from then on the
    /// interpreter serves.
    divergence: OnceLock<String>,
    packages: Vec<PackageRules>,
    timeout: Duration,
}

/// The first decisions of every snapshot served by the VM are also evaluated by the
/// interpreter, the reference: the interpreter's answer is served, and a disagreement
/// hands the snapshot to the interpreter for good. Real traffic thus checks that the VM
/// reads the bundle as the interpreter does, at the cost of these decisions only.
pub const CHECKED_DECISIONS: u32 = 256;

/// Options for building an engine from a bundle.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// Also load `*_test.rego` modules.
    pub with_tests: bool,
    /// Collect coverage.
    pub coverage: bool,
}

/// A regorus engine with the bundle's modules, data and the generated entrypoint loaded.
#[derive(Debug)]
pub struct LoadedEngine {
    /// The engine, not yet evaluated.
    pub engine: Engine,
    /// Packages contributing to the decision.
    pub packages: Vec<PackageRules>,
}

/// Loads the bundle's Rego into a fresh engine; collects every diagnostic.
pub fn load_engine(bundle: &Bundle, options: LoadOptions) -> Result<LoadedEngine, Vec<Diagnostic>> {
    let mut engine = Engine::new();
    engine.set_gather_prints(true);
    engine.set_strict_builtin_errors(bundle.manifest.sluice.rego_strict_builtin_errors);
    if options.coverage {
        engine.set_enable_coverage(true);
    }
    let mut diagnostics = Vec::new();
    let modules: Vec<&SourceFile> = if options.with_tests {
        bundle.rego.iter().chain(bundle.rego_tests.iter()).collect()
    } else {
        bundle.rego.iter().collect()
    };
    for file in &modules {
        if let Err(e) = engine.add_policy(file.path.clone(), file.text.clone()) {
            diagnostics.push(regorus_diagnostic(&file.path, &e.to_string()));
        }
    }
    for data in &bundle.data {
        let mut value = data.value.clone();
        for component in data.mount.iter().rev() {
            let mut map = serde_json::Map::new();
            map.insert(component.clone(), value);
            value = serde_json::Value::Object(map);
        }
        if let Err(e) = engine.add_data(Value::from(value)) {
            diagnostics.push(Diagnostic::file(
                data.file.path.clone(),
                format!("cannot merge data document: {e}"),
            ));
        }
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }

    let components = engine.get_policy_package_components().map_err(|e| {
        vec![Diagnostic::file(
            ENTRYPOINT_FILE,
            format!("cannot read packages: {e}"),
        )]
    })?;
    let test_files: Vec<&str> = bundle.rego_tests.iter().map(|f| f.path.as_str()).collect();
    let mut packages: BTreeMap<Vec<String>, PackageRules> = BTreeMap::new();
    for module in &components {
        if test_files.contains(&module.source_file.as_str()) {
            continue;
        }
        let path = format!("data.{}", module.components.join("."));
        if !bundle.manifest.owns_package(&path) {
            diagnostics.push(Diagnostic::file(
                module.source_file.clone(),
                format!(
                    "package `{}` is outside the bundle roots {:?}",
                    module.components.join("."),
                    bundle.manifest.roots
                ),
            ));
            continue;
        }
        if module.components == ["sluice"] {
            match engine.has_declared_rule_rooted_at(&module.source_file, "decision") {
                Ok(true) => diagnostics.push(Diagnostic::file(
                    module.source_file.clone(),
                    "rule `decision` in package `sluice` is reserved for the entrypoint Sluice generates",
                )),
                Ok(false) => {}
                Err(e) => diagnostics.push(Diagnostic::file(module.source_file.clone(), e.to_string())),
            }
        }
        let entry = packages
            .entry(module.components.clone())
            .or_insert_with(|| PackageRules {
                path: path.clone(),
                rules: BTreeMap::new(),
            });
        for rule in DECISION_RULES {
            match engine.has_declared_rule_rooted_at(&module.source_file, rule) {
                Ok(true) => entry
                    .rules
                    .entry(rule)
                    .or_default()
                    .push(module.source_file.clone()),
                Ok(false) => {}
                Err(e) => {
                    diagnostics.push(Diagnostic::file(module.source_file.clone(), e.to_string()))
                }
            }
        }
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    let packages: Vec<PackageRules> = packages
        .into_values()
        .filter(|p| !p.rules.is_empty())
        .collect();
    let entrypoint = entrypoint_module(&packages, &components_by_path(&components));
    if let Err(e) = engine.add_policy(ENTRYPOINT_FILE.to_string(), entrypoint) {
        return Err(vec![Diagnostic::file(
            ENTRYPOINT_FILE,
            format!("generated entrypoint does not compile: {e}"),
        )]);
    }
    Ok(LoadedEngine { engine, packages })
}

fn components_by_path(
    components: &[regorus::PolicyPackageComponents],
) -> BTreeMap<String, Vec<String>> {
    components
        .iter()
        .map(|m| {
            (
                format!("data.{}", m.components.join(".")),
                m.components.clone(),
            )
        })
        .collect()
}

/// A Rego reference to `data.<components>.<rule>`, bracketing components that are not
/// identifiers, so it works for any package path.
pub(crate) fn rule_ref(components: &[String], rule: &str) -> String {
    let mut out = String::from("data");
    for component in components {
        let is_identifier = component
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && component
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_');
        if is_identifier {
            let _ = write!(out, ".{component}");
        } else {
            let quoted = serde_json::to_string(component).unwrap_or_else(|_| "\"\"".to_string());
            let _ = write!(out, "[{quoted}]");
        }
    }
    let _ = write!(out, ".{rule}");
    out
}

/// The generated `package sluice` module defining `decision`.
fn entrypoint_module(
    packages: &[PackageRules],
    components: &BTreeMap<String, Vec<String>>,
) -> String {
    let mut out = String::from("package sluice\n\nimport rego.v1\n\n");
    let mut entries = Vec::new();
    for (index, package) in packages.iter().enumerate() {
        let Some(parts) = components.get(&package.path) else {
            continue;
        };
        let mut fields = Vec::new();
        for rule in package.rules.keys() {
            let local = format!("__sluice_{index}_{rule}");
            let default = match *rule {
                "allow" | "log_text" => "false",
                "route" | "throttle" => "null",
                "headers" => "{}",
                _ => "set()",
            };
            let _ = writeln!(out, "default {local} := {default}\n");
            let _ = writeln!(out, "{local} := {}\n", rule_ref(parts, rule));
            fields.push(format!("{:?}: {local}", rule));
        }
        let key = serde_json::to_string(&package.path).unwrap_or_default();
        entries.push(format!("{key}: {{{}}}", fields.join(", ")));
    }
    let _ = writeln!(out, "decision := {{{}}}", entries.join(", "));
    out
}

/// Reads a regorus error into a diagnostic. regorus renders positioned errors as
/// `--> file:line:col`, the source line with a caret, then `error: message`.
pub fn regorus_diagnostic(file: &str, error: &str) -> Diagnostic {
    let position = error.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix("--> ")?;
        let mut parts = rest.rsplitn(3, ':');
        let column = parts.next()?.trim().parse::<u32>().ok()?;
        let line = parts.next()?.trim().parse::<u32>().ok()?;
        Some((line, column))
    });
    let message = error
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("error:").map(str::trim))
        .or_else(|| error.lines().map(str::trim).find(|line| !line.is_empty()))
        .unwrap_or("invalid policy")
        .to_string();
    let (line, column) = position.unwrap_or((0, 0));
    Diagnostic {
        file: file.to_string(),
        line,
        column,
        message,
    }
}

/// The first non-empty line of an error, for reasons (which are one line).
pub(crate) fn one_line(error: &str) -> String {
    let diagnostic = regorus_diagnostic("", error);
    if diagnostic.line > 0 {
        format!(
            "{}:{}: {}",
            diagnostic.line, diagnostic.column, diagnostic.message
        )
    } else {
        diagnostic.message
    }
}

impl RegoBackend {
    /// Compiles the bundle's Rego; `None` when it has no Rego policy.
    pub fn compile(bundle: &Bundle) -> Result<Option<RegoBackend>, Vec<Diagnostic>> {
        if bundle.rego.is_empty() {
            return Ok(None);
        }
        let loaded = load_engine(
            bundle,
            LoadOptions {
                with_tests: false,
                coverage: false,
            },
        )?;
        let mut engine = loaded.engine;
        let timeout = Duration::from_millis(bundle.manifest.sluice.rego_timeout_ms);
        engine.set_execution_timer_config(timer(timeout));
        // Evaluating once prepares the engine (rule indexing, scheduling), so every clone
        // handed to a request starts prepared, and surfaces errors that need no input.
        engine.set_input(Value::new_object());
        if let Err(e) = engine.eval_rule(ENTRYPOINT.to_string()) {
            let message = e.to_string();
            // Errors that depend on the input are for request time; conflicts and the like
            // are load errors.
            if message.contains("conflict") || message.contains("recursion") {
                return Err(vec![Diagnostic::file(ENTRYPOINT_FILE, one_line(&message))]);
            }
        }
        let _ = engine.take_prints();
        let strict = bundle.manifest.sluice.rego_strict_builtin_errors;
        let data = engine.get_data();
        // The VM program is built only for a bundle that selects it: every reload of the
        // others would pay for a program nothing runs.
        let (vm, vm_unavailable) = if bundle.manifest.sluice.rego_evaluator == RegoEvaluator::Vm {
            match engine
                .compile_with_entrypoint(&ENTRYPOINT.into())
                .map_err(|e| one_line(&e.to_string()))
                .and_then(|compiled| vm::VmPool::compile(&compiled, data, strict, timeout))
            {
                Ok(pool) => (Some(pool), None),
                Err(why) => (None, Some(why)),
            }
        } else {
            (None, None)
        };
        Ok(Some(RegoBackend {
            engine,
            vm,
            vm_unavailable,
            checked: AtomicU32::new(0),
            divergence: OnceLock::new(),
            packages: loaded.packages,
            timeout,
        }))
    }

    /// The packages contributing to the decision.
    pub fn packages(&self) -> &[PackageRules] {
        &self.packages
    }

    /// The per-evaluation time limit.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Why a bundle that selects the VM does not compile to it; the interpreter then serves.
    pub fn vm_unavailable(&self) -> Option<&str> {
        self.vm_unavailable.as_deref()
    }

    /// Whether decisions are served by the VM.
    pub fn serves_with_vm(&self) -> bool {
        self.vm.is_some() && self.divergence.get().is_none()
    }

    /// Whether decisions are still checked against the interpreter (the first
    /// [`CHECKED_DECISIONS`] of a snapshot the VM serves): each then costs both evaluations,
    /// several times what a decision costs once the VM serves alone.
    pub fn checking(&self) -> bool {
        self.serves_with_vm() && self.checked.load(Ordering::Relaxed) < CHECKED_DECISIONS
    }

    /// The first decision on which the VM disagreed with the interpreter, which now serves.
    pub fn vm_divergence(&self) -> Option<&str> {
        self.divergence.get().map(String::as_str)
    }

    /// Evaluates the entrypoint for one input.
    pub fn evaluate(&self, input: Value) -> Result<RegoOutcome, String> {
        let value = match &self.vm {
            Some(vm) if self.divergence.get().is_none() => {
                if self.checked.load(Ordering::Relaxed) >= CHECKED_DECISIONS {
                    vm.evaluate(input)?
                } else {
                    self.checked.fetch_add(1, Ordering::Relaxed);
                    let reference = self.interpret(input.clone());
                    let fast = vm.evaluate(input);
                    // A time or instruction limit hit by one side says nothing of the
                    // bundle: only answers are compared.
                    let limited = |r: &Result<Value, String>| {
                        r.as_ref()
                            .is_err_and(|e| e.to_ascii_lowercase().contains("limit"))
                    };
                    let agree = match (&reference, &fast) {
                        (Ok(a), Ok(b)) => a == b,
                        (Err(_), Err(_)) => true,
                        _ => limited(&reference) || limited(&fast),
                    };
                    if !agree {
                        let said = |r: &Result<Value, String>| match r {
                            Ok(_) => "a decision".to_string(),
                            Err(e) => format!("an error ({e})"),
                        };
                        let _ = self.divergence.set(format!(
                            "the VM gave {} where the interpreter gave {}",
                            said(&fast),
                            said(&reference)
                        ));
                    }
                    reference?
                }
            }
            _ => self.interpret(input)?,
        };
        Ok(RegoOutcome::from_value(&value, &self.packages))
    }

    /// Evaluates the entrypoint with the interpreter, whatever serves.
    pub fn interpret(&self, input: Value) -> Result<Value, String> {
        let mut engine = self.engine.clone();
        engine.set_input(input);
        engine
            .eval_rule(ENTRYPOINT.to_string())
            .map_err(|e| one_line(&e.to_string()))
    }

    /// Mean interpreter time of each decision rule of each package for one input, over
    /// `iterations` evaluations each, most expensive first: where a bundle's time goes.
    /// Each rule is evaluated on its own, so a helper shared by several rules is counted in
    /// each of them.
    pub fn profile_rules(&self, input: &Value, iterations: u32) -> Vec<(String, Duration)> {
        let iterations = iterations.max(1);
        let mut costs = Vec::new();
        for package in &self.packages {
            for rule in package.rules.keys() {
                let path = format!("{}.{rule}", package.path);
                let started = std::time::Instant::now();
                for _ in 0..iterations {
                    let mut engine = self.engine.clone();
                    engine.set_input(input.clone());
                    let _ = engine.eval_rule(path.clone());
                }
                costs.push((path, started.elapsed() / iterations));
            }
        }
        costs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        costs
    }

    /// Evaluates the entrypoint with the VM, when the bundle is served by it.
    pub fn run_vm(&self, input: Value) -> Option<Result<Value, String>> {
        self.vm.as_ref().map(|vm| vm.evaluate(input))
    }
}

/// Work units (statements, loop iterations, VM instructions) between two reads of the clock.
/// Reading it on every unit cost about a tenth of a decision; a unit is small enough that
/// checking every 64th overshoots the limit by microseconds, not milliseconds.
const TIMER_CHECK_INTERVAL: NonZeroU32 = match NonZeroU32::new(64) {
    Some(n) => n,
    None => NonZeroU32::MIN,
};

fn timer(limit: Duration) -> ExecutionTimerConfig {
    ExecutionTimerConfig {
        limit,
        check_interval: TIMER_CHECK_INTERVAL,
    }
}

#[cfg(test)]
mod tests;
