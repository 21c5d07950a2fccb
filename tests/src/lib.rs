//! Helpers shared by the end-to-end tests: the real `sluice` binary, the repository's own
#![expect(
    clippy::expect_used,
    reason = "test support: a broken test setup must fail the run loudly"
)]
//! files, and the shared conformance data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

pub mod agents_setup;
pub mod gateway_setup;
pub mod python;
pub mod redis;
pub mod server;
pub mod upstream;

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `../shared` next to the repository (conformance suites).
pub fn shared() -> PathBuf {
    repo().join("../shared")
}

/// The `sluice` binary of this workspace, built once per test run with the same cargo and
/// target directory as the tests themselves, so a test never runs a stale binary.
pub fn sluice_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let status = Command::new(cargo)
            .args(["build", "--quiet", "-p", "sluice-server", "--bin", "sluice"])
            .current_dir(repo())
            .status()
            .expect("cargo runs");
        assert!(status.success(), "building the sluice binary failed");
        // Tests run from <target>/debug/deps/; the binary sits in <target>/debug/.
        let exe = std::env::current_exe().expect("test executable path");
        let debug = exe
            .parent()
            .and_then(Path::parent)
            .expect("test executable lives in <target>/debug/deps");
        let bin = debug.join("sluice");
        assert!(bin.exists(), "{} does not exist", bin.display());
        bin
    })
    .clone()
}

/// Runs `sluice ARGS` in `dir` and returns its output.
pub fn sluice(dir: &Path, args: &[&str]) -> Output {
    Command::new(sluice_bin())
        .args(args)
        .current_dir(dir)
        .output()
        .expect("sluice runs")
}

/// Runs `sluice ARGS` in `dir` with `stdin` as its standard input.
pub fn sluice_with_stdin(dir: &Path, args: &[&str], stdin: &[u8]) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new(sluice_bin())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("sluice runs");
    if let Some(mut input) = child.stdin.take() {
        // A command that exits without reading its input closes the pipe; that is its answer.
        let _ = input.write_all(stdin);
    }
    child.wait_with_output().expect("sluice runs")
}

/// Stdout and stderr of an output as text, for assertion messages.
pub fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Writes `body` to `dir/path`, creating directories.
pub fn write_file(dir: &Path, path: &str, body: &str) {
    let full = dir.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent).expect("create directories");
    }
    std::fs::write(full, body).expect("write file");
}

/// Fills a new audit database at `path` through Sluice's own writer: one row per example
/// input, decided by the default policies. Returns the number of rows.
pub fn fill_audit_db(path: &Path) -> i64 {
    use sluice_server::audit::{Audit, AuditConfig, CallFacts, row};
    let audit = Audit::start(AuditConfig {
        path: path.to_path_buf(),
        ..AuditConfig::default()
    })
    .expect("the audit writer starts");
    let bundle =
        sluice_engine::Bundle::load(&repo().join("policies")).expect("the default policies load");
    let policies = sluice_engine::Policies::compile(&bundle, "fixture".to_string())
        .expect("the default policies compile");
    let mut rows = 0;
    let mut paths: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/inputs"))
        .expect("examples/inputs")
        .flatten()
        .map(|e| e.path())
        .collect();
    paths.sort();
    for path in paths {
        let text = std::fs::read_to_string(&path).expect("an example input");
        let input: sluice_engine::DecisionInput =
            serde_json::from_str(&text).expect("a valid example input");
        let decision = policies.evaluate(&input);
        let facts = CallFacts {
            request_id: format!("req-{rows}"),
            ..CallFacts::default()
        };
        audit
            .record(row(&input, &decision, &facts))
            .expect("the row is queued");
        rows += 1;
    }
    audit.shutdown();
    rows
}
