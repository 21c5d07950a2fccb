use serde_json::json;

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("the tests pass objects"),
    }
}

/// A request from an OpenAI SDK, with a bit of everything.
fn openai_request() -> Value {
    json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a travel assistant."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture, and what is the weather there?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/paris.png", "detail": "high"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_abc123", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
                {"id": "call_def456", "type": "function",
                 "function": {"name": "get_time", "arguments": "{\"tz\":\"Europe/Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "call_abc123", "content": "15°C, cloudy"},
            {"role": "tool", "tool_call_id": "call_def456", "content": [{"type": "text", "text": "14:05"}]},
            {"role": "assistant", "content": "Il fait 15°C à Paris."},
            {"role": "user", "content": "Merci !"}
        ],
        "tools": [
            {"type": "function", "function": {
                "name": "get_weather", "description": "Current weather for a city",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                               "required": ["location"]},
                "strict": true
            }},
            {"type": "function", "function": {"name": "get_time"}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "max_completion_tokens": 512,
        "temperature": 1.5,
        "top_p": 0.9,
        "stop": "END",
        "stream": true,
        "stream_options": {"include_usage": true},
        "user": "user-1234",
        "logprobs": true,
        "frequency_penalty": 0.5,
        "seed": 7,
        "n": 1,
        "response_format": {"type": "json_object"}
    })
}

#[test]
fn openai_requests_become_anthropic_requests() {
    let out = openai_to_anthropic_request(&object(openai_request()), "claude-sonnet-4-5").unwrap();
    let expected = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 512,
        "system": format!("You are a travel assistant.\n\nAnswer in French.\n\n{JSON_INSTRUCTION}"),
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture, and what is the weather there?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/paris.png"}}
            ]},
            {"role": "assistant", "content": [
                {"type": "tool_use", "id": "call_abc123", "name": "get_weather", "input": {"location": "Paris"}},
                {"type": "tool_use", "id": "call_def456", "name": "get_time", "input": {"tz": "Europe/Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "call_abc123", "content": "15°C, cloudy"},
                {"type": "tool_result", "tool_use_id": "call_def456",
                 "content": [{"type": "text", "text": "14:05"}]}
            ]},
            {"role": "assistant", "content": "Il fait 15°C à Paris."},
            {"role": "user", "content": "Merci !"}
        ],
        "temperature": 1.0,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "stream": true,
        "metadata": {"user_id": "user-1234"},
        "tools": [
            {"name": "get_weather", "description": "Current weather for a city",
             "input_schema": {"type": "object", "properties": {"location": {"type": "string"}},
                              "required": ["location"]}},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": true}
    });
    assert_eq!(Value::Object(out), expected);
}

#[test]
fn openai_request_details_map_to_anthropic_forms() {
    let base = json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]});
    let translate = |extra: Value| {
        let mut body = object(base.clone());
        body.extend(object(extra));
        Value::Object(openai_to_anthropic_request(&body, "claude").unwrap())
    };
    let minimal = translate(json!({}));
    assert_eq!(
        minimal,
        json!({"model": "claude", "max_tokens": DEFAULT_MAX_TOKENS,
               "messages": [{"role": "user", "content": "hi"}]})
    );
    assert_eq!(translate(json!({"max_tokens": 77}))["max_tokens"], 77);
    assert_eq!(
        translate(json!({"max_tokens": 77, "max_completion_tokens": 88}))["max_tokens"],
        88
    );
    assert_eq!(translate(json!({"temperature": 0.3}))["temperature"], 0.3);
    assert_eq!(
        translate(json!({"stop": ["a", "b"]}))["stop_sequences"],
        json!(["a", "b"])
    );
    assert!(
        translate(json!({"stop": null}))
            .get("stop_sequences")
            .is_none()
    );

    let tool = json!([{"type": "function", "function": {"name": "f"}}]);
    let choices = [
        (json!("auto"), json!({"type": "auto"})),
        (json!("none"), json!({"type": "none"})),
        (json!("required"), json!({"type": "any"})),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
        ),
    ];
    for (choice, expected) in choices {
        let out = translate(json!({"tools": tool, "tool_choice": choice}));
        assert_eq!(out["tool_choice"], expected, "{choice}");
    }
    let out = translate(json!({"tools": tool, "parallel_tool_calls": false}));
    assert_eq!(
        out["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    let out =
        translate(json!({"tools": tool, "tool_choice": "none", "parallel_tool_calls": false}));
    assert_eq!(out["tool_choice"], json!({"type": "none"}));
    // Without tools, a tool choice means nothing to Anthropic (which would refuse it).
    assert!(
        translate(json!({"tool_choice": "auto"}))
            .get("tool_choice")
            .is_none()
    );

    let out = translate(
        json!({"response_format": {"type": "json_schema", "json_schema": {
        "name": "answer", "schema": {"type": "object"}}}}),
    );
    let system = out["system"].as_str().unwrap();
    assert!(system.starts_with(JSON_INSTRUCTION) && system.ends_with("{\"type\":\"object\"}"));
    assert!(
        translate(json!({"response_format": {"type": "text"}}))
            .get("system")
            .is_none()
    );

    // Ids Anthropic would refuse are made acceptable, consistently for calls and results.
    let out = translate(json!({"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "functions.f:0", "type": "function", "function": {"name": "f", "arguments": ""}}
        ]},
        {"role": "tool", "tool_call_id": "functions.f:0", "content": "ok"},
        {"role": "assistant", "content": ""}
    ]}));
    assert_eq!(out["messages"][1]["content"][0]["id"], "functions_f_0");
    assert_eq!(out["messages"][1]["content"][0]["input"], json!({}));
    assert_eq!(
        out["messages"][2]["content"][0]["tool_use_id"],
        "functions_f_0"
    );
    assert_eq!(
        out["messages"].as_array().unwrap().len(),
        3,
        "empty assistant turns are left out"
    );

    let out = translate(json!({"messages": [{"role": "user", "content": [
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
        {"type": "text", "text": "summarise", "cache_control": {"type": "ephemeral"}}
    ]}]}));
    assert_eq!(
        out["messages"][0]["content"],
        json!([
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
            {"type": "text", "text": "summarise", "cache_control": {"type": "ephemeral"}}
        ])
    );
}

#[test]
fn openai_requests_anthropic_cannot_serve_are_refused_by_parameter() {
    let user = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (json!({"messages": user, "n": 2}), "n"),
        (json!({"messages": "hi"}), "messages"),
        (
            json!({"messages": [{"role": "system", "content": "only system"}]}),
            "messages",
        ),
        (
            json!({"messages": [{"role": "function", "content": "x"}]}),
            "messages[0].role",
        ),
        (json!({"messages": [{"content": "x"}]}), "messages[0].role"),
        (
            json!({"messages": [{"role": "user"}]}),
            "messages[0].content",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}
            ]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}),
            "messages[0].content[0].text",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}
            ]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}
            ]}]}),
            "messages[0].content[0].image_url.url",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "file", "file": {"file_id": "file-abc"}}
            ]}]}),
            "messages[0].content[0].file",
        ),
        (
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
                {"type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]}]}),
            "messages[1].tool_calls[0].id",
        ),
        (
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
                {"id": "c", "type": "function", "function": {"arguments": "{}"}}
            ]}]}),
            "messages[1].tool_calls[0].function.name",
        ),
        (
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{not json"}}
            ]}]}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
                {"id": "c", "type": "function", "function": {"name": "f", "arguments": "[1]"}}
            ]}]}),
            "messages[1].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
                {"type": "image_url", "image_url": {"url": "https://x"}}
            ]}]}),
            "messages[1].content[0].type",
        ),
        // As Bedrock's translation refuses them: calls that are not a list, a call without
        // an id, and a tool message with an empty `tool_call_id` (Anthropic pairs calls and
        // results by id).
        (
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": {}}]}),
            "messages[1].tool_calls",
        ),
        (
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "tool_calls": [
                {"id": "", "type": "function", "function": {"name": "f", "arguments": "{}"}}
            ]}]}),
            "messages[1].tool_calls[0].id",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "r"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"messages": [{"role": "tool", "tool_call_id": "", "content": "r"}]}),
            "messages[0].tool_call_id",
        ),
        (json!({"messages": user, "max_tokens": 0}), "max_tokens"),
        (
            json!({"messages": user, "max_completion_tokens": "9"}),
            "max_completion_tokens",
        ),
        (
            json!({"messages": user, "temperature": "hot"}),
            "temperature",
        ),
        (json!({"messages": user, "top_p": "x"}), "top_p"),
        (json!({"messages": user, "stop": 5}), "stop"),
        (json!({"messages": user, "stop": ["a", 1]}), "stop"),
        (json!({"messages": user, "stream": "yes"}), "stream"),
        (json!({"messages": user, "tools": {}}), "tools"),
        (
            json!({"messages": user, "tools": [{"type": "custom", "custom": {"name": "x"}}]}),
            "tools[0].type",
        ),
        (
            json!({"messages": user, "tools": [{"type": "function", "function": {}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"messages": user, "tools": [{"type": "function", "function": {"name": "f"}}],
                   "tool_choice": "sometimes"}),
            "tool_choice",
        ),
        (
            json!({"messages": user, "tools": [{"type": "function", "function": {"name": "f"}}],
                   "tool_choice": {"type": "function"}}),
            "tool_choice.function.name",
        ),
        (
            json!({"messages": user, "tools": [{"type": "function", "function": {"name": "f"}}],
                   "tool_choice": 3}),
            "tool_choice",
        ),
        (
            json!({"messages": user, "response_format": {"type": "yaml"}}),
            "response_format.type",
        ),
    ];
    for (body, param) in cases {
        let err = openai_to_anthropic_request(&object(body.clone()), "claude").unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
    }
}

/// A request from an Anthropic SDK, with a bit of everything.
fn anthropic_request() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": [
            {"type": "text", "text": "You are a travel assistant."},
            {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}
        ],
        "messages": [
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
                {"type": "text", "text": "Where is this? What's the weather?"}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "The user wants weather.", "signature": "EqQB"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"location": "Paris"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A",
                 "content": [{"type": "text", "text": "15°C"}]},
                {"type": "text", "text": "And tomorrow?"}
            ]},
            {"role": "assistant", "content": "Rain."}
        ],
        "tools": [{
            "name": "get_weather", "description": "Current weather",
            "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}}
        }],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
        "stop_sequences": ["\n\nHuman:"],
        "temperature": 0.5,
        "top_k": 40,
        "stream": true,
        "metadata": {"user_id": "user-1234"},
        "thinking": {"type": "enabled", "budget_tokens": 2000}
    })
}

#[test]
fn anthropic_requests_become_openai_requests() {
    let out = anthropic_to_openai_request(&object(anthropic_request()), "gpt-4o").unwrap();
    let expected = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "You are a travel assistant.\nBe brief."},
            {"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBERi0="}},
                {"type": "text", "text": "Where is this? What's the weather?"}
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "toolu_01A", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}
            ]},
            {"role": "tool", "tool_call_id": "toolu_01A", "content": "15°C"},
            {"role": "user", "content": [{"type": "text", "text": "And tomorrow?"}]},
            {"role": "assistant", "content": "Rain."}
        ],
        "max_tokens": 1024,
        "temperature": 0.5,
        "stop": ["\n\nHuman:"],
        "stream": true,
        "stream_options": {"include_usage": true},
        "user": "user-1234",
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}}
        }}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": false
    });
    assert_eq!(Value::Object(out), expected);

    let choices = [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
    ];
    for (choice, expected) in choices {
        let mut body = object(anthropic_request());
        body.insert("tool_choice".into(), choice);
        let out = anthropic_to_openai_request(&body, "gpt-4o").unwrap();
        assert_eq!(out["tool_choice"], expected);
        assert!(!out.contains_key("parallel_tool_calls"));
    }
}

#[test]
fn anthropic_requests_openai_cannot_serve_are_refused_by_parameter() {
    let user = json!([{"role": "user", "content": "hi"}]);
    let cases = [
        (json!({"messages": user, "system": 3}), "system"),
        (json!({"messages": {}}), "messages"),
        (
            json!({"messages": [{"role": "system", "content": "x"}]}),
            "messages.0.role",
        ),
        (
            json!({"messages": [{"role": "user", "content": 1}]}),
            "messages.0.content",
        ),
        (
            json!({"messages": [{"role": "assistant"}]}),
            "messages.0.content",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "tool_use", "id": "t", "name": "f", "input": {}}
            ]}]}),
            "messages.0.content.0.type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"text": "x"}]}]}),
            "messages.0.content.0.type",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "file", "file_id": "file_1"}}
            ]}]}),
            "messages.0.content.0.source",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "document", "source": {"type": "url", "url": "https://x/a.pdf"}}
            ]}]}),
            "messages.0.content.0.source",
        ),
        (
            json!({"messages": [{"role": "user", "content": [
                {"type": "tool_result", "content": "x"}
            ]}]}),
            "messages.0.content.0.tool_use_id",
        ),
        (
            json!({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
                {"type": "server_tool_use", "id": "s", "name": "web_search", "input": {}}
            ]}]}),
            "messages.1.content.0.type",
        ),
        (
            json!({"messages": user, "stop_sequences": "x"}),
            "stop_sequences",
        ),
        (json!({"messages": user, "tools": {}}), "tools"),
        (
            json!({"messages": user, "tools": [
                {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}
            ]}),
            "tools.0",
        ),
        (
            json!({"messages": user, "tools": [{"name": "f", "input_schema": {}}],
                   "tool_choice": {"type": "tool"}}),
            "tool_choice.name",
        ),
        (
            json!({"messages": user, "tools": [{"name": "f", "input_schema": {}}],
                   "tool_choice": {"type": "maybe"}}),
            "tool_choice.type",
        ),
    ];
    for (body, param) in cases {
        let err = anthropic_to_openai_request(&object(body.clone()), "gpt").unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{body}: {}", err.message);
        assert!(err.message.starts_with(param), "{}", err.message);
    }
}

#[test]
fn anthropic_answers_become_chat_completions() {
    let body = json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "Let me look it up.", "signature": "EqQB"},
            {"type": "text", "text": "I'll check "},
            {"type": "text", "text": "the weather."},
            {"type": "tool_use", "id": "toolu_01A09q90qw90lq917835lq9", "name": "get_weather",
             "input": {"location": "San Francisco, CA", "unit": "celsius"}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {"input_tokens": 2095, "output_tokens": 503,
                  "cache_creation_input_tokens": 5, "cache_read_input_tokens": 1000}
    });
    let expected = json!({
        "id": "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": 0,
        "model": "claude-sonnet",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "I'll check the weather.",
                "refusal": null,
                "tool_calls": [{
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "type": "function",
                    "function": {"name": "get_weather",
                                 "arguments": "{\"location\":\"San Francisco, CA\",\"unit\":\"celsius\"}"}
                }]
            },
            "logprobs": null,
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": 3100, "completion_tokens": 503, "total_tokens": 3603,
                  "prompt_tokens_details": {"cached_tokens": 1000}}
    });
    let out = anthropic_to_openai_response(&body, "claude-sonnet");
    // Arguments are compared as JSON, whatever the key order of the serialiser.
    let arguments = out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(arguments).unwrap(),
        json!({"location": "San Francisco, CA", "unit": "celsius"})
    );
    let mut out = out;
    out["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] =
        expected["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"].clone();
    assert_eq!(out, expected);

    let reasons = [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ];
    for (stop, finish) in reasons {
        let body = json!({"id": "msg_1", "content": [{"type": "text", "text": "x"}],
                          "stop_reason": stop, "usage": {"input_tokens": 3, "output_tokens": 2}});
        let out = anthropic_to_openai_response(&body, "m");
        assert_eq!(out["choices"][0]["finish_reason"], finish);
        assert_eq!(out["choices"][0]["message"]["content"], "x");
        assert!(out["choices"][0]["message"].get("tool_calls").is_none());
        assert_eq!(
            out["usage"],
            json!({"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5})
        );
    }
    // Nothing recognisable is still a well-formed (empty) completion.
    let out = anthropic_to_openai_response(&json!("garbage"), "m");
    assert_eq!(out["choices"][0]["message"]["content"], "");
    assert_eq!(out["usage"]["total_tokens"], 0);
}

#[test]
fn chat_completions_become_anthropic_answers() {
    let body = json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": [{
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Let me check.",
                "refusal": null,
                "tool_calls": [
                    {"id": "call_abc", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"location\":\"Boston\"}"}},
                    {"id": "call_bad", "type": "function",
                     "function": {"name": "get_time", "arguments": "{truncated"}}
                ]
            },
            "logprobs": null,
            "finish_reason": "tool_calls"
        }],
        "usage": {"prompt_tokens": 82, "completion_tokens": 17, "total_tokens": 99,
                  "prompt_tokens_details": {"cached_tokens": 64, "audio_tokens": 0}},
        "system_fingerprint": "fp_123"
    });
    let expected = json!({
        "id": "msg_chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4o",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "call_abc", "name": "get_weather", "input": {"location": "Boston"}},
            {"type": "tool_use", "id": "call_bad", "name": "get_time", "input": {}}
        ],
        "stop_reason": "tool_use",
        "stop_sequence": null,
        "usage": {"input_tokens": 18, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 64, "output_tokens": 17}
    });
    assert_eq!(openai_to_anthropic_response(&body, "gpt-4o"), expected);

    let reasons = [
        (json!("stop"), "end_turn"),
        (json!("length"), "max_tokens"),
        (json!("tool_calls"), "tool_use"),
        (json!("function_call"), "tool_use"),
        (json!("content_filter"), "refusal"),
        (json!(null), "end_turn"),
    ];
    for (finish, stop) in reasons {
        let body = json!({"id": "c", "choices": [{"index": 0, "finish_reason": finish,
                          "message": {"role": "assistant", "content": "x"}}]});
        assert_eq!(
            openai_to_anthropic_response(&body, "m")["stop_reason"],
            stop
        );
    }
    let refusal = json!({"id": "c", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": null, "refusal": "I can't help with that."}}]});
    let out = openai_to_anthropic_response(&refusal, "m");
    assert_eq!(
        out["content"],
        json!([{"type": "text", "text": "I can't help with that."}])
    );
    assert_eq!(out["stop_reason"], "refusal");
    let empty = openai_to_anthropic_response(&json!({"choices": []}), "m");
    assert_eq!(empty["content"], json!([]));
    assert_eq!(empty["id"], "msg_sluice");
}

// ---------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------

/// A small deterministic generator (xorshift), so the property runs without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn text(&mut self) -> String {
        const WORDS: [&str; 8] = [
            "météo",
            "Paris",
            "{\"x\":1}",
            "line\nbreak",
            "ok",
            "🙂",
            "a\"b",
            " ",
        ];
        (0..=self.below(4))
            .map(|_| WORDS[self.below(8) as usize])
            .collect()
    }
}

/// A random OpenAI conversation in the forms that translate without loss.
fn conversation(rng: &mut Rng) -> Value {
    let mut messages = Vec::new();
    if rng.below(2) == 0 {
        messages.push(json!({"role": "system", "content": rng.text()}));
    }
    let mut call = 0;
    for _ in 0..=rng.below(4) {
        let content = match rng.below(3) {
            0 => json!(rng.text()),
            1 => json!([{"type": "text", "text": rng.text()}]),
            _ => json!([
                {"type": "text", "text": rng.text()},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}}
            ]),
        };
        messages.push(json!({"role": "user", "content": content}));
        if rng.below(2) == 0 {
            messages.push(json!({"role": "assistant", "content": rng.text() + "."}));
            continue;
        }
        let calls: Vec<Value> = (0..=rng.below(2))
            .map(|_| {
                call += 1;
                let arguments = json!({"q": rng.text(), "n": rng.below(100)}).to_string();
                json!({"id": format!("call_{call}"), "type": "function",
                       "function": {"name": "search", "arguments": arguments}})
            })
            .collect();
        let content = if rng.below(2) == 0 {
            json!(null)
        } else {
            json!(rng.text() + ".")
        };
        let ids: Vec<Value> = calls.iter().map(|c| c["id"].clone()).collect();
        messages.push(json!({"role": "assistant", "content": content, "tool_calls": calls}));
        for id in ids {
            messages.push(json!({"role": "tool", "tool_call_id": id, "content": rng.text()}));
        }
        messages.push(json!({"role": "assistant", "content": rng.text() + "!"}));
    }
    let tools: Vec<Value> = (0..rng.below(3))
        .map(|i| {
            json!({"type": "function", "function": {
                "name": format!("tool_{i}"), "description": rng.text(),
                "parameters": {"type": "object", "properties": {"q": {"type": "string"}}}
            }})
        })
        .collect();
    let mut body = json!({
        "model": "gpt-4o",
        "messages": messages,
        "max_tokens": 1 + rng.below(10_000),
    });
    if !tools.is_empty() {
        body["tools"] = json!(tools);
    }
    body
}

#[test]
fn openai_requests_survive_a_round_trip_through_anthropic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for case in 0..500 {
        let original = conversation(&mut rng);
        let anthropic = openai_to_anthropic_request(&object(original.clone()), "claude").unwrap();
        let back = anthropic_to_openai_request(&anthropic, "gpt-4o").unwrap();
        assert_eq!(
            back["messages"], original["messages"],
            "case {case}: {original}"
        );
        assert_eq!(back.get("tools"), original.get("tools"), "case {case}");
        assert_eq!(back["max_tokens"], original["max_tokens"], "case {case}");
        // And Anthropic's form is a fixed point of the two translations.
        let again = openai_to_anthropic_request(&back, "claude").unwrap();
        assert_eq!(again, anthropic, "case {case}");
    }
}

#[test]
fn answers_survive_a_round_trip() {
    let anthropic = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [
            {"type": "text", "text": "Sure."},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": [1, 2]}}
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 4, "output_tokens": 6}
    });
    let openai = anthropic_to_openai_response(&anthropic, "m");
    let back = openai_to_anthropic_response(&openai, "m");
    assert_eq!(back["content"], anthropic["content"]);
    assert_eq!(back["stop_reason"], anthropic["stop_reason"]);
    assert_eq!(back["usage"], anthropic["usage"]);
    assert_eq!(back["id"], "msg_chatcmpl-msg_1");
}

// ---------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------

/// An Anthropic event's name and data.
fn anthropic_parts(event: &[u8]) -> (String, Value) {
    let text = std::str::from_utf8(event).unwrap();
    let body = text
        .strip_suffix("\n\n")
        .expect("an event ends with a blank line");
    let (name, data) = body.split_once('\n').unwrap();
    let name = name.strip_prefix("event: ").unwrap().to_string();
    let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
    assert_eq!(
        data["type"],
        name.as_str(),
        "the event name is the data's type"
    );
    (name, data)
}

/// An OpenAI event's data (`[DONE]` as a string).
fn openai_data(event: &[u8]) -> Value {
    let text = std::str::from_utf8(event).unwrap();
    let data = text
        .strip_prefix("data: ")
        .unwrap()
        .strip_suffix("\n\n")
        .unwrap();
    serde_json::from_str(data).unwrap_or_else(|_| Value::String(data.to_string()))
}

fn feed_anthropic(stream: &mut AnthropicToOpenAiStream, events: &[Value]) -> Vec<Value> {
    let mut out: Vec<Value> = events
        .iter()
        .flat_map(|e| stream.push(&e.to_string()))
        .map(|e| openai_data(&e))
        .collect();
    out.extend(stream.finish().iter().map(|e| openai_data(e)));
    out
}

fn anthropic_text_stream() -> Vec<Value> {
    vec![
        json!({"type": "message_start", "message": {
            "id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant",
            "content": [], "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 25, "output_tokens": 1, "cache_read_input_tokens": 0}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": 15}}),
        json!({"type": "message_stop"}),
    ]
}

#[test]
fn anthropic_text_streams_become_openai_chunks() {
    let mut stream = AnthropicToOpenAiStream::new("claude-sonnet", true);
    let out = feed_anthropic(&mut stream, &anthropic_text_stream());
    let id = "chatcmpl-msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY";
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": "claude-sonnet",
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let expected = vec![
        chunk(json!({"role": "assistant", "content": ""}), json!(null)),
        chunk(json!({"content": "Hello"}), json!(null)),
        chunk(json!({"content": "!"}), json!(null)),
        chunk(json!({}), json!("stop")),
        json!({"id": id, "object": "chat.completion.chunk", "created": 0, "model": "claude-sonnet",
               "choices": [],
               "usage": {"prompt_tokens": 25, "completion_tokens": 15, "total_tokens": 40,
                         "prompt_tokens_details": {"cached_tokens": 0}}}),
        json!("[DONE]"),
    ];
    assert_eq!(out, expected);
    assert_eq!(stream.text(), "Hello!");
    assert_eq!(stream.output_tokens(), 15);
    assert_eq!(stream.input_tokens(), 25);
    assert!(stream.completed());
    assert!(stream.finish().is_empty(), "[DONE] is sent once");

    let mut quiet = AnthropicToOpenAiStream::new("m", false);
    let out = feed_anthropic(&mut quiet, &anthropic_text_stream());
    assert!(
        out.iter().all(|c| c.get("usage").is_none()),
        "no usage chunk unless asked"
    );
    assert_eq!(out.last(), Some(&json!("[DONE]")));
}

#[test]
fn anthropic_tool_streams_become_openai_tool_call_deltas() {
    let events = vec![
        json!({"type": "message_start", "message": {"id": "msg_014p7gG3wDgGV9EUtLvnow3U",
            "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 472, "output_tokens": 2}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "Eq"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Okay, checking."}}),
        json!({"type": "content_block_stop", "index": 1}),
        json!({"type": "content_block_start", "index": 2, "content_block": {"type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": ""}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"location\":"}}),
        json!({"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": " \"Paris\"}"}}),
        json!({"type": "content_block_stop", "index": 2}),
        json!({"type": "content_block_start", "index": 3, "content_block": {"type": "tool_use",
            "id": "toolu_02", "name": "get_time", "input": {}}}),
        json!({"type": "content_block_delta", "index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
        json!({"type": "content_block_stop", "index": 3}),
        json!({"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": null},
               "usage": {"output_tokens": 89}}),
        json!({"type": "message_stop"}),
    ];
    let mut stream = AnthropicToOpenAiStream::new("m", false);
    let out = feed_anthropic(&mut stream, &events);
    let deltas: Vec<&Value> = out
        .iter()
        .filter_map(|c| c.get("choices").and_then(|c| c.get(0)))
        .map(|c| &c["delta"])
        .collect();
    assert_eq!(
        deltas,
        [
            &json!({"role": "assistant", "content": ""}),
            &json!({"content": "Okay, checking."}),
            &json!({"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""}}]}),
            &json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}),
            &json!({"tool_calls": [{"index": 0, "function": {"arguments": " \"Paris\"}"}}]}),
            &json!({"tool_calls": [{"index": 1, "id": "toolu_02", "type": "function",
                                    "function": {"name": "get_time", "arguments": ""}}]}),
            &json!({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
            &json!({}),
        ]
    );
    assert_eq!(
        out[out.len() - 2]["choices"][0]["finish_reason"],
        "tool_calls"
    );
    let answer = stream.answer();
    assert_eq!(answer.messages[0].content, "Okay, checking.");
    assert_eq!(answer.messages[0].tool_calls[0].name, "get_weather");
    assert_eq!(
        answer.messages[0].tool_calls[0].arguments,
        json!({"location": "Paris"})
    );
    assert_eq!(answer.messages[0].tool_calls[1].arguments, json!({}));
    assert_eq!((answer.input_tokens, answer.output_tokens), (472, 89));
}

#[test]
fn cut_off_and_failing_anthropic_streams_do_not_look_complete() {
    let mut stream = AnthropicToOpenAiStream::new("m", true);
    let events = anthropic_text_stream();
    for event in &events[..4] {
        stream.push(&event.to_string());
    }
    assert!(!stream.completed());
    assert!(stream.finish().is_empty(), "no [DONE] without message_stop");
    assert_eq!(stream.text(), "Hello");

    let error =
        json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}});
    let out = stream.push(&error.to_string());
    assert_eq!(
        openai_data(&out[0]),
        json!({"error": {"message": "Overloaded", "type": "overloaded_error", "param": null, "code": null}})
    );
    for junk in [
        "",
        "not json",
        "[DONE]",
        "{}",
        "{\"type\": 5}",
        "{\"type\":\"content_block_delta\"}",
        "{\"type\":\"content_block_delta\",\"index\":9,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"x\"}}",
        "{\"type\":\"content_block_start\",\"content_block\":{\"type\":\"server_tool_use\"}}",
    ] {
        assert!(stream.push(junk).is_empty(), "{junk}");
    }
}

fn feed_openai(stream: &mut OpenAiToAnthropicStream, events: &[&str]) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = events
        .iter()
        .flat_map(|e| stream.push(e))
        .map(|e| anthropic_parts(&e))
        .collect();
    out.extend(stream.finish().iter().map(|e| anthropic_parts(e)));
    out
}

fn openai_chunk(delta: Value, finish: Value) -> String {
    json!({"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
           "model": "gpt-4o-mini", "system_fingerprint": "fp_44709d6fcb",
           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    .to_string()
}

fn openai_usage_chunk() -> String {
    json!({"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": 1694268190,
           "model": "gpt-4o-mini", "choices": [],
           "usage": {"prompt_tokens": 20, "completion_tokens": 9, "total_tokens": 29,
                     "prompt_tokens_details": {"cached_tokens": 8}}})
    .to_string()
}

#[test]
fn openai_text_streams_become_anthropic_events() {
    let events = [
        openai_chunk(
            json!({"role": "assistant", "content": "", "refusal": null}),
            json!(null),
        ),
        openai_chunk(json!({"content": "Hello"}), json!(null)),
        openai_chunk(json!({"content": " there"}), json!(null)),
        openai_chunk(json!({}), json!("stop")),
        openai_usage_chunk(),
        "[DONE]".to_string(),
    ];
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let mut stream = OpenAiToAnthropicStream::new("gpt-4o-mini");
    let out = feed_openai(&mut stream, &events);
    let expected = vec![
        json!({"type": "message_start", "message": {
            "id": "msg_chatcmpl-123", "type": "message", "role": "assistant", "model": "gpt-4o-mini",
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 0, "output_tokens": 0}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " there"}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0,
                         "cache_read_input_tokens": 8, "output_tokens": 9}}),
        json!({"type": "message_stop"}),
    ];
    let data: Vec<Value> = out.into_iter().map(|(_, data)| data).collect();
    assert_eq!(data, expected);
    assert_eq!(stream.text(), "Hello there");
    assert_eq!(stream.output_tokens(), 9);
    assert_eq!(stream.input_tokens(), 20);
    assert!(stream.completed());
    assert!(stream.push("[DONE]").is_empty(), "the message ends once");
    assert!(
        stream
            .push(&openai_chunk(json!({"content": "late"}), json!(null)))
            .is_empty()
    );
    assert!(stream.finish().is_empty());
}

#[test]
fn openai_tool_call_streams_become_tool_use_blocks() {
    let call = |index: u64, id: Option<&str>, name: Option<&str>, arguments: &str| {
        let mut function = json!({"arguments": arguments});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        let mut call = json!({"index": index, "function": function});
        if let Some(id) = id {
            call["id"] = json!(id);
            call["type"] = json!("function");
        }
        openai_chunk(json!({"tool_calls": [call]}), json!(null))
    };
    let events = [
        openai_chunk(json!({"role": "assistant", "content": null}), json!(null)),
        openai_chunk(json!({"content": "Let me look."}), json!(null)),
        call(
            0,
            Some("call_DdmO9pD3xa9XTPNJ32zg2hcA"),
            Some("get_weather"),
            "",
        ),
        call(0, None, None, "{\"location\":"),
        call(0, None, None, "\"Paris\"}"),
        call(1, Some("call_2"), Some("get_time"), "{\"tz\":\"CET\"}"),
        openai_chunk(json!({}), json!("tool_calls")),
        "[DONE]".to_string(),
    ];
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let mut stream = OpenAiToAnthropicStream::new("gpt-4o");
    let out = feed_openai(&mut stream, &events);
    let names: Vec<&str> = out.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    assert_eq!(
        out[4].1,
        json!({"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA", "name": "get_weather", "input": {}}})
    );
    assert_eq!(
        out[5].1,
        json!({"type": "content_block_delta", "index": 1,
               "delta": {"type": "input_json_delta", "partial_json": "{\"location\":"}})
    );
    assert_eq!(out[8].1["index"], 2);
    assert_eq!(out[8].1["content_block"]["name"], "get_time");
    assert_eq!(out[9].1["delta"]["partial_json"], "{\"tz\":\"CET\"}");
    assert_eq!(out[11].1["delta"]["stop_reason"], "tool_use");
    assert_eq!(
        out[11].1["usage"],
        json!({"output_tokens": 0}),
        "no usage reported upstream"
    );
    let answer = stream.answer();
    assert_eq!(answer.messages[0].content, "Let me look.");
    assert_eq!(
        answer.messages[0].tool_calls[0].arguments,
        json!({"location": "Paris"})
    );
    assert_eq!(answer.messages[0].tool_calls[1].name, "get_time");
}

#[test]
fn openai_streams_without_done_end_only_if_they_finished() {
    let mut finished = OpenAiToAnthropicStream::new("m");
    let events = [
        openai_chunk(json!({"content": "Hi"}), json!(null)),
        openai_chunk(json!({}), json!("length")),
    ];
    let events: Vec<&str> = events.iter().map(String::as_str).collect();
    let out = feed_openai(&mut finished, &events);
    assert!(finished.completed());
    assert_eq!(out[out.len() - 2].1["delta"]["stop_reason"], "max_tokens");
    assert_eq!(out.last().unwrap().0, "message_stop");

    let mut cut = OpenAiToAnthropicStream::new("m");
    let chunk = openai_chunk(json!({"content": "Hi"}), json!(null));
    let out = feed_openai(&mut cut, &[chunk.as_str()]);
    assert!(!cut.completed());
    assert!(out.iter().all(|(name, _)| name != "message_stop"));

    let mut failing = OpenAiToAnthropicStream::new("m");
    let out =
        failing.push(r#"{"error": {"message": "upstream overloaded", "type": "server_error"}}"#);
    assert_eq!(
        anthropic_parts(&out[0]).1,
        json!({"type": "error", "error": {"type": "api_error", "message": "upstream overloaded"}})
    );
    for junk in [
        "",
        "nope",
        "{}",
        "{\"choices\": 3}",
        "{\"choices\": [{\"delta\": {\"tool_calls\": [{}]}}]}",
    ] {
        failing.push(junk);
    }
    // An empty [DONE]-only stream is still a well-formed message.
    let mut empty = OpenAiToAnthropicStream::new("m");
    let names: Vec<String> = feed_openai(&mut empty, &["[DONE]"])
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(names, ["message_start", "message_delta", "message_stop"]);
}

#[test]
fn streams_survive_a_round_trip() {
    // OpenAI chunks → Anthropic events → OpenAI chunks keeps the text and the tool calls.
    let events = [
        openai_chunk(json!({"role": "assistant", "content": ""}), json!(null)),
        openai_chunk(json!({"content": "Sure, "}), json!(null)),
        openai_chunk(json!({"content": "one moment."}), json!(null)),
        openai_chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                   "function": {"name": "f", "arguments": "{\"a\":"}}]}),
            json!(null),
        ),
        openai_chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
            json!(null),
        ),
        openai_chunk(json!({}), json!("tool_calls")),
        openai_usage_chunk(),
        "[DONE]".to_string(),
    ];
    let mut there = OpenAiToAnthropicStream::new("m");
    let mut back = AnthropicToOpenAiStream::new("m", true);
    let mut chunks = Vec::new();
    for event in &events {
        for anthropic in there.push(event) {
            let (_, data) = anthropic_parts(&anthropic);
            chunks.extend(back.push(&data.to_string()).iter().map(|c| openai_data(c)));
        }
    }
    chunks.extend(back.finish().iter().map(|c| openai_data(c)));
    assert_eq!(back.text(), "Sure, one moment.");
    assert_eq!(
        back.answer().messages[0].tool_calls[0].arguments,
        json!({"a": 1})
    );
    assert_eq!(back.output_tokens(), 9);
    assert_eq!(back.input_tokens(), 20);
    assert!(back.completed());
    let usage = chunks.iter().find_map(|c| c.get("usage")).unwrap();
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 8);
    assert_eq!(chunks.last(), Some(&json!("[DONE]")));
}

/// The tool list both Anthropic and Bedrock's is made from: the provider named in the
/// refusal of other tool types, and an object schema for a function without parameters.
#[test]
fn function_tools_name_the_provider_and_default_the_schema() {
    let body = json!({"tools": [{"type": "web_search"}]});
    let error = function_tools(body.as_object().unwrap(), "Bedrock")
        .err()
        .unwrap();
    assert_eq!(
        error.message,
        "only tools of type `function` can be sent to Bedrock"
    );
    assert_eq!(error.param.as_deref(), Some("tools[0].type"));
    let body = json!({"tools": [
        {"type": "function", "function": {"name": "f", "description": "d"}},
        {"type": "function", "function": {"name": "g", "parameters": {"type": "object", "required": ["x"]}}},
    ]});
    let tools = function_tools(body.as_object().unwrap(), "Bedrock").unwrap();
    let seen: Vec<_> = tools
        .iter()
        .map(|t| (t.name, t.description, t.parameters.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            ("f", Some("d"), json!({"type": "object", "properties": {}})),
            ("g", None, json!({"type": "object", "required": ["x"]})),
        ]
    );
}
