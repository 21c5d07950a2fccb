"""The official `anthropic` Python SDK against a running `sluice serve`.

Run by tests/tests/sdk.rs, which starts the gateway in front of the scripted upstream
(tests/src/upstream.rs) with the config of tests/src/gateway_setup.rs, and sets:

- SLUICE_BASE_URL: the gateway's root URL, e.g. http://127.0.0.1:PORT (the SDK appends
  /v1/messages itself)
- SLUICE_KEY: a key of team `platform`, which may use every alias
- SLUICE_DENIED_KEY: a key of team `marketing`, which policy denies `gpt-4o`

`claude-sonnet` is served by an Anthropic upstream (passed through); `gpt-4o` by an
OpenAI-compatible one (converted both ways by the gateway).

Each check prints one line; the script runs them all and exits 1 if any failed.
"""

import os
import sys
import traceback

import anthropic

TIMEOUT_SECONDS = 20
MAX_TOKENS = 64


def env(name):
    value = os.environ.get(name)
    if not value:
        sys.exit(f"{name} is not set: run this through `cargo test -p sluice-tests --test sdk`")
    return value


BASE_URL = env("SLUICE_BASE_URL")
KEY = env("SLUICE_KEY")
DENIED_KEY = env("SLUICE_DENIED_KEY")


def client(key=KEY):
    # No retries: each check must see the gateway's first answer, not a retried one.
    return anthropic.Anthropic(
        base_url=BASE_URL, api_key=key, max_retries=0, timeout=TIMEOUT_SECONDS
    )


def user(text):
    return [{"role": "user", "content": text}]


def create(model, text, key=KEY, **extra):
    return client(key).messages.create(
        model=model, max_tokens=MAX_TOKENS, messages=user(text), **extra
    )


def expect(condition, message):
    if not condition:
        raise AssertionError(message)


def expect_error(error_class, call, *needles):
    """Runs `call`, which must raise `error_class` naming every needle; returns the error."""
    try:
        result = call()
    except error_class as error:
        for needle in needles:
            expect(
                needle in str(error),
                f"{type(error).__name__} should mention {needle!r}: {error}",
            )
        return error
    except anthropic.AnthropicError as error:
        raise AssertionError(
            f"expected {error_class.__name__}, got {type(error).__name__}: {error}"
        ) from error
    raise AssertionError(f"expected {error_class.__name__}, got a result: {result!r}")


def text_of(message):
    return "".join(block.text for block in message.content if block.type == "text")


def check_message(model, prompt):
    message = create(model, prompt)
    expect(message.type == "message", f"type {message.type!r}")
    expect(message.role == "assistant", f"role {message.role!r}")
    expect(text_of(message) == f"echo: {prompt}", f"content {message.content!r}")
    return message


def check_native():
    message = check_message("claude-sonnet", "hello native")
    expect(message.stop_reason == "end_turn", f"stop_reason {message.stop_reason!r}")
    expect(
        (message.usage.input_tokens, message.usage.output_tokens) == (5, 3),
        f"usage {message.usage!r}",
    )


def check_cross_format():
    message = check_message("gpt-4o", "hello cross")
    expect(message.stop_reason == "end_turn", f"stop_reason {message.stop_reason!r}")
    # The OpenAI upstream's prompt_tokens 5 (2 of them cached) and completion_tokens 3, in
    # Anthropic's names: cache reads are not part of input_tokens there.
    usage = message.usage
    expect(
        (usage.input_tokens, usage.cache_read_input_tokens, usage.output_tokens) == (3, 2, 3),
        f"usage {usage!r}",
    )


def check_stream(model):
    prompt = f"stream {model}"
    with client().messages.stream(
        model=model, max_tokens=MAX_TOKENS, messages=user(prompt)
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    expect(text == f"echo: {prompt}", f"joined text_stream {text!r}")
    expect(text_of(final) == text, f"final message content {final.content!r}")
    expect(final.stop_reason == "end_turn", f"final stop_reason {final.stop_reason!r}")
    expect(final.usage.output_tokens > 0, f"final usage {final.usage!r}")


def check_system_and_tools():
    tools = [
        {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        }
    ]
    for model in ["claude-sonnet", "gpt-4o"]:
        message = create(
            model,
            "weather in Oslo?",
            system="You are terse.",
            tools=tools,
            tool_choice={"type": "auto"},
        )
        expect(
            text_of(message) == "echo: weather in Oslo?",
            f"{model}: content {message.content!r}",
        )


def check_prompt_denied():
    error = expect_error(
        anthropic.PermissionDeniedError,
        lambda: create("gpt-4o", "hi", key=DENIED_KEY),
        "marketing may not use gpt-4o",
    )
    expect(error.status_code == 403, f"status {error.status_code}")
    expect(error.body["type"] == "error", f"body {error.body!r}")
    expect(error.body["error"]["type"] == "permission_error", f"body {error.body!r}")


def check_wrong_key():
    error = expect_error(
        anthropic.AuthenticationError,
        lambda: create("gpt-4o", "hi", key="sk-wrong"),
        "invalid API key",
    )
    expect(error.body["error"]["type"] == "authentication_error", f"body {error.body!r}")


def check_unknown_model():
    error = expect_error(
        anthropic.NotFoundError, lambda: create("nope", "hi"), "`nope`"
    )
    expect(error.status_code == 404, f"status {error.status_code}")


def check_upstream_rate_limited():
    error = expect_error(anthropic.RateLimitError, lambda: create("busy", "hi"), "429")
    expect(error.body["error"]["type"] == "rate_limit_error", f"body {error.body!r}")
    retry_after = error.response.headers.get("retry-after")
    expect(retry_after == "7", f"retry-after {retry_after!r}")


def check_stream_denied_by_response_policy():
    def read_all():
        with client().messages.stream(
            model="claude-leaky", max_tokens=MAX_TOKENS, messages=user("tell me")
        ) as stream:
            return "".join(stream.text_stream)

    # The stream has started (200), so the deny arrives as an `error` event: the SDK raises
    # an APIStatusError carrying that event while iterating.
    error = expect_error(anthropic.APIError, read_all, "launch code")
    expect(
        isinstance(error.body, dict) and error.body.get("type") == "error",
        f"body {error.body!r}",
    )
    expect(error.body["error"]["type"] == "permission_error", f"body {error.body!r}")


def check_count_tokens():
    count = client().messages.count_tokens(
        model="gpt-4o", messages=user("count these words please")
    )
    expect(count.input_tokens > 0, f"input_tokens {count.input_tokens!r}")


CHECKS = [
    ("message via an Anthropic upstream", check_native),
    ("message via an OpenAI-compatible upstream, with usage", check_cross_format),
    ("stream via an Anthropic upstream", lambda: check_stream("claude-sonnet")),
    ("stream via an OpenAI-compatible upstream", lambda: check_stream("gpt-4o")),
    ("message with system prompt and tools", check_system_and_tools),
    ("prompt denied by policy -> PermissionDeniedError", check_prompt_denied),
    ("wrong key -> AuthenticationError", check_wrong_key),
    ("unknown model -> NotFoundError", check_unknown_model),
    ("upstream 429 -> RateLimitError", check_upstream_rate_limited),
    ("stream denied by response policy -> APIError", check_stream_denied_by_response_policy),
    ("count_tokens", check_count_tokens),
]


def main():
    print(f"anthropic {anthropic.__version__} against {BASE_URL}")
    failed = []
    for name, check in CHECKS:
        try:
            check()
        except Exception as error:  # noqa: BLE001 - report every check, then fail
            failed.append(name)
            print(f"FAIL {name}: {type(error).__name__}: {error}")
            traceback.print_exc(file=sys.stdout)
        else:
            print(f"ok   {name}")
    if failed:
        print(f"{len(failed)} of {len(CHECKS)} checks failed: {', '.join(failed)}")
        return 1
    print(f"all {len(CHECKS)} checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
