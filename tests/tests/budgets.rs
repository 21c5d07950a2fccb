//! Budgets and rate limits through the real gateway: refusals in each caller's format with
//! `retry-after`, all-or-nothing under concurrency, token estimates, and the meter's state
//! in the policies' input.

#![expect(clippy::unwrap_used, reason = "tests fail loudly")]

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use sluice_tests::gateway_setup::{BURST_KEY, CAPPED_KEY, Gateway, METERED_KEY, WATCHED_KEY};
use sluice_tests::server::client;

fn chat(http: &Client, gateway: &Gateway, key: &str, content: &str) -> Response {
    http.post(gateway.server.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}))
        .send()
        .unwrap()
}

/// The upstream calls the gateway made for `gpt-4o` (upstream model `ok`).
fn forwarded(gateway: &Gateway) -> usize {
    gateway.upstream.received_for("ok").len()
}

#[test]
fn a_request_limit_refuses_with_429_and_retry_after_in_the_callers_format() {
    let gateway = Gateway::start();
    let http = client();
    for _ in 0..3 {
        assert_eq!(chat(&http, &gateway, METERED_KEY, "hello").status(), 200);
    }
    let refused = chat(&http, &gateway, METERED_KEY, "hello");
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3_600).contains(&retry), "retry-after {retry}");
    let body: Value = refused.json().unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error", "{body}");
    assert_eq!(body["error"]["code"], "budget_or_rate_limit_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("requests limit of key `k-metered`") && message.contains("3 of 3"),
        "{message}"
    );
    // Anthropic's front door refuses in Anthropic's shape.
    let anthropic = http
        .post(gateway.server.url("/v1/messages"))
        .header("x-api-key", METERED_KEY)
        .json(&json!({"model": "gpt-4o", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .unwrap();
    assert_eq!(anthropic.status(), 429);
    assert!(anthropic.headers().contains_key("retry-after"));
    let body: Value = anthropic.json().unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    // Refused calls never reached the upstream.
    assert_eq!(forwarded(&gateway), 3);
}

#[test]
fn concurrent_calls_never_overrun_a_limit() {
    let gateway = Gateway::start();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..40)
            .map(|_| {
                let gateway = &gateway;
                s.spawn(move || {
                    chat(&client(), gateway, BURST_KEY, "hello")
                        .status()
                        .as_u16()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        10,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        30,
        "{statuses:?}"
    );
    assert_eq!(forwarded(&gateway), 10);
}

#[test]
fn a_token_budget_refuses_a_prompt_larger_than_what_is_left_and_counts_answers() {
    let gateway = Gateway::start();
    let http = client();
    // ~150 estimated tokens: more than the whole budget of 100.
    let refused = chat(&http, &gateway, CAPPED_KEY, &"word ".repeat(120));
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("tokens limit of key `k-capped`"),
        "{body}"
    );
    assert_eq!(forwarded(&gateway), 0, "refused before any upstream call");
    // Small calls go through, and their prompts and answers use the budget up.
    let mut served = 0;
    while chat(&http, &gateway, CAPPED_KEY, "a short question").status() == 200 {
        served += 1;
        assert!(served < 100, "the token budget never ran out");
    }
    assert!(served >= 2, "served {served}");
    assert_eq!(forwarded(&gateway), served);
}

#[test]
fn policies_see_the_meters_state_in_the_input() {
    let gateway = Gateway::start();
    let http = client();
    for _ in 0..2 {
        assert_eq!(chat(&http, &gateway, WATCHED_KEY, "hello").status(), 200);
    }
    // Two settled calls: the policy denies the third from `input.limits`.
    let denied = chat(&http, &gateway, WATCHED_KEY, "hello");
    assert_eq!(denied.status(), 403);
    let body: Value = denied.json().unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("k-watched has made 2 calls this hour"),
        "{body}"
    );
}
