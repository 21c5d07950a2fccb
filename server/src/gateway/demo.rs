//! The built-in `demo` provider: a deterministic local "model" that answers in OpenAI's
//! format, streamed or not, so the quickstart and tests run without any external service.
//! The answer quotes the last user message; token counts are a 4-characters-per-token
//! estimate.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::openai::{ChatRequest, text_of};

/// Longest quote of the user's message in an answer, in characters.
const QUOTE_CHARS: usize = 200;

/// Dimensions of a demo embedding.
const EMBEDDING_DIMENSIONS: usize = 8;

fn estimate_tokens(text: &str) -> u64 {
    (text.chars().count() as u64).div_ceil(4)
}

fn reply(request: &ChatRequest) -> (String, u64) {
    let messages = request
        .body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let prompt: String = messages
        .iter()
        .map(|m| text_of(m.get("content")))
        .collect::<Vec<_>>()
        .join("\n");
    let last_user = messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .map(|m| text_of(m.get("content")))
        .unwrap_or_default();
    let quote: String = last_user.chars().take(QUOTE_CHARS).collect();
    let text = format!("This is Sluice's demo model. You said: \"{quote}\"");
    (text, estimate_tokens(&prompt))
}

fn id(request: &ChatRequest) -> String {
    let digest = Sha256::digest(serde_json::to_vec(&request.body).unwrap_or_default());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("chatcmpl-demo-{hex}")
}

/// A chat completion for `request`, answered as `model`.
pub fn chat(model: &str, request: &ChatRequest) -> Value {
    let (text, prompt_tokens) = reply(request);
    let completion_tokens = estimate_tokens(&text);
    json!({
        "id": id(request),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    })
}

/// The same answer as a stream: the `data:` payloads of each event, `[DONE]` last. A
/// usage chunk comes before it when `stream_options.include_usage` asks for one.
pub fn chat_stream(model: &str, request: &ChatRequest) -> Vec<String> {
    let (text, prompt_tokens) = reply(request);
    let id = id(request);
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
        .to_string()
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    // Word by word, spaces kept, so the pieces join back into the text exactly.
    let mut piece = String::new();
    for c in text.chars() {
        piece.push(c);
        if c == ' ' {
            events.push(chunk(json!({"content": piece}), Value::Null));
            piece.clear();
        }
    }
    if !piece.is_empty() {
        events.push(chunk(json!({"content": piece}), Value::Null));
    }
    events.push(chunk(json!({}), json!("stop")));
    let include_usage = request
        .body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    if include_usage {
        let completion_tokens = estimate_tokens(&text);
        events.push(
            json!({
                "id": id, "object": "chat.completion.chunk", "created": 0, "model": model,
                "choices": [],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            })
            .to_string(),
        );
    }
    events.push("[DONE]".to_string());
    events
}

/// Embeddings: a stable unit vector per text, derived from its hash.
pub fn embeddings(model: &str, texts: &[String]) -> Value {
    let data: Vec<Value> = texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let digest = Sha256::digest(text.as_bytes());
            let raw: Vec<f64> = digest
                .iter()
                .take(EMBEDDING_DIMENSIONS)
                .map(|b| f64::from(*b) - 127.5)
                .collect();
            let norm = raw
                .iter()
                .map(|x| x * x)
                .sum::<f64>()
                .sqrt()
                .max(f64::EPSILON);
            let vector: Vec<f64> = raw.iter().map(|x| x / norm).collect();
            json!({"object": "embedding", "index": index, "embedding": vector})
        })
        .collect();
    let tokens: u64 = texts.iter().map(|t| estimate_tokens(t)).sum();
    json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    })
}
