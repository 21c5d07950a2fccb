//! A gateway ready for end-to-end calls: the real `sluice serve` with a config file, two
//! keys, a Rego policy on both surfaces and the scripted upstream behind every alias.
//!
//! Policy, as the tests rely on it:
//! - team `marketing` may not use `gpt-4o` (a prompt deny);
//! - an answer containing `LAUNCH-CODE` is denied (a response deny; alias `leaky`);
//! - `secret-<digits>` in a prompt is redacted, the team goes upstream as `x-sluice-team`,
//!   and `retired-model` is routed to `gpt-4o`;
//! - detected emails in a prompt are masked and card numbers starred but their last four
//!   digits; phone numbers in an answer are hashed with the team's key; IPv4 addresses in a
//!   prompt are tokenised and restored in the answer; a prompt message containing
//!   `WITHHOLD` is replaced whole (a pointer redaction).

#![expect(
    clippy::expect_used,
    reason = "test support: a broken test setup must fail the run loudly"
)]

use sluice_server::gateway::keys::hash;

use crate::server::Server;
use crate::upstream::Upstream;

/// Key of `alice`, team `platform`: every alias is allowed.
pub const PLATFORM_KEY: &str = "sk-test-platform";
/// Key of team `marketing`: denied `gpt-4o` by policy.
pub const MARKETING_KEY: &str = "sk-test-marketing";
/// Key limited to 3 requests an hour.
pub const METERED_KEY: &str = "sk-test-metered";
/// Key limited to 10 requests a day, for concurrent bursts.
pub const BURST_KEY: &str = "sk-test-burst";
/// Key limited to 100 tokens a day.
pub const CAPPED_KEY: &str = "sk-test-capped";
/// Key with room for 100 requests an hour, denied by policy from its third call on: the
/// policy reads the meter's state in `input.limits`.
pub const WATCHED_KEY: &str = "sk-test-watched";
/// Key with a budget of $1 a day; upstream model `ok` is priced at $0.01 per input and
/// $0.02 per output token.
pub const SPENDER_KEY: &str = "sk-test-spender";
/// Key allowed 2 calls in flight at once.
pub const PARALLEL_KEY: &str = "sk-test-parallel";
/// Key of team `throttled`, which the policy throttles to 2 requests a minute.
pub const THROTTLED_KEY: &str = "sk-test-throttled";
/// The AWS access key id the `bedrock` provider signs with.
pub const AWS_KEY_ID: &str = "AKIDSLUICETEST";
/// The key the gateway sends to the `mock` provider (never a caller's key).
pub const UPSTREAM_KEY: &str = "sk-upstream-secret";

pub const POLICY: &str = r#"package sluice.gate

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

redact contains "email" if input.surface == "prompt"

redact contains {"class": "credit_card", "mode": "partial"} if input.surface == "prompt"

redact contains {"class": "phone", "mode": "hash"} if input.surface == "response"

redact contains {"class": "ipv4", "mode": "tokenize"} if input.surface == "prompt"

redact contains {"pointer": sprintf("/content/messages/%d/content", [i]), "replacement": "[withheld]"} if {
	input.surface == "prompt"
	some i, m in input.content.messages
	contains(m.content, "WITHHOLD")
}

headers := {"x-sluice-team": input.principal.team} if input.surface == "prompt"

deny contains sprintf("k-watched has made %d calls this hour", [l.used]) if {
	input.surface == "prompt"
	some l in input.limits
	l.id == "k-watched"
	l.kind == "requests"
	l.used >= 2
}

throttle := {"requests_per_minute": 2} if input.principal.team == "throttled"

route := {"model": "gpt-4o"} if {
	input.surface == "prompt"
	input.resource.id == "retired-model"
}
"#;

/// A running gateway and the upstream behind it; both stop when dropped.
#[derive(Debug)]
pub struct Gateway {
    /// Holds the config, key file and policies for the life of the server.
    pub dir: tempfile::TempDir,
    pub upstream: Upstream,
    pub server: Server,
}

impl Gateway {
    /// Starts the scripted upstream and `sluice serve --config` in front of it.
    pub fn start() -> Gateway {
        Gateway::start_with("")
    }

    /// `start`, with `extra` appended to the config (top-level YAML keys).
    pub fn start_with(extra: &str) -> Gateway {
        let upstream = Upstream::start();
        let dir = tempfile::tempdir().expect("temporary directory");
        let write = |path: &str, text: &str| crate::write_file(dir.path(), path, text);
        write(
            "policies/.manifest",
            r#"{"sluice": {"defaults": {"prompt": "allow", "response": "allow"}}}"#,
        );
        write("policies/gate.rego", POLICY);
        write("upstream.key", &format!("{UPSTREAM_KEY}\n"));
        write("hash.key", "test-hash-key-0123456789abcdefghijklmnop\n");
        write(
            "sluice.yaml",
            &format!("{}{extra}", config(&upstream.base_url)),
        );
        let server = serve(dir.path());
        Gateway {
            dir,
            upstream,
            server,
        }
    }

    /// A second gateway process on the same policies and upstream, with `extra` appended
    /// to its config and its own audit database (DuckDB admits one writer per file).
    pub fn replica(&self, extra: &str) -> Server {
        crate::write_file(
            self.dir.path(),
            "replica.yaml",
            &format!(
                "{}{extra}audit: {{path: replica-audit.duckdb}}\nbudget_state_file: replica-budgets.json\n",
                config(&self.upstream.base_url)
            ),
        );
        let path = self.dir.path().join("replica.yaml");
        Server::start_with_env(
            &["serve".as_ref(), "--config".as_ref(), path.as_os_str()],
            ENV,
        )
    }

    /// Stops the gateway (gracefully) and starts it again on the same files.
    pub fn restart(&mut self) {
        assert!(self.server.terminate().success(), "{}", self.server.log());
        self.server = serve(self.dir.path());
    }
}

/// Asserts that `served` of `statuses` are 200 and `refused` are 429 (and nothing else).
pub fn assert_served_and_refused(statuses: &[u16], served: usize, refused: usize) {
    let count = |status: u16| statuses.iter().filter(|s| **s == status).count();
    assert_eq!((count(200), count(429)), (served, refused), "{statuses:?}");
    assert_eq!(statuses.len(), served + refused, "{statuses:?}");
}

/// The environment the gateway's config reads credentials from.
pub const ENV: &[(&str, &str)] = &[
    ("SLUICE_TEST_AWS_KEY_ID", AWS_KEY_ID),
    ("SLUICE_TEST_AWS_SECRET", "test-secret-key"),
];

fn serve(dir: &std::path::Path) -> Server {
    let config = dir.join("sluice.yaml");
    Server::start_with_env(
        &["serve".as_ref(), "--config".as_ref(), config.as_os_str()],
        ENV,
    )
}

/// The gateway config: every alias maps to one behaviour of the scripted upstream at `base`.
fn config(base: &str) -> String {
    format!(
        r#"listen: 127.0.0.1:0
policy_dir: policies
reload: {{poll_interval_ms: 0}}
limits: {{max_body_bytes: 65536}}
redaction: {{hash_key_file: hash.key}}
routing: {{retries: 2, backoff_ms: 10, breaker_failures: 3, breaker_open_ms: 1000}}
keys:
  - {{id: k-platform, hash: "{platform}", user: alice, team: platform}}
  - {{id: k-marketing, hash: "{marketing}", team: marketing}}
  - {{id: k-metered, hash: "{metered}", team: metered}}
  - {{id: k-burst, hash: "{burst}", team: metered}}
  - {{id: k-capped, hash: "{capped}", team: metered}}
  - {{id: k-watched, hash: "{watched}", team: metered}}
  - {{id: k-spender, hash: "{spender}", team: spenders}}
  - {{id: k-parallel, hash: "{parallel}", team: spenders}}
  - {{id: k-throttled, hash: "{throttled}", team: throttled}}
prices:
  ok: {{input: 10000, output: 20000}}
budgets:
  - {{scope: key, id: k-metered, kind: requests, window: hour, limit: 3}}
  - {{scope: key, id: k-burst, kind: requests, window: day, limit: 10}}
  - {{scope: key, id: k-capped, kind: tokens, window: day, limit: 100}}
  - {{scope: key, id: k-watched, kind: requests, window: hour, limit: 100}}
  - {{scope: team, id: metered, kind: tokens, window: day, limit: 1000000}}
  - {{scope: key, id: k-spender, kind: cost_usd, window: day, limit: 1.0}}
  - {{scope: key, id: k-parallel, kind: concurrent, limit: 2}}
providers:
  - {{name: mock, kind: openai_compatible, base_url: "{base}", api_key_file: upstream.key}}
  - {{name: slow, kind: openai_compatible, base_url: "{base}", timeouts: {{first_byte_ms: 300}}}}
  - {{name: dead, kind: openai_compatible, base_url: "http://127.0.0.1:1/v1"}}
  - {{name: local-demo, kind: demo}}
  - {{name: claude, kind: anthropic, base_url: "{base}", api_key_file: upstream.key}}
  - {{name: aws, kind: bedrock, region: us-east-1, base_url: "{root}", aws: {{access_key_id_env: SLUICE_TEST_AWS_KEY_ID, secret_access_key_env: SLUICE_TEST_AWS_SECRET}}}}
  - {{name: azure, kind: azure, base_url: "{root}", api_version: "2024-10-21", api_key_file: upstream.key}}
fallbacks:
  primary: [gpt-4o]
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
  trickle: [{{provider: mock, model: trickle}}]
  toolstream: [{{provider: mock, model: toolstream}}]
  unreachable: [{{provider: dead}}]
  demo-model: [{{provider: local-demo}}]
  recovering: [{{provider: mock, model: flaky3}}]
  primary: [{{provider: mock, model: fail500}}]
  weighted: [{{provider: mock, model: ok, weight: 1}}, {{provider: local-demo, weight: 1}}]
  claude-sonnet: [{{provider: claude, model: ok}}]
  claude-leaky: [{{provider: claude, model: leak}}]
  azure-gpt: [{{provider: azure, model: ok}}]
  bedrock-claude: [{{provider: aws, model: "anthropic.claude-v2:1"}}]
  text-embedding-3-small: [{{provider: mock, model: embed}}]
"#,
        platform = hash(PLATFORM_KEY),
        marketing = hash(MARKETING_KEY),
        metered = hash(METERED_KEY),
        burst = hash(BURST_KEY),
        capped = hash(CAPPED_KEY),
        watched = hash(WATCHED_KEY),
        spender = hash(SPENDER_KEY),
        parallel = hash(PARALLEL_KEY),
        throttled = hash(THROTTLED_KEY),
        root = base.trim_end_matches("/v1"),
    )
}
