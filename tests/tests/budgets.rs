//! Budgets and rate limits through the real gateway: refusals in each caller's format with
//! `retry-after`, all-or-nothing under concurrency, token estimates, and the meter's state
//! in the policies' input.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "tests fail loudly"
)]

use reqwest::blocking::{Client, Response};
use serde_json::{Value, json};
use sluice_tests::gateway_setup::{
    BURST_KEY, CAPPED_KEY, Gateway, METERED_KEY, PARALLEL_KEY, SPENDER_KEY, THROTTLED_KEY,
    WATCHED_KEY, assert_served_and_refused,
};
use sluice_tests::server::client;

fn chat(http: &Client, gateway: &Gateway, key: &str, content: &str) -> Response {
    http.post(gateway.server.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": content}]}))
        .send()
        .unwrap()
}

/// The message of an OpenAI-format error answer.
fn error_message(response: Response) -> String {
    let body: Value = response.json().unwrap();
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an OpenAI error: {body}"))
        .to_string()
}

/// The upstream calls the gateway made for `gpt-4o` (upstream model `ok`).
fn forwarded(gateway: &Gateway) -> usize {
    gateway.upstream.received_for("ok").len()
}

#[test]
fn a_request_limit_refuses_with_429_and_retry_after_in_the_callers_format() {
    let gateway = Gateway::start();
    let http = client();
    let header =
        |response: &Response, name: &str| response.headers()[name].to_str().unwrap().to_string();
    for remaining in ["2", "1", "0"] {
        let served = chat(&http, &gateway, METERED_KEY, "hello");
        assert_eq!(served.status(), 200);
        // OpenAI's rate-limit headers, for the key's request limit.
        assert_eq!(header(&served, "x-ratelimit-limit-requests"), "3");
        assert_eq!(header(&served, "x-ratelimit-remaining-requests"), remaining);
        let reset = header(&served, "x-ratelimit-reset-requests");
        assert!(reset.ends_with('s') && reset.len() >= 2, "{reset}");
    }
    let refused = chat(&http, &gateway, METERED_KEY, "hello");
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "x-ratelimit-remaining-requests"), "0");
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
    assert_eq!(
        anthropic.headers()["anthropic-ratelimit-requests-remaining"],
        "0"
    );
    let reset = anthropic.headers()["anthropic-ratelimit-requests-reset"]
        .to_str()
        .unwrap();
    assert!(
        time::OffsetDateTime::parse(reset, &time::format_description::well_known::Rfc3339).is_ok(),
        "{reset}"
    );
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
    assert_served_and_refused(&statuses, 10, 30);
    assert_eq!(forwarded(&gateway), 10);
}

#[test]
fn a_token_budget_refuses_a_prompt_larger_than_what_is_left_and_counts_answers() {
    let gateway = Gateway::start();
    let http = client();
    // ~150 estimated tokens: more than the whole budget of 100.
    let refused = chat(&http, &gateway, CAPPED_KEY, &"word ".repeat(120));
    assert_eq!(refused.status(), 429);
    let message = error_message(refused);
    assert!(
        message.contains("tokens limit of key `k-capped`"),
        "{message}"
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
    let message = error_message(denied);
    assert!(
        message.contains("k-watched has made 2 calls this hour"),
        "{message}"
    );
}

/// `GET /admin/usage` of the gateway (loopback needs no admin token).
fn usage(gateway: &Gateway) -> Vec<Value> {
    client()
        .get(gateway.server.url("/admin/usage"))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn row<'a>(rows: &'a [Value], scope: &str, id: &str, kind: &str) -> &'a Value {
    rows.iter()
        .find(|r| r["scope"] == scope && r["id"] == id && r["kind"] == kind)
        .unwrap_or_else(|| panic!("no {scope} {id} {kind} in {rows:?}"))
}

/// The counter once no call holds a reservation on it (a stream's call settles when its
/// relay ends, just after the caller has read the last event).
fn settled(gateway: &Gateway, scope: &str, id: &str, kind: &str) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let state = row(&usage(gateway), scope, id, kind).clone();
        if state["reserved"] == 0.0 {
            return state;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never settled: {state}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn usage_shows_spend_and_what_is_left_over_http_and_in_the_cli() {
    let gateway = Gateway::start();
    let http = client();
    for _ in 0..2 {
        assert_eq!(
            chat(&http, &gateway, METERED_KEY, "hello there").status(),
            200
        );
    }
    let rows = usage(&gateway);
    let requests = row(&rows, "key", "k-metered", "requests");
    assert_eq!(requests["used"], 2.0);
    assert_eq!(requests["reserved"], 0.0);
    assert_eq!(requests["remaining"], 1.0);
    let tokens = row(&rows, "team", "metered", "tokens");
    assert!(tokens["used"].as_f64().unwrap() >= 2.0 * 3.0, "{tokens}");

    let output = std::process::Command::new(sluice_tests::sluice_bin())
        .args(["usage", "--url", &gateway.server.url("")])
        .output()
        .unwrap();
    let (stdout, stderr) = sluice_tests::text(&output);
    assert!(output.status.success(), "{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.starts_with("key") && l.contains("k-metered"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let cells: Vec<&str> = line.split_whitespace().collect();
    // scope id kind window used reserved limit remaining resets
    assert_eq!(
        &cells[..8],
        ["key", "k-metered", "requests", "hour", "2", "0", "3", "1"]
    );
    // A gateway that is not there is a clear error.
    let output = std::process::Command::new(sluice_tests::sluice_bin())
        .args(["usage", "--url", "http://127.0.0.1:1"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        sluice_tests::text(&output)
            .1
            .contains("cannot reach the gateway")
    );
}

#[test]
fn a_stream_the_caller_walks_away_from_is_still_settled() {
    use std::io::Read as _;
    let gateway = Gateway::start();
    let mut stream = client()
        .post(gateway.server.url("/v1/chat/completions"))
        .bearer_auth(WATCHED_KEY)
        .json(&json!({"model": "trickle", "stream": true,
            "messages": [{"role": "user", "content": "count slowly"}]}))
        .send()
        .unwrap();
    assert_eq!(stream.status(), 200);
    let mut start = [0u8; 256];
    assert!(stream.read(&mut start).unwrap() > 0);
    // In flight: the prompt's estimate is reserved.
    let tokens = |rows: &[Value]| row(rows, "team", "metered", "tokens").clone();
    assert!(tokens(&usage(&gateway))["reserved"].as_f64().unwrap() > 0.0);
    drop(stream);
    // The gateway notices at its next write (chunks come every 50 ms) and settles.
    let settled = settled(&gateway, "team", "metered", "tokens");
    // The prompt's tokens and the words that went by before the caller left, not the
    // whole 40-word answer.
    let used = settled["used"].as_f64().unwrap();
    assert!(used >= 3.0, "{settled}");
    assert!(used < 3.0 + 40.0 * 6.0 / 4.0, "{settled}");
}

#[test]
fn a_cost_budget_is_spent_at_the_deployments_price_and_matches_the_audit_trail() {
    let mut gateway = Gateway::start();
    let http = client();
    let mut served = 0;
    loop {
        let response = chat(&http, &gateway, SPENDER_KEY, "hello");
        if response.status() == 429 {
            let message = error_message(response);
            assert!(
                message.contains("cost_usd limit of key `k-spender`"),
                "{message}"
            );
            break;
        }
        assert_eq!(response.status(), 200);
        served += 1;
        assert!(served < 50, "the $1 budget never ran out");
    }
    // The upstream reports 5 prompt and 3 completion tokens: each call costs exactly
    // 5 × $0.01 + 3 × $0.02 = $0.11, settled from the upstream's counts. A call reserves its
    // prompt's estimated cost ("hello": 2 tokens, $0.02) first, so the tenth ($0.99 spent)
    // is refused.
    assert_eq!(served, 9);
    let spent = row(&usage(&gateway), "key", "k-spender", "cost_usd")["used"]
        .as_f64()
        .unwrap();
    assert!((spent - 0.99).abs() < 1e-9, "spent {spent}");
    // The audit trail's response rows carry the same costs, to the cent and below.
    assert!(gateway.server.terminate().success());
    let connection =
        duckdb::Connection::open(gateway.dir.path().join("sluice-audit.duckdb")).unwrap();
    let (rows, audited, cached, reasoning, input, output): (i64, f64, i64, i64, i64, i64) =
        connection
            .query_row(
                "SELECT count(*), sum(cost_usd), sum(cached_tokens), sum(reasoning_tokens), \
                 sum(input_tokens), sum(output_tokens) \
                 FROM decisions WHERE key_id = 'k-spender' AND surface = 'response' AND allow",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                },
            )
            .unwrap();
    assert_eq!(rows, served as i64);
    // The answer's row carries the whole call's tokens as the upstream counted them, so the
    // cost query of examples/compliance sums them from response rows alone.
    assert_eq!((input, output), (5 * served as i64, 3 * served as i64));
    // The upstream reports 2 of the 5 prompt tokens as cached and 1 of the 3 completion
    // tokens as reasoning; the answer's row says so.
    assert_eq!((cached, reasoning), (2 * served as i64, served as i64));
    assert!(
        (audited - spent).abs() < 1e-9,
        "audited {audited}, metered {spent}"
    );
}

#[test]
fn spend_survives_a_restart() {
    let mut gateway = Gateway::start();
    let http = client();
    for _ in 0..2 {
        assert_eq!(chat(&http, &gateway, METERED_KEY, "hello").status(), 200);
    }
    gateway.restart();
    let rows = usage(&gateway);
    assert_eq!(row(&rows, "key", "k-metered", "requests")["used"], 2.0);
    assert_eq!(chat(&http, &gateway, METERED_KEY, "hello").status(), 200);
    assert_eq!(chat(&http, &gateway, METERED_KEY, "hello").status(), 429);
    // A state file that cannot be read stops the gateway with its name rather than
    // starting from zero.
    assert!(gateway.server.terminate().success());
    std::fs::write(gateway.dir.path().join("sluice-budgets.json"), "not json").unwrap();
    let config = gateway.dir.path().join("sluice.yaml");
    let (status, log) = sluice_tests::server::run_until_exit_with_env(
        &["serve".as_ref(), "--config".as_ref(), config.as_os_str()],
        sluice_tests::gateway_setup::ENV,
    );
    assert!(!status.success());
    assert!(
        log.contains("sluice-budgets.json") && log.contains("not valid"),
        "{log}"
    );
}

#[test]
fn a_concurrency_limit_refuses_a_third_call_while_two_stream() {
    use std::io::Read as _;
    let gateway = Gateway::start();
    let http = client();
    let open_stream = || {
        let mut stream = http
            .post(gateway.server.url("/v1/chat/completions"))
            .bearer_auth(PARALLEL_KEY)
            .json(&json!({"model": "trickle", "stream": true,
                "messages": [{"role": "user", "content": "count slowly"}]}))
            .send()
            .unwrap();
        assert_eq!(stream.status(), 200);
        let mut start = [0u8; 64];
        assert!(stream.read(&mut start).unwrap() > 0);
        stream
    };
    let (first, second) = (open_stream(), open_stream());
    let refused = chat(&http, &gateway, PARALLEL_KEY, "one more");
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let message = error_message(refused);
    assert!(
        message.contains("concurrent limit of key `k-parallel`"),
        "{message}"
    );
    // A stream that ends, even by the caller walking away, gives its place back.
    drop(first);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let response = chat(&http, &gateway, PARALLEL_KEY, "now?");
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 429);
        assert!(
            std::time::Instant::now() < deadline,
            "the place never came back"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(second);
}

#[test]
fn a_policys_throttle_obligation_is_enforced_per_key() {
    let gateway = Gateway::start();
    let http = client();
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            chat(&http, &gateway, THROTTLED_KEY, "hello")
                .status()
                .as_u16(),
        );
    }
    // A minute boundary between the calls would give the third one room: allow for it.
    if statuses[2] == 200 {
        statuses.push(
            chat(&http, &gateway, THROTTLED_KEY, "hello")
                .status()
                .as_u16(),
        );
        statuses.push(
            chat(&http, &gateway, THROTTLED_KEY, "hello")
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses.last(), Some(&429), "{statuses:?}");
    let refused = chat(&http, &gateway, THROTTLED_KEY, "hello");
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["x-ratelimit-limit-requests"], "2");
    let message = error_message(refused);
    assert!(
        message.contains("requests limit of key `k-throttled`"),
        "{message}"
    );
}

#[test]
fn a_streamed_answer_is_settled_from_the_upstreams_usage_the_caller_never_asked_for() {
    let gateway = Gateway::start();
    let body = client()
        .post(gateway.server.url("/v1/chat/completions"))
        .bearer_auth(SPENDER_KEY)
        .json(&json!({"model": "gpt-4o", "stream": true,
            "messages": [{"role": "user", "content": "hello"}]}))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(body.contains("[DONE]"), "{body}");
    // Sluice asked the upstream for usage to settle the call, and kept the chunk to itself.
    assert!(!body.contains("\"usage\""), "{body}");
    let sent = gateway.upstream.received_for("ok");
    assert_eq!(sent[0].body["stream_options"]["include_usage"], true);
    // 5 prompt and 3 completion tokens as the upstream reported them: $0.11.
    let spent = settled(&gateway, "key", "k-spender", "cost_usd")["used"]
        .as_f64()
        .unwrap();
    assert!((spent - 0.11).abs() < 1e-9, "spent {spent}");
}
