//! Streams: frames encoded as Bedrock sends them, decoded in small chunks, translated.

use serde_json::json;

use super::*;
use crate::gateway::bedrock::eventstream::{Decoder, encode};

fn event(kind: &str, payload: Value) -> Vec<u8> {
    encode(
        &[
            (":event-type", kind),
            (":content-type", "application/json"),
            (":message-type", "event"),
        ],
        payload.to_string().as_bytes(),
    )
}

fn exception(kind: &str, message: &str) -> Vec<u8> {
    encode(
        &[
            (":exception-type", kind),
            (":content-type", "application/json"),
            (":message-type", "exception"),
        ],
        json!({"message": message}).to_string().as_bytes(),
    )
}

/// A streamed answer: text, then a tool call whose input comes in two fragments.
fn tool_stream() -> Vec<Vec<u8>> {
    vec![
        event("messageStart", json!({"role": "assistant", "p": "abc"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Checking"}, "p": "abcdef"}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": " now."}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 0})),
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 1, "start": {"toolUse": {"toolUseId": "tooluse_1", "name": "get_weather"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "{\"city\":"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 1, "delta": {"toolUse": {"input": "\"Oslo\"}"}}}),
        ),
        event("contentBlockStop", json!({"contentBlockIndex": 1})),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 30, "outputTokens": 9, "totalTokens": 39},
                   "metrics": {"latencyMs": 300}}),
        ),
    ]
}

/// Runs encoded frames through a decoder (in 7-byte chunks) and the translator.
fn run(frames: &[Vec<u8>], translator: &mut ConverseStreamToOpenAi) -> Vec<Value> {
    let bytes: Vec<u8> = frames.concat();
    let mut decoder = Decoder::new();
    let mut out = Vec::new();
    for chunk in bytes.chunks(7) {
        for frame in decoder.push(chunk).unwrap() {
            out.extend(translator.push(&frame));
        }
    }
    decoder.finish().unwrap();
    out.extend(translator.finish());
    out.iter()
        .map(|event| {
            let text = std::str::from_utf8(event).unwrap();
            let data = text
                .strip_prefix("data: ")
                .and_then(|t| t.strip_suffix("\n\n"))
                .unwrap();
            if data == "[DONE]" {
                json!("[DONE]")
            } else {
                serde_json::from_str(data).unwrap()
            }
        })
        .collect()
}

#[test]
fn a_stream_becomes_openai_chunks() {
    let mut translator = ConverseStreamToOpenAi::new("bedrock-claude", false);
    let events = run(&tool_stream(), &mut translator);
    let deltas: Vec<Value> = events
        .iter()
        .filter_map(|e| e.get("choices").map(|c| c[0]["delta"].clone()))
        .collect();
    assert_eq!(
        deltas,
        vec![
            json!({"role": "assistant", "content": ""}),
            json!({"content": "Checking"}),
            json!({"content": " now."}),
            json!({"tool_calls": [{"index": 0, "id": "tooluse_1", "type": "function",
                                   "function": {"name": "get_weather", "arguments": ""}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"city\":"}}]}),
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Oslo\"}"}}]}),
            json!({}),
        ]
    );
    let finish: Vec<&Value> = events
        .iter()
        .filter_map(|e| e.get("choices").map(|c| &c[0]["finish_reason"]))
        .collect();
    assert_eq!(finish.last(), Some(&&json!("tool_calls")));
    assert!(finish.iter().rev().skip(1).all(|f| f.is_null()));
    assert_eq!(events.last(), Some(&json!("[DONE]")));
    assert_eq!(events[0]["object"], "chat.completion.chunk");
    assert_eq!(events[0]["model"], "bedrock-claude");
    assert!(translator.completed());
    assert_eq!(translator.text(), "Checking now.");
    assert_eq!(translator.output_tokens(), 9);
    assert_eq!(translator.input_tokens(), 30);
    let answer = translator.answer();
    assert_eq!(answer.messages[0].content, "Checking now.");
    assert_eq!(answer.messages[0].tool_calls[0].name, "get_weather");
    assert_eq!(
        answer.messages[0].tool_calls[0].arguments,
        json!({"city": "Oslo"})
    );
    assert_eq!(answer.output_tokens, 9);
    // Only once.
    assert!(translator.finish().is_empty());
}

#[test]
fn usage_is_sent_before_done_when_asked() {
    let frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ),
        event("messageStop", json!({"stopReason": "max_tokens"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 3, "outputTokens": 1, "cacheReadInputTokens": 4}}),
        ),
    ];
    let mut translator = ConverseStreamToOpenAi::new("m", true);
    let events = run(&frames, &mut translator);
    let n = events.len();
    assert_eq!(events[n - 3]["choices"][0]["finish_reason"], "length");
    assert_eq!(
        events[n - 2],
        json!({"id": "chatcmpl-sluice", "object": "chat.completion.chunk", "created": 0,
               "model": "m", "choices": [],
               "usage": {"prompt_tokens": 7, "completion_tokens": 1, "total_tokens": 8,
                         "prompt_tokens_details": {"cached_tokens": 4}}})
    );
    assert_eq!(events[n - 1], json!("[DONE]"));
}

#[test]
fn a_cut_off_stream_does_not_look_complete() {
    // No metadata after messageStop.
    let mut frames = tool_stream();
    frames.pop();
    let mut translator = ConverseStreamToOpenAi::new("m", true);
    let events = run(&frames, &mut translator);
    assert!(!translator.completed());
    assert!(!events.contains(&json!("[DONE]")));
    assert!(events.iter().all(|e| e.get("usage").is_none()));
    // No messageStop at all.
    let frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 3, "outputTokens": 1}}),
        ),
    ];
    let mut translator = ConverseStreamToOpenAi::new("m", false);
    let events = run(&frames, &mut translator);
    assert!(!translator.completed());
    assert!(!events.contains(&json!("[DONE]")));
    assert_eq!(translator.text(), "Hi");
}

#[test]
fn an_exception_becomes_an_error_event() {
    let frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ),
        exception("throttlingException", "Too many tokens, please wait"),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 3, "outputTokens": 1}}),
        ),
    ];
    let mut translator = ConverseStreamToOpenAi::new("m", true);
    let events = run(&frames, &mut translator);
    assert_eq!(events.len(), 3, "{events:?}");
    let error = &events[2]["error"];
    assert_eq!(error["type"], "rate_limit_error");
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(
        error["message"],
        "Bedrock ended the stream with `throttlingException`: Too many tokens, please wait"
    );
    assert!(!translator.completed());
}

#[test]
fn an_error_message_type_becomes_an_error_event() {
    let frame = encode(
        &[
            (":message-type", "error"),
            (":error-code", "InternalFailure"),
            (":error-message", "boom"),
        ],
        b"",
    );
    let mut translator = ConverseStreamToOpenAi::new("m", false);
    let events = run(&[frame], &mut translator);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["error"]["type"], "api_error");
    assert_eq!(
        events[0]["error"]["message"],
        "Bedrock ended the stream with `InternalFailure`: boom"
    );
    assert!(!translator.completed());
}

#[test]
fn unknown_and_malformed_events_are_ignored() {
    let frames = vec![
        event("messageStart", json!({"role": "assistant"})),
        encode(
            &[
                (":event-type", "contentBlockDelta"),
                (":message-type", "event"),
            ],
            b"not json",
        ),
        event("somethingNew", json!({"x": 1})),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}}),
        ),
        // Input for a block that never started.
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 5, "delta": {"toolUse": {"input": "{}"}}}),
        ),
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": ""}}),
        ),
        encode(&[(":message-type", "ping")], b"{}"),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event("messageStop", json!({"stopReason": "max_tokens"})),
        event("metadata", json!({})),
    ];
    let mut translator = ConverseStreamToOpenAi::new("m", false);
    let events = run(&frames, &mut translator);
    assert_eq!(
        events,
        vec![
            json!({"id": "chatcmpl-sluice", "object": "chat.completion.chunk", "created": 0, "model": "m",
                   "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                "logprobs": null, "finish_reason": null}]}),
            json!({"id": "chatcmpl-sluice", "object": "chat.completion.chunk", "created": 0, "model": "m",
                   "choices": [{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}]}),
            json!("[DONE]"),
        ]
    );
    assert!(translator.completed());
    assert_eq!(translator.output_tokens(), 0);
}

#[test]
fn the_role_chunk_comes_first_even_without_message_start() {
    let frames = vec![
        event(
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Hi"}}),
        ),
        event("messageStop", json!({"stopReason": "end_turn"})),
        event(
            "metadata",
            json!({"usage": {"inputTokens": 1, "outputTokens": 1}}),
        ),
    ];
    let mut translator = ConverseStreamToOpenAi::new("m", false);
    let events = run(&frames, &mut translator);
    assert_eq!(
        events[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(events[1]["choices"][0]["delta"], json!({"content": "Hi"}));
    // A tool call with no input fragments has empty arguments, read as `{}`.
    let frames = vec![
        event(
            "contentBlockStart",
            json!({"contentBlockIndex": 0, "start": {"toolUse": {"toolUseId": "t", "name": "now"}}}),
        ),
        event("messageStop", json!({"stopReason": "tool_use"})),
        event("metadata", json!({"usage": {}})),
    ];
    let mut translator = ConverseStreamToOpenAi::new("m", false);
    run(&frames, &mut translator);
    assert_eq!(
        translator.answer().messages[0].tool_calls[0].arguments,
        json!({})
    );
}
