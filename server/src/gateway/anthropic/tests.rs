use serde_json::json;

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("the tests pass objects"),
    }
}

fn minimal() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": "Hello, Claude"}]
    })
}

#[test]
fn a_minimal_request_parses() {
    let request = MessagesRequest::parse(object(minimal())).unwrap();
    assert_eq!(request.model, "claude-sonnet-4-5");
    assert!(!request.stream);
    let mut streamed = minimal();
    streamed["stream"] = json!(true);
    assert!(MessagesRequest::parse(object(streamed)).unwrap().stream);
}

#[test]
fn invalid_requests_name_the_parameter_at_fault() {
    let user = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (json!({"max_tokens": 10, "messages": user}), "model"),
        (
            json!({"model": "", "max_tokens": 10, "messages": user}),
            "model",
        ),
        (
            json!({"model": 7, "max_tokens": 10, "messages": user}),
            "model",
        ),
        (json!({"model": "m", "messages": user}), "max_tokens"),
        (
            json!({"model": "m", "max_tokens": 0, "messages": user}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": -5, "messages": user}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": 1.5, "messages": user}),
            "max_tokens",
        ),
        (
            json!({"model": "m", "max_tokens": "9", "messages": user}),
            "max_tokens",
        ),
        (json!({"model": "m", "max_tokens": 10}), "messages"),
        (
            json!({"model": "m", "max_tokens": 10, "messages": []}),
            "messages",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": {}}),
            "messages",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": ["hi"]}),
            "messages.0",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]}),
            "messages.0.role",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": [{"content": "x"}]}),
            "messages.0.role",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": [
                {"role": "user", "content": "a"}, {"role": "assistant"}
            ]}),
            "messages.1.content",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": 3}]}),
            "messages.0.content",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
                {"type": "text", "text": "a"}, {"text": "no type"}
            ]}]}),
            "messages.0.content.1.type",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [
                {"type": "text", "text": 5}
            ]}]}),
            "messages.0.content.0.text",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": user, "system": 5}),
            "system",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": user,
                   "system": [{"type": "image"}]}),
            "system.0",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": user, "stream": "yes"}),
            "stream",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": user, "tools": {}}),
            "tools",
        ),
        (
            json!({"model": "m", "max_tokens": 10, "messages": user, "tools": [{"description": "x"}]}),
            "tools.0.name",
        ),
    ];
    for (body, param) in cases {
        let err = MessagesRequest::parse(object(body.clone())).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{body}");
        assert!(err.message.starts_with(param), "{}", err.message);
    }
}

#[test]
fn count_tokens_does_not_need_max_tokens_but_validates_the_rest() {
    let body =
        json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": "x"});
    let request = MessagesRequest::parse_count_tokens(object(body)).unwrap();
    assert!(!request.stream);
    let err = MessagesRequest::parse_count_tokens(object(json!({"model": "m", "messages": []})))
        .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("messages"));
    let err = MessagesRequest::parse_count_tokens(object(json!({"messages": [
        {"role": "user", "content": "hi"}
    ]})))
    .unwrap_err();
    assert_eq!(err.param.as_deref(), Some("model"));
}

fn conversation() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [
            {"type": "text", "text": "You are a weather bot."},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
        ],
        "tools": [{
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"]
            }
        }],
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "text", "text": "What is the weather in Paris?"},
                {"type": "text", "text": "Mail bob@example.com"}
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Let me check."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"location": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "15 degrees, cloudy"}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A",
                 "content": [{"type": "text", "text": "rain later"}]},
                {"type": "text", "text": "And tomorrow?"}
            ]},
            {"role": "assistant", "content": "It will rain."}
        ]
    })
}

#[test]
fn content_is_normalised() {
    let request = MessagesRequest::parse(object(conversation())).unwrap();
    let content = request.content();
    let summary: Vec<(&str, &str, usize)> = content
        .messages
        .iter()
        .map(|m| (m.role.as_str(), m.content.as_str(), m.tool_calls.len()))
        .collect();
    assert_eq!(
        summary,
        [
            ("system", "You are a weather bot.\nBe brief.", 0),
            (
                "user",
                "What is the weather in Paris?\nMail bob@example.com",
                0
            ),
            ("assistant", "Let me check.", 1),
            ("tool", "15 degrees, cloudy", 0),
            ("tool", "rain later", 0),
            ("user", "And tomorrow?", 0),
            ("assistant", "It will rain.", 0),
        ]
    );
    let call = &content.messages[2].tool_calls[0];
    assert_eq!(call.name, "get_weather");
    assert_eq!(call.arguments, json!({"location": "Paris"}));
    assert_eq!(content.tools.len(), 1);
    assert_eq!(content.tools[0].name, "get_weather");
    assert_eq!(
        content.tools[0].description,
        "Get the current weather in a given location"
    );
    assert_eq!(
        content.tools[0].input_schema["required"],
        json!(["location"])
    );
}

#[test]
fn a_string_system_prompt_comes_first() {
    let mut body = minimal();
    body["system"] = json!("be kind");
    let content = MessagesRequest::parse(object(body)).unwrap().content();
    assert_eq!(content.messages[0].role, "system");
    assert_eq!(content.messages[0].content, "be kind");
    assert_eq!(content.messages[1].content, "Hello, Claude");
}

#[test]
fn text_is_rewritten_everywhere_it_is_read_and_nowhere_else() {
    let mut request = MessagesRequest::parse(object(conversation())).unwrap();
    request.rewrite_text(|text| text.to_uppercase());
    let body = Value::Object(request.body.clone());
    assert_eq!(body["system"][0]["text"], "YOU ARE A WEATHER BOT.");
    assert_eq!(
        body["system"][1]["cache_control"],
        json!({"type": "ephemeral"})
    );
    let messages = &body["messages"];
    assert_eq!(messages[0]["content"][0]["source"]["data"], "iVBORw0KGgo=");
    assert_eq!(messages[0]["content"][2]["text"], "MAIL BOB@EXAMPLE.COM");
    // A tool call's input is read (as the call's arguments): its strings are rewritten,
    // its keys and the tool's name are not.
    assert_eq!(
        messages[1]["content"][1]["input"],
        json!({"location": "PARIS"})
    );
    assert_eq!(messages[1]["content"][1]["name"], "get_weather");
    assert_eq!(messages[2]["content"][0]["content"], "15 DEGREES, CLOUDY");
    assert_eq!(
        messages[3]["content"][0]["content"][0]["text"],
        "RAIN LATER"
    );
    assert_eq!(messages[3]["content"][1]["text"], "AND TOMORROW?");
    assert_eq!(messages[4]["content"], "IT WILL RAIN.");
    // What content() reads afterwards is the rewritten text.
    let content = request.content();
    assert!(
        content
            .messages
            .iter()
            .all(|m| m.content == m.content.to_uppercase())
    );

    let mut system = MessagesRequest::parse(object(json!({
        "model": "m", "max_tokens": 1, "system": "secret",
        "messages": [{"role": "user", "content": "x"}]
    })))
    .unwrap();
    system.rewrite_text(|_| "[redacted]".to_string());
    assert_eq!(system.body["system"], "[redacted]");
}

#[test]
fn answers_are_read_from_a_messages_response() {
    let body = json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "text", "text": "I'll check the weather."},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
             "input": {"location": "San Francisco, CA"}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {
            "input_tokens": 472, "output_tokens": 89,
            "cache_creation_input_tokens": 10, "cache_read_input_tokens": 100
        }
    });
    let answer = answer(&body);
    assert_eq!(answer.messages.len(), 1);
    let message = &answer.messages[0];
    assert_eq!(message.role, "assistant");
    assert_eq!(message.content, "I'll check the weather.");
    assert_eq!(message.tool_calls[0].name, "get_weather");
    assert_eq!(
        message.tool_calls[0].arguments,
        json!({"location": "San Francisco, CA"})
    );
    assert_eq!(answer.input_tokens, 582);
    assert_eq!(answer.output_tokens, 89);

    assert_eq!(super::answer(&json!({"type": "error"})), Answer::default());
    assert_eq!(super::answer(&json!(null)), Answer::default());
}

#[test]
fn errors_have_anthropics_shape() {
    assert_eq!(
        error_body("invalid_request_error", "max_tokens: field required"),
        json!({
            "type": "error",
            "error": {"type": "invalid_request_error", "message": "max_tokens: field required"}
        })
    );
}

#[test]
fn token_counts_are_a_documented_estimate() {
    let request = MessagesRequest::parse_count_tokens(object(json!({
        "model": "m",
        "system": "abcd",
        "messages": [
            {"role": "user", "content": "12345678"},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "t", "name": "ab", "input": {"a": 1}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t", "content": "xyz"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
            ]}
        ],
        "tools": [{"name": "ab", "description": "cd", "input_schema": {}}]
    })))
    .unwrap();
    // 4 (system) + 8 + 2 + 7 (`{"a":1}`) + 3 + 2 + 2 + 2 (`{}`) = 30 chars -> 8 tokens.
    assert_eq!(count_tokens_estimate(&request), 8);
    assert_eq!(count_tokens_body(8), json!({"input_tokens": 8}));
    let empty = MessagesRequest::parse_count_tokens(object(json!({
        "model": "m", "messages": [{"role": "user", "content": ""}]
    })))
    .unwrap();
    assert_eq!(count_tokens_estimate(&empty), 0);
}
