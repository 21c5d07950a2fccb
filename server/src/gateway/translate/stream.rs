//! Streams, both ways: events of one format re-emitted in the other as they arrive.

use super::*;

/// A tool call assembled from a stream.
#[derive(Debug, Clone, Default)]
pub(super) struct StreamedTool {
    id: String,
    name: String,
    arguments: String,
}

/// What a stream has said so far, as an [`Answer`].
pub(super) fn streamed_answer(
    text: &str,
    tools: &[StreamedTool],
    input: u64,
    output: u64,
) -> Answer {
    let tool_calls = tools
        .iter()
        .map(|tool| ToolCall {
            name: tool.name.clone(),
            server: None,
            arguments: openai::parsed_arguments(&tool.arguments),
        })
        .collect();
    Answer {
        messages: vec![Message {
            role: "assistant".to_string(),
            content: text.to_string(),
            tool_calls,
        }],
        input_tokens: input,
        output_tokens: output,
        // Streams report no cache reads here yet.
        cached_tokens: 0,
        reasoning_tokens: 0,
    }
}

/// An Anthropic stream event: its `event:` line is its `type`.
pub(super) fn anthropic_event(value: &Value) -> Vec<u8> {
    let kind = str_of(Some(value), "type").unwrap_or("message");
    format!("event: {kind}\ndata: {value}\n\n").into_bytes()
}

/// Turns an upstream Anthropic stream into OpenAI `chat.completion.chunk` events.
///
/// Each [`push`](Self::push) takes one event's `data` (its `type` names the event) and
/// returns the events to send on. `[DONE]` is left to [`finish`](Self::finish), so the
/// gateway can decide on the whole answer before the caller's stream ends.
#[derive(Debug)]
pub struct AnthropicToOpenAiStream {
    model: String,
    include_usage: bool,
    id: String,
    usage: Usage,
    text: String,
    tools: Vec<StreamedTool>,
    /// Anthropic block index → position in `tools` (the OpenAI tool call index).
    blocks: Vec<(u64, usize)>,
    stopped: bool,
    done: bool,
}

impl AnthropicToOpenAiStream {
    /// A translator answering as `model`; `include_usage` is the caller's
    /// `stream_options.include_usage`.
    pub fn new(model: &str, include_usage: bool) -> AnthropicToOpenAiStream {
        AnthropicToOpenAiStream {
            model: model.to_string(),
            include_usage,
            id: "chatcmpl-sluice".to_string(),
            usage: Usage::default(),
            text: String::new(),
            tools: Vec::new(),
            blocks: Vec::new(),
            stopped: false,
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

    fn text_delta(&mut self, text: &str) -> Vec<Vec<u8>> {
        if text.is_empty() {
            return Vec::new();
        }
        self.text.push_str(text);
        vec![self.chunk(json!({"content": text}), None)]
    }

    /// Translates one upstream event; events that are not JSON or not understood (`ping`,
    /// thinking, server tools) produce nothing.
    pub fn push(&mut self, data: &str) -> Vec<Vec<u8>> {
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            return Vec::new();
        };
        match str_of(Some(&event), "type") {
            Some("message_start") => {
                let message = event.get("message");
                if let Some(id) = str_of(message, "id") {
                    self.id = format!("chatcmpl-{id}");
                }
                self.usage = Usage::of(message.and_then(|m| m.get("usage")));
                vec![self.chunk(json!({"role": "assistant", "content": ""}), None)]
            }
            Some("content_block_start") => {
                let block = event.get("content_block");
                match str_of(block, "type") {
                    Some("text") => self.text_delta(str_of(block, "text").unwrap_or("")),
                    Some("tool_use") => {
                        let index = self.tools.len();
                        let tool = StreamedTool {
                            id: str_of(block, "id").unwrap_or("").to_string(),
                            name: str_of(block, "name").unwrap_or("").to_string(),
                            arguments: String::new(),
                        };
                        let delta = json!({"tool_calls": [{
                            "index": index, "id": tool.id, "type": "function",
                            "function": {"name": tool.name, "arguments": ""},
                        }]});
                        self.tools.push(tool);
                        let block_index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
                        self.blocks.push((block_index, index));
                        vec![self.chunk(delta, None)]
                    }
                    _ => Vec::new(),
                }
            }
            Some("content_block_delta") => {
                let delta = event.get("delta");
                match str_of(delta, "type") {
                    Some("text_delta") => self.text_delta(str_of(delta, "text").unwrap_or("")),
                    Some("input_json_delta") => {
                        let block_index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
                        let partial = str_of(delta, "partial_json").unwrap_or("");
                        let Some(&(_, index)) = self.blocks.iter().find(|(b, _)| *b == block_index)
                        else {
                            return Vec::new();
                        };
                        let Some(tool) = self.tools.get_mut(index).filter(|_| !partial.is_empty())
                        else {
                            return Vec::new();
                        };
                        tool.arguments.push_str(partial);
                        let delta = json!({"tool_calls": [{
                            "index": index, "function": {"arguments": partial},
                        }]});
                        vec![self.chunk(delta, None)]
                    }
                    _ => Vec::new(),
                }
            }
            Some("message_delta") => {
                // Counts in `message_delta` are cumulative: they replace those seen before.
                let usage = event.get("usage");
                let field = |name: &str| usage.and_then(|u| u.get(name)).and_then(Value::as_u64);
                if let Some(n) = field("output_tokens") {
                    self.usage.output = n;
                }
                if let Some(n) = field("input_tokens") {
                    self.usage.input = n;
                }
                if let Some(n) = field("cache_creation_input_tokens") {
                    self.usage.cache_creation = n;
                }
                if let Some(n) = field("cache_read_input_tokens") {
                    self.usage.cache_read = Some(n);
                }
                let reason = finish_reason(str_of(event.get("delta"), "stop_reason"));
                vec![self.chunk(json!({}), Some(reason))]
            }
            Some("message_stop") => {
                self.stopped = true;
                if !self.include_usage {
                    return Vec::new();
                }
                let chunk = json!({
                    "id": self.id, "object": "chat.completion.chunk", "created": 0,
                    "model": self.model, "choices": [], "usage": openai_usage(&self.usage),
                });
                vec![data_event(&chunk.to_string())]
            }
            Some("error") => {
                let error = event.get("error");
                let body = openai::error_body(
                    str_of(error, "message").unwrap_or("the upstream stream failed"),
                    str_of(error, "type").unwrap_or("api_error"),
                    None,
                    None,
                );
                vec![data_event(&body.to_string())]
            }
            _ => Vec::new(),
        }
    }

    /// Ends the stream: `data: [DONE]` if the upstream reached `message_stop`, nothing
    /// otherwise (a cut-off stream must not look complete). Only the first call emits.
    pub fn finish(&mut self) -> Vec<Vec<u8>> {
        if !self.stopped || self.done {
            return Vec::new();
        }
        self.done = true;
        vec![data_event("[DONE]")]
    }

    /// The answer's text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Output tokens as the upstream last reported them.
    pub fn output_tokens(&self) -> u64 {
        self.usage.output
    }

    /// Prompt tokens, cached ones included, as the upstream reported them.
    pub fn input_tokens(&self) -> u64 {
        self.usage.prompt_tokens()
    }

    /// Prompt tokens read from the provider's cache, as the upstream reported them.
    pub fn cached_tokens(&self) -> u64 {
        self.usage.cache_read.unwrap_or(0)
    }

    /// Whether the upstream's stream reached `message_stop`.
    pub fn completed(&self) -> bool {
        self.stopped
    }

    /// The answer so far: its text and its tool calls (arguments parsed when complete).
    pub fn answer(&self) -> Answer {
        streamed_answer(
            &self.text,
            &self.tools,
            self.input_tokens(),
            self.output_tokens(),
        )
    }
}

/// The content block an Anthropic stream has open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpenBlock {
    Text(u64),
    Tool { block: u64, tool: usize },
}

/// Turns an upstream OpenAI chunk stream into Anthropic stream events.
///
/// Each [`push`](Self::push) takes one event's `data` and returns the events to send on,
/// each with its `event:` line. Text opens a text block lazily; each tool call opens a
/// `tool_use` block whose arguments follow as `input_json_delta`s. `[DONE]` closes the
/// open block and sends `message_delta` (stop reason, usage) and `message_stop`.
///
/// Anthropic's blocks are sequential, so a fragment for a tool call whose block has already
/// closed (OpenAI streams calls one after another; interleaving would be unusual) is kept
/// in [`answer`](Self::answer) but cannot be sent on. Token counts are known only when the
/// upstream reports usage (the translated request asks for it), so `message_start` carries
/// zeros and `message_delta` the real counts.
#[derive(Debug)]
pub struct OpenAiToAnthropicStream {
    model: String,
    started: bool,
    next_block: u64,
    open: Option<OpenBlock>,
    text: String,
    tools: Vec<StreamedTool>,
    /// OpenAI tool call index → position in `tools`.
    indices: Vec<(u64, usize)>,
    finish_reason: Option<String>,
    /// Prompt, completion and cached prompt tokens, once reported.
    usage: Option<(u64, u64, u64)>,
    completed: bool,
}

impl OpenAiToAnthropicStream {
    /// A translator answering as `model`.
    pub fn new(model: &str) -> OpenAiToAnthropicStream {
        OpenAiToAnthropicStream {
            model: model.to_string(),
            started: false,
            next_block: 0,
            open: None,
            text: String::new(),
            tools: Vec::new(),
            indices: Vec::new(),
            finish_reason: None,
            usage: None,
            completed: false,
        }
    }

    fn start(&mut self, id: Option<&str>, out: &mut Vec<Vec<u8>>) {
        if self.started {
            return;
        }
        self.started = true;
        out.push(anthropic_event(&json!({
            "type": "message_start",
            "message": {
                "id": format!("msg_{}", id.unwrap_or("sluice")),
                "type": "message", "role": "assistant", "model": self.model, "content": [],
                "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0},
            },
        })));
    }

    fn close(&mut self, out: &mut Vec<Vec<u8>>) {
        let index = match self.open.take() {
            Some(OpenBlock::Text(index) | OpenBlock::Tool { block: index, .. }) => index,
            None => return,
        };
        out.push(anthropic_event(
            &json!({"type": "content_block_stop", "index": index}),
        ));
    }

    fn open_block(&mut self, block: Value, out: &mut Vec<Vec<u8>>) -> u64 {
        self.close(out);
        let index = self.next_block;
        self.next_block += 1;
        out.push(anthropic_event(&json!({
            "type": "content_block_start", "index": index, "content_block": block,
        })));
        index
    }

    fn text_delta(&mut self, text: &str, out: &mut Vec<Vec<u8>>) {
        let index = match self.open {
            Some(OpenBlock::Text(index)) => index,
            _ => {
                let index = self.open_block(json!({"type": "text", "text": ""}), out);
                self.open = Some(OpenBlock::Text(index));
                index
            }
        };
        self.text.push_str(text);
        out.push(anthropic_event(&json!({
            "type": "content_block_delta", "index": index,
            "delta": {"type": "text_delta", "text": text},
        })));
    }

    fn tool_delta(&mut self, call: &Value, out: &mut Vec<Vec<u8>>) {
        let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let function = call.get("function");
        let known = self
            .indices
            .iter()
            .find(|(i, _)| *i == index)
            .map(|&(_, t)| t);
        let tool = match known {
            Some(tool) => tool,
            None => {
                let tool = self.tools.len();
                let id = str_of(Some(call), "id")
                    .map_or_else(|| format!("toolu_sluice_{tool}"), str::to_string);
                let name = str_of(function, "name").unwrap_or("").to_string();
                let block = self.open_block(
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    out,
                );
                self.open = Some(OpenBlock::Tool { block, tool });
                self.tools.push(StreamedTool {
                    id,
                    name,
                    arguments: String::new(),
                });
                self.indices.push((index, tool));
                tool
            }
        };
        let Some(arguments) = str_of(function, "arguments").filter(|a| !a.is_empty()) else {
            return;
        };
        if let Some(streamed) = self.tools.get_mut(tool) {
            streamed.arguments.push_str(arguments);
        }
        if let Some(OpenBlock::Tool { block, tool: open }) = self.open
            && open == tool
        {
            out.push(anthropic_event(&json!({
                "type": "content_block_delta", "index": block,
                "delta": {"type": "input_json_delta", "partial_json": arguments},
            })));
        }
    }

    /// Translates one upstream event's `data`; `[DONE]` ends the message. Data that is not
    /// JSON produces nothing; an upstream error becomes an Anthropic `error` event.
    pub fn push(&mut self, data: &str) -> Vec<Vec<u8>> {
        if data.trim() == "[DONE]" {
            return self.end();
        }
        if self.completed {
            return Vec::new();
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(error) = chunk.get("error") {
            let message = str_of(Some(error), "message").unwrap_or("the upstream stream failed");
            out.push(anthropic_event(&anthropic::error_body(
                "api_error",
                message,
            )));
            return out;
        }
        self.start(str_of(Some(&chunk), "id"), &mut out);
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage_of_openai(Some(usage)));
        }
        // Only the first choice: Anthropic answers with one message.
        let choice = chunk
            .get("choices")
            .and_then(Value::as_array)
            .and_then(|choices| {
                choices
                    .iter()
                    .find(|c| c.get("index").and_then(Value::as_u64).unwrap_or(0) == 0)
            });
        let Some(choice) = choice else {
            return out;
        };
        let delta = choice.get("delta");
        for field in ["content", "refusal"] {
            if let Some(text) = str_of(delta, field).filter(|t| !t.is_empty()) {
                self.text_delta(text, &mut out);
            }
        }
        if let Some(Value::Array(calls)) = delta.and_then(|d| d.get("tool_calls")) {
            for call in calls {
                self.tool_delta(call, &mut out);
            }
        }
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_string());
        }
        out
    }

    fn end(&mut self) -> Vec<Vec<u8>> {
        if self.completed {
            return Vec::new();
        }
        self.completed = true;
        let mut out = Vec::new();
        self.start(None, &mut out);
        self.close(&mut out);
        let usage = match self.usage {
            Some(counts) => anthropic_usage(counts),
            None => json!({"output_tokens": 0}),
        };
        out.push(anthropic_event(&json!({
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason(self.finish_reason.as_deref()),
                "stop_sequence": null,
            },
            "usage": usage,
        })));
        out.push(anthropic_event(&json!({"type": "message_stop"})));
        out
    }

    /// Ends the stream when the upstream closed without `[DONE]`: if a `finish_reason` was
    /// seen the message is ended as `[DONE]` would; otherwise nothing is sent, since a
    /// cut-off stream must not look complete.
    pub fn finish(&mut self) -> Vec<Vec<u8>> {
        if self.completed || self.finish_reason.is_none() {
            return Vec::new();
        }
        self.end()
    }

    /// The answer's text so far.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Output tokens as the upstream reported them (0 until it does).
    pub fn output_tokens(&self) -> u64 {
        self.usage.map_or(0, |(_, completion, _)| completion)
    }

    /// Prompt tokens as the upstream reported them (0 until it does).
    pub fn input_tokens(&self) -> u64 {
        self.usage.map_or(0, |(prompt, _, _)| prompt)
    }

    /// Cached prompt tokens as the upstream reported them (0 until it does).
    pub fn cached_tokens(&self) -> u64 {
        self.usage.map_or(0, |(_, _, cached)| cached)
    }

    /// Whether the upstream's stream reached its end (`[DONE]`, or a `finish_reason`
    /// followed by [`finish`](Self::finish)).
    pub fn completed(&self) -> bool {
        self.completed
    }

    /// The answer so far: its text and its tool calls (arguments parsed when complete).
    pub fn answer(&self) -> Answer {
        streamed_answer(
            &self.text,
            &self.tools,
            self.input_tokens(),
            self.output_tokens(),
        )
    }
}
