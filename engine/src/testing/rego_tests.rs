//! Rego tests: every rule named `test_*` in every package evaluates to `true` to pass;
//! `todo_*` rules are reported as skipped, as `opa test` does.

use std::collections::BTreeSet;
use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use regorus::Value;
use regorus::utils::limits::ExecutionTimerConfig;

use super::{Coverage, FileCoverage, Location, Outcome, TestOptions, TestResult, selected};
use crate::bundle::Bundle;
use crate::diagnostic::{BundleError, Diagnostic};
use crate::rego::{ENTRYPOINT_FILE, LoadOptions, load_engine};

/// A test rule found in a module.
struct Found {
    file: String,
    package: Vec<String>,
    name: String,
    row: u32,
    col: u32,
}

pub(super) fn run(
    bundle: &Bundle,
    options: &TestOptions,
) -> Result<(Vec<TestResult>, Option<Coverage>), BundleError> {
    if bundle.rego.is_empty() && bundle.rego_tests.is_empty() {
        return Ok((Vec::new(), None));
    }
    let loaded = load_engine(
        bundle,
        LoadOptions {
            with_tests: true,
            coverage: options.coverage,
        },
    )
    .map_err(|diagnostics| BundleError { diagnostics })?;
    let mut engine = loaded.engine;
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: Duration::from_millis(options.timeout_ms.max(1)),
        check_interval: NonZeroU32::MIN,
    });
    let components = engine
        .get_policy_package_components()
        .map_err(|e| BundleError::one(Diagnostic::file(ENTRYPOINT_FILE, e.to_string())))?;

    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    for file in bundle.rego.iter().chain(&bundle.rego_tests) {
        let Some(module) = components.iter().find(|m| m.source_file == file.path) else {
            continue;
        };
        for (row, line) in (1u32..).zip(file.text.lines()) {
            let trimmed = line.trim_start();
            let indent = line.len() - trimmed.len();
            let name: String = trimmed
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !(name.starts_with("test_") || name.starts_with("todo_")) {
                continue;
            }
            // A name at a line start may still be inside a comment or string: confirm
            // with the parser that the module declares a rule of that name.
            if !engine
                .has_declared_rule_rooted_at(&file.path, &name)
                .unwrap_or(false)
            {
                continue;
            }
            if !seen.insert((module.components.clone(), name.clone())) {
                continue; // a rule with several bodies is one test
            }
            found.push(Found {
                file: file.path.clone(),
                package: module.components.clone(),
                name,
                row,
                col: u32::try_from(indent + 1).unwrap_or(1),
            });
        }
    }

    let mut results = Vec::new();
    engine.set_input(Value::Undefined);
    for test in found {
        let package = format!("data.{}", test.package.join("."));
        let full = format!("{package}.{}", test.name);
        if !selected(options, &full) {
            continue;
        }
        let location = Location {
            file: test.file.clone(),
            row: test.row,
            col: test.col,
        };
        if test.name.starts_with("todo_") {
            results.push(TestResult {
                language: "rego",
                location,
                package,
                name: test.name,
                outcome: Outcome::Skip,
                message: None,
                duration: 0,
                output: Vec::new(),
            });
            continue;
        }
        let started = Instant::now();
        let evaluated = engine.eval_rule(crate::rego::rule_ref(&test.package, &test.name));
        let duration = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let output = engine.take_prints().unwrap_or_default();
        let (outcome, message) = match evaluated {
            Ok(Value::Bool(true)) => (Outcome::Pass, None),
            Ok(Value::Undefined) => (Outcome::Fail, Some("test is undefined".to_string())),
            Ok(other) => (
                Outcome::Fail,
                Some(format!(
                    "test evaluated to `{}`",
                    other.to_json_str().unwrap_or_default()
                )),
            ),
            Err(e) => (Outcome::Error, Some(first_line(&e.to_string()))),
        };
        results.push(TestResult {
            language: "rego",
            location,
            package,
            name: test.name,
            outcome,
            message,
            duration,
            output,
        });
    }

    let coverage = if options.coverage {
        let report = engine
            .get_coverage_report()
            .map_err(|e| BundleError::one(Diagnostic::file(ENTRYPOINT_FILE, e.to_string())))?;
        let test_files: BTreeSet<&str> =
            bundle.rego_tests.iter().map(|f| f.path.as_str()).collect();
        let mut files = Vec::new();
        let (mut covered, mut total) = (0usize, 0usize);
        for file in report.files {
            if test_files.contains(file.path.as_str()) || file.path == ENTRYPOINT_FILE {
                continue;
            }
            let c = file.covered.len();
            let n = c + file.not_covered.len();
            covered += c;
            total += n;
            files.push(FileCoverage {
                coverage: percent(c, n),
                file: file.path,
                covered: file.covered.into_iter().collect(),
                not_covered: file.not_covered.into_iter().collect(),
            });
        }
        // regorus reports only modules it evaluated; a policy file no test reaches is
        // entirely uncovered, not absent.
        for file in &bundle.rego {
            if files.iter().any(|f| f.file == file.path) {
                continue;
            }
            let not_covered: Vec<u32> = (1u32..)
                .zip(file.text.lines())
                .filter(|(_, line)| {
                    let line = line.trim();
                    !(line.is_empty()
                        || line.starts_with('#')
                        || line.starts_with("package ")
                        || line.starts_with("import ")
                        || line == "}")
                })
                .map(|(row, _)| row)
                .collect();
            total += not_covered.len();
            files.push(FileCoverage {
                file: file.path.clone(),
                covered: Vec::new(),
                coverage: percent(0, not_covered.len()),
                not_covered,
            });
        }
        files.sort_by(|a, b| a.file.cmp(&b.file));
        Some(Coverage {
            files,
            coverage: percent(covered, total),
        })
    } else {
        None
    };
    Ok((results, coverage))
}

fn percent(part: usize, total: usize) -> f64 {
    if total == 0 {
        100.0
    } else {
        part as f64 * 100.0 / total as f64
    }
}

fn first_line(message: &str) -> String {
    message.lines().next().unwrap_or(message).trim().to_string()
}
