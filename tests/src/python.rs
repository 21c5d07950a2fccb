//! The Python side of the end-to-end tests: the venv with the official SDKs (`.ci/run`
//! creates it at `$HOME/.cache/sluice/venv` from `tests/python/requirements.txt`; or set
//! `SLUICE_PYTHON`), scripts run with a clean environment and a time bound, and fixture
//! servers (a real MCP server, a real A2A agent) started on loopback ports.
//!
//! A missing venv fails the tests with the command that creates it: a skipped SDK test
//! would look like a passing one.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers fail the test on anything unexpected"
)]

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Each SDK call has its own timeout; this only bounds a script that is stuck.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// Prefixes of the variables the SDKs read for themselves.
const SDK_VARIABLE_PREFIXES: [&str; 4] = ["OPENAI_", "ANTHROPIC_", "MCP_", "A2A_"];

const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

pub fn how_to_install() -> String {
    "create it with `bash .ci/run`, or by hand:\n  \
     python3 -m venv ~/.cache/sluice/venv\n  \
     ~/.cache/sluice/venv/bin/pip install -r tests/python/requirements.txt\n\
     (or point SLUICE_PYTHON at a python that has the pinned packages)"
        .to_string()
}

/// The venv's python: `$SLUICE_PYTHON`, else `$HOME/.cache/sluice/venv/bin/python`.
pub fn venv_python() -> PathBuf {
    if let Some(python) = std::env::var_os("SLUICE_PYTHON") {
        return python.into();
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| {
        panic!(
            "neither SLUICE_PYTHON nor HOME is set: cannot find the SDK venv; {}",
            how_to_install()
        )
    });
    PathBuf::from(home).join(".cache/sluice/venv/bin/python")
}

/// The version `requirements.txt` pins for `package`.
fn pinned(package: &str) -> String {
    let requirements =
        std::fs::read_to_string(crate::repo().join("tests/python/requirements.txt")).unwrap();
    requirements
        .lines()
        .find_map(|line| {
            let (name, version) = line.trim().split_once("==")?;
            // `a2a-sdk[http-server]` is imported as `a2a`.
            let name = name.split('[').next()?;
            (name == package).then(|| version.to_string())
        })
        .unwrap_or_else(|| panic!("requirements.txt pins no `{package}`"))
}

/// Fails, with the command that fixes it, unless `python` runs and has the pinned
/// `package` (`module` is what Python imports it as).
pub fn assert_installed(python: &Path, package: &str, module: &str) {
    assert!(
        python.exists(),
        "the Python SDK venv is missing: {} does not exist; {}",
        python.display(),
        how_to_install()
    );
    let output = Command::new(python)
        .args([
            "-c",
            &format!(
                "import importlib.metadata as m; import {module}; print(m.version({package:?}))"
            ),
        ])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} does not run ({e}); {}",
                python.display(),
                how_to_install()
            )
        });
    let (stdout, stderr) = crate::text(&output);
    assert!(
        output.status.success(),
        "{} cannot import the `{package}` package:\n{stderr}\n{}",
        python.display(),
        how_to_install()
    );
    let want = pinned(package);
    assert_eq!(
        stdout.trim(),
        want,
        "the venv has {package} {} but requirements.txt pins {want}; {}",
        stdout.trim(),
        how_to_install()
    );
}

/// `python tests/python/<script>` with an environment that cannot change what the script
/// sends: no proxies (loopback only), none of the SDKs' own variables.
pub fn command(script: &str) -> Command {
    let mut command = Command::new(venv_python());
    command
        .arg(crate::repo().join("tests/python").join(script))
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for variable in PROXY_VARIABLES {
        command.env_remove(variable);
    }
    for (variable, _) in std::env::vars_os() {
        let name = variable.to_string_lossy();
        if SDK_VARIABLE_PREFIXES.iter().any(|p| name.starts_with(p)) {
            command.env_remove(&variable);
        }
    }
    command
}

/// Runs `command` to its end (killing it after [`SCRIPT_TIMEOUT`]); returns whether it
/// succeeded and its stdout and stderr.
pub fn run_bounded(mut command: Command) -> (bool, String, String) {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Drained on their own threads so that a chatty script never blocks on a full pipe.
    let drain = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if started.elapsed() > SCRIPT_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, mut stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    if status.is_none() {
        stderr.push_str(&format!("\nkilled after {SCRIPT_TIMEOUT:?}"));
    }
    (status.is_some_and(|s| s.success()), stdout, stderr)
}

/// Runs a client script that prints one JSON object; fails the test unless it exits 0
/// with JSON.
pub fn json_of(script: &str, args: &[&str]) -> serde_json::Value {
    let mut command = command(script);
    command.args(args);
    let (success, stdout, stderr) = run_bounded(command);
    assert!(
        success,
        "{script} {args:?} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!("{script} {args:?} printed no JSON ({e}):\n{stdout}\n--- stderr\n{stderr}")
    })
}

/// A Python fixture server (`tests/python/<script> --port N ...`), stopped when dropped.
#[derive(Debug)]
pub struct Fixture {
    child: Child,
    pub port: u16,
}

impl Fixture {
    /// Starts `script` on a free loopback port with `args` and waits for its `READY` line.
    /// A port found free can be taken by a server another test starts at the same moment:
    /// a fixture that exits before it is ready is started again on another port.
    pub fn start(script: &str, args: &[&str]) -> Fixture {
        crate::server::on_a_free_port(10, |port| Fixture::try_start_on(script, port, args))
            .unwrap_or_else(|| panic!("{script} exited before READY on 10 free ports"))
    }

    /// [`Fixture::start`] on a given port (to replace a server by another on its address).
    pub fn start_on(script: &str, port: u16, args: &[&str]) -> Fixture {
        Fixture::try_start_on(script, port, args)
            .unwrap_or_else(|| panic!("{script} exited before READY on port {port}"))
    }

    /// [`Fixture::start_on`], or `None` when the fixture exits before it is ready (its
    /// port was taken).
    fn try_start_on(script: &str, port: u16, args: &[&str]) -> Option<Fixture> {
        let mut command = command(script);
        command
            .arg("--port")
            .arg(port.to_string())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "{} does not run ({e}); {}",
                venv_python().display(),
                how_to_install()
            )
        });
        let stdout = child.stdout.take().unwrap();
        let (ready, seen) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.trim() == "READY" {
                    let _ = ready.send(());
                }
            }
        });
        match seen.recv_timeout(Duration::from_secs(60)) {
            Ok(()) => Some(Fixture { child, port }),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = child.wait();
                None
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("{script} did not print READY within 60 s");
            }
        }
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
