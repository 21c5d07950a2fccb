//! `sluice policy ...`: test, eval, check and conformance for a policy directory.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use sluice_engine::testing::{Outcome, TestOptions, TestReport};
use sluice_engine::{Bundle, BundleError, DecisionInput, Policies, Surface};

/// Exit code of a load error (as `opa test`).
const EXIT_LOAD_ERROR: u8 = 1;
/// Exit code of failing tests (as `opa test`).
const EXIT_TEST_FAILURE: u8 = 2;

/// `sluice policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Run the Rego `test_*` rules and Cedar `*.cedartest.json` files of a policy directory.
    Test(TestArgs),
    /// Decide one decision input and print the full decision as JSON.
    Eval(EvalArgs),
    /// Parse and validate every file of a policy directory.
    Check(DirArg),
    /// Run an external conformance suite through Sluice's own loading path.
    #[command(subcommand)]
    Conformance(ConformanceCommand),
    /// Write the default policy repo (with its tests) into a directory, to start your own.
    Init(InitArgs),
    /// Time one decision input against a policy directory: the whole decision, each backend,
    /// and every Rego decision rule, most expensive first.
    Profile(ProfileArgs),
}

/// Arguments of `sluice policy profile`.
#[derive(Debug, Args)]
pub struct ProfileArgs {
    /// A decision input (JSON); `-` reads standard input.
    #[arg(long)]
    input: PathBuf,
    /// Evaluations per measurement.
    #[arg(long, default_value_t = 1000)]
    iterations: u32,
    /// The policy directory.
    #[arg(default_value = "policies")]
    dir: PathBuf,
}

/// Arguments of `sluice policy init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The directory to write into (created if missing).
    #[arg(default_value = "policies")]
    dir: PathBuf,
    /// Overwrite files that already exist.
    #[arg(long)]
    force: bool,
}

/// A policy directory argument.
#[derive(Debug, Args)]
pub struct DirArg {
    /// The policy directory.
    #[arg(default_value = "policies")]
    dir: PathBuf,
}

/// Output formats of `sluice policy test`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// Human-readable.
    Pretty,
    /// OPA's JSON result shape: an array of test results.
    Json,
}

/// Arguments of `sluice policy test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// The policy directory.
    #[arg(default_value = "policies")]
    dir: PathBuf,
    /// Only run tests whose name (`data.pkg.test_x`, `file.cedartest.json#name`) matches.
    #[arg(long)]
    run: Option<String>,
    /// Show every test and its `print` output, not only failures.
    #[arg(short, long)]
    verbose: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "pretty")]
    format: Format,
    /// Report Rego line coverage (test files excluded).
    #[arg(long)]
    coverage: bool,
    /// With --coverage: fail when coverage is below this percentage.
    #[arg(long, default_value_t = 0.0)]
    threshold: f64,
    /// Time limit of one Rego test, in milliseconds.
    #[arg(long, default_value_t = 5000)]
    timeout_ms: u64,
}

/// Arguments of `sluice policy eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// A decision input (JSON) to decide; `-` reads standard input.
    #[arg(long)]
    input: PathBuf,
    /// Override the input's surface.
    #[arg(long)]
    surface: Option<Surface>,
    /// The policy directory.
    #[arg(default_value = "policies")]
    dir: PathBuf,
}

/// Conformance suites.
#[derive(Debug, Subcommand)]
pub enum ConformanceCommand {
    /// Cedar's integration-test format: every `*.json` test file under PATH (a directory or
    /// one file); paths inside the files are relative to the suite root.
    Cedar(CedarConformanceArgs),
}

/// Arguments of `sluice policy conformance cedar`.
#[derive(Debug, Args)]
pub struct CedarConformanceArgs {
    /// A test file or a directory of test files.
    path: PathBuf,
    /// The suite root that paths inside test files are relative to (default: the parent of
    /// the directory holding `tests/` or `corpus-tests/`, else PATH itself).
    #[arg(long)]
    root: Option<PathBuf>,
    /// Print every failing test with its disagreement.
    #[arg(short, long)]
    verbose: bool,
}

/// Runs a `sluice policy` subcommand.
pub fn main(command: PolicyCommand) -> ExitCode {
    match command {
        PolicyCommand::Test(args) => test(&args),
        PolicyCommand::Eval(args) => eval(&args),
        PolicyCommand::Check(args) => check(&args.dir),
        PolicyCommand::Conformance(ConformanceCommand::Cedar(args)) => cedar_conformance(&args),
        PolicyCommand::Init(args) => init(&args),
        PolicyCommand::Profile(args) => profile(&args),
    }
}

fn init(args: &InitArgs) -> ExitCode {
    match crate::default_policies::write_to(&args.dir, args.force) {
        Ok(count) => {
            println!(
                "wrote the default policy repo ({count} files) to {}; run `sluice policy test {}`",
                args.dir.display(),
                args.dir.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(EXIT_LOAD_ERROR)
        }
    }
}

fn print_bundle_error(error: &BundleError) {
    let mut stderr = std::io::stderr().lock();
    for diagnostic in &error.diagnostics {
        let _ = writeln!(stderr, "error: {diagnostic}");
    }
}

fn load(dir: &Path) -> Result<Bundle, ExitCode> {
    Bundle::load(dir).map_err(|e| {
        print_bundle_error(&e);
        ExitCode::from(EXIT_LOAD_ERROR)
    })
}

fn compile(dir: &Path) -> Result<Policies, ExitCode> {
    let bundle = load(dir)?;
    let revision = crate::revision::describe(dir, &bundle.content_hash).id;
    Policies::compile(&bundle, revision).map_err(|e| {
        print_bundle_error(&e);
        ExitCode::from(EXIT_LOAD_ERROR)
    })
}

fn check(dir: &Path) -> ExitCode {
    let bundle = match load(dir) {
        Ok(bundle) => bundle,
        Err(code) => return code,
    };
    let mut diagnostics = Vec::new();
    match Policies::compile(&bundle, String::new()) {
        Ok(policies) => warn_policies_without_id(&bundle, &policies),
        Err(e) => diagnostics.extend(e.diagnostics),
    }
    // Test files are part of the repo too: they must load, even though they don't serve.
    if let Err(e) = sluice_engine::testing::check(&bundle) {
        for d in e.diagnostics {
            if !diagnostics.contains(&d) {
                diagnostics.push(d);
            }
        }
    }
    if bundle.is_empty() {
        diagnostics.push(sluice_engine::Diagnostic::file(
            dir.display().to_string(),
            "the directory has no policy file (`*.rego` or `*.cedar`); `sluice serve` refuses it",
        ));
    }
    if diagnostics.is_empty() {
        println!(
            "ok: {} Rego, {} Rego test, {} Cedar, {} schema, {} entity, {} Cedar test, {} data file(s)",
            bundle.rego.len(),
            bundle.rego_tests.len(),
            bundle.cedar.len(),
            bundle.cedar_schemas.len(),
            bundle.cedar_entities.len(),
            bundle.cedar_tests.len(),
            bundle.data.len()
        );
        ExitCode::SUCCESS
    } else {
        print_bundle_error(&BundleError { diagnostics });
        ExitCode::from(EXIT_LOAD_ERROR)
    }
}

/// A Cedar policy without `@id` gets an id from its position (`file#policyN`), which
/// changes when policies are reordered: reasons and audit queries would shift under it.
fn warn_policies_without_id(bundle: &Bundle, policies: &Policies) {
    let Some(cedar) = policies.cedar() else {
        return;
    };
    for (file, id, offset) in cedar.policies_without_id() {
        let text = bundle
            .cedar
            .iter()
            .find(|f| f.path == file)
            .map(|f| f.text.as_str())
            .unwrap_or_default();
        let (line, column) = sluice_engine::diagnostic::line_column(text, offset);
        eprintln!(
            "warning: {file}:{line}:{column}: Cedar policy has no @id(\"...\"); its reason id `{id}` changes when policies are reordered"
        );
    }
}

fn eval(args: &EvalArgs) -> ExitCode {
    let mut input = match read_input(&args.input) {
        Ok(input) => input,
        Err(code) => return code,
    };
    if let Some(surface) = args.surface {
        input.surface = surface;
    }
    let policies = match compile(&args.dir) {
        Ok(policies) => policies,
        Err(code) => return code,
    };
    let decision = policies.evaluate(&input);
    match serde_json::to_string_pretty(&decision) {
        Ok(json) => {
            println!("{json}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: cannot print decision: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads and checks a decision input from a file or, for `-`, standard input.
fn read_input(path: &Path) -> Result<DecisionInput, ExitCode> {
    let from_stdin = path.as_os_str() == "-";
    let label = if from_stdin {
        "<stdin>".to_string()
    } else {
        path.display().to_string()
    };
    let read = if from_stdin {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    let text = read.map_err(|e| {
        eprintln!("error: {label}: cannot read input: {e}");
        ExitCode::from(EXIT_LOAD_ERROR)
    })?;
    let input: DecisionInput = serde_json::from_str(&text).map_err(|e| {
        eprintln!("error: {label}:{}:{}: {e}", e.line(), e.column());
        ExitCode::from(EXIT_LOAD_ERROR)
    })?;
    if input.version != sluice_engine::input::INPUT_VERSION {
        eprintln!(
            "error: {label}: decision input version `{}` is not supported, expected `{}`",
            input.version,
            sluice_engine::input::INPUT_VERSION
        );
        return Err(ExitCode::from(EXIT_LOAD_ERROR));
    }
    Ok(input)
}

fn profile(args: &ProfileArgs) -> ExitCode {
    let input = match read_input(&args.input) {
        Ok(input) => input,
        Err(code) => return code,
    };
    let policies = match compile(&args.dir) {
        Ok(policies) => policies,
        Err(code) => return code,
    };
    // The decisions that check the VM cost several times a served one and are not what the
    // gateway pays once it runs: they are made before the clock starts.
    let warm_up = policies.finish_vm_check(&input);
    let iterations = args.iterations.max(1);
    let mut totals = Vec::with_capacity(iterations as usize);
    let (mut rego, mut cedar) = (0.0, 0.0);
    for _ in 0..iterations {
        let decision = policies.evaluate(&input);
        totals.push(decision.timing.total_us);
        rego += decision.timing.rego_us;
        cedar += decision.timing.cedar_us;
    }
    totals.sort_by(f64::total_cmp);
    let at = |q: f64| {
        let index = ((totals.len() - 1) as f64 * q).round() as usize;
        totals.get(index).copied().unwrap_or_default()
    };
    let n = f64::from(iterations);
    let checked = if warm_up > 0 {
        format!(", after {warm_up} untimed decisions that checked the VM against the interpreter")
    } else {
        String::new()
    };
    println!(
        "decision: p50 {:.1} µs, p99 {:.1} µs over {iterations} evaluations (mean Rego {:.1} µs, Cedar {:.1} µs{checked})",
        at(0.5),
        at(0.99),
        rego / n,
        cedar / n
    );
    if let Some(backend) = policies.rego() {
        let evaluator = if backend.serves_with_vm() {
            "vm"
        } else {
            "interpreter"
        };
        println!("rego evaluator: {evaluator}; interpreter cost of each decision rule on its own:");
        match sluice_engine::policies::to_rego_value(&input) {
            Ok(value) => {
                for (rule, cost) in backend.profile_rules(&value, iterations) {
                    println!("  {:>9.1} µs  {rule}", cost.as_secs_f64() * 1e6);
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    ExitCode::SUCCESS
}

fn test(args: &TestArgs) -> ExitCode {
    let run = match args.run.as_deref().map(regex::Regex::new).transpose() {
        Ok(run) => run,
        Err(e) => {
            eprintln!("error: --run is not a valid regular expression: {e}");
            return ExitCode::from(EXIT_LOAD_ERROR);
        }
    };
    let bundle = match load(&args.dir) {
        Ok(bundle) => bundle,
        Err(code) => return code,
    };
    // What would not serve fails the run as a load error, as `opa test` fails on a policy
    // that does not compile, even where no test touches it.
    if let Err(e) = Policies::compile(&bundle, String::new()) {
        print_bundle_error(&e);
        return ExitCode::from(EXIT_LOAD_ERROR);
    }
    let options = TestOptions {
        run,
        coverage: args.coverage,
        timeout_ms: args.timeout_ms,
    };
    let report = match sluice_engine::testing::run(&bundle, &options) {
        Ok(report) => report,
        Err(e) => {
            print_bundle_error(&e);
            return ExitCode::from(EXIT_LOAD_ERROR);
        }
    };
    let below_threshold = report
        .coverage
        .as_ref()
        .is_some_and(|c| c.coverage < args.threshold);
    match args.format {
        Format::Pretty => print_pretty(&report, args.verbose, args.threshold),
        Format::Json => {
            let json = if args.coverage {
                serde_json::to_string_pretty(&report)
            } else {
                serde_json::to_string_pretty(&report.results)
            };
            println!("{}", json.unwrap_or_default());
        }
    }
    let failed = report.count(Outcome::Fail) + report.count(Outcome::Error);
    if failed > 0 || below_threshold {
        ExitCode::from(EXIT_TEST_FAILURE)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_pretty(report: &TestReport, verbose: bool, threshold: f64) {
    let mut out = std::io::stdout().lock();
    let mut current_file = "";
    for result in &report.results {
        let show = verbose || matches!(result.outcome, Outcome::Fail | Outcome::Error);
        if !show {
            continue;
        }
        if result.location.file != current_file {
            current_file = &result.location.file;
            let _ = writeln!(out, "{current_file}:");
        }
        let status = match result.outcome {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Error => "ERROR",
            Outcome::Skip => "SKIPPED",
        };
        let _ = writeln!(
            out,
            "{}: {status} ({:.3}ms)",
            result.full_name(),
            result.duration as f64 / 1e6
        );
        if let Some(message) = &result.message {
            let _ = writeln!(
                out,
                "  {}:{}: {message}",
                result.location.file, result.location.row
            );
        }
        for line in &result.output {
            let _ = writeln!(out, "  {line}");
        }
    }
    if let Some(coverage) = &report.coverage {
        let _ = writeln!(out, "coverage:");
        for file in &coverage.files {
            if file.not_covered.is_empty() {
                let _ = writeln!(out, "  {}: {:.1}%", file.file, file.coverage);
            } else {
                let lines: Vec<String> = file.not_covered.iter().map(u32::to_string).collect();
                let _ = writeln!(
                    out,
                    "  {}: {:.1}% (lines not covered: {})",
                    file.file,
                    file.coverage,
                    lines.join(",")
                );
            }
        }
        let _ = writeln!(
            out,
            "coverage: {:.1}% (threshold {threshold:.1}%)",
            coverage.coverage
        );
    }
    let total = report.results.len();
    let passed = report.count(Outcome::Pass);
    let failed = report.count(Outcome::Fail) + report.count(Outcome::Error);
    let skipped = report.count(Outcome::Skip);
    let _ = writeln!(out, "{}", "-".repeat(80));
    let _ = writeln!(out, "PASS: {passed}/{total}");
    if failed > 0 {
        let _ = writeln!(out, "FAIL: {failed}/{total}");
    }
    if skipped > 0 {
        let _ = writeln!(out, "SKIPPED: {skipped}/{total}");
    }
    let _ = writeln!(out, "{passed} passed, {failed} failed, {skipped} skipped");
}

fn cedar_conformance(args: &CedarConformanceArgs) -> ExitCode {
    // Resolve `..` first: the suite root is found by looking for `tests/` among ancestors.
    let path = match std::fs::canonicalize(&args.path) {
        Ok(path) => path,
        Err(e) => {
            eprintln!("error: {}: {e}", args.path.display());
            return ExitCode::from(EXIT_LOAD_ERROR);
        }
    };
    let args = &CedarConformanceArgs {
        path,
        root: args.root.clone(),
        verbose: args.verbose,
    };
    let mut files = Vec::new();
    if args.path.is_dir() {
        collect_json(&args.path, &mut files);
    } else {
        files.push(args.path.clone());
    }
    files.sort();
    let root = args.root.clone().unwrap_or_else(|| suite_root(&args.path));
    let read = |relative: &str| -> Result<String, String> {
        std::fs::read_to_string(root.join(relative))
            .map_err(|e| format!("cannot read `{relative}`: {e}"))
    };
    let (mut passed, mut failed, mut requests) = (0usize, 0usize, 0usize);
    for file in &files {
        let label = file.display().to_string();
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) => {
                failed += 1;
                eprintln!("FAIL {label}: cannot read: {e}");
                continue;
            }
        };
        let report = sluice_engine::conformance::run_case(&label, &text, &read);
        requests += report.requests;
        if report.passed() {
            passed += 1;
        } else {
            failed += 1;
            if args.verbose || failed <= 20 {
                for failure in &report.failures {
                    eprintln!("FAIL {label}: {failure}");
                }
            }
        }
    }
    println!(
        "cedar conformance: {} test files, {requests} requests",
        files.len()
    );
    println!("{passed} passed, {failed} failed");
    if failed == 0 && !files.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_TEST_FAILURE)
    }
}

/// Test files are `*.json` other than entity files.
fn collect_json(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_json(&path, out);
        } else if let Some(name) = path.file_name().and_then(|n| n.to_str())
            && name.ends_with(".json")
            && !name.ends_with(".entities.json")
            && name != "entities.json"
        {
            out.push(path);
        }
    }
}

/// The directory that the suite's relative paths start from: the parent of `tests/` or
/// `corpus-tests/` when PATH lies inside one, else PATH (or its directory).
fn suite_root(path: &Path) -> PathBuf {
    for ancestor in path.ancestors() {
        if let Some(name) = ancestor.file_name().and_then(|n| n.to_str())
            && (name == "tests" || name == "corpus-tests")
            && let Some(parent) = ancestor.parent()
        {
            return parent.to_path_buf();
        }
    }
    if path.is_dir() {
        path.to_path_buf()
    } else {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}
