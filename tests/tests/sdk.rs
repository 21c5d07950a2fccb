//! The official OpenAI and Anthropic Python SDKs as clients: `tests/python/test_*_sdk.py`
//! run against the real `sluice serve` in front of the scripted upstream. What an SDK raises
//! (its exception class per status, its in-stream error) and what it can parse (the answers,
//! the streamed events) is part of the contract callers rely on, and only the SDK itself can
//! check it.
//!
//! The SDKs live in a virtualenv that `.ci/run` creates (`$HOME/.cache/sluice/venv`, with
//! `tests/python/requirements.txt`) and names in `SLUICE_PYTHON`. A missing venv fails these
//! tests with the command to create it: a skipped SDK test would look like a passing one.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sluice_tests::gateway_setup::{Gateway, MARKETING_KEY, PLATFORM_KEY, UPSTREAM_KEY};

/// Each SDK call has its own 20 s timeout; this only bounds a script that is stuck.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// Prefixes of the variables the SDKs read for themselves.
const SDK_VARIABLE_PREFIXES: [&str; 2] = ["OPENAI_", "ANTHROPIC_"];

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

/// Fails, with the command that fixes it, unless `python` runs and has the pinned `package`.
fn assert_sdk_installed(python: &Path, package: &str) {
    assert!(
        python.exists(),
        "the Python SDK venv is missing: {} does not exist; {}",
        python.display(),
        how_to_install()
    );
    let output = Command::new(python)
        .args([
            "-c",
            &format!("import {package}; print({package}.__version__)"),
        ])
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

/// Starts a gateway and runs `tests/python/{script}` against it with the venv's `package`
/// SDK, giving it the gateway's URL at `base_path` (the base URL that SDK expects) and the
/// two keys. Fails with the script's output and the gateway log unless every check passed;
/// returns the gateway, for checks on what reached the upstream.
fn run_sdk_script(package: &str, script: &str, base_path: &str) -> Gateway {
    let python = venv_python();
    assert_sdk_installed(&python, package);
    let gateway = Gateway::start();

    let script = sluice_tests::repo().join("tests/python").join(script);
    let mut command = Command::new(&python);
    command
        .arg(&script)
        .env("SLUICE_BASE_URL", gateway.server.url(base_path))
        .env("SLUICE_KEY", PLATFORM_KEY)
        .env("SLUICE_DENIED_KEY", MARKETING_KEY)
        // Loopback only: the SDK's HTTP client honours proxy variables.
        .env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .env("PYTHONDONTWRITEBYTECODE", "1");
    for variable in PROXY_VARIABLES {
        command.env_remove(variable);
    }
    // The SDKs also read their own variables (extra headers, organisation, credentials
    // profiles): none of this environment's may change what the script sends.
    for (variable, _) in std::env::vars_os() {
        let name = variable.to_string_lossy();
        if SDK_VARIABLE_PREFIXES.iter().any(|p| name.starts_with(p)) {
            command.env_remove(&variable);
        }
    }
    let (success, stdout, stderr) = run_bounded(command);
    assert!(
        success,
        "the {package} SDK checks failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- gateway log\n{}",
        gateway.server.log()
    );
    println!("{stdout}");
    gateway
}

#[test]
fn the_openai_python_sdk_gets_answers_and_typed_errors() {
    let gateway = run_sdk_script("openai", "test_openai_sdk.py", "/v1");

    // The SDK's tool definitions reached the upstream as sent.
    let forwarded_tools = gateway
        .upstream
        .received_for("ok")
        .into_iter()
        .any(|r| r.body["tools"][0]["function"]["name"] == "get_weather");
    assert!(forwarded_tools, "the tool definitions were not forwarded");
}

#[test]
fn the_anthropic_python_sdk_gets_answers_and_typed_errors() {
    // The Anthropic SDK appends `/v1/messages` to its base URL itself.
    let gateway = run_sdk_script("anthropic", "test_anthropic_sdk.py", "");

    // The SDK's system prompt and tools reached both upstreams: as sent to the Anthropic
    // one, converted to OpenAI's shape for the OpenAI-compatible one.
    let received = gateway.upstream.received_for("ok");
    let native = received.iter().any(|r| {
        r.path == "/v1/messages"
            && r.body["system"] == "You are terse."
            && r.body["tools"][0]["name"] == "get_weather"
            && r.body["tools"][0]["input_schema"]["required"][0] == "city"
    });
    assert!(
        native,
        "the system prompt and tools did not reach the Anthropic upstream"
    );
    let converted = received.iter().any(|r| {
        r.path == "/v1/chat/completions"
            && r.body["messages"][0]["role"] == "system"
            && r.body["messages"][0]["content"] == "You are terse."
            && r.body["tools"][0]["function"]["name"] == "get_weather"
    });
    assert!(
        converted,
        "the system prompt and tools did not reach the OpenAI-compatible upstream"
    );

    // This SDK sends its key as `Authorization: Bearer`: the Anthropic upstream got the
    // gateway's own key and never the caller's.
    for request in gateway.upstream.received() {
        assert!(
            !request.headers.values().any(|v| v.contains(PLATFORM_KEY)),
            "the caller's key reached the upstream: {request:?}"
        );
        if request.path == "/v1/messages" {
            assert_eq!(request.headers["x-api-key"], UPSTREAM_KEY, "{request:?}");
        }
    }
}
