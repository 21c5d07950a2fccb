//! End to end through the data plane: the real `sluice serve` with a config file, keys,
//! policies in a temporary directory and a scripted upstream on loopback; calls made over
//! HTTP as OpenAI's SDKs make them.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly"
)]

use std::path::Path;

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use sluice_server::gateway::keys::hash;
use sluice_tests::server::{Server, client};
use sluice_tests::upstream::Upstream;

const PLATFORM_KEY: &str = "sk-test-platform";
const MARKETING_KEY: &str = "sk-test-marketing";
const UPSTREAM_KEY: &str = "sk-upstream-secret";

const POLICY: &str = r#"package sluice.gate

deny contains "marketing may not use gpt-4o" if {
	input.surface == "prompt"
	input.principal.team == "marketing"
	input.resource.id == "gpt-4o"
}

deny contains "the answer leaked the launch code" if {
	input.surface == "response"
	some m in input.content.messages
	contains(m.content, "LAUNCH-CODE")
}

redact contains {"pattern": "secret-[0-9]+", "replacement": "[SECRET]"} if input.surface == "prompt"

headers := {"x-sluice-team": input.principal.team} if input.surface == "prompt"

route := {"model": "gpt-4o"} if {
	input.surface == "prompt"
	input.resource.id == "retired-model"
}
"#;

struct Setup {
    _dir: tempfile::TempDir,
    upstream: Upstream,
    server: Server,
    http: Client,
}

fn setup() -> Setup {
    let upstream = Upstream::start();
    let dir = tempfile::tempdir().unwrap();
    let write = |path: &str, text: &str| sluice_tests::write_file(dir.path(), path, text);
    write(
        "policies/.manifest",
        r#"{"sluice": {"defaults": {"prompt": "allow", "response": "allow"}}}"#,
    );
    write("policies/gate.rego", POLICY);
    write("upstream.key", &format!("{UPSTREAM_KEY}\n"));
    let base = &upstream.base_url;
    write(
        "sluice.yaml",
        &format!(
            r#"listen: 127.0.0.1:0
policy_dir: policies
reload: {{poll_interval_ms: 0}}
limits: {{max_body_bytes: 65536}}
keys:
  - {{id: k-platform, hash: "{}", user: alice, team: platform}}
  - {{id: k-marketing, hash: "{}", team: marketing}}
providers:
  - {{name: mock, kind: openai_compatible, base_url: "{base}", api_key_file: upstream.key}}
  - {{name: slow, kind: openai_compatible, base_url: "{base}", timeouts: {{first_byte_ms: 300}}}}
  - {{name: dead, kind: openai_compatible, base_url: "http://127.0.0.1:1/v1"}}
  - {{name: local-demo, kind: demo}}
models:
  gpt-4o: [{{provider: mock, model: ok}}]
  leaky: [{{provider: mock, model: leak}}]
  flaky: [{{provider: mock, model: fail500}}, {{provider: dead, model: ok}}, {{provider: mock, model: ok}}]
  busy: [{{provider: mock, model: busy429}}]
  broken: [{{provider: mock, model: fail500}}]
  picky: [{{provider: mock, model: bad400}}]
  hangs: [{{provider: slow, model: hang}}]
  resets: [{{provider: mock, model: reset}}]
  cuts: [{{provider: mock, model: cut}}]
  unreachable: [{{provider: dead}}]
  demo-model: [{{provider: local-demo}}]
  text-embedding-3-small: [{{provider: mock, model: embed}}]
"#,
            hash(PLATFORM_KEY),
            hash(MARKETING_KEY)
        ),
    );
    let config = dir.path().join("sluice.yaml");
    let server = Server::start(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);
    Setup {
        _dir: dir,
        upstream,
        server,
        http: client(),
    }
}

impl Setup {
    fn post(&self, path: &str, key: Option<&str>, body: &str) -> Response {
        let mut request = self
            .http
            .post(self.server.url(path))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().unwrap()
    }

    fn chat(&self, model: &str, content: &str, stream: bool) -> Response {
        let body = json!({
            "model": model, "stream": stream,
            "messages": [{"role": "user", "content": content}]
        });
        self.post(
            "/v1/chat/completions",
            Some(PLATFORM_KEY),
            &body.to_string(),
        )
    }
}

/// Status and OpenAI error body of a failed call.
fn error_of(response: Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().unwrap();
    assert!(
        body["error"]["message"].is_string(),
        "OpenAI error shape: {body}"
    );
    (status, body)
}

/// The `data:` payloads of an SSE body.
fn events(body: &str) -> Vec<String> {
    body.split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .map(str::to_string)
        .collect()
}

fn streamed_text(events: &[String]) -> String {
    events
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e).ok())
        .filter_map(|v| {
            v["choices"][0]["delta"]["content"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn chat_completions_pass_through_policy_both_ways() {
    let s = setup();

    // Allowed, with the prompt redacted and policy headers sent upstream; the caller's
    // key never reaches the upstream, the upstream's own key does.
    let response = s.chat("gpt-4o", "my token is secret-1234", false);
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-sluice-decision"));
    let body: Value = response.json().unwrap();
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "echo: my token is [SECRET]"
    );
    let seen = s.upstream.received_for("ok");
    let last = seen.last().unwrap();
    assert_eq!(last.path, "/v1/chat/completions");
    assert_eq!(
        last.headers["authorization"],
        format!("Bearer {UPSTREAM_KEY}")
    );
    assert_eq!(last.headers["x-sluice-team"], "platform");
    assert!(!last.body.to_string().contains("secret-1234"));

    // Denied on the prompt: 403 with the policy's reason, nothing sent upstream.
    let before = s.upstream.received().len();
    let body = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let (status, error) = error_of(s.post(
        "/v1/chat/completions",
        Some(MARKETING_KEY),
        &body.to_string(),
    ));
    assert_eq!(status, 403);
    assert_eq!(error["error"]["code"], "policy_denied");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("marketing may not use gpt-4o"),
        "{error}"
    );
    assert_eq!(s.upstream.received().len(), before);

    // Denied on the response: the caller never sees the answer.
    let (status, error) = error_of(s.chat("leaky", "tell me", false));
    assert_eq!(status, 403);
    assert!(error.to_string().contains("launch code"), "{error}");

    // A route obligation sends a retired model to its replacement.
    let response = s.chat("retired-model", "hello", false);
    assert_eq!(response.status(), 200);
    assert_eq!(
        s.upstream.received_for("ok").last().unwrap().body["messages"][0]["content"],
        "hello"
    );
}

#[test]
fn streams_pass_through_and_end_with_an_error_event_when_denied_or_cut() {
    let s = setup();
    let response = s.chat("gpt-4o", "stream please", true);
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let all = events(&response.text().unwrap());
    assert_eq!(streamed_text(&all), "echo: stream please");
    assert_eq!(all.last().unwrap(), "[DONE]");

    // The response policy sees the whole streamed answer and ends the stream instead of
    // `[DONE]`.
    let all = events(&s.chat("leaky", "tell me", true).text().unwrap());
    let last: Value = serde_json::from_str(all.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"]
            .as_str()
            .unwrap()
            .contains("launch code"),
        "{last}"
    );
    assert!(!all.iter().any(|e| e == "[DONE]"));

    // An upstream that breaks off mid-stream: an error event, never a silent end.
    let all = events(&s.chat("cuts", "tell me", true).text().unwrap());
    let last: Value = serde_json::from_str(all.last().unwrap()).unwrap();
    assert!(
        last["error"]["message"].as_str().unwrap().contains("mock"),
        "{last}"
    );
    assert!(!all.iter().any(|e| e == "[DONE]"));

    // The demo provider streams the same way.
    let all = events(&s.chat("demo-model", "hi demo", true).text().unwrap());
    assert!(streamed_text(&all).contains("hi demo"));
    assert_eq!(all.last().unwrap(), "[DONE]");
}

#[test]
fn failover_and_upstream_faults_map_to_gateway_statuses() {
    let s = setup();
    // 500, then a refused connection, then a healthy deployment.
    let response = s.chat("flaky", "retry me", false);
    assert_eq!(response.status(), 200);
    assert_eq!(s.upstream.received_for("fail500").len(), 1);

    let cases = [
        ("busy", 429, "429"),
        ("broken", 502, "500"),
        ("picky", 400, "max_tokens is too large"),
        ("hangs", 504, "in time"),
        ("resets", 502, "could not be reached"),
        ("unreachable", 502, "`dead`"),
    ];
    for (model, status, needle) in cases {
        let response = s.chat(model, "x", false);
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_string());
        let (got, error) = error_of(response);
        assert_eq!(got, status, "{model}: {error}");
        assert!(error.to_string().contains(needle), "{model}: {error}");
        if model == "busy" {
            assert_eq!(retry_after.as_deref(), Some("7"));
        }
    }
}

#[test]
fn bad_requests_get_openai_errors_and_nothing_goes_upstream() {
    let s = setup();
    let cases: Vec<(Option<&str>, Vec<u8>, u16, &str)> = vec![
        (None, b"{}".to_vec(), 401, "missing API key"),
        (Some("sk-wrong"), b"{}".to_vec(), 401, "invalid API key"),
        (
            Some(PLATFORM_KEY),
            b"{not json".to_vec(),
            400,
            "not valid JSON",
        ),
        (Some(PLATFORM_KEY), b"\xff\xfe\xfd".to_vec(), 400, "UTF-8"),
        (
            Some(PLATFORM_KEY),
            br#"{"model": 5, "messages": []}"#.to_vec(),
            400,
            "`model` must be a string",
        ),
        (
            Some(PLATFORM_KEY),
            br#"{"model": "nope", "messages": [{"role": "user", "content": "x"}]}"#.to_vec(),
            404,
            "`nope` does not exist",
        ),
        (
            Some(PLATFORM_KEY),
            format!(
                r#"{{"model": "gpt-4o", "messages": [{{"role": "user", "content": "{}"}}]}}"#,
                "a".repeat(70_000)
            )
            .into_bytes(),
            413,
            "larger than the limit",
        ),
    ];
    let before = s.upstream.received().len();
    for (key, body, status, needle) in cases {
        let mut request = s
            .http
            .post(s.server.url("/v1/chat/completions"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let (got, error) = error_of(request.send().unwrap());
        assert_eq!(got, status, "{error}");
        assert!(error.to_string().contains(needle), "{needle}: {error}");
    }
    assert_eq!(
        s.upstream.received().len(),
        before,
        "nothing reached the upstream"
    );
}

#[test]
fn models_and_embeddings_follow_the_key_and_policy() {
    let s = setup();
    let list = |key: &str| -> Vec<String> {
        let body: Value = s
            .http
            .get(s.server.url("/v1/models"))
            .header("x-api-key", key)
            .send()
            .unwrap()
            .json()
            .unwrap();
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let platform = list(PLATFORM_KEY);
    let marketing = list(MARKETING_KEY);
    assert!(platform.contains(&"gpt-4o".to_string()));
    assert!(!marketing.contains(&"gpt-4o".to_string()));
    assert!(marketing.contains(&"leaky".to_string()));

    let response = s.post(
        "/v1/embeddings",
        Some(PLATFORM_KEY),
        r#"{"model": "text-embedding-3-small", "input": "hello"}"#,
    );
    assert_eq!(response.status(), 200);
    let body: Value = response.json().unwrap();
    assert_eq!(body["data"][0]["embedding"], json!([0.5, 0.5]));
    assert_eq!(
        s.upstream.received_for("embed").last().unwrap().path,
        "/v1/embeddings"
    );
}

#[test]
fn the_demo_flag_serves_the_quickstart_without_any_upstream() {
    let repo = sluice_tests::repo();
    let policies = repo.join("policies");
    let mut server = Server::start(&[
        "serve".as_ref(),
        "--demo".as_ref(),
        "--policy-dir".as_ref(),
        policies.as_os_str(),
        "--listen".as_ref(),
        "127.0.0.1:0".as_ref(),
    ]);
    let http = client();
    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello"}]});
    let response = http
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(sluice_server::serve::DEMO_KEY)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().unwrap();
    assert!(
        answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .contains("hello")
    );
    assert!(Path::new(&policies).is_dir());
    assert!(server.terminate().success());
}

#[test]
fn keys_hash_prints_what_the_config_expects() {
    use std::io::Write as _;
    let mut child = std::process::Command::new(sluice_tests::sluice_bin())
        .args(["keys", "hash"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"sk-test-platform\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    assert_eq!(
        String::from_utf8(output.stdout).unwrap().trim(),
        hash(PLATFORM_KEY)
    );
    let empty = std::process::Command::new(sluice_tests::sluice_bin())
        .args(["keys", "hash"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!empty.status.success());
}
