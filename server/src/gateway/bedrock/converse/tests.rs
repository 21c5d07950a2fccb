use serde_json::json;

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("the tests pass objects"),
    }
}

fn converse(body: Value) -> Result<Value, BadRequest> {
    openai_to_converse(&object(body))
}

/// A request from an OpenAI SDK, with a bit of everything.
fn openai_request() -> Value {
    json!({
        "model": "bedrock-claude",
        "messages": [
            {"role": "system", "content": "You are a travel assistant."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": [
                {"type": "text", "text": "What is in this picture, and what is the weather there?"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="}},
                {"type": "file", "file": {"filename": "trip plan (v2).pdf", "file_data": "data:application/pdf;base64,JVBERi0xLjQ="},
                 "cache_control": {"type": "ephemeral"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_abc123", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}},
                {"id": "call.def:456", "type": "function",
                 "function": {"name": "get_time", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_abc123", "content": "15°C, cloudy"},
            {"role": "tool", "tool_call_id": "call.def:456", "content": [{"type": "text", "text": "14:05"}]},
            {"role": "user", "content": "And tomorrow?"},
            {"role": "assistant", "content": "Il fera 17°C."},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "Je ne sais pas plus."}]},
            {"role": "user", "content": "Merci !"}
        ],
        "tools": [
            {"type": "function", "function": {
                "name": "get_weather", "description": "Current weather for a city",
                "parameters": {"type": "object", "properties": {"location": {"type": "string"}},
                               "required": ["location"]},
                "strict": true
            }},
            {"type": "function", "function": {"name": "get_time", "description": ""}}
        ],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "max_completion_tokens": 512,
        "max_tokens": 100,
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
fn openai_request_becomes_a_converse_body() {
    let out = converse(openai_request()).unwrap();
    assert_eq!(
        out,
        json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "What is in this picture, and what is the weather there?"},
                    {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQSkZJRg=="}}},
                    {"document": {"format": "pdf", "name": "trip plan (v2)", "source": {"bytes": "JVBERi0xLjQ="}}},
                    {"cachePoint": {"type": "default"}}
                ]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "call_abc123", "name": "get_weather", "input": {"location": "Paris"}}},
                    {"toolUse": {"toolUseId": "call_def_456", "name": "get_time", "input": {}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "call_abc123", "content": [{"text": "15°C, cloudy"}]}},
                    {"toolResult": {"toolUseId": "call_def_456", "content": [{"text": "14:05"}]}},
                    {"text": "And tomorrow?"}
                ]},
                {"role": "assistant", "content": [
                    {"text": "Il fera 17°C."},
                    {"text": "Je ne sais pas plus."}
                ]},
                {"role": "user", "content": [{"text": "Merci !"}]}
            ],
            "system": [
                {"text": "You are a travel assistant."},
                {"text": "Answer in French."},
                {"text": translate::JSON_INSTRUCTION}
            ],
            "inferenceConfig": {
                "maxTokens": 512,
                "temperature": 1.0,
                "topP": 0.9,
                "stopSequences": ["END"]
            },
            "toolConfig": {
                "tools": [
                    {"toolSpec": {
                        "name": "get_weather",
                        "description": "Current weather for a city",
                        "inputSchema": {"json": {"type": "object", "properties": {"location": {"type": "string"}},
                                                 "required": ["location"]}}
                    }},
                    {"toolSpec": {
                        "name": "get_time",
                        "inputSchema": {"json": {"type": "object", "properties": {}}}
                    }}
                ],
                "toolChoice": {"any": {}}
            }
        })
    );
}

#[test]
fn a_plain_request_stays_plain() {
    let out = converse(json!({
        "model": "m",
        "messages": [{"role": "user", "content": "Hello"}],
        "max_tokens": 64,
        "temperature": 0.2,
        "stop": ["a", "b"],
    }))
    .unwrap();
    assert_eq!(
        out,
        json!({
            "messages": [{"role": "user", "content": [{"text": "Hello"}]}],
            "inferenceConfig": {"maxTokens": 64, "temperature": 0.2, "stopSequences": ["a", "b"]}
        })
    );
    let bare =
        converse(json!({"messages": [{"role": "user", "content": "Hi"}], "stop": []})).unwrap();
    assert_eq!(
        bare,
        json!({"messages": [{"role": "user", "content": [{"text": "Hi"}]}]})
    );
}

#[test]
fn json_schema_mode_becomes_an_instruction() {
    let out = converse(json!({
        "messages": [{"role": "user", "content": "Hi"}],
        "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
    }))
    .unwrap();
    let system = out["system"][0]["text"].as_str().unwrap();
    assert!(system.starts_with(translate::JSON_INSTRUCTION));
    assert!(system.ends_with(r#"{"type":"object"}"#));
    let text = converse(json!({
        "messages": [{"role": "user", "content": "Hi"}],
        "response_format": {"type": "text"},
    }))
    .unwrap();
    assert!(text.get("system").is_none());
}

#[test]
fn tool_choice_maps_to_converse() {
    let with_choice = |choice: Value, messages: Value| {
        converse(json!({
            "messages": messages,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": choice,
        }))
        .unwrap()
    };
    let hello = json!([{"role": "user", "content": "Hi"}]);
    assert_eq!(
        with_choice(json!("auto"), hello.clone())["toolConfig"]["toolChoice"],
        json!({"auto": {}})
    );
    assert_eq!(
        with_choice(
            json!({"type": "function", "function": {"name": "f"}}),
            hello.clone()
        )["toolConfig"]["toolChoice"],
        json!({"tool": {"name": "f"}})
    );
    assert!(
        with_choice(Value::Null, hello.clone())["toolConfig"]
            .get("toolChoice")
            .is_none()
    );
    // "none": no tools at all, unless the history needs a tool configuration.
    assert!(
        with_choice(json!("none"), hello)
            .get("toolConfig")
            .is_none()
    );
    let history = json!([
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "done"}
    ]);
    let out = with_choice(json!("none"), history);
    assert_eq!(out["toolConfig"]["tools"][0]["toolSpec"]["name"], "f");
    assert!(out["toolConfig"].get("toolChoice").is_none());
}

#[test]
fn empty_messages_are_left_out_and_roles_merged() {
    let out = converse(json!({"messages": [
        {"role": "user", "content": ""},
        {"role": "user", "content": [{"type": "text", "text": ""}, {"type": "text", "text": "a"}]},
        {"role": "assistant", "content": ""},
        {"role": "assistant", "content": null},
        {"role": "user", "content": "b"},
    ]}))
    .unwrap();
    assert_eq!(
        out["messages"],
        json!([{"role": "user", "content": [{"text": "a"}, {"text": "b"}]}])
    );
}

#[test]
fn tool_ids_are_made_to_fit() {
    assert_eq!(tool_id("call_ok-1"), "call_ok-1");
    assert_eq!(tool_id("toolu:01/é"), "toolu_01__");
    assert_eq!(tool_id(&"x".repeat(80)).len(), 64);
}

#[test]
fn document_names_are_made_to_fit() {
    assert_eq!(
        document_name(Some("report.final.pdf"), "d".into()),
        "report-final"
    );
    assert_eq!(document_name(Some("  a   b\t.txt"), "d".into()), "a b");
    assert_eq!(document_name(Some(".pdf"), "fallback".into()), "fallback");
    assert_eq!(document_name(None, "fallback".into()), "fallback");
    assert_eq!(document_name(Some("日本.pdf"), "d".into()), "--");
}

#[test]
fn what_bedrock_cannot_take_is_refused_with_its_parameter() {
    let user = |content: Value| json!({"messages": [{"role": "user", "content": content}]});
    let cases = [
        (
            json!({"n": 2, "messages": [{"role": "user", "content": "Hi"}]}),
            "n",
        ),
        (json!({"messages": "Hi"}), "messages"),
        (json!({"messages": []}), "messages"),
        (
            json!({"messages": [{"role": "system", "content": "only a system prompt"}]}),
            "messages",
        ),
        (
            user(json!([{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}])),
            "messages[0].content[0].image_url.url",
        ),
        (
            user(json!([{"type": "image_url", "image_url": "data:image/png,rawdata"}])),
            "messages[0].content[0].image_url.url",
        ),
        (
            user(
                json!([{"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]),
            ),
            "messages[0].content[0].image_url.url",
        ),
        (
            user(json!([{"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@"}}])),
            "messages[0].content[0].image_url.url",
        ),
        (
            user(
                json!([{"type": "text", "text": "a"}, {"type": "input_audio", "input_audio": {}}]),
            ),
            "messages[0].content[1].type",
        ),
        (
            user(json!([{"text": "no type"}])),
            "messages[0].content[0].type",
        ),
        (
            user(json!([{"type": "text"}])),
            "messages[0].content[0].text",
        ),
        (
            user(json!([{"type": "file", "file": {"file_id": "file-123"}}])),
            "messages[0].content[0].file",
        ),
        (
            user(
                json!([{"type": "file", "file": {"file_data": "data:application/zip;base64,UEs="}}]),
            ),
            "messages[0].content[0].file",
        ),
        (
            user(
                json!([{"type": "file", "file": {"file_data": "data:application/pdf;base64,!!"}}]),
            ),
            "messages[0].content[0].file.file_data",
        ),
        (user(json!(42)), "messages[0].content"),
        (
            json!({"messages": [{"role": "function", "content": "x"}]}),
            "messages[0].role",
        ),
        (json!({"messages": [{"content": "x"}]}), "messages[0].role"),
        (
            json!({"messages": [{"role": "assistant", "content": [{"type": "image_url"}]}]}),
            "messages[0].content[0].type",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": {"id": "x"}}]}),
            "messages[0].tool_calls",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]}),
            "messages[0].tool_calls[0].id",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {}}]}]}),
            "messages[0].tool_calls[0].function.name",
        ),
        (
            json!({"messages": [{"role": "assistant", "tool_calls": [
                {"id": "c", "function": {"name": "f", "arguments": "[1, 2]"}}]}]}),
            "messages[0].tool_calls[0].function.arguments",
        ),
        (
            json!({"messages": [{"role": "tool", "content": "x"}]}),
            "messages[0].tool_call_id",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 0}),
            "max_tokens",
        ),
        // Converse's `maxTokens` is a 32-bit integer.
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2_147_483_648_u64}),
            "max_tokens",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "max_completion_tokens": "9"}),
            "max_completion_tokens",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "temperature": "hot"}),
            "temperature",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "top_p": "x"}),
            "top_p",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "stop": [1]}),
            "stop",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}], "tools": {}}),
            "tools",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}],
                   "tools": [{"type": "web_search"}]}),
            "tools[0].type",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}],
                   "tools": [{"type": "function", "function": {}}]}),
            "tools[0].function.name",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}],
                   "tools": [{"type": "function", "function": {"name": "f"}}],
                   "tool_choice": "sometimes"}),
            "tool_choice",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}],
                   "tools": [{"type": "function", "function": {"name": "f"}}],
                   "tool_choice": {"type": "function"}}),
            "tool_choice.function.name",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}],
                   "tools": [{"type": "function", "function": {"name": "f"}}],
                   "tool_choice": 3}),
            "tool_choice",
        ),
        (
            json!({"messages": [{"role": "user", "content": "Hi"}],
                   "response_format": {"type": "xml"}}),
            "response_format.type",
        ),
    ];
    for (body, param) in cases {
        let result = converse(body.clone());
        let Err(error) = result else {
            panic!("accepted {body}: {result:?}");
        };
        assert_eq!(
            error.param.as_deref(),
            Some(param),
            "{body}: {}",
            error.message
        );
        assert!(!error.message.ends_with('.'), "{}", error.message);
    }
}

#[test]
fn a_linked_image_is_explained() {
    let error = converse(json!({"messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
    ]}]}))
    .unwrap_err();
    assert!(error.message.contains("not links"), "{}", error.message);
}

#[test]
fn anthropic_requests_go_through_openai_format() {
    let body = object(json!({
        "model": "claude",
        "max_tokens": 300,
        "system": [{"type": "text", "text": "Be brief."}],
        "messages": [
            {"role": "user", "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}
            ]},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "x"},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "rain"},
                {"type": "text", "text": "Thanks"}
            ]}
        ],
        "tools": [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "any"},
        "stop_sequences": ["STOP"],
        "temperature": 0.3,
        "top_k": 5,
        "stream": true
    }));
    let out = anthropic_to_converse(&body).unwrap();
    assert_eq!(
        out,
        json!({
            "messages": [
                {"role": "user", "content": [
                    {"text": "Weather?"},
                    {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}
                ]},
                {"role": "assistant", "content": [
                    {"toolUse": {"toolUseId": "toolu_1", "name": "get_weather", "input": {"city": "Oslo"}}}
                ]},
                {"role": "user", "content": [
                    {"toolResult": {"toolUseId": "toolu_1", "content": [{"text": "rain"}]}},
                    {"text": "Thanks"}
                ]}
            ],
            "system": [{"text": "Be brief."}],
            "inferenceConfig": {"maxTokens": 300, "temperature": 0.3, "stopSequences": ["STOP"]},
            "toolConfig": {
                "tools": [{"toolSpec": {"name": "get_weather", "description": "Weather",
                                        "inputSchema": {"json": {"type": "object"}}}}],
                "toolChoice": {"any": {}}
            }
        })
    );
}

#[test]
fn anthropic_errors_keep_anthropic_names_or_none() {
    let first_step = anthropic_to_converse(&object(json!({
        "max_tokens": 10,
        "messages": [{"role": "system", "content": "x"}]
    })))
    .unwrap_err();
    assert_eq!(first_step.param.as_deref(), Some("messages.0.role"));
    let second_step = anthropic_to_converse(&object(json!({
        "max_tokens": 10,
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}
        ]}]
    })))
    .unwrap_err();
    assert_eq!(second_step.param, None);
    assert!(second_step.message.contains("not links"));
}

#[test]
fn paths_carry_the_encoded_model_id() {
    assert_eq!(
        paths("anthropic.claude-3-5-sonnet-20240620-v1:0", false),
        "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"
    );
    assert_eq!(
        paths("us.amazon.nova-pro-v1:0", true),
        "/model/us.amazon.nova-pro-v1%3A0/converse-stream"
    );
    assert_eq!(
        paths(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/eu.x-v1:0",
            false
        ),
        "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Feu.x-v1%3A0/converse"
    );
}

#[test]
fn a_converse_answer_becomes_a_chat_completion() {
    let body = json!({
        "output": {"message": {"role": "assistant", "content": [
            {"reasoningContent": {"reasoningText": {"text": "thinking..."}}},
            {"text": "Let me check. "},
            {"text": "One moment."},
            {"toolUse": {"toolUseId": "tooluse_abc", "name": "get_weather", "input": {"city": "Oslo"}}}
        ]}},
        "stopReason": "tool_use",
        "usage": {"inputTokens": 20, "outputTokens": 12, "totalTokens": 62,
                  "cacheReadInputTokens": 25, "cacheWriteInputTokens": 5},
        "metrics": {"latencyMs": 420}
    });
    assert_eq!(
        converse_to_openai(&body, "bedrock-claude"),
        json!({
            "id": "chatcmpl-sluice",
            "object": "chat.completion",
            "created": 0,
            "model": "bedrock-claude",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me check. One moment.",
                    "refusal": null,
                    "tool_calls": [{"id": "tooluse_abc", "type": "function",
                                    "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}}]
                },
                "logprobs": null,
                "finish_reason": "tool_calls"
            }],
            "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62,
                      "prompt_tokens_details": {"cached_tokens": 25}}
        })
    );
    let answer = openai::answer(&converse_to_openai(&body, "m"));
    assert_eq!(answer.input_tokens, 50);
    assert_eq!(answer.output_tokens, 12);
    assert_eq!(
        answer.messages[0].tool_calls[0].arguments,
        json!({"city": "Oslo"})
    );
}

#[test]
fn tool_calls_alone_have_null_content_and_odd_bodies_do_not_fail() {
    let only_tool = converse_to_openai(
        &json!({"output": {"message": {"content": [{"toolUse": {"toolUseId": "t", "name": "f"}}]}},
                "stopReason": "tool_use"}),
        "m",
    );
    assert_eq!(only_tool["choices"][0]["message"]["content"], Value::Null);
    assert_eq!(
        only_tool["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"],
        "{}"
    );
    let empty = converse_to_openai(&json!({"unexpected": true}), "m");
    assert_eq!(empty["choices"][0]["message"]["content"], "");
    assert_eq!(empty["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        empty["usage"],
        json!({"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0})
    );
}

#[test]
fn stop_reasons_map_to_finish_reasons() {
    for (stop, finish) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
        ("something_new", "stop"),
    ] {
        let body = json!({"output": {"message": {"content": [{"text": "x"}]}}, "stopReason": stop});
        assert_eq!(
            converse_to_openai(&body, "m")["choices"][0]["finish_reason"],
            finish,
            "{stop}"
        );
    }
}

#[test]
fn exceptions_map_to_kinds() {
    for (name, kind) in [
        ("validationException", Kind::InvalidRequest),
        ("ValidationException", Kind::InvalidRequest),
        (
            "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/",
            Kind::InvalidRequest,
        ),
        ("throttlingException", Kind::RateLimited),
        ("ServiceQuotaExceededException", Kind::RateLimited),
        ("serviceUnavailableException", Kind::Unavailable),
        ("ModelNotReadyException", Kind::Unavailable),
        ("modelTimeoutException", Kind::Timeout),
        ("modelStreamErrorException", Kind::BadGateway),
        ("internalServerException", Kind::BadGateway),
        ("AccessDeniedException", Kind::BadGateway),
        ("", Kind::BadGateway),
    ] {
        assert_eq!(exception_kind(name), kind, "{name}");
    }
}
