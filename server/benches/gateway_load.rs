//! Load harness for the data plane: the real `sluice` binary with the default policy repo
//! in front of a fast in-process upstream (a canned chat completion), measured against the
//! same upstream called directly, in the same run on the same machine.
//!
//! Reports:
//! - requests/s at saturation (closed loop, 64 concurrent callers), direct and through
//!   Sluice, and their ratio (target ≥ 0.7);
//! - latency p50/p99 at a fixed 2,000 requests/s (open loop), direct and through Sluice,
//!   and the overhead (targets: p50 ≤ 100 µs, p99 ≤ 1 ms);
//! - Sluice's resident memory idle and at the peak of 1,000 concurrent streaming calls
//!   (target ≤ 256 MB);
//! - p99 at 2,000 requests/s with the audit trail on and off, each on fresh gateways in
//!   alternating rounds (target: within 10%), and the gateway's CPU time per call on each
//!   side, with the audit writer thread's share (what recording costs, less noisy than p99);
//! - time to the first streamed token, direct and through Sluice's inspection window, when
//!   the first chunk ends on a space and when it ends mid-word (target: ≤ 1 ms added).
//!
//! Run: `cargo bench -p sluice-server --bench gateway_load` (`SLUICE_LOAD_SECS` sets the
//! length of each phase, default 5; `SLUICE_LOAD_PHASES=audit` runs only the audit
//! comparison, `ttft` only the time to first token; `SLUICE_AUDIT_BLOCKS` the comparison's
//! number of on-off-off-on blocks, default 4; `SLUICE_AUDIT_BATCH`, `SLUICE_AUDIT_FLUSH_MS`
//! and `SLUICE_AUDIT_MEMORY_MB` the audit batch size, flush interval and DuckDB memory
//! limit; `SLUICE_AUDIT_AA=1` runs the "on" rounds with the audit trail off too, which
//! measures the comparison's own noise).

#![expect(
    clippy::unwrap_used,
    reason = "a benchmark harness stops loudly on a broken setup"
)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::response::Response;
use axum::routing::post;
use tokio::sync::Semaphore;

mod common;

const KEY: &str = "sk-load-test";

const ANSWER: &str = r#"{"id":"c1","object":"chat.completion","created":0,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#;

const REQUEST: &str = r#"{"model":"gpt-4o-mini","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Say hello to the load test, briefly and politely."}]}"#;

/// Streams of the memory phase: chunks and the pause between them (a stream lasts ~2 s).
const STREAM_CHUNKS: usize = 20;
const STREAM_PAUSE: Duration = Duration::from_millis(100);

/// Time-to-first-token streams: a first chunk, then the rest after a pause, so that the
/// time to the first content byte says what the gateway adds before it.
const TTFT_PAUSE: Duration = Duration::from_millis(50);

async fn upstream(body: String) -> Response {
    if body.contains("\"stream\":true") && body.contains("ttft") {
        // `midword`: the first chunk ends inside a word, which the inspection window holds
        // until the next chunk shows where the word ends.
        let first = if body.contains("midword") {
            "Hel"
        } else {
            "Hello "
        };
        let chunks = [first, "lo there, ", "how can I help?"];
        let stream = futures_util::stream::unfold(0usize, move |i| async move {
            if i > chunks.len() {
                return None;
            }
            if i > 0 {
                tokio::time::sleep(TTFT_PAUSE).await;
            }
            let event = match chunks.get(i) {
                Some(text) => format!(
                    "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
                ),
                None => "data: [DONE]\n\n".to_string(),
            };
            Some((Ok::<_, std::io::Error>(event), i + 1))
        });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    if body.contains("\"stream\":true") {
        let stream = futures_util::stream::unfold(0usize, |i| async move {
            if i > STREAM_CHUNKS {
                return None;
            }
            tokio::time::sleep(STREAM_PAUSE).await;
            let event = if i == STREAM_CHUNKS {
                "data: [DONE]\n\n".to_string()
            } else {
                format!(
                    "data: {{\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"word{i} \"}},\"finish_reason\":null}}]}}\n\n"
                )
            };
            Some((Ok::<_, std::io::Error>(event), i + 1))
        });
        return Response::builder()
            .header("content-type", "text/event-stream")
            .body(Body::from_stream(stream))
            .unwrap();
    }
    Response::builder()
        .header("content-type", "application/json")
        .body(Body::from(ANSWER))
        .unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

use common::Sluice as Gateway;

fn start_gateway(dir: &Path, upstream: &str, audit: bool) -> Gateway {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let config = dir.join(if audit {
        "audit-on.yaml"
    } else {
        "audit-off.yaml"
    });
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:0\npolicy_dir: {}\nreload: {{poll_interval_ms: 0}}\nkeys:\n  - {{id: load, hash: \"{}\", user: load, team: platform}}\nproviders:\n  - {{name: fast, kind: openai_compatible, base_url: \"{upstream}/v1\"}}\nmodels:\n  gpt-4o-mini: [{{provider: fast}}]\naudit: {{enabled: {audit}, batch_size: {batch}, memory_limit_mb: {memory}, flush_interval_ms: {flush}}}\n",
            repo.join("policies").display(),
            sluice_server::gateway::keys::hash(KEY),
            batch = common::env_number(
                "SLUICE_AUDIT_BATCH",
                sluice_server::audit::AuditConfig::default().batch_size
            ),
            memory = common::env_number(
                "SLUICE_AUDIT_MEMORY_MB",
                sluice_server::audit::AuditConfig::default().memory_limit_mb
            ),
            flush = common::env_number(
                "SLUICE_AUDIT_FLUSH_MS",
                sluice_server::audit::AuditConfig::default().flush_interval_ms
            ),
        ),
    )
    .unwrap();
    common::spawn_sluice(&config)
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(2048)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

async fn call(client: &reqwest::Client, url: &str) -> bool {
    match client
        .post(url)
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(REQUEST)
        .send()
        .await
    {
        Ok(response) => {
            let ok = response.status().is_success();
            ok && response.bytes().await.is_ok()
        }
        Err(_) => false,
    }
}

/// Closed loop: `concurrency` callers as fast as they can for `length`; requests/s.
async fn saturate(url: &str, concurrency: usize, length: Duration) -> (f64, usize) {
    let client = client();
    let deadline = Instant::now() + length;
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let client = client.clone();
            let url = url.to_string();
            tokio::spawn(async move {
                let (mut ok, mut failed) = (0usize, 0usize);
                while Instant::now() < deadline {
                    if call(&client, &url).await {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                }
                (ok, failed)
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    for task in tasks {
        let (o, f) = task.await.unwrap();
        ok += o;
        failed += f;
    }
    (ok as f64 / started.elapsed().as_secs_f64(), failed)
}

/// Open loop: one call every `1/rate` s for `length`, latency from the scheduled start;
/// `(p50, p99, failures)`.
async fn fixed_rate(url: &str, rate: u32, length: Duration) -> (Duration, Duration, usize) {
    let client = client();
    // Warm the connection pool.
    for _ in 0..200 {
        call(&client, url).await;
    }
    let interval = Duration::from_secs(1) / rate;
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let count = (length.as_secs_f64() * f64::from(rate)) as usize;
    let limit = Arc::new(Semaphore::new(4096));
    let mut tasks = Vec::with_capacity(count);
    for _ in 0..count {
        let scheduled = ticker.tick().await;
        let client = client.clone();
        let url = url.to_string();
        let permit = Arc::clone(&limit).acquire_owned().await.unwrap();
        tasks.push(tokio::spawn(async move {
            let ok = call(&client, &url).await;
            drop(permit);
            (scheduled.elapsed(), ok)
        }));
    }
    let mut latencies = Vec::with_capacity(count);
    let mut failed = 0;
    for task in tasks {
        let (latency, ok) = task.await.unwrap();
        if ok {
            latencies.push(latency);
        } else {
            failed += 1;
        }
    }
    let (p50, p99) = common::p50_p99(&mut latencies);
    (p50, p99, failed)
}

/// Time to the first content byte of sequential streaming calls (median and p99), and the
/// median time to the response's headers, before which no content can arrive.
async fn ttft(
    url: &str,
    key: Option<&str>,
    midword: bool,
    calls: usize,
) -> (Duration, Duration, Duration) {
    let client = client();
    let marker = if midword { "ttft midword" } else { "ttft" };
    let body = format!(
        r#"{{"model":"gpt-4o-mini","stream":true,"messages":[{{"role":"user","content":"{marker}"}}]}}"#
    );
    let mut times = Vec::with_capacity(calls);
    let mut headers = Vec::with_capacity(calls);
    for _ in 0..calls {
        let started = Instant::now();
        let mut request = client
            .post(url)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let mut response = request.send().await.unwrap();
        headers.push(started.elapsed());
        let mut seen = String::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("\"content\":\"H") {
                times.push(started.elapsed());
                break;
            }
        }
        while response.chunk().await.unwrap().is_some() {}
    }
    let (p50, p99) = common::p50_p99(&mut times);
    (p50, p99, common::p50_p99(&mut headers).0)
}

/// 1,000 streaming calls at once; the gateway's peak RSS while they are open.
async fn streams(url: &str, pid: u32, count: usize) -> (u64, usize) {
    let client = client();
    let body = REQUEST.replace("\"messages\"", "\"stream\":true,\"messages\"");
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let client = client.clone();
            let url = url.to_string();
            let body = body.clone();
            tokio::spawn(async move {
                let Ok(response) = client
                    .post(&url)
                    .bearer_auth(KEY)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                else {
                    return false;
                };
                match response.text().await {
                    Ok(text) => text.contains("[DONE]"),
                    Err(_) => false,
                }
            })
        })
        .collect();
    let mut peak = 0;
    let sampler = async {
        loop {
            peak = peak.max(rss_kib(pid));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let mut completed = 0;
    tokio::select! {
        () = sampler => {}
        results = futures_util::future::join_all(tasks) => {
            completed = results.into_iter().filter(|r| matches!(r, Ok(true))).count();
        }
    }
    (peak, completed)
}

/// Measures and prints the time to the first token, direct and through Sluice.
async fn report_ttft(direct_url: &str, sluice_url: &str) {
    for midword in [false, true] {
        let (d50, d99, dh) = ttft(direct_url, None, midword, 100).await;
        let (s50, s99, sh) = ttft(sluice_url, Some(KEY), midword, 100).await;
        println!(
            "time to first token ({}): direct p50 {:.0} us p99 {:.0} us; through sluice p50 {:.0} us p99 {:.0} us; added p50 {:.0} us (target <= 1000), of which {:.0} us before the response headers and {:.0} us after them",
            if midword {
                "first chunk ends mid-word, next one 50 ms later"
            } else {
                "first chunk ends on a space"
            },
            micros(d50),
            micros(d99),
            micros(s50),
            micros(s99),
            micros(s50.saturating_sub(d50)),
            micros(sh.saturating_sub(dh)),
            micros(
                s50.saturating_sub(d50)
                    .saturating_sub(sh.saturating_sub(dh))
            ),
        );
    }
}

/// Measures and prints what recording costs ([`audit_cost`]).
async fn report_audit_cost(dir: &Path, upstream: &str, length: Duration) {
    let (on, off) = audit_cost(dir, upstream, length).await;
    let each = |rounds: &[Round]| {
        rounds
            .iter()
            .map(|r| format!("{:.0}", micros(r.p99)))
            .collect::<Vec<_>>()
            .join("/")
    };
    let side = |rounds: &[Round]| {
        let p50 = median(rounds.iter().map(|r| micros(r.p50)).collect());
        let p99 = median(rounds.iter().map(|r| micros(r.p99)).collect());
        let cpu = median(rounds.iter().map(|r| r.cpu_us).collect());
        let writer = median(rounds.iter().map(|r| r.writer_us).collect());
        (p50, p99, cpu, writer)
    };
    let (on50, on99, on_cpu, on_writer) = side(&on);
    let (off50, off99, off_cpu, _) = side(&off);
    println!(
        "audit at 2000 req/s (fresh gateways, {} rounds each, medians): on p50 {on50:.0} us p99 {on99:.0} us; off p50 {off50:.0} us p99 {off99:.0} us; p99 on/off {:.2} (target <= 1.10); p99 of each round on {} us, off {} us; gateway CPU per call on {on_cpu:.0} us (audit writer {on_writer:.0} us), off {off_cpu:.0} us",
        on.len(),
        on99 / off99,
        each(&on),
        each(&off),
    );
}

/// What recording costs: p50 and p99 at 2,000 requests/s through gateways with the audit
/// trail on and off. Each round has a fresh gateway, so that no round inherits another's
/// backlog (the saturation phases leave tens of thousands of rows to write) or a database
/// left by it, and the rounds alternate in blocks (on, off, off, on; four blocks, or
/// `SLUICE_AUDIT_BLOCKS`) so that drift in the machine falls on both sides. Each gateway
/// is warmed at the same rate first.
async fn audit_cost(dir: &Path, upstream: &str, length: Duration) -> (Vec<Round>, Vec<Round>) {
    let mut on = Vec::new();
    let mut off = Vec::new();
    let blocks: usize = common::env_number("SLUICE_AUDIT_BLOCKS", 4);
    let rounds = [true, false, false, true].repeat(blocks.max(1));
    let noise_only = common::env_number("SLUICE_AUDIT_AA", 0) == 1;
    if noise_only {
        println!("SLUICE_AUDIT_AA=1: both sides run with the audit trail off; the ratio is noise");
    }
    for (round, audit) in rounds.into_iter().enumerate() {
        let dir = dir.join(format!("audit-round-{round}"));
        std::fs::create_dir_all(&dir).unwrap();
        let gateway = start_gateway(&dir, upstream, audit && !noise_only);
        let url = format!("{}/v1/chat/completions", gateway.base);
        fixed_rate(&url, 2000, Duration::from_secs(1)).await;
        let cpu = common::GatewayCpu::now(gateway.child.id());
        let (p50, p99, failed) = fixed_rate(&url, 2000, length).await;
        assert_eq!(failed, 0, "calls failed at 2000 req/s, audit {audit}");
        let (cpu_us, writer_us) = cpu.per_call_since(2000.0 * length.as_secs_f64());
        if audit { &mut on } else { &mut off }.push(Round {
            p50,
            p99,
            cpu_us,
            writer_us,
        });
    }
    (on, off)
}

/// One round of [`audit_cost`]: its latency, and the gateway's CPU time per call (all of
/// it, and the audit writer's share).
struct Round {
    p50: Duration,
    p99: Duration,
    cpu_us: f64,
    writer_us: f64,
}

/// The median of `values` (zero when there are none).
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let at = |i: usize| values.get(i).copied().unwrap_or_default();
    if n % 2 == 1 {
        at(n / 2)
    } else {
        (at((n / 2).saturating_sub(1)) + at(n / 2)) / 2.0
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    if !common::selected("gateway_load") {
        return;
    }
    let secs: u64 = common::env_number("SLUICE_LOAD_SECS", 5);
    let length = Duration::from_secs(secs);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = format!("http://{}", listener.local_addr().unwrap());
        let app = Router::new().route("/v1/chat/completions", post(upstream));
        tokio::spawn(async move { axum::serve(listener, app).await });

        let dir = tempfile::tempdir().unwrap();
        let gateway = start_gateway(dir.path(), &upstream_addr, true);
        let pid = gateway.child.id();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = rss_kib(pid);

        let direct_url = format!("{upstream_addr}/v1/chat/completions");
        let sluice_url = format!("{}/v1/chat/completions", gateway.base);
        assert!(call(&client(), &sluice_url).await, "a call through Sluice fails");

        // `SLUICE_LOAD_PHASES=audit` measures only what recording costs, `ttft` only the
        // time to the first token.
        match std::env::var("SLUICE_LOAD_PHASES").as_deref() {
            Ok("audit") => return report_audit_cost(dir.path(), &upstream_addr, length).await,
            Ok("ttft") => return report_ttft(&direct_url, &sluice_url).await,
            _ => {}
        }
        let (direct_rps, direct_failed) = saturate(&direct_url, 64, length).await;
        let (sluice_rps, sluice_failed) = saturate(&sluice_url, 64, length).await;
        println!(
            "saturation (64 callers): direct {direct_rps:.0} req/s, through sluice {sluice_rps:.0} req/s, ratio {:.2} (target >= 0.70); failures {direct_failed}/{sluice_failed}",
            sluice_rps / direct_rps
        );

        let (d50, d99, df) = fixed_rate(&direct_url, 2000, length).await;
        let (s50, s99, sf) = fixed_rate(&sluice_url, 2000, length).await;
        println!(
            "at 2000 req/s: direct p50 {:.0} us p99 {:.0} us; through sluice p50 {:.0} us p99 {:.0} us; overhead p50 {:.0} us (target <= 100), p99 {:.0} us (target <= 1000); failures {df}/{sf}",
            micros(d50),
            micros(d99),
            micros(s50),
            micros(s99),
            micros(s50.saturating_sub(d50)),
            micros(s99.saturating_sub(d99)),
        );
        report_audit_cost(dir.path(), &upstream_addr, length).await;

        report_ttft(&direct_url, &sluice_url).await;

        // What the gateway holds before the streams: the audit rows of the phases above
        // that are still to be written weigh on its memory.
        let metrics = client()
            .get(format!("{}/metrics", gateway.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let rows = |outcome: &str| {
            let name = format!("sluice_audit_rows_total{{outcome=\"{outcome}\"}} ");
            metrics
                .lines()
                .find_map(|l| l.strip_prefix(name.as_str()))
                .unwrap_or("?")
                .to_string()
        };
        println!(
            "before the streams: RSS {:.1} MB; audit rows queued {}, written {}",
            rss_kib(pid) as f64 / 1024.0,
            rows("queued"),
            rows("written")
        );
        let (peak, completed) = streams(&sluice_url, pid, 1000).await;
        println!(
            "memory: idle {:.1} MB, peak with 1000 concurrent streams {:.1} MB (target <= 256 MB); {completed}/1000 streams completed",
            idle as f64 / 1024.0,
            peak as f64 / 1024.0
        );
    });
}
