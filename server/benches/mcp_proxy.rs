//! Latency harness for the MCP proxy: a `tools/call` through the real `sluice` binary —
//! the call decided with its arguments (Rego and Cedar, the shipped policies), inspected,
//! forwarded, its result decided again, both decisions audited — against the same call
//! made directly to the same MCP server, in the same run.
//!
//! The MCP server runs in a process of its own (this harness, started again), as a real
//! one does, so that the direct call pays what a call between two processes pays. (Served
//! from the client's own runtime instead, the direct p50 was within 10 µs of this.)
//!
//! Reports p50 and p99 of each and the overhead (target: p50 ≤ 200 µs), and the gateway's
//! CPU time per call (the audit writer's share apart). A third path, through a bare HTTP
//! pass-through (an axum server forwarding with reqwest, nothing else), measures the floor
//! any proxy pays on this machine: the overhead Sluice adds beyond it is its own.
//!
//! Run: `cargo bench -p sluice-server --bench mcp_proxy` (`SLUICE_MCP_CALLS` sets the
//! number of measured calls each way, default 3,000, in `SLUICE_MCP_ROUNDS` rounds that
//! alternate direct and through Sluice, default 10).

#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a benchmark harness stops loudly on a broken setup"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

mod common;

const KEY: &str = "sk-mcp-bench";

const RESULT_TEXT: &str = "Issue #7 in acme/api: \"Flaky test in CI\" (open). The integration \
    suite fails about one run in twenty on the payments job; retrying passes. Assigned to \
    the platform team, labelled bug and ci.";

/// A minimal MCP server (JSON answers): one session, one tool.
async fn upstream(body: String) -> Response {
    let message: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let result = match message.get("method").and_then(Value::as_str) {
        Some("initialize") => json!({
            "protocolVersion": "2025-11-25",
            "capabilities": {"tools": {"listChanged": false}},
            "serverInfo": {"name": "bench", "version": "1"},
        }),
        Some("tools/list") => json!({"tools": [{
            "name": "get_issue",
            "description": "Get an issue of a GitHub repository.",
            "inputSchema": {"type": "object", "properties": {
                "owner": {"type": "string"}, "repo": {"type": "string"}, "number": {"type": "integer"}},
                "required": ["owner", "repo", "number"]},
        }]}),
        Some("tools/call") => {
            json!({"content": [{"type": "text", "text": RESULT_TEXT}], "isError": false})
        }
        _ => {
            return Response::builder()
                .status(202)
                .header("mcp-session-id", "bench-session")
                .body(Body::empty())
                .unwrap();
        }
    };
    Response::builder()
        .header("content-type", "application/json")
        .header("mcp-session-id", "bench-session")
        .body(Body::from(
            json!({"jsonrpc": "2.0", "id": id, "result": result}).to_string(),
        ))
        .unwrap()
}

use common::Sluice as Gateway;

fn start_gateway(dir: &Path, upstream: &str) -> Gateway {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = dir.join("sluice.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\npolicy_dir: {}\nreload: {{poll_interval_ms: 0}}\nkeys:\n  - {{id: k-triage, hash: \"{}\", team: platform, agent: triage-agent}}\nmcp_servers:\n  - {{name: github, url: \"{upstream}/mcp\"}}\naudit: {{path: {}}}\n",
            repo.join("policies").display(),
            sluice_server::gateway::keys::hash(KEY),
            dir.join("audit.duckdb").display(),
        ),
    )
    .unwrap();
    common::spawn_sluice(&config)
}

/// Posts one JSON-RPC message; the answer and the session id it named.
async fn rpc(
    client: &reqwest::Client,
    url: &str,
    session: Option<&str>,
    message: &Value,
) -> (Value, Option<String>) {
    let mut request = client
        .post(url)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(message.to_string());
    if let Some(session) = session {
        request = request.header("mcp-session-id", session);
    }
    let response = request.send().await.unwrap();
    let session = response
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_string());
    let body = response.bytes().await.unwrap();
    (
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        session,
    )
}

/// The call every measurement makes.
fn tool_call() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {
        "name": "get_issue", "arguments": {"owner": "acme", "repo": "api", "number": 7}}})
}

/// Opens an MCP session at `url` and warms it up; the session id.
async fn open(client: &reqwest::Client, url: &str) -> String {
    let (_, session) = rpc(
        client,
        url,
        None,
        &json!({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "bench", "version": "1"}}}),
    )
    .await;
    let session = session.expect("a session id");
    batch(client, url, &session, 200).await;
    session
}

/// Latencies of `calls` sequential `tools/call`s in session `session` at `url`.
async fn batch(client: &reqwest::Client, url: &str, session: &str, calls: usize) -> Vec<Duration> {
    let call = tool_call();
    let mut samples = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let (answer, _) = rpc(client, url, Some(session), &call).await;
        samples.push(started.elapsed());
        assert!(answer.get("result").is_some(), "{answer}");
    }
    samples
}

/// Set in the environment of a process this harness starts: `server` (the MCP server) or
/// `proxy` (a bare HTTP pass-through to `SLUICE_MCP_BENCH_UPSTREAM`).
const ROLE: &str = "SLUICE_MCP_BENCH_ROLE";
const UPSTREAM: &str = "SLUICE_MCP_BENCH_UPSTREAM";

/// Serves `router` on a loopback port; prints its address, then serves until killed.
fn serve(router: Router) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        println!("http://{}", listener.local_addr().unwrap());
        axum::serve(listener, router).await.unwrap();
    });
}

/// The headers a pass-through forwards each way.
const PASSED: [&str; 3] = ["content-type", "accept", "mcp-session-id"];

/// A pass-through that does nothing but forward: the floor of any HTTP proxy's overhead on
/// this machine (two more loopback hops, an HTTP server and client in between).
async fn pass_through(
    axum::extract::State((client, url)): axum::extract::State<(reqwest::Client, String)>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut request = client.post(&url).body(body);
    for name in PASSED {
        if let Some(value) = headers.get(name) {
            request = request.header(name, value);
        }
    }
    let answer = request.send().await.unwrap();
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in PASSED {
        if let Some(value) = answer.headers().get(name) {
            response = response.header(name, value);
        }
    }
    response
        .body(Body::from(answer.bytes().await.unwrap()))
        .unwrap()
}

/// A process this harness started in `role`, killed when dropped.
struct Helper {
    child: std::process::Child,
    /// `http://127.0.0.1:<port>`.
    url: String,
}

impl Helper {
    fn spawn(role: &str, upstream: Option<&str>) -> Helper {
        use std::io::BufRead as _;
        let mut command = std::process::Command::new(std::env::current_exe().unwrap());
        command.env(ROLE, role);
        if let Some(upstream) = upstream {
            command.env(UPSTREAM, upstream);
        }
        let mut child = command
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let url = std::io::BufReader::new(stdout)
            .lines()
            .next()
            .expect("the helper prints its address")
            .unwrap();
        Helper { child, url }
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("server") => return serve(Router::new().route("/mcp", post(upstream))),
        Ok("proxy") => {
            let upstream = std::env::var(UPSTREAM).unwrap();
            let client = reqwest::Client::builder().no_proxy().build().unwrap();
            return serve(
                Router::new()
                    .route("/mcp", post(pass_through))
                    .with_state((client, format!("{upstream}/mcp"))),
            );
        }
        _ => {}
    }
    if !common::selected("mcp_proxy") {
        return;
    }
    let calls: usize = common::env_number("SLUICE_MCP_CALLS", 3_000);
    let rounds: usize = common::env_number("SLUICE_MCP_ROUNDS", 10).max(1);
    let server = Helper::spawn("server", None);
    let upstream_url = server.url.clone();
    let bare = Helper::spawn("proxy", Some(&upstream_url));
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let gateway = start_gateway(dir.path(), &upstream_url);
        let client = reqwest::Client::builder().no_proxy().build().unwrap();
        let direct_url = format!("{upstream_url}/mcp");
        let through_url = format!("{}/mcp/github", gateway.base);
        let bare_url = format!("{}/mcp", bare.url);
        let direct_session = open(&client, &direct_url).await;
        let bare_session = open(&client, &bare_url).await;
        let through_session = open(&client, &through_url).await;
        // The three take turns, so that a slow spell of the machine (a shared host) weighs
        // on each alike; the overhead of each round shows how much such spells move it.
        let per_round = calls.div_ceil(rounds);
        let cpu = common::GatewayCpu::now(gateway.child.id());
        let (mut direct, mut passed, mut through) = (Vec::new(), Vec::new(), Vec::new());
        let mut round_overheads = Vec::with_capacity(rounds);
        for _ in 0..rounds {
            let mut d = batch(&client, &direct_url, &direct_session, per_round).await;
            passed.extend(batch(&client, &bare_url, &bare_session, per_round).await);
            let mut t = batch(&client, &through_url, &through_session, per_round).await;
            direct.extend_from_slice(&d);
            through.extend_from_slice(&t);
            let p50 = |samples: &mut Vec<Duration>| common::p50_p99(samples).0;
            round_overheads.push(p50(&mut t).as_secs_f64() - p50(&mut d).as_secs_f64());
        }
        let calls = through.len();
        let (per_call, writer) = cpu.per_call_since(calls as f64);
        round_overheads.sort_by(f64::total_cmp);
        let (d50, d99) = common::p50_p99(&mut direct);
        let (b50, b99) = common::p50_p99(&mut passed);
        let (t50, t99) = common::p50_p99(&mut through);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "mcp tools/call direct: p50 {:.0} us, p99 {:.0} us over {calls} calls",
            us(d50),
            us(d99)
        );
        println!(
            "mcp tools/call through a bare pass-through proxy (no inspection, no policy): p50 {:.0} us, p99 {:.0} us; its overhead p50 {:.0} us",
            us(b50),
            us(b99),
            us(b50) - us(d50)
        );
        println!(
            "mcp tools/call through sluice (call and result decided, inspected, audited): p50 {:.0} us, p99 {:.0} us",
            us(t50),
            us(t99)
        );
        println!(
            "mcp proxy overhead: p50 {:.0} us (target <= 200 us), p99 {:.0} us; over the bare proxy, p50 {:.0} us",
            us(t50) - us(d50),
            us(t99) - us(d99),
            us(t50) - us(b50)
        );
        let round = |q: f64| {
            let at = ((round_overheads.len() - 1) as f64 * q).round() as usize;
            round_overheads.get(at).copied().unwrap_or_default() * 1e6
        };
        println!(
            "mcp proxy overhead p50 of each of {rounds} rounds: min {:.0} us, median {:.0} us, max {:.0} us",
            round(0.0),
            round(0.5),
            round(1.0)
        );
        println!(
            "mcp gateway CPU per call: {per_call:.0} us, of which the audit writer {writer:.0} us (clock-tick resolution)"
        );
        drop(gateway);
        drop(bare);
        drop(server);
        // Where the time goes: the two decisions of each call, as the audit trail timed them.
        let audit = duckdb::Connection::open(dir.path().join("audit.duckdb")).unwrap();
        let mut statement = audit
            .prepare(
                "SELECT action, quantile_cont(decide_us, 0.5), quantile_cont(total_ms, 0.5) * 1000, count(*),
                        quantile_cont(upstream_ms, 0.5) * 1000 FROM decisions
                 WHERE action IN ('mcp.tools.call', 'mcp.tools.result') GROUP BY 1 ORDER BY 1",
            )
            .unwrap();
        let rows = statement
            .query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, f64>(1)?,
                    r.get::<_, f64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (action, p50, since, n, upstream) = row.unwrap();
            // The server's answer, timed from Sluice's side of the hop.
            let upstream = upstream
                .map(|u| format!(", the server answered {u:.0} us after it was asked (p50)"))
                .unwrap_or_default();
            println!(
                "mcp decision {action}: policy evaluation p50 {p50:.0} us, decided {since:.0} us after the request arrived (p50){upstream}, over {n} decisions"
            );
        }
    });
}
