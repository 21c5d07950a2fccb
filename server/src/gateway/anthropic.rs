//! Anthropic's wire format (`POST /v1/messages` and `POST /v1/messages/count_tokens`):
//! reading Messages requests into normalised content without losing the original body,
//! reading answers back, and errors as Anthropic's SDKs expect them
//! (`{"type": "error", "error": {"type", "message"}}`).
//!
//! Parameters at fault are named the way Anthropic names them: dotted paths with numeric
//! indices (`messages.0.content.1.type`).

use serde_json::{Map, Value, json};
use sluice_engine::input::{Content, Message, ToolCall, ToolDescriptor};

use super::openai::{Answer, BadRequest};

/// A Messages request: the body as sent (forwarded with only the changes policy asks for)
/// and what Sluice needs from it.
#[derive(Debug, Clone)]
pub struct MessagesRequest {
    /// The whole body.
    pub body: Map<String, Value>,
    /// `model`.
    pub model: String,
    /// `stream` (always `false` for a token count).
    pub stream: bool,
}

fn bad(message: impl Into<String>, param: impl Into<String>) -> BadRequest {
    BadRequest {
        message: message.into(),
        param: Some(param.into()),
    }
}

/// What a body must carry: a Messages call needs `max_tokens`, a token count does not.
#[derive(Clone, Copy)]
enum Endpoint {
    Messages,
    CountTokens,
}

impl MessagesRequest {
    /// Validates a `POST /v1/messages` body as Anthropic does for the fields Sluice relies
    /// on; everything else passes through untouched.
    pub fn parse(body: Map<String, Value>) -> Result<MessagesRequest, BadRequest> {
        MessagesRequest::validate(body, Endpoint::Messages)
    }

    /// Validates a `POST /v1/messages/count_tokens` body: as [`MessagesRequest::parse`],
    /// except that `max_tokens` is not required and `stream` is ignored.
    pub fn parse_count_tokens(body: Map<String, Value>) -> Result<MessagesRequest, BadRequest> {
        MessagesRequest::validate(body, Endpoint::CountTokens)
    }

    fn validate(
        body: Map<String, Value>,
        endpoint: Endpoint,
    ) -> Result<MessagesRequest, BadRequest> {
        let model = match body.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.clone(),
            Some(Value::String(_)) => return Err(bad("model: must not be empty", "model")),
            Some(_) => return Err(bad("model: must be a string", "model")),
            None => return Err(bad("model: field required", "model")),
        };
        let stream = match (endpoint, body.get("stream")) {
            (Endpoint::CountTokens, _) | (_, None | Some(Value::Null)) => false,
            (Endpoint::Messages, Some(Value::Bool(b))) => *b,
            (Endpoint::Messages, Some(_)) => {
                return Err(bad("stream: must be a boolean", "stream"));
            }
        };
        if let Endpoint::Messages = endpoint {
            match body.get("max_tokens") {
                Some(n) if n.as_u64().is_some_and(|n| n >= 1) => {}
                Some(_) => {
                    return Err(bad(
                        "max_tokens: must be an integer greater than or equal to 1",
                        "max_tokens",
                    ));
                }
                None => return Err(bad("max_tokens: field required", "max_tokens")),
            }
        }
        validate_messages(body.get("messages"))?;
        match body.get("system") {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                for (i, block) in blocks.iter().enumerate() {
                    let is_text = block.get("type").and_then(Value::as_str) == Some("text")
                        && block.get("text").is_some_and(Value::is_string);
                    if !is_text {
                        return Err(bad(
                            format!(
                                "system.{i}: each block must be a text block with a string `text`"
                            ),
                            format!("system.{i}"),
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(bad(
                    "system: must be a string or an array of text blocks",
                    "system",
                ));
            }
        }
        match body.get("tools") {
            None | Some(Value::Null) => {}
            Some(Value::Array(tools)) => {
                for (i, tool) in tools.iter().enumerate() {
                    if !tool.get("name").is_some_and(Value::is_string) {
                        return Err(bad(
                            format!(
                                "tools.{i}.name: each tool must be an object with a string `name`"
                            ),
                            format!("tools.{i}.name"),
                        ));
                    }
                }
            }
            Some(_) => return Err(bad("tools: must be an array", "tools")),
        }
        Ok(MessagesRequest {
            body,
            model,
            stream,
        })
    }

    /// The normalised content: the system prompt first (role `system`), then every message's
    /// text (text blocks joined with `\n`) and the tool calls the assistant made. Each
    /// `tool_result` block becomes a message of role `tool` holding the result's text, placed
    /// before the rest of the message it came in. The tools offered are listed too.
    pub fn content(&self) -> Content {
        let mut messages = Vec::new();
        if let Some(system) = self.body.get("system")
            && !system.is_null()
        {
            messages.push(Message {
                role: "system".to_string(),
                content: text_of(Some(system)),
                tool_calls: Vec::new(),
            });
        }
        if let Some(Value::Array(list)) = self.body.get("messages") {
            for message in list {
                push_message(&mut messages, message);
            }
        }
        let tools = self
            .body
            .get("tools")
            .and_then(Value::as_array)
            .map(|tools| tools.iter().filter_map(tool_descriptor).collect())
            .unwrap_or_default();
        Content {
            messages,
            tools,
            ..Content::default()
        }
    }

    /// Rewrites every text [`MessagesRequest::content`] shows with `f`: the system prompt,
    /// string contents, text blocks, and the text of tool results.
    pub fn rewrite_text(&mut self, mut f: impl FnMut(&str) -> String) {
        if let Some(system) = self.body.get_mut("system") {
            rewrite_content(system, &mut f);
        }
        let Some(Value::Array(messages)) = self.body.get_mut("messages") else {
            return;
        };
        for message in messages.iter_mut() {
            let Some(content) = message.get_mut("content") else {
                continue;
            };
            if let Value::Array(blocks) = content {
                for block in blocks.iter_mut() {
                    if block.get("type").and_then(Value::as_str) == Some("tool_result")
                        && let Some(result) = block.get_mut("content")
                    {
                        rewrite_content(result, &mut f);
                    }
                }
            }
            rewrite_content(content, &mut f);
        }
    }
}

fn validate_messages(messages: Option<&Value>) -> Result<(), BadRequest> {
    let messages = match messages {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        Some(Value::Array(_)) => {
            return Err(bad(
                "messages: at least one message is required",
                "messages",
            ));
        }
        Some(_) => return Err(bad("messages: must be an array", "messages")),
        None => return Err(bad("messages: field required", "messages")),
    };
    for (i, message) in messages.iter().enumerate() {
        let Some(message) = message.as_object() else {
            return Err(bad(
                format!("messages.{i}: must be an object"),
                format!("messages.{i}"),
            ));
        };
        match message.get("role").and_then(Value::as_str) {
            Some("user" | "assistant") => {}
            _ => {
                return Err(bad(
                    format!("messages.{i}.role: must be `user` or `assistant`"),
                    format!("messages.{i}.role"),
                ));
            }
        }
        match message.get("content") {
            Some(Value::String(_)) => {}
            Some(Value::Array(blocks)) => {
                for (j, block) in blocks.iter().enumerate() {
                    let param = format!("messages.{i}.content.{j}");
                    let Some(kind) = block.get("type").and_then(Value::as_str) else {
                        return Err(bad(
                            format!(
                                "{param}.type: each content block must be an object with a string `type`"
                            ),
                            format!("{param}.type"),
                        ));
                    };
                    if kind == "text" && !block.get("text").is_some_and(Value::is_string) {
                        return Err(bad(
                            format!("{param}.text: must be a string"),
                            format!("{param}.text"),
                        ));
                    }
                }
            }
            Some(_) => {
                return Err(bad(
                    format!("messages.{i}.content: must be a string or an array of content blocks"),
                    format!("messages.{i}.content"),
                ));
            }
            None => {
                return Err(bad(
                    format!("messages.{i}.content: field required"),
                    format!("messages.{i}.content"),
                ));
            }
        }
    }
    Ok(())
}

fn rewrite_content(content: &mut Value, f: &mut impl FnMut(&str) -> String) {
    match content {
        Value::String(text) => *text = f(text),
        Value::Array(blocks) => {
            for block in blocks.iter_mut() {
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(Value::String(text)) = block.get_mut("text") {
                            *text = f(text);
                        }
                    }
                    // A tool call's input: every string in it.
                    Some("tool_use") => {
                        if let Some(input) = block.get_mut("input") {
                            rewrite_strings(input, f, 0);
                        }
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Rewrites every string inside a JSON value (bounded depth: the parsers refuse deeper
/// nesting before this could matter).
pub fn rewrite_strings(value: &mut Value, f: &mut impl FnMut(&str) -> String, depth: usize) {
    if depth > 128 {
        return;
    }
    match value {
        Value::String(text) => *text = f(text),
        Value::Array(items) => {
            for item in items.iter_mut() {
                rewrite_strings(item, f, depth + 1);
            }
        }
        Value::Object(map) => {
            for item in map.values_mut() {
                rewrite_strings(item, f, depth + 1);
            }
        }
        _ => {}
    }
}

/// The text of a `content` or `system` value: a string, or its text blocks joined with `\n`
/// (other blocks — images, tool calls, tool results — contribute nothing).
pub fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(blocks)) => blocks
            .iter()
            .filter(|block| block.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|block| block.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// The `tool_use` blocks of a content array, as tool calls.
fn tool_calls(content: Option<&Value>) -> Vec<ToolCall> {
    let Some(Value::Array(blocks)) = content else {
        return Vec::new();
    };
    blocks
        .iter()
        .filter(|block| block.get("type").and_then(Value::as_str) == Some("tool_use"))
        .filter_map(|block| {
            Some(ToolCall {
                name: block.get("name")?.as_str()?.to_string(),
                server: None,
                arguments: block.get("input").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}

fn push_message(messages: &mut Vec<Message>, value: &Value) {
    let role = value
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let content = value.get("content");
    let mut had_results = false;
    if let Some(Value::Array(blocks)) = content {
        for block in blocks {
            if block.get("type").and_then(Value::as_str) == Some("tool_result") {
                had_results = true;
                messages.push(Message {
                    role: "tool".to_string(),
                    content: text_of(block.get("content")),
                    tool_calls: Vec::new(),
                });
            }
        }
    }
    let message = Message {
        role,
        content: text_of(content),
        tool_calls: tool_calls(content),
    };
    // A message that only carried tool results is fully represented by them.
    if !had_results || !message.content.is_empty() || !message.tool_calls.is_empty() {
        messages.push(message);
    }
}

fn tool_descriptor(value: &Value) -> Option<ToolDescriptor> {
    Some(ToolDescriptor {
        name: value.get("name")?.as_str()?.to_string(),
        server: None,
        description: value
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        input_schema: value.get("input_schema").cloned().unwrap_or(Value::Null),
    })
}

/// Reads a (non-streamed) Messages response: one assistant message with the text blocks
/// joined and the `tool_use` blocks as tool calls.
///
/// `input_tokens` counts every prompt token, cached or not (`input_tokens` +
/// `cache_creation_input_tokens` + `cache_read_input_tokens`), so that it means what OpenAI's
/// `prompt_tokens` means and budgets count both providers alike.
pub fn answer(body: &Value) -> Answer {
    let messages = match body.get("content") {
        Some(content @ Value::Array(_)) => vec![Message {
            role: body
                .get("role")
                .and_then(Value::as_str)
                .unwrap_or("assistant")
                .to_string(),
            content: text_of(Some(content)),
            tool_calls: tool_calls(Some(content)),
        }],
        _ => Vec::new(),
    };
    let usage = Usage::of(body.get("usage"));
    Answer {
        messages,
        input_tokens: usage.prompt_tokens(),
        output_tokens: usage.output,
        cached_tokens: usage.cache_read.unwrap_or(0),
        // Anthropic counts thinking inside output_tokens without a separate figure.
        reasoning_tokens: 0,
    }
}

/// Anthropic's `usage` object, read leniently (absent counts are 0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// `input_tokens`: prompt tokens neither read from nor written to the cache.
    pub input: u64,
    /// `output_tokens`.
    pub output: u64,
    /// `cache_creation_input_tokens`.
    pub cache_creation: u64,
    /// `cache_read_input_tokens`, `None` when the field is absent or null.
    pub cache_read: Option<u64>,
}

impl Usage {
    /// Reads a `usage` value.
    pub fn of(usage: Option<&Value>) -> Usage {
        let field = |name: &str| usage.and_then(|u| u.get(name)).and_then(Value::as_u64);
        Usage {
            input: field("input_tokens").unwrap_or(0),
            output: field("output_tokens").unwrap_or(0),
            cache_creation: field("cache_creation_input_tokens").unwrap_or(0),
            cache_read: field("cache_read_input_tokens"),
        }
    }

    /// Every prompt token, cached or not: what OpenAI calls `prompt_tokens`.
    pub fn prompt_tokens(&self) -> u64 {
        self.input
            .saturating_add(self.cache_creation)
            .saturating_add(self.cache_read.unwrap_or(0))
    }
}

/// The body of an Anthropic error: `kind` is Anthropic's error type
/// (`invalid_request_error`, `authentication_error`, `permission_error`, `not_found_error`,
/// `request_too_large`, `rate_limit_error`, `api_error`, `overloaded_error`).
pub fn error_body(kind: &str, message: &str) -> Value {
    json!({
        "type": "error",
        "error": {"type": kind, "message": message},
    })
}

/// An estimate of a request's input tokens, for `POST /v1/messages/count_tokens`: one token
/// per 4 characters (rounded up) of all the text the model reads — the system prompt, every
/// text block and string content, tool results, tool calls' inputs (as JSON) and the tool
/// definitions (name, description and input schema as JSON). Images and documents are not
/// counted. Anthropic's own tokenizer is not public, so this is an estimate, not its count.
pub fn count_tokens_estimate(request: &MessagesRequest) -> u64 {
    let mut chars: u64 = 0;
    let mut add = |text: &str| chars = chars.saturating_add(text.chars().count() as u64);
    if let Some(system) = request.body.get("system") {
        add(&text_of(Some(system)));
    }
    if let Some(Value::Array(messages)) = request.body.get("messages") {
        for message in messages {
            let content = message.get("content");
            add(&text_of(content));
            let Some(Value::Array(blocks)) = content else {
                continue;
            };
            for block in blocks {
                match block.get("type").and_then(Value::as_str) {
                    Some("tool_result") => add(&text_of(block.get("content"))),
                    Some("tool_use") => {
                        add(block.get("name").and_then(Value::as_str).unwrap_or(""));
                        if let Some(input) = block.get("input") {
                            add(&input.to_string());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    if let Some(Value::Array(tools)) = request.body.get("tools") {
        for tool in tools {
            add(tool.get("name").and_then(Value::as_str).unwrap_or(""));
            add(tool
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or(""));
            if let Some(schema) = tool.get("input_schema") {
                add(&schema.to_string());
            }
        }
    }
    chars.div_ceil(4)
}

/// The body of a `count_tokens` answer: `{"input_tokens": N}`.
pub fn count_tokens_body(input_tokens: u64) -> Value {
    json!({ "input_tokens": input_tokens })
}

#[cfg(test)]
mod tests;
