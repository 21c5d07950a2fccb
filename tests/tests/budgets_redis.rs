//! Budgets shared by replicas through a real Redis (`redis-server`, which `.ci/run`
//! installs): two gateway processes enforce one limit together, and a Redis that goes away
//! makes calls fail closed with 503 until it is back.

#![expect(clippy::unwrap_used, clippy::panic, reason = "tests fail loudly")]

use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{Value, json};
use sluice_tests::gateway_setup::{BURST_KEY, Gateway, METERED_KEY, assert_served_and_refused};
use sluice_tests::server::client;

/// A `redis-server` on a free loopback port, stopped when dropped.
struct Redis {
    child: Child,
    port: u16,
}

impl Redis {
    fn start_on(port: u16) -> Redis {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("redis-server must be installed (.ci/run installs it): {e}")
            });
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Redis { child, port }
    }

    fn start() -> Redis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Redis::start_on(port)
    }

    fn config(&self) -> String {
        format!(
            "budget_store: {{redis_url: \"redis://127.0.0.1:{}\"}}\n",
            self.port
        )
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chat(http: &Client, base: &str, key: &str) -> reqwest::blocking::Response {
    http.post(format!("{base}/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .unwrap()
}

#[test]
fn two_replicas_enforce_one_limit_together() {
    let redis = Redis::start();
    let gateway = Gateway::start_with(&redis.config());
    let replica = gateway.replica(&redis.config());
    let bases = [gateway.server.url(""), replica.url("")];
    // 40 concurrent calls spread over both replicas against 10 a day for the key.
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|i| {
                let base = bases[i % 2].clone();
                s.spawn(move || chat(&client(), &base, BURST_KEY).status().as_u16())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_served_and_refused(&statuses, 10, 30);
    assert_eq!(gateway.upstream.received_for("ok").len(), 10);
    // Either replica refuses the next call, and reports the shared count.
    let http = client();
    for base in &bases {
        assert_eq!(chat(&http, base, BURST_KEY).status(), 429);
        let rows: Vec<Value> = http
            .get(format!("{base}/admin/usage"))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let burst = rows
            .iter()
            .find(|r| r["id"] == "k-burst" && r["kind"] == "requests")
            .unwrap_or_else(|| panic!("{rows:?}"));
        assert_eq!(
            burst["used"].as_f64().unwrap() + burst["reserved"].as_f64().unwrap(),
            10.0
        );
        assert_eq!(burst["remaining"], 0.0);
    }
}

#[test]
fn redis_down_fails_calls_closed_and_they_recover_when_it_returns() {
    let redis = Redis::start();
    let port = redis.port;
    let gateway = Gateway::start_with(&redis.config());
    let base = gateway.server.url("");
    let http = client();
    assert_eq!(chat(&http, &base, METERED_KEY).status(), 200);
    drop(redis);
    let refused = chat(&http, &base, METERED_KEY);
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("budgets and rate limits cannot be checked") && message.contains("Redis"),
        "{message}"
    );
    assert_eq!(
        gateway.upstream.received_for("ok").len(),
        1,
        "nothing went upstream"
    );
    // Back on the same port (empty: this Redis keeps nothing on disk): calls flow again.
    let _redis = Redis::start_on(port);
    let started = Instant::now();
    loop {
        let status = chat(&http, &base, METERED_KEY).status().as_u16();
        if status == 200 {
            break;
        }
        assert_eq!(status, 503);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never recovered"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
