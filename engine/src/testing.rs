//! The policy test runner behind `sluice policy test`: Rego `test_*` rules (as `opa test`
//! runs them) and Cedar test files in the Cedar CLI `run-tests` format.

mod cedar_tests;

pub use cedar_tests::{json_request as cedar_json_request, parse_uid as cedar_uid};
mod rego_tests;

use serde::Serialize;

use crate::bundle::Bundle;
use crate::diagnostic::BundleError;

/// What to run.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// Only tests whose full name (`data.pkg.test_x` or `file.cedartest.json#name`) matches.
    pub run: Option<regex::Regex>,
    /// Collect Rego coverage.
    pub coverage: bool,
    /// Wall-clock limit of one Rego test, in milliseconds.
    pub timeout_ms: u64,
}

/// Where a test is defined.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// File relative to the bundle root.
    pub file: String,
    /// 1-based line.
    pub row: u32,
    /// 1-based column.
    pub col: u32,
}

/// How a test ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It passed.
    Pass,
    /// It evaluated to false or undefined, or the decision differed.
    Fail,
    /// It could not be evaluated.
    Error,
    /// A `todo_` test.
    Skip,
}

/// One test's result. Serialises in `opa test --format json`'s shape (`location`,
/// `package`, `name`, `fail`, `skip`, `error`, `duration`, `output`), plus `language`,
/// `outcome` and `message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestResult {
    /// `rego` or `cedar`.
    pub language: &'static str,
    /// Where the test is defined.
    pub location: Location,
    /// Rego: `data.pkg`; Cedar: the test file.
    pub package: String,
    /// The test's name.
    pub name: String,
    /// How it ended.
    pub outcome: Outcome,
    /// Why it failed or errored.
    pub message: Option<String>,
    /// Duration in nanoseconds.
    pub duration: u64,
    /// What `print` wrote during the test.
    pub output: Vec<String>,
}

#[derive(Serialize)]
struct OpaError<'a> {
    code: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct OpaResult<'a> {
    location: &'a Location,
    package: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    fail: bool,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    skip: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<OpaError<'a>>,
    duration: u64,
    #[serde(skip_serializing_if = "str::is_empty")]
    output: String,
    language: &'static str,
    outcome: Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<&'a str>,
}

impl Serialize for TestResult {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut output = self.output.join("\n");
        if !output.is_empty() {
            output.push('\n');
        }
        OpaResult {
            location: &self.location,
            package: &self.package,
            name: &self.name,
            fail: self.outcome == Outcome::Fail,
            skip: self.outcome == Outcome::Skip,
            error: (self.outcome == Outcome::Error).then(|| OpaError {
                code: "eval_error",
                message: self.message.as_deref().unwrap_or_default(),
            }),
            duration: self.duration,
            output,
            language: self.language,
            outcome: self.outcome,
            message: self.message.as_deref(),
        }
        .serialize(serializer)
    }
}

impl TestResult {
    /// `data.pkg.test_x` or `file#name`, as `--run` matches it.
    pub fn full_name(&self) -> String {
        match self.language {
            "rego" => format!("{}.{}", self.package, self.name),
            _ => format!("{}#{}", self.package, self.name),
        }
    }
}

/// Line coverage of one Rego file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileCoverage {
    /// File relative to the bundle root.
    pub file: String,
    /// Lines evaluated.
    pub covered: Vec<u32>,
    /// Lines not evaluated.
    pub not_covered: Vec<u32>,
    /// Percentage covered.
    pub coverage: f64,
}

/// Coverage of the Rego policies (test files excluded).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Coverage {
    /// Per file.
    pub files: Vec<FileCoverage>,
    /// Over all files.
    pub coverage: f64,
}

/// The whole run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestReport {
    /// Every test, Rego first, in file order.
    pub results: Vec<TestResult>,
    /// Coverage, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,
}

impl TestReport {
    /// Count of results with this outcome.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.results.iter().filter(|r| r.outcome == outcome).count()
    }
}

/// Runs every test of a bundle. A bundle that does not load is an error (exit code 1 in the
/// CLI); failing tests are results.
pub fn run(bundle: &Bundle, options: &TestOptions) -> Result<TestReport, BundleError> {
    let (mut results, coverage) = rego_tests::run(bundle, options)?;
    results.extend(cedar_tests::run(bundle, options)?);
    Ok(TestReport { results, coverage })
}

/// Checks that the test files of a bundle load (Rego test modules parse and compile with the
/// policies; Cedar test files are well-formed), without running them.
pub fn check(bundle: &Bundle) -> Result<(), BundleError> {
    let mut diagnostics = Vec::new();
    if !bundle.rego_tests.is_empty()
        && let Err(mut d) = crate::rego::load_engine(
            bundle,
            crate::rego::LoadOptions {
                with_tests: true,
                coverage: false,
            },
        )
    {
        diagnostics.append(&mut d);
    }
    diagnostics.extend(cedar_tests::check(bundle));
    if diagnostics.is_empty() {
        Ok(())
    } else {
        Err(BundleError { diagnostics })
    }
}

fn selected(options: &TestOptions, full_name: &str) -> bool {
    options.run.as_ref().is_none_or(|re| re.is_match(full_name))
}

#[cfg(test)]
mod tests;
