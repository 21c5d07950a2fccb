//! Budget and rate-limit accounting: one call's reserve + settle against the in-memory
//! ledger, with a limit on each scope of its principal (key, user, team, org; cost, tokens
//! and requests), measured one by one for p50/p99, on one thread and with two threads
//! contending for the ledger. Target: ≤ 10 µs p50 in memory. Then the same through a real
//! `redis-server` on loopback (started here when it is installed): the state read and the
//! reservation a call waits for (settling runs off the call's path). Target: ≤ 1 ms p99.
//!
//! Run: `cargo bench -p sluice-server --bench meter`.

#![expect(
    clippy::unwrap_used,
    reason = "a benchmark harness stops loudly on a broken setup"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use sluice_server::meter::shared::{OnError, Store, StoreConfig};
use sluice_server::meter::{Kind, Ledger, LimitConfig, Scope, Subject, Usage, Window};

mod common;

fn limits() -> Vec<LimitConfig> {
    let limit = LimitConfig::every;
    vec![
        limit(Scope::Key, Kind::Requests, Window::Minute, 1e12),
        limit(Scope::Key, Kind::Tokens, Window::Minute, 1e12),
        limit(Scope::User, Kind::CostUsd, Window::Day, 1e12),
        limit(Scope::Team, Kind::CostUsd, Window::Month, 1e12),
        limit(Scope::Org, Kind::CostUsd, Window::Month, 1e12),
    ]
}

/// Per-call times of `calls` reserve + settle pairs by one thread.
fn run(ledger: &std::sync::Arc<Ledger>, thread: usize, calls: usize) -> Vec<Duration> {
    let subject = Subject {
        key: format!("key-{}", thread % 50),
        user: Some(format!("user-{}", thread % 20)),
        team: Some(format!("team-{}", thread % 4)),
        agent: None,
    };
    let usage = Usage {
        tokens: 1_200.0,
        cost_usd: 0.004,
    };
    (0..calls)
        .map(|i| {
            let now = 1_795_694_430 + (i / 1_000) as i64;
            let started = Instant::now();
            let reservation = ledger.reserve(black_box(&subject), usage, now).unwrap();
            reservation.settle(black_box(usage), now);
            started.elapsed()
        })
        .collect()
}

fn report(label: &str, mut samples: Vec<Duration>) {
    let (p50, p99) = common::p50_p99(&mut samples);
    println!(
        "meter {label}: reserve + settle p50 {:.2} us, p99 {:.2} us over {} calls (target p50 <= 10 us)",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        samples.len()
    );
}

fn main() {
    if !common::selected("meter") {
        return;
    }
    let calls = common::env_number("SLUICE_METER_CALLS", 200_000);
    let ledger = Ledger::new(limits());
    report("1 thread", run(&ledger, 0, calls));
    let ledger = Ledger::new(limits());
    let samples: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|t| {
                let ledger = &ledger;
                s.spawn(move || run(ledger, t, calls / 2))
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    report("2 threads", samples);
    tokenizer();
    redis(calls.min(20_000));
}

/// Exact prompt counting for an OpenAI model: a 4 KB prompt through `o200k_base`.
fn tokenizer() {
    let text: String = "The checkout service started timing out after the deploy; please summarise the root cause and list three contributing factors. "
        .repeat(32);
    let messages = [sluice_engine::input::Message {
        role: "user".to_string(),
        content: text.chars().take(4096).collect(),
        tool_calls: Vec::new(),
    }];
    // The encoding loads once per process.
    black_box(sluice_server::meter::tokens::prompt_tokens(
        "gpt-4o", &messages,
    ));
    let mut samples: Vec<Duration> = (0..2_000)
        .map(|_| {
            let started = Instant::now();
            black_box(sluice_server::meter::tokens::prompt_tokens(
                "gpt-4o",
                black_box(&messages),
            ));
            started.elapsed()
        })
        .collect();
    let (p50, p99) = common::p50_p99(&mut samples);
    println!(
        "meter tokenizer: exact count of a 4 KB prompt (gpt-4o, o200k_base) p50 {:.0} us, p99 {:.0} us",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
}

/// Reserve (state read + reservation) through Redis on loopback.
fn redis(calls: usize) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Ok(mut server) = std::process::Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .spawn()
    else {
        println!("meter redis: redis-server is not installed; skipped");
        return;
    };
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let store = Store::new(&StoreConfig {
        redis_url: Some(format!("redis://127.0.0.1:{port}")),
        on_error: OnError::FailClosed,
    })
    .unwrap();
    let ledger = Ledger::with_store(limits(), store, jiff::tz::TimeZone::UTC);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let subject = Subject {
        key: "key-1".to_string(),
        user: Some("user-1".to_string()),
        team: Some("team-1".to_string()),
        agent: None,
    };
    let usage = Usage {
        tokens: 1_200.0,
        cost_usd: 0.004,
    };
    let mut samples = Vec::with_capacity(calls);
    runtime.block_on(async {
        for _ in 0..calls {
            let now = sluice_server::meter::now();
            let started = Instant::now();
            let state = ledger.state_async(&subject, now).await.unwrap();
            let reservation = ledger
                .reserve_async(&subject, usage, now, None)
                .await
                .unwrap()
                .unwrap();
            samples.push(started.elapsed());
            black_box(state);
            reservation.settle(usage, now);
            // Lets the spawned settlement run, as the gateway's runtime would.
            tokio::task::yield_now().await;
        }
    });
    let (p50, p99) = common::p50_p99(&mut samples);
    println!(
        "meter redis (loopback): state + reserve p50 {:.0} us, p99 {:.0} us over {} calls (target p99 <= 1000 us)",
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6,
        samples.len()
    );
    let _ = server.kill();
    let _ = server.wait();
}
