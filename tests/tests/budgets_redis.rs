//! Budgets shared by replicas through a real Redis (`redis-server`, which `.ci/run`
//! installs): two gateway processes enforce one limit together, and a Redis that goes away
//! makes calls fail closed with 503 until it is back. Rolling windows kept in Redis age out
//! bucket by bucket as the in-memory ones do.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "tests fail loudly"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::{Value, json};
use sluice_server::meter::shared::{OnError, Store, StoreConfig};
use sluice_server::meter::{self, Kind, Ledger, LimitConfig, Scope, Subject, Usage, Window};
use sluice_tests::gateway_setup::{BURST_KEY, Gateway, METERED_KEY, assert_served_and_refused};
use sluice_tests::redis::Redis;
use sluice_tests::server::client;

/// The config that keeps budgets in `redis`.
fn budget_store(redis: &Redis) -> String {
    format!("budget_store: {{redis_url: \"{}\"}}\n", redis.url())
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
    let gateway = Gateway::start_with(&budget_store(&redis));
    let replica = gateway.replica(&budget_store(&redis));
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
    // Either replica refuses the next call, and reports the shared count, found among
    // many other keys (sessions share the keyspace): the report walks it page by page.
    let filled = redis.command(&[
        "EVAL",
        "for i = 1, 5000 do redis.call('SET', 'sluice:session:filler:' .. i, 'x') end return 1",
        "0",
    ]);
    assert_eq!(filled, ":1\r\n");
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
    let gateway = Gateway::start_with(&budget_store(&redis));
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

/// What `ledger` holds for `who` at `at` once Redis shows `expected` (settling runs off the
/// caller's path): fails after 10 s of anything else.
async fn settled_to(ledger: &Ledger, who: &Subject, at: i64, expected: f64) {
    let started = Instant::now();
    loop {
        let used = ledger.state_async(who, at).await.unwrap()[0].used;
        if used == expected {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "used {used} at {at}, expected {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[test]
fn a_rolling_window_in_redis_is_shared_and_ages_out_bucket_by_bucket() {
    const HOUR: i64 = 3_600;
    let redis = Redis::start();
    let store = || {
        Store::new(&StoreConfig {
            redis_url: Some(redis.url()),
            on_error: OnError::FailClosed,
        })
        .unwrap()
    };
    let limits = vec![LimitConfig::every(
        Scope::Key,
        Kind::CostUsd,
        Window::RollingHours(5),
        10.0,
    )];
    // Two replicas' ledgers on one Redis.
    let a = Ledger::with_store(limits.clone(), store(), jiff::tz::TimeZone::UTC);
    let b = Ledger::with_store(limits, store(), jiff::tz::TimeZone::UTC);
    let who = Subject {
        key: "k-rolling".into(),
        ..Subject::default()
    };
    let cost = |dollars: f64| Usage {
        tokens: 0.0,
        cost_usd: dollars,
    };
    // Redis expires keys by its own clock: the simulated times start now.
    let base = meter::now();
    let bucket0 = base.div_euclid(300) * 300;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let spend = |ledger: &Arc<Ledger>, at: i64, dollars: f64| {
            let ledger = Arc::clone(ledger);
            let who = who.clone();
            async move {
                let reservation = ledger
                    .reserve_async(&who, cost(0.0), at, None)
                    .await
                    .unwrap()
                    .unwrap();
                reservation.settle(cost(dollars), at);
            }
        };
        spend(&a, base, 6.0).await;
        settled_to(&b, &who, base, 6.0).await;
        spend(&b, base + 2 * HOUR, 3.0).await;
        settled_to(&a, &who, base + 2 * HOUR, 9.0).await;

        let refused = a
            .reserve_async(&who, cost(1.5), base + 4 * HOUR, None)
            .await
            .unwrap()
            .unwrap_err();
        assert_eq!(refused.limit.used, 9.0);
        assert_eq!(refused.limit.window, "rolling_5h");
        let bucket_end = (base + 4 * HOUR).div_euclid(300) * 300 + 300;
        assert_eq!(
            refused.retry_after_s,
            u64::try_from(bucket_end - base - 4 * HOUR).unwrap()
        );
        // The first spend counts until five hours after its bucket began, not longer.
        settled_to(&b, &who, bucket0 + 5 * HOUR - 1, 9.0).await;
        settled_to(&b, &who, bucket0 + 5 * HOUR, 3.0).await;
        spend(&b, bucket0 + 5 * HOUR, 7.0).await;
        settled_to(&a, &who, bucket0 + 5 * HOUR, 10.0).await;

        // Settling deleted the bucket that left the window; the usage report counts only
        // what is still in it.
        let fields: Vec<String> = store()
            .unwrap()
            .list()
            .await
            .unwrap()
            .into_iter()
            .flat_map(|(_, fields)| fields.into_iter().map(|(name, _)| name))
            .collect();
        assert!(!fields.contains(&format!("b{bucket0}")), "{fields:?}");
        assert!(
            fields.contains(&format!("b{}", bucket0 + 5 * HOUR)),
            "{fields:?}"
        );
        let rows = a.usage_async(base + 7 * HOUR + 300).await.unwrap();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!((rows[0].window.as_str(), rows[0].used), ("rolling_5h", 7.0));
    });
}

#[test]
fn a_port_another_redis_holds_is_not_taken_for_ones_own() {
    // Two tests can find the same port free at once; the second server then fails to bind,
    // and the first one's answers must not be taken for its own.
    let first = Redis::start();
    let second = std::panic::catch_unwind(|| Redis::start_on(first.port));
    assert!(second.is_err());
    assert!(first.command(&["PING"]).contains("PONG"));
}
