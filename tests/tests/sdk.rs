//! The official OpenAI Python SDK as the client: `tests/python/test_openai_sdk.py` run
//! against the real `sluice serve` in front of the scripted upstream. What the SDK raises
//! (its exception class per status, its in-stream error) is part of the contract callers
//! rely on, and only the SDK itself can check it.
//!
//! The SDK lives in a virtualenv that `.ci/run` creates (`$HOME/.cache/sluice/venv`, with
//! `tests/python/requirements.txt`) and names in `SLUICE_PYTHON`. A missing venv fails this
//! test with the command to create it: a skipped SDK test would look like a passing one.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::gateway_setup::{Gateway, MARKETING_KEY, PLATFORM_KEY};

/// Each SDK call has its own 20 s timeout; this only bounds a script that is stuck.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

const PROXY_VARIABLES: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

fn how_to_install() -> String {
    "create it with `bash .ci/run`, or by hand:\n  \
     python3 -m venv ~/.cache/sluice/venv\n  \
     ~/.cache/sluice/venv/bin/pip install -r tests/python/requirements.txt\n\
     (or point SLUICE_PYTHON at a python that has the pinned packages)"
        .to_string()
}

/// The venv's python: `$SLUICE_PYTHON`, else `$HOME/.cache/sluice/venv/bin/python`.
fn venv_python() -> PathBuf {
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
        std::fs::read_to_string(sluice_tests::repo().join("tests/python/requirements.txt"))
            .unwrap();
    requirements
        .lines()
        .find_map(|line| line.trim().strip_prefix(&format!("{package}==")))
        .unwrap_or_else(|| panic!("requirements.txt pins no `{package}`"))
        .to_string()
}

/// Fails, with the command that fixes it, unless `python` runs and has the pinned `openai`.
fn assert_sdk_installed(python: &Path) {
    assert!(
        python.exists(),
        "the Python SDK venv is missing: {} does not exist; {}",
        python.display(),
        how_to_install()
    );
    let output = Command::new(python)
        .args(["-c", "import openai; print(openai.__version__)"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} does not run ({e}); {}",
                python.display(),
                how_to_install()
            )
        });
    let (stdout, stderr) = sluice_tests::text(&output);
    assert!(
        output.status.success(),
        "{} cannot import the `openai` package:\n{stderr}\n{}",
        python.display(),
        how_to_install()
    );
    let want = pinned("openai");
    assert_eq!(
        stdout.trim(),
        want,
        "the venv has openai {} but requirements.txt pins {want}; {}",
        stdout.trim(),
        how_to_install()
    );
}

/// Runs `command` to its end (killing it after `SCRIPT_TIMEOUT`); returns whether it
/// succeeded and its stdout and stderr.
fn run_bounded(mut command: Command) -> (bool, String, String) {
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

#[test]
fn the_openai_python_sdk_gets_answers_and_typed_errors() {
    let python = venv_python();
    assert_sdk_installed(&python);
    let gateway = Gateway::start();

    let script = sluice_tests::repo().join("tests/python/test_openai_sdk.py");
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .env("SLUICE_BASE_URL", gateway.server.url("/v1"))
        .env("SLUICE_KEY", PLATFORM_KEY)
        .env("SLUICE_DENIED_KEY", MARKETING_KEY)
        // Loopback only: the SDK's HTTP client honours proxy variables.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for variable in PROXY_VARIABLES {
        command.env_remove(variable);
    }
    let (success, stdout, stderr) = run_bounded(command);
    assert!(
        success,
        "the OpenAI SDK checks failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- gateway log\n{}",
        gateway.server.log()
    );
    println!("{stdout}");

    // The SDK's tool definitions reached the upstream as sent.
    let forwarded_tools = gateway
        .upstream
        .received_for("ok")
        .into_iter()
        .any(|r| r.body["tools"][0]["function"]["name"] == "get_weather");
    assert!(forwarded_tools, "the tool definitions were not forwarded");
}
