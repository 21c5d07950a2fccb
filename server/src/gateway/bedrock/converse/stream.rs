//! `ConverseStream` frames as OpenAI `chat.completion.chunk` events.

use serde_json::{Value, json};
use sluice_engine::input::{Message, ToolCall};

use super::super::eventstream::Frame;
use super::{Usage, exception_kind, finish_reason, str_of, translate, usage_of};
use crate::gateway::error::{Format, GatewayError};
use crate::gateway::openai::{self, Answer};
use crate::gateway::sse::data_event;

/// A tool call assembled from a stream.
#[derive(Debug, Clone, Default)]
struct StreamedTool {
    id: String,
    name: String,
    arguments: String,
}

/// Turns the frames of a `ConverseStream` answer into OpenAI `chat.completion.chunk`
/// events.
///
/// Each [`push`](Self::push) takes one decoded frame and returns the events to send on:
/// `messageStart` gives the role chunk, `contentBlockStart` of a `toolUse` opens a tool
/// call, `contentBlockDelta` carries text or tool input fragments, `messageStop` the
/// finish reason; `metadata` brings the usage. An exception frame (or an `error` one)
/// becomes an OpenAI error event and leaves the stream incomplete. The usage chunk (when
/// the caller asked for it) and `data: [DONE]` are left to [`finish`](Self::finish), so the
/// gateway can decide on the whole answer before the caller's stream ends.
#[derive(Debug)]
pub struct ConverseStreamToOpenAi {
    model: String,
    include_usage: bool,
    id: String,
    started: bool,
    text: String,
    tools: Vec<StreamedTool>,
    /// Converse content block index → position in `tools` (the OpenAI tool call index).
    blocks: Vec<(u64, usize)>,
    usage: Usage,
    stop_reason: Option<String>,
    metadata: bool,
    failed: bool,
    done: bool,
}

impl ConverseStreamToOpenAi {
    /// A translator answering as `model`; `include_usage` is the caller's
    /// `stream_options.include_usage`.
    pub fn new(model: &str, include_usage: bool) -> ConverseStreamToOpenAi {
        ConverseStreamToOpenAi {
            model: model.to_string(),
            include_usage,
            id: "chatcmpl-sluice".to_string(),
            started: false,
            text: String::new(),
            tools: Vec::new(),
            blocks: Vec::new(),
            usage: Usage::default(),
            stop_reason: None,
            metadata: false,
            failed: false,
            done: false,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> Vec<u8> {
        let chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": 0, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        data_event(&chunk.to_string())
    }

    /// The role chunk, once, before anything else.
    fn start(&mut self, out: &mut Vec<Vec<u8>>) {
        if !self.started {
            self.started = true;
            out.push(self.chunk(json!({"role": "assistant", "content": ""}), None));
        }
    }

    fn tool_start(&mut self, event: &Value, out: &mut Vec<Vec<u8>>) {
        let Some(tool) = event.get("start").and_then(|s| s.get("toolUse")) else {
            return;
        };
        let block = event
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let index = self.tools.len();
        let streamed = StreamedTool {
            id: str_of(Some(tool), "toolUseId").unwrap_or("").to_string(),
            name: str_of(Some(tool), "name").unwrap_or("").to_string(),
            arguments: String::new(),
        };
        let delta = json!({"tool_calls": [{
            "index": index, "id": streamed.id, "type": "function",
            "function": {"name": streamed.name, "arguments": ""},
        }]});
        self.tools.push(streamed);
        self.blocks.push((block, index));
        self.start(out);
        out.push(self.chunk(delta, None));
    }

    fn delta(&mut self, event: &Value, out: &mut Vec<Vec<u8>>) {
        let delta = event.get("delta");
        if let Some(text) = str_of(delta, "text") {
            if text.is_empty() {
                return;
            }
            self.text.push_str(text);
            self.start(out);
            out.push(self.chunk(json!({"content": text}), None));
            return;
        }
        let Some(input) = str_of(delta.and_then(|d| d.get("toolUse")), "input") else {
            // Reasoning and citation deltas have no place in a chat completion.
            return;
        };
        let block = event
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        let Some(&(_, index)) = self.blocks.iter().find(|(b, _)| *b == block) else {
            return;
        };
        let Some(tool) = self.tools.get_mut(index).filter(|_| !input.is_empty()) else {
            return;
        };
        tool.arguments.push_str(input);
        let delta = json!({"tool_calls": [{"index": index, "function": {"arguments": input}}]});
        out.push(self.chunk(delta, None));
    }

    fn event(&mut self, frame: &Frame) -> Vec<Vec<u8>> {
        let Ok(event) = serde_json::from_slice::<Value>(&frame.payload) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        match frame.event_type() {
            Some("messageStart") => self.start(&mut out),
            Some("contentBlockStart") => self.tool_start(&event, &mut out),
            Some("contentBlockDelta") => self.delta(&event, &mut out),
            Some("messageStop") if self.stop_reason.is_none() => {
                let reason = str_of(Some(&event), "stopReason").unwrap_or("end_turn");
                self.stop_reason = Some(reason.to_string());
                self.start(&mut out);
                out.push(self.chunk(json!({}), Some(finish_reason(Some(reason)))));
            }
            Some("metadata") => {
                self.usage = usage_of(event.get("usage"));
                self.metadata = true;
            }
            // `contentBlockStop`, and events this version does not know.
            _ => {}
        }
        out
    }

    fn exception(&mut self, exception: &str, message: &str) -> Vec<Vec<u8>> {
        self.failed = true;
        let error = GatewayError::new(
            exception_kind(exception),
            format!("Bedrock ended the stream with `{exception}`: {message}"),
        );
        vec![error.stream_event(Format::OpenAi)]
    }

    /// Translates one frame. Events that are not JSON or not understood
    /// (`contentBlockStop`, reasoning) produce nothing; so does anything after an exception
    /// or the end.
    pub fn push(&mut self, frame: &Frame) -> Vec<Vec<u8>> {
        if self.failed || self.done {
            return Vec::new();
        }
        match frame.message_type().unwrap_or("event") {
            "event" => self.event(frame),
            "exception" => {
                let payload = serde_json::from_slice::<Value>(&frame.payload).ok();
                let message = str_of(payload.as_ref(), "message")
                    .or_else(|| str_of(payload.as_ref(), "Message"))
                    .unwrap_or("no message");
                let exception = frame.exception_type().unwrap_or("exception");
                self.exception(exception, message)
            }
            "error" => {
                let code = frame.header(":error-code").unwrap_or("error");
                let message = frame.header(":error-message").unwrap_or("no message");
                self.exception(code, message)
            }
            _ => Vec::new(),
        }
    }

    /// Ends the stream: the usage chunk if the caller asked for it, then `data: [DONE]`,
    /// once the upstream has sent both `messageStop` and `metadata`; nothing otherwise (a
    /// cut-off stream must not look complete). Only the first call emits.
    pub fn finish(&mut self) -> Vec<Vec<u8>> {
        if !self.completed() || self.done {
            return Vec::new();
        }
        self.done = true;
        let mut out = Vec::new();
        if self.include_usage {
            let chunk = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": 0,
                "model": self.model, "choices": [], "usage": translate::openai_usage(&self.usage),
            });
            out.push(data_event(&chunk.to_string()));
        }
        out.push(data_event("[DONE]"));
        out
    }

    /// The answer's text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Output tokens as the upstream reported them (0 until `metadata`).
    pub fn output_tokens(&self) -> u64 {
        self.usage.output
    }

    /// Prompt tokens, cached ones included (0 until `metadata`).
    pub fn input_tokens(&self) -> u64 {
        self.usage.prompt_tokens()
    }

    /// Whether the upstream's stream ended properly: `messageStop` and `metadata` seen,
    /// no exception.
    pub fn completed(&self) -> bool {
        self.stop_reason.is_some() && self.metadata && !self.failed
    }

    /// The answer so far: its text and its tool calls (arguments parsed when complete).
    pub fn answer(&self) -> Answer {
        let tool_calls = self
            .tools
            .iter()
            .map(|tool| ToolCall {
                name: tool.name.clone(),
                server: None,
                arguments: if tool.arguments.trim().is_empty() {
                    json!({})
                } else {
                    openai::parsed_arguments(&tool.arguments)
                },
            })
            .collect();
        Answer {
            messages: vec![Message {
                role: "assistant".to_string(),
                content: self.text.clone(),
                tool_calls,
            }],
            input_tokens: self.input_tokens(),
            output_tokens: self.output_tokens(),
            // Streams report no cache reads here yet.
            cached_tokens: 0,
            reasoning_tokens: 0,
        }
    }
}

#[cfg(test)]
mod tests;
