use serde_json::json;

use super::*;

#[test]
fn openai_tool_call_deltas_are_assembled() {
    let mut adapter = OpenAiPassthrough::default();
    let chunk = |delta: Value| {
        json!({"id": "c1", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]})
            .to_string()
    };
    adapter.push(&chunk(json!({"role": "assistant", "content": "Sure. "})));
    adapter.push(&chunk(
        json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
        "function": {"name": "send_mail", "arguments": ""}}]}),
    ));
    adapter.push(&chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"to\": \"bob@"}}]}),
    ));
    adapter.push(&chunk(
        json!({"tool_calls": [{"index": 0, "function": {"arguments": "example.com\"}"}}]}),
    ));
    adapter.push(&chunk(
        json!({"tool_calls": [{"index": 1, "function": {"name": "log", "arguments": "{broken"}}]}),
    ));
    let calls = adapter.tool_calls();
    assert_eq!(adapter.text(), "Sure. ");
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].name, "send_mail");
    assert_eq!(calls[0].arguments, json!({"to": "bob@example.com"}));
    // Arguments that never became valid JSON are kept as their text.
    assert_eq!(calls[1].arguments, json!("{broken"));
}

#[test]
fn anthropic_tool_use_deltas_are_assembled() {
    let mut adapter = AnthropicPassthrough::default();
    for event in [
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Checking."}}),
        json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"city\": "}}),
        json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "\"Paris\"}"}}),
    ] {
        adapter.push(&event.to_string());
    }
    assert_eq!(adapter.text(), "Checking.");
    let calls = adapter.tool_calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].name, "get_weather");
    assert_eq!(calls[0].arguments, json!({"city": "Paris"}));
}

#[test]
fn stream_usage_is_read_and_the_chunk_sluice_asked_for_is_not_passed_on() {
    let usage = json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 1200,
        "completion_tokens": 40, "prompt_tokens_details": {"cached_tokens": 1024},
        "completion_tokens_details": {"reasoning_tokens": 25}}})
    .to_string();
    let content =
        json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": "hi"}}]}).to_string();
    let expected = StreamUsage {
        input: 1200,
        cached: 1024,
        output: 40,
        reasoning: 25,
    };
    // The caller asked for usage: it passes.
    let mut asked = OpenAiPassthrough::default();
    assert_eq!(asked.push(&content).len(), 1);
    assert_eq!(asked.push(&usage).len(), 1);
    assert_eq!(asked.usage(), expected);
    // Sluice asked on the caller's behalf: read, then dropped; content still passes.
    let mut hidden = OpenAiPassthrough::hiding_usage();
    assert_eq!(hidden.push(&content).len(), 1);
    assert!(hidden.push(&usage).is_empty());
    assert_eq!(hidden.usage(), expected);
    assert_eq!(hidden.push("[DONE]").len(), 1);

    // Anthropic reports the prompt at message_start and the output at message_delta.
    let mut anthropic = AnthropicPassthrough::default();
    anthropic.push(
        &json!({"type": "message_start", "message": {"usage": {"input_tokens": 20,
            "cache_read_input_tokens": 300, "cache_creation_input_tokens": 0, "output_tokens": 1}}})
        .to_string(),
    );
    anthropic.push(
        &json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 17}})
        .to_string(),
    );
    assert_eq!(
        anthropic.usage(),
        StreamUsage {
            input: 320,
            cached: 300,
            output: 17,
            reasoning: 0,
        }
    );
}
