//! End to end: the real `sluice serve` binary on a loopback port, a policy directory in a
//! temporary directory, hot reload observed through the admin API, shutdown by SIGTERM.
//!
//! The binary comes from [`sluice_tests::sluice_bin`], which builds it first, so the test
//! never runs a stale one.

// clippy's test allowances cover `#[test]` functions only, not the helpers of an
// integration test crate; in a test, failing loudly on the unexpected is the point.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail the test on anything unexpected"
)]

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const POLICY_A: &str =
    "package sluice.t\n\ndeny contains \"from-a\" if input.action == \"llm.chat\"\n";
const POLICY_B: &str =
    "package sluice.t\n\ndeny contains \"from-b\" if input.action == \"llm.chat\"\n";
/// A parse error on line 3.
const BROKEN: &str = "package sluice.t\n\ndeny contains \"x\" if input.action == == \"llm.chat\"\n";

/// Generous: the machine may be busy compiling. Only failures wait this long.
const WAIT: Duration = Duration::from_secs(30);

/// A running `sluice serve`; killed on drop if a test failed before stopping it.
struct Server {
    child: Child,
    base: String,
    revision: String,
    log: Arc<Mutex<String>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Starts `sluice serve ARGS --listen 127.0.0.1:0` and waits for its startup line.
    fn start(args: &[&std::ffi::OsStr]) -> Server {
        let (child, lines, log) = spawn(args);
        let started = Instant::now();
        loop {
            let remaining = WAIT.saturating_sub(started.elapsed());
            let line = lines.recv_timeout(remaining).unwrap_or_else(|_| {
                panic!(
                    "no startup line within {WAIT:?}; output:\n{}",
                    log.lock().unwrap()
                )
            });
            if let Some(rest) = line.strip_prefix("sluice listening on ") {
                let (base, revision) = rest.split_once(" revision=").unwrap();
                return Server {
                    child,
                    base: base.to_string(),
                    revision: revision.to_string(),
                    log,
                };
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Sends SIGTERM and waits for the exit.
    fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        wait_exit(&mut self.child).unwrap_or_else(|| {
            panic!(
                "no exit within {WAIT:?} of SIGTERM; output:\n{}",
                self.log()
            )
        })
    }
}

/// Spawns the binary with stderr collected line by line.
fn spawn(args: &[&std::ffi::OsStr]) -> (Child, mpsc::Receiver<String>, Arc<Mutex<String>>) {
    let mut child = Command::new(sluice_tests::sluice_bin())
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let (tx, rx) = mpsc::channel();
    let sink = Arc::clone(&log);
    // Drains stderr for the whole life of the process, so it never blocks on a full pipe.
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut log) = sink.lock() {
                log.push_str(&line);
                log.push('\n');
            }
            let _ = tx.send(line);
        }
    });
    (child, rx, log)
}

/// Runs `sluice serve` on `policy_dir` expecting it to exit by itself; returns its status
/// and whole log.
fn serve_until_exit(policy_dir: &std::ffi::OsStr) -> (ExitStatus, String) {
    let (mut child, lines, log) = spawn(&[
        "serve".as_ref(),
        "--policy-dir".as_ref(),
        policy_dir,
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ]);
    let status = wait_exit(&mut child).expect("sluice should exit");
    // The reader thread ends at end of output: after it, the log is complete.
    lines.iter().for_each(drop);
    let log = log.lock().unwrap().clone();
    (status, log)
}

fn wait_exit(child: &mut Child) -> Option<ExitStatus> {
    let started = Instant::now();
    while started.elapsed() < WAIT {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

fn client() -> reqwest::blocking::Client {
    // Loopback only: never route through a proxy from the environment.
    reqwest::blocking::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

fn get_json(
    client: &reqwest::blocking::Client,
    url: &str,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().unwrap();
    let status = response.status().as_u16();
    (status, response.json().unwrap())
}

/// Polls `/admin/status` until `done` holds.
fn wait_for_status(
    server: &Server,
    client: &reqwest::blocking::Client,
    what: &str,
    done: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let (code, status) = get_json(client, &server.url("/admin/status"), None);
        assert_eq!(code, 200, "{status}");
        if done(&status) {
            return status;
        }
        assert!(
            started.elapsed() < WAIT,
            "timed out waiting for {what}; status: {status:#}\noutput:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[test]
fn serve_reloads_policies_and_stops_on_sigterm() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("policies");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("a.rego"), POLICY_A).unwrap();
    let mut server = Server::start(&[
        "serve".as_ref(),
        "--policy-dir".as_ref(),
        dir.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ]);
    assert!(
        server.base.starts_with("http://127.0.0.1:"),
        "{}",
        server.base
    );
    let client = client();

    let health = client.get(server.url("/healthz")).send().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(health.text().unwrap(), "ok");
    let (code, ready) = get_json(&client, &server.url("/readyz"), None);
    assert_eq!(code, 200);
    assert_eq!(ready["revision"], server.revision.as_str());

    let (code, status) = get_json(&client, &server.url("/admin/status"), None);
    assert_eq!(code, 200, "{status}");
    assert_eq!(status["revision"], server.revision.as_str());
    assert_eq!(status["reloads"]["failures"], 0);

    // An edit becomes active without a restart.
    std::fs::write(dir.join("a.rego"), POLICY_B).unwrap();
    let status = wait_for_status(&server, &client, "the edit to load", |s| {
        s["revision"] != server.revision.as_str()
    });
    let revision_b = status["revision"].as_str().unwrap().to_string();
    assert_eq!(status["reloads"]["successes"], 1, "{status:#}");

    // A broken edit is reported and the last good revision stays active.
    std::fs::write(dir.join("a.rego"), BROKEN).unwrap();
    // Waiting for the broken line itself: `std::fs::write` truncates first, and a reload
    // may fail on the empty file before the broken content is complete.
    let status = wait_for_status(&server, &client, "the broken edit to fail", |s| {
        s["last_error"]["diagnostics"][0]["line"] == 3
    });
    assert_eq!(status["revision"], revision_b.as_str(), "{status:#}");
    let diagnostic = &status["last_error"]["diagnostics"][0];
    assert_eq!(diagnostic["file"], "a.rego", "{status:#}");
    assert_eq!(diagnostic["line"], 3, "{status:#}");
    let (_, ready) = get_json(&client, &server.url("/readyz"), None);
    assert_eq!(ready["revision"], revision_b.as_str());

    let exit = server.terminate();
    assert!(exit.success(), "{exit:?}; output:\n{}", server.log());
    assert!(
        server.log().contains("policy reload failed"),
        "{}",
        server.log()
    );
}

#[test]
fn serve_reads_a_config_file_and_guards_the_admin_api_with_its_token() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("policies")).unwrap();
    std::fs::write(root.path().join("policies/a.rego"), POLICY_A).unwrap();
    let config = root.path().join("sluice.yaml");
    // A relative `policy_dir` is relative to the config file, not to the working directory.
    std::fs::write(
        &config,
        "listen: 127.0.0.1:0\npolicy_dir: policies\nadmin:\n  token: e2e-admin-token\n",
    )
    .unwrap();
    let mut server = Server::start(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);
    let client = client();

    let (code, body) = get_json(&client, &server.url("/admin/status"), None);
    assert_eq!(code, 401, "{body}");
    assert_eq!(body["error"]["type"], "authentication_error");
    let (code, body) = get_json(
        &client,
        &server.url("/admin/status"),
        Some("e2e-admin-token"),
    );
    assert_eq!(code, 200, "{body}");
    assert_eq!(body["revision"], server.revision.as_str());

    let response = client
        .post(server.url("/admin/reload"))
        .bearer_auth("e2e-admin-token")
        .send()
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let body: serde_json::Value = response.json().unwrap();
    assert_eq!(body["outcome"], "unchanged", "{body}");

    assert!(server.terminate().success(), "{}", server.log());
    assert!(
        !server.log().contains("e2e-admin-token"),
        "the token must not be logged"
    );
}

#[test]
fn serve_refuses_to_start_on_a_broken_bundle() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("a.rego"), BROKEN).unwrap();
    let (status, log) = serve_until_exit(root.path().as_os_str());
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("a.rego:3:"), "{log}");
    assert!(!log.contains("sluice listening"), "{log}");
}

#[test]
fn serve_refuses_to_start_without_a_policy_directory() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("missing");
    let (status, log) = serve_until_exit(missing.as_os_str());
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(log.contains("does not exist"), "{log}");
}
