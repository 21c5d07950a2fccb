//! The official OpenAI and Anthropic Python SDKs as clients: `tests/python/test_*_sdk.py`
//! run against the real `sluice serve` in front of the scripted upstream. What an SDK raises
//! (its exception class per status, its in-stream error) and what it can parse (the answers,
//! the streamed events) is part of the contract callers rely on, and only the SDK itself can
//! check it.
//!
//! The SDKs live in the venv of [`sluice_tests::python`]; a missing venv fails these tests
//! with the command to create it.

use sluice_tests::gateway_setup::{Gateway, MARKETING_KEY, PLATFORM_KEY, UPSTREAM_KEY};
use sluice_tests::python::{self, assert_installed, run_bounded, venv_python};

/// Starts a gateway and runs `tests/python/{script}` against it with the venv's `package`
/// SDK, giving it the gateway's URL at `base_path` (the base URL that SDK expects) and the
/// two keys. Fails with the script's output and the gateway log unless every check passed;
/// returns the gateway, for checks on what reached the upstream.
fn run_sdk_script(package: &str, script: &str, base_path: &str) -> Gateway {
    assert_installed(&venv_python(), package, package);
    let gateway = Gateway::start();
    let mut command = python::command(script);
    command
        .env("SLUICE_BASE_URL", gateway.server.url(base_path))
        .env("SLUICE_KEY", PLATFORM_KEY)
        .env("SLUICE_DENIED_KEY", MARKETING_KEY);
    let (success, stdout, stderr) = run_bounded(command);
    assert!(
        success,
        "the {package} SDK checks failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- gateway log\n{}",
        gateway.server.log()
    );
    println!("{stdout}");
    gateway
}

#[test]
fn the_openai_python_sdk_gets_answers_and_typed_errors() {
    let gateway = run_sdk_script("openai", "test_openai_sdk.py", "/v1");

    // The SDK's tool definitions reached the upstream as sent.
    let forwarded_tools = gateway
        .upstream
        .received_for("ok")
        .into_iter()
        .any(|r| r.body["tools"][0]["function"]["name"] == "get_weather");
    assert!(forwarded_tools, "the tool definitions were not forwarded");
}

#[test]
fn the_anthropic_python_sdk_gets_answers_and_typed_errors() {
    // The Anthropic SDK appends `/v1/messages` to its base URL itself.
    let gateway = run_sdk_script("anthropic", "test_anthropic_sdk.py", "");

    // The SDK's system prompt and tools reached both upstreams: as sent to the Anthropic
    // one, converted to OpenAI's shape for the OpenAI-compatible one.
    let received = gateway.upstream.received_for("ok");
    let native = received.iter().any(|r| {
        r.path == "/v1/messages"
            && r.body["system"] == "You are terse."
            && r.body["tools"][0]["name"] == "get_weather"
            && r.body["tools"][0]["input_schema"]["required"][0] == "city"
    });
    assert!(
        native,
        "the system prompt and tools did not reach the Anthropic upstream"
    );
    let converted = received.iter().any(|r| {
        r.path == "/v1/chat/completions"
            && r.body["messages"][0]["role"] == "system"
            && r.body["messages"][0]["content"] == "You are terse."
            && r.body["tools"][0]["function"]["name"] == "get_weather"
    });
    assert!(
        converted,
        "the system prompt and tools did not reach the OpenAI-compatible upstream"
    );

    // This SDK sends its key as `Authorization: Bearer`: the Anthropic upstream got the
    // gateway's own key and never the caller's.
    for request in gateway.upstream.received() {
        assert!(
            !request.headers.values().any(|v| v.contains(PLATFORM_KEY)),
            "the caller's key reached the upstream: {request:?}"
        );
        if request.path == "/v1/messages" {
            assert_eq!(request.headers["x-api-key"], UPSTREAM_KEY, "{request:?}");
        }
    }
}
