use serde_json::json;

use super::*;

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => unreachable!("the tests pass objects"),
    }
}

#[test]
fn bodies_that_are_not_json_objects_are_rejected_with_a_reason() {
    assert!(
        parse_object(b"{\"model\": 1")
            .unwrap_err()
            .message
            .contains("not valid JSON")
    );
    assert!(
        parse_object(b"[1]")
            .unwrap_err()
            .message
            .contains("JSON object")
    );
    assert!(
        parse_object(b"\xff\xfe")
            .unwrap_err()
            .message
            .contains("UTF-8")
    );
    assert!(parse_object(b"{}").is_ok());
}

#[test]
fn chat_requests_name_the_parameter_at_fault() {
    let cases = [
        (
            json!({"messages": [{"role": "user", "content": "hi"}]}),
            "model",
        ),
        (json!({"model": 3, "messages": []}), "model"),
        (json!({"model": "m"}), "messages"),
        (json!({"model": "m", "messages": []}), "messages"),
        (json!({"model": "m", "messages": "hi"}), "messages"),
        (json!({"model": "m", "messages": [1]}), "messages[0]"),
        (
            json!({"model": "m", "messages": [{"content": "x"}]}),
            "messages[0].role",
        ),
        (
            json!({"model": "m", "messages": [{"role": "user", "content": 5}]}),
            "messages[0].content",
        ),
        (
            json!({"model": "m", "stream": "yes", "messages": [{"role": "user"}]}),
            "stream",
        ),
        (
            json!({"model": "m", "tools": {}, "messages": [{"role": "user"}]}),
            "tools",
        ),
    ];
    for (body, param) in cases {
        let err = ChatRequest::parse(object(body.clone())).unwrap_err();
        assert_eq!(err.param.as_deref(), Some(param), "{body}");
    }
}

#[test]
fn content_is_normalised_and_text_rewritten_in_place() {
    let body = json!({
        "model": "gpt-4o", "stream": true, "temperature": 0.2,
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [
                {"type": "text", "text": "mail bob@example.com"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q\": 1}"}}
            ]},
            {"role": "tool", "tool_call_id": "c1", "content": "result"}
        ],
        "tools": [{"type": "function", "function": {"name": "lookup", "description": "find", "parameters": {"type": "object"}}}]
    });
    let mut chat = ChatRequest::parse(object(body)).unwrap();
    assert!(chat.stream);
    let content = chat.content();
    let texts: Vec<&str> = content
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(texts, ["be brief", "mail bob@example.com", "", "result"]);
    assert_eq!(content.messages[2].tool_calls[0].name, "lookup");
    assert_eq!(content.messages[2].tool_calls[0].arguments, json!({"q": 1}));
    assert_eq!(content.tools[0].name, "lookup");
    assert_eq!(content.tools[0].input_schema, json!({"type": "object"}));

    chat.rewrite_text(|t| t.replace("bob@example.com", "[EMAIL]"));
    assert_eq!(
        chat.body["messages"][1]["content"][0]["text"],
        json!("mail [EMAIL]")
    );
    // Everything else is forwarded as sent.
    assert_eq!(chat.body["temperature"], json!(0.2));
    assert_eq!(
        chat.body["messages"][1]["content"][1]["image_url"]["url"],
        json!("data:image/png;base64,AAAA")
    );
}

#[test]
fn answers_and_embedding_inputs_are_read() {
    let a = answer(&json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2}
    }));
    assert_eq!(a.messages[0].content, "hello");
    assert_eq!(
        (a.input_tokens, a.output_tokens, a.cached_tokens),
        (7, 2, 0)
    );
    let cached = answer(&json!({
        "choices": [],
        "usage": {"prompt_tokens": 2000, "completion_tokens": 20,
                  "prompt_tokens_details": {"cached_tokens": 1536}}
    }));
    assert_eq!(cached.cached_tokens, 1536);
    let e = EmbeddingsRequest::parse(object(json!({"model": "e", "input": ["a", "b"]}))).unwrap();
    assert_eq!(e.texts, ["a", "b"]);
    let err = EmbeddingsRequest::parse(object(json!({"model": "e", "input": 4}))).unwrap_err();
    assert_eq!(err.param.as_deref(), Some("input"));
}
