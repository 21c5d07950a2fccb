//! A scripted OpenAI-compatible upstream on a loopback port, written on raw TCP so that a
//! test can make it fail in every way a real one does: error statuses, hanging, resetting
//! the connection, cutting a stream mid-way.
//!
//! The behaviour is chosen by the `model` the gateway forwards:
//! - `ok`: answers `echo: <last user message>`, streamed when the request asks for it;
//! - `leak`: the same, with `LAUNCH-CODE` in the answer;
//! - `fail500`, `busy429` (with `retry-after: 7`), `bad400`: error statuses with OpenAI
//!   error bodies;
//! - `hang`: never answers (until the connection is dropped);
//! - `reset`: closes the connection without answering;
//! - `cut`: starts a stream, then closes it in the middle of the chunked body;
//! - `embed`: an embeddings answer;
//! - `flaky3`: 500 for its first three requests, then like `ok`;
//! - `trickle`: streams 40 words 50 ms apart (a stream long enough to walk away from);
//! - `latepii`: streams a first sentence, pauses 400 ms, then names a contact by e-mail
//!   (personal data the prompt did not carry); unstreamed, the answer after 400 ms;
//! - `toolstream`: streams a `call_support` tool call whose arguments carry a phone number,
//!   split across chunks.
//!
//! Requests to `/v1/messages` are answered in Anthropic's Messages format instead (`ok` and
//! `leak` as above, streamed as Anthropic streams), and requests to
//! `/model/{id}/converse[-stream]` as Bedrock's Converse API does (binary event-stream
//! frames for streams), quoting the last user message.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "a test upstream fails loudly"
)]

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

/// One request the upstream received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request path.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The JSON body.
    pub body: Value,
}

/// The running upstream.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `http://127.0.0.1:PORT/v1`.
    pub base_url: String,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Upstream {
    /// Starts listening; each connection is served on its own thread.
    pub fn start() -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&received);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let _ = serve(stream, &log);
                });
            }
        });
        Upstream {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            received,
        }
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Requests for upstream model `model`.
    pub fn received_for(&self, model: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.body["model"] == model)
            .collect()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Received>>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let route = path.split('?').next().unwrap_or_default().to_string();
    let anthropic = route.ends_with("/messages");
    let bedrock = route.starts_with("/model/");
    let nth = {
        let mut log = log.lock().unwrap();
        log.push(Received {
            path,
            headers,
            body: body.clone(),
        });
        log.iter()
            .filter(|r| r.body["model"] == body["model"])
            .count()
    };
    if anthropic {
        return respond_anthropic(stream, &body);
    }
    if bedrock {
        return respond_bedrock(stream, &body, route.ends_with("/converse-stream"));
    }
    respond(stream, &body, nth)
}

/// A Converse answer quoting the last user message's text blocks.
fn respond_bedrock(mut stream: TcpStream, body: &Value, streamed: bool) -> std::io::Result<()> {
    let user: String = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_array())
        .map(|blocks| blocks.iter().filter_map(|b| b["text"].as_str()).collect())
        .unwrap_or_default();
    let text = format!("echo: {user}");
    if !streamed {
        return write_json(
            stream,
            "200 OK",
            "",
            &json!({"output": {"message": {"role": "assistant", "content": [{"text": text}]}},
                    "stopReason": "end_turn",
                    "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
                    "metrics": {"latencyMs": 1}}),
        );
    }
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: application/vnd.amazon.eventstream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )?;
    let (first, second) = text.split_at(text.len() / 2);
    let events = [
        ("messageStart", json!({"role": "assistant"})),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": first}}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": second}}),
        ),
        ("contentBlockStop", json!({"contentBlockIndex": 0})),
        ("messageStop", json!({"stopReason": "end_turn"})),
        (
            "metadata",
            json!({"usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
                            "metrics": {"latencyMs": 1}}),
        ),
    ];
    for (kind, payload) in events {
        let frame = sluice_server::gateway::bedrock::encode(
            &[
                (":event-type", kind),
                (":content-type", "application/json"),
                (":message-type", "event"),
            ],
            payload.to_string().as_bytes(),
        );
        write!(stream, "{:x}\r\n", frame.len())?;
        stream.write_all(&frame)?;
        write!(stream, "\r\n")?;
        stream.flush()?;
    }
    write!(stream, "0\r\n\r\n")?;
    stream.flush()
}

fn anthropic_event(stream: &mut TcpStream, event: &Value) -> std::io::Result<()> {
    let kind = event["type"].as_str().unwrap_or_default();
    let text = format!("event: {kind}\ndata: {event}\n\n");
    write!(stream, "{:x}\r\n{text}\r\n", text.len())?;
    stream.flush()
}

/// An Anthropic Messages answer quoting the last user message.
fn respond_anthropic(mut stream: TcpStream, body: &Value) -> std::io::Result<()> {
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let user = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(blocks) => blocks
                .iter()
                .filter_map(|b| b["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        })
        .unwrap_or_default();
    let mut text = format!("echo: {user}");
    if model == "leak" {
        text.push_str(" LAUNCH-CODE 0000");
    }
    if body["stream"] != true {
        return write_json(
            stream,
            "200 OK",
            "",
            &json!({"id": "msg_1", "type": "message", "role": "assistant", "model": model,
                    "content": [{"type": "text", "text": text}],
                    "stop_reason": "end_turn", "stop_sequence": null,
                    "usage": {"input_tokens": 5, "output_tokens": 3}}),
        );
    }
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )?;
    let (first, second) = text.split_at(text.len() / 2);
    let mut events = vec![
        json!({"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant",
               "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
               "usage": {"input_tokens": 5, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
    ];
    for piece in [first, second] {
        events.push(json!({"type": "content_block_delta", "index": 0,
                           "delta": {"type": "text_delta", "text": piece}}));
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    events.push(
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                       "usage": {"output_tokens": 3}}),
    );
    events.push(json!({"type": "message_stop"}));
    for event in &events {
        anthropic_event(&mut stream, event)?;
    }
    write!(stream, "0\r\n\r\n")?;
    stream.flush()
}

fn last_user_text(body: &Value) -> String {
    body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .map(|m| match &m["content"] {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_default()
}

fn write_json(
    mut stream: TcpStream,
    status: &str,
    extra: &str,
    body: &Value,
) -> std::io::Result<()> {
    let text = body.to_string();
    write!(
        stream,
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n{extra}\r\n{text}",
        text.len()
    )?;
    stream.flush()
}

fn chunk(stream: &mut TcpStream, data: &str) -> std::io::Result<()> {
    let event = format!("data: {data}\n\n");
    write!(stream, "{:x}\r\n{event}\r\n", event.len())?;
    stream.flush()
}

/// A chat completion streamed as OpenAI streams it: each delta after its pause, then a
/// last chunk with `finish_reason` (when given) and `[DONE]`.
fn stream_chunks(
    mut stream: TcpStream,
    model: &str,
    deltas: impl IntoIterator<Item = (Duration, Value)>,
    finish_reason: Option<&str>,
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    )?;
    let event = |delta: Value, finish: Option<&str>| {
        json!({"id": "c1", "object": "chat.completion.chunk", "model": model,
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    };
    for (pause, delta) in deltas {
        std::thread::sleep(pause);
        chunk(&mut stream, &event(delta, None))?;
    }
    if let Some(reason) = finish_reason {
        chunk(&mut stream, &event(json!({}), Some(reason)))?;
    }
    chunk(&mut stream, "[DONE]")?;
    write!(stream, "0\r\n\r\n")?;
    stream.flush()
}

/// Answers the `nth` request (from 1) for its model.
fn respond(mut stream: TcpStream, body: &Value, nth: usize) -> std::io::Result<()> {
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let error = |message: &str| json!({"error": {"message": message, "type": "test", "param": null, "code": null}});
    match model.as_str() {
        "flaky3" if nth <= 3 => write_json(
            stream,
            "500 Internal Server Error",
            "",
            &error("warming up"),
        ),
        "fail500" => write_json(stream, "500 Internal Server Error", "", &error("boom")),
        "busy429" => write_json(
            stream,
            "429 Too Many Requests",
            "retry-after: 7\r\n",
            &error("slow down"),
        ),
        "bad400" => write_json(
            stream,
            "400 Bad Request",
            "",
            &error("max_tokens is too large"),
        ),
        "hang" => {
            std::thread::sleep(Duration::from_secs(20));
            Ok(())
        }
        "reset" => {
            drop(stream);
            Ok(())
        }
        "toolstream" => {
            let deltas = [
                json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_9", "type": "function", "function": {"name": "call_support", "arguments": ""}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"phone\": \"+44 20 79"}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": "46 0958\"}"}}]}),
            ];
            let paced = deltas.into_iter().map(|d| (Duration::ZERO, d));
            stream_chunks(stream, &model, paced, Some("tool_calls"))
        }
        "trickle" => {
            let words = (0..40).map(|i| {
                let pause = Duration::from_millis(if i == 0 { 0 } else { 50 });
                (pause, json!({"content": format!("word{i} ")}))
            });
            stream_chunks(stream, &model, words, None)
        }
        "latepii" if body["stream"] != true => {
            std::thread::sleep(Duration::from_millis(400));
            let text = "The contact for that account is jane.doe@example.com.";
            write_json(
                stream,
                "200 OK",
                "",
                &json!({"id": "c1", "object": "chat.completion", "model": model,
                        "choices": [{"index": 0, "finish_reason": "stop",
                                     "message": {"role": "assistant", "content": text}}],
                        "usage": {"prompt_tokens": 9, "completion_tokens": 9, "total_tokens": 18}}),
            )
        }
        "latepii" => {
            let pieces = [
                (
                    Duration::ZERO,
                    json!({"content": "Let me look that up in the account records. "}),
                ),
                (
                    Duration::from_millis(400),
                    json!({"content": "The contact for that account is jane.doe@example.com."}),
                ),
            ];
            stream_chunks(stream, &model, pieces, Some("stop"))
        }
        "embed" => write_json(
            stream,
            "200 OK",
            "",
            &json!({"object": "list", "model": model,
                    "data": [{"object": "embedding", "index": 0, "embedding": [0.5, 0.5]}],
                    "usage": {"prompt_tokens": 2, "total_tokens": 2}}),
        ),
        _ => {
            let mut text = format!("echo: {}", last_user_text(body));
            if model == "leak" {
                text.push_str(" LAUNCH-CODE 0000");
            }
            if body["stream"] == true {
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
                )?;
                let (first, second) = text.split_at(text.len() / 2);
                for piece in [first, second] {
                    let event = json!({"id": "c1", "object": "chat.completion.chunk", "model": model,
                        "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": null}]});
                    chunk(&mut stream, &event.to_string())?;
                    if model == "cut" {
                        // Half a chunk, then the connection goes away.
                        write!(stream, "40\r\ndata: {{\"trunc")?;
                        stream.flush()?;
                        return Ok(());
                    }
                }
                if body["stream_options"]["include_usage"] == true {
                    let usage = json!({"id": "c1", "object": "chat.completion.chunk", "model": model, "choices": [],
                        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}});
                    chunk(&mut stream, &usage.to_string())?;
                }
                chunk(&mut stream, "[DONE]")?;
                write!(stream, "0\r\n\r\n")?;
                stream.flush()
            } else {
                write_json(
                    stream,
                    "200 OK",
                    "",
                    &json!({"id": "c1", "object": "chat.completion", "created": 0, "model": model,
                            "choices": [{"index": 0, "finish_reason": "stop",
                                         "message": {"role": "assistant", "content": text}}],
                            "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8,
                                      "prompt_tokens_details": {"cached_tokens": 2},
                                      "completion_tokens_details": {"reasoning_tokens": 1}}}),
                )
            }
        }
    }
}
