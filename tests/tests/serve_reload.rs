//! End to end: the real `sluice serve` binary on a loopback port, a policy directory in a
//! temporary directory, hot reload observed through the admin API, shutdown by SIGTERM.
//!
//! The binary comes from [`sluice_tests::sluice_bin`], which builds it first, so the test
//! never runs a stale one.

// clippy's test allowances cover `#[test]` functions only, not the helpers of an
// integration test crate; in a test, failing loudly on the unexpected is the point.
#![expect(
    clippy::unwrap_used,
    reason = "test helpers fail the test on anything unexpected"
)]

use std::time::{Duration, Instant};

use sluice_tests::server::{Server, WAIT, client, serve_until_exit};

const POLICY_A: &str =
    "package sluice.t\n\ndeny contains \"from-a\" if input.action == \"llm.chat\"\n";
const POLICY_B: &str =
    "package sluice.t\n\ndeny contains \"from-b\" if input.action == \"llm.chat\"\n";
/// A parse error on line 3.
const BROKEN: &str = "package sluice.t\n\ndeny contains \"x\" if input.action == == \"llm.chat\"\n";

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
