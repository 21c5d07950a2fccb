"""The official `openai` Python SDK against a running `sluice serve`.

Run by tests/tests/sdk.rs, which starts the gateway in front of the scripted upstream
(tests/src/upstream.rs) with the config of tests/src/gateway_setup.rs, and sets:

- SLUICE_BASE_URL: the gateway's OpenAI base URL, e.g. http://127.0.0.1:PORT/v1
- SLUICE_KEY: a key of team `platform`, which may use every alias
- SLUICE_DENIED_KEY: a key of team `marketing`, which policy denies `gpt-4o`

Each check prints one line; the script runs them all and exits 1 if any failed.
"""

import os
import sys
import traceback

import openai

TIMEOUT_SECONDS = 20


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
    return openai.OpenAI(
        base_url=BASE_URL, api_key=key, max_retries=0, timeout=TIMEOUT_SECONDS
    )


def user(text):
    return [{"role": "user", "content": text}]


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
    except openai.OpenAIError as error:
        raise AssertionError(
            f"expected {error_class.__name__}, got {type(error).__name__}: {error}"
        ) from error
    raise AssertionError(f"expected {error_class.__name__}, got a result: {result!r}")


def check_chat():
    answer = client().chat.completions.create(model="gpt-4o", messages=user("hello sdk"))
    content = answer.choices[0].message.content
    expect(content == "echo: hello sdk", f"content {content!r}")
    expect(answer.usage is not None and answer.usage.total_tokens == 8, f"usage {answer.usage!r}")


def check_stream():
    stream = client().chat.completions.create(
        model="gpt-4o",
        messages=user("stream please"),
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    usage = None
    for chunk in stream:
        for choice in chunk.choices:
            text += choice.delta.content or ""
        if chunk.usage is not None:
            usage = chunk.usage
    expect(text == "echo: stream please", f"joined deltas {text!r}")
    expect(usage is not None, "no usage chunk arrived")
    expect(usage.total_tokens == 8, f"usage {usage!r}")


def check_tools():
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
        }
    ]
    answer = client().chat.completions.create(
        model="gpt-4o", messages=user("weather in Oslo?"), tools=tools, tool_choice="auto"
    )
    content = answer.choices[0].message.content
    expect(content == "echo: weather in Oslo?", f"content {content!r}")


def check_prompt_denied():
    error = expect_error(
        openai.PermissionDeniedError,
        lambda: client(DENIED_KEY).chat.completions.create(model="gpt-4o", messages=user("hi")),
        "marketing may not use gpt-4o",
    )
    expect(error.status_code == 403, f"status {error.status_code}")
    expect(error.code == "policy_denied", f"code {error.code!r}")


def check_unknown_model():
    error = expect_error(
        openai.NotFoundError,
        lambda: client().chat.completions.create(model="nope", messages=user("hi")),
        "`nope`",
    )
    expect(error.status_code == 404, f"status {error.status_code}")


def check_wrong_key():
    expect_error(
        openai.AuthenticationError,
        lambda: client("sk-wrong").chat.completions.create(model="gpt-4o", messages=user("hi")),
        "invalid API key",
    )


def check_upstream_rate_limited():
    error = expect_error(
        openai.RateLimitError,
        lambda: client().chat.completions.create(model="busy", messages=user("hi")),
        "429",
    )
    retry_after = error.response.headers.get("retry-after")
    expect(retry_after == "7", f"retry-after {retry_after!r}")


def check_upstream_broken():
    error = expect_error(
        openai.InternalServerError,
        lambda: client().chat.completions.create(model="broken", messages=user("hi")),
        "500",
    )
    expect(error.status_code == 502, f"status {error.status_code}")


def check_stream_denied_by_response_policy():
    stream = client().chat.completions.create(model="leaky", messages=user("tell me"), stream=True)
    # The stream has started (200), so the deny arrives as an error event: the SDK raises
    # a plain APIError while iterating, not an APIStatusError.
    error = expect_error(openai.APIError, lambda: list(stream), "launch code")
    expect(
        not isinstance(error, openai.APIStatusError),
        f"expected an in-stream error, got {type(error).__name__}",
    )


def check_embeddings():
    answer = client().embeddings.create(model="text-embedding-3-small", input="hello")
    embedding = answer.data[0].embedding
    expect(embedding == [0.5, 0.5], f"embedding {embedding!r}")


def check_models_follow_policy():
    allowed = [model.id for model in client().models.list()]
    denied = [model.id for model in client(DENIED_KEY).models.list()]
    expect("gpt-4o" in allowed, f"gpt-4o missing for the allowed key: {allowed}")
    expect("gpt-4o" not in denied, f"gpt-4o listed for the denied key: {denied}")
    expect("leaky" in denied, f"leaky missing for the denied key: {denied}")


CHECKS = [
    ("chat completion", check_chat),
    ("streamed chat completion with usage", check_stream),
    ("chat completion with tools", check_tools),
    ("prompt denied by policy -> PermissionDeniedError", check_prompt_denied),
    ("unknown model -> NotFoundError", check_unknown_model),
    ("wrong key -> AuthenticationError", check_wrong_key),
    ("upstream 429 -> RateLimitError", check_upstream_rate_limited),
    ("upstream 500 -> InternalServerError (502)", check_upstream_broken),
    ("stream denied by response policy -> APIError", check_stream_denied_by_response_policy),
    ("embeddings", check_embeddings),
    ("models listed per key and policy", check_models_follow_policy),
]


def main():
    print(f"openai {openai.__version__} against {BASE_URL}")
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
