//! OpenAI's wire format: reading chat completion and embedding requests into normalised
//! content without losing the original body, reading answers back, and errors as OpenAI's
//! SDKs expect them (`{"error": {"message", "type", "param", "code"}}`).

use serde_json::{Map, Value};
use sluice_engine::input::{Content, Message, ToolCall, ToolDescriptor};

/// A chat completion request: the body as sent (forwarded with only the changes policy
/// asks for) and what Sluice needs from it.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The whole body.
    pub body: Map<String, Value>,
    /// `model`.
    pub model: String,
    /// `stream`.
    pub stream: bool,
}

/// Why a body is not a valid request: the message and the offending parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest {
    /// What is wrong.
    pub message: String,
    /// The parameter at fault, as OpenAI names it (`messages[0].role`).
    pub param: Option<String>,
}

fn bad(message: impl Into<String>, param: impl Into<String>) -> BadRequest {
    BadRequest {
        message: message.into(),
        param: Some(param.into()),
    }
}

/// Parses a JSON body into an object, with the error OpenAI gives for each failure.
pub fn parse_object(body: &[u8]) -> Result<Map<String, Value>, BadRequest> {
    let text = std::str::from_utf8(body).map_err(|e| BadRequest {
        message: format!(
            "the request body is not valid UTF-8 (byte {})",
            e.valid_up_to()
        ),
        param: None,
    })?;
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(BadRequest {
            message: "the request body must be a JSON object".to_string(),
            param: None,
        }),
        Err(e) => Err(BadRequest {
            message: format!(
                "the request body is not valid JSON: {e}. Send a JSON object with the `Content-Type: application/json` header."
            ),
            param: None,
        }),
    }
}

fn model_of(body: &Map<String, Value>) -> Result<String, BadRequest> {
    match body.get("model") {
        Some(Value::String(model)) if !model.is_empty() => Ok(model.clone()),
        Some(Value::String(_)) => Err(bad("`model` must not be empty", "model")),
        Some(_) => Err(bad("`model` must be a string", "model")),
        None => Err(bad("you must provide a model parameter", "model")),
    }
}

impl ChatRequest {
    /// Validates the fields Sluice relies on; everything else passes through untouched.
    pub fn parse(body: Map<String, Value>) -> Result<ChatRequest, BadRequest> {
        let model = model_of(&body)?;
        let stream = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(bad("`stream` must be a boolean", "stream")),
        };
        let messages = match body.get("messages") {
            Some(Value::Array(messages)) if !messages.is_empty() => messages,
            Some(Value::Array(_)) => {
                return Err(bad(
                    "`messages` must contain at least one message",
                    "messages",
                ));
            }
            Some(_) => return Err(bad("`messages` must be an array", "messages")),
            None => return Err(bad("missing required parameter: `messages`", "messages")),
        };
        for (i, message) in messages.iter().enumerate() {
            let Some(message) = message.as_object() else {
                return Err(bad(
                    "each message must be an object",
                    format!("messages[{i}]"),
                ));
            };
            match message.get("role") {
                Some(Value::String(_)) => {}
                _ => {
                    return Err(bad(
                        "each message needs a string `role`",
                        format!("messages[{i}].role"),
                    ));
                }
            }
            match message.get("content") {
                None | Some(Value::Null | Value::String(_) | Value::Array(_)) => {}
                Some(_) => {
                    return Err(bad(
                        "`content` must be a string or an array of content parts",
                        format!("messages[{i}].content"),
                    ));
                }
            }
        }
        if let Some(tools) = body.get("tools")
            && !tools.is_array()
        {
            return Err(bad("`tools` must be an array", "tools"));
        }
        Ok(ChatRequest {
            body,
            model,
            stream,
        })
    }

    /// The normalised content: every message's text (parts joined), tool calls the
    /// assistant made, and the tools offered.
    pub fn content(&self) -> Content {
        let messages = self
            .body
            .get("messages")
            .and_then(Value::as_array)
            .map(|messages| messages.iter().map(message).collect())
            .unwrap_or_default();
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

    /// Rewrites the text of every message (string content and text parts) with `f`, and
    /// the arguments of the tool calls in it (a JSON string, rewritten as text: redaction
    /// replacements contain no quote or backslash, so the JSON stays valid).
    pub fn rewrite_text(&mut self, mut f: impl FnMut(&str) -> String) {
        let Some(Value::Array(messages)) = self.body.get_mut("messages") else {
            return;
        };
        for message in messages.iter_mut() {
            match message.get_mut("content") {
                Some(Value::String(text)) => *text = f(text),
                Some(Value::Array(parts)) => {
                    for part in parts.iter_mut() {
                        if let Some(Value::String(text)) = part.get_mut("text") {
                            *text = f(text);
                        }
                    }
                }
                _ => {}
            }
            if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
                for call in calls.iter_mut() {
                    if let Some(Value::String(arguments)) = call
                        .get_mut("function")
                        .and_then(|function| function.get_mut("arguments"))
                    {
                        *arguments = f(arguments);
                    }
                }
            }
        }
    }
}

/// The text of a `content` value: a string, or the `text` of its parts.
pub fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn message(value: &Value) -> Message {
    let role = value
        .get("role")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Message {
        role,
        content: text_of(value.get("content")),
        tool_calls: tool_calls(value.get("tool_calls")),
    }
}

/// Tool-call arguments as policies see them: the parsed JSON, or the string itself when it
/// does not parse (a call cut short, a model writing invalid JSON).
pub fn parsed_arguments(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

/// Tool calls of an assistant message or a response choice.
pub fn tool_calls(value: Option<&Value>) -> Vec<ToolCall> {
    let Some(Value::Array(calls)) = value else {
        return Vec::new();
    };
    calls
        .iter()
        .filter_map(|call| {
            let function = call.get("function")?;
            let name = function.get("name")?.as_str()?.to_string();
            // Arguments travel as a JSON string; policies see the parsed value.
            let arguments = match function.get("arguments") {
                Some(Value::String(text)) => parsed_arguments(text),
                Some(other) => other.clone(),
                None => Value::Null,
            };
            Some(ToolCall {
                name,
                server: None,
                arguments,
            })
        })
        .collect()
}

fn tool_descriptor(value: &Value) -> Option<ToolDescriptor> {
    let function = value.get("function")?;
    Some(ToolDescriptor {
        name: function.get("name")?.as_str()?.to_string(),
        server: None,
        description: function
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        input_schema: function.get("parameters").cloned().unwrap_or(Value::Null),
    })
}

/// An embeddings request.
#[derive(Debug, Clone)]
pub struct EmbeddingsRequest {
    /// The whole body.
    pub body: Map<String, Value>,
    /// `model`.
    pub model: String,
    /// The texts to embed (token-array inputs are not text and are left out).
    pub texts: Vec<String>,
}

impl EmbeddingsRequest {
    /// Validates `model` and `input`.
    pub fn parse(body: Map<String, Value>) -> Result<EmbeddingsRequest, BadRequest> {
        let model = model_of(&body)?;
        let texts = match body.get("input") {
            Some(Value::String(text)) => vec![text.clone()],
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_string))
                .collect(),
            Some(_) => {
                return Err(bad(
                    "`input` must be a string or a non-empty array",
                    "input",
                ));
            }
            None => return Err(bad("missing required parameter: `input`", "input")),
        };
        Ok(EmbeddingsRequest { body, model, texts })
    }

    /// Rewrites every text input with `f` (token arrays are not text and stay as they are).
    pub fn rewrite_text(&mut self, mut f: impl FnMut(&str) -> String) {
        match self.body.get_mut("input") {
            Some(Value::String(text)) => *text = f(text),
            Some(Value::Array(items)) => {
                for item in items.iter_mut() {
                    if let Value::String(text) = item {
                        *text = f(text);
                    }
                }
            }
            _ => {}
        }
        for text in &mut self.texts {
            *text = f(text);
        }
    }
}

/// What Sluice reads from a (non-streamed) chat completion.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Answer {
    /// One message per choice.
    pub messages: Vec<Message>,
    /// `usage.prompt_tokens`.
    pub input_tokens: u64,
    /// `usage.completion_tokens`.
    pub output_tokens: u64,
    /// `usage.prompt_tokens_details.cached_tokens`: prompt tokens served from a cache.
    pub cached_tokens: u64,
    /// `usage.completion_tokens_details.reasoning_tokens`: a part of the output tokens.
    pub reasoning_tokens: u64,
}

/// Reads a chat completion body.
pub fn answer(body: &Value) -> Answer {
    let messages = body
        .get("choices")
        .and_then(Value::as_array)
        .map(|choices| {
            choices
                .iter()
                .filter_map(|choice| choice.get("message"))
                .map(message)
                .collect()
        })
        .unwrap_or_default();
    let usage = |field: &str| {
        body.get("usage")
            .and_then(|u| u.get(field))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    Answer {
        messages,
        input_tokens: usage("prompt_tokens"),
        output_tokens: usage("completion_tokens"),
        cached_tokens: body
            .pointer("/usage/prompt_tokens_details/cached_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
        reasoning_tokens: body
            .pointer("/usage/completion_tokens_details/reasoning_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    }
}

/// The body of an OpenAI error.
pub fn error_body(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    serde_json::json!({
        "error": {
            "message": message,
            "type": kind,
            "param": param,
            "code": code,
        }
    })
}

#[cfg(test)]
mod tests;
