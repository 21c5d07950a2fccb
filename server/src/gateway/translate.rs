//! Translation between OpenAI's chat completions and Anthropic's Messages formats, both
//! ways, for requests, answers and streams, so a caller of either format can reach an
//! upstream of the other.
//!
//! Everything here is pure: bodies in, bodies out. What one format can say and the other
//! cannot is either dropped (sampling knobs with no equivalent, `logprobs`) or refused with
//! a [`BadRequest`] naming the parameter, in the caller's own naming (`messages[2].content[0]`
//! for OpenAI callers, `messages.2.content.0` for Anthropic callers), when dropping it would
//! change the answer the caller gets (`n` > 1, audio input, server tools).
//!
//! Tool call ids are kept as they are in both directions (Anthropic's pattern
//! `^[a-zA-Z0-9_-]+$` aside), so that a later tool result still names its call.

use serde_json::{Map, Value, json};
use sluice_engine::input::{Message, ToolCall};

use super::anthropic::{self, Usage};
use super::openai::{self, Answer, BadRequest};
use super::sse::data_event;

/// `max_tokens` sent to Anthropic (which requires it) when an OpenAI caller gives none.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// The system instruction standing in for OpenAI's `response_format` JSON modes, which
/// neither Anthropic's API nor Bedrock's Converse has.
pub(crate) const JSON_INSTRUCTION: &str =
    "Respond with a single valid JSON object and nothing else: no prose, no code fences.";

pub(crate) fn bad(message: impl Into<String>, param: impl Into<String>) -> BadRequest {
    BadRequest {
        message: message.into(),
        param: Some(param.into()),
    }
}

pub(crate) fn str_of<'a>(value: Option<&'a Value>, field: &str) -> Option<&'a str> {
    value?.get(field)?.as_str()
}

/// A value that is present and not `null`.
pub(crate) fn given<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|v| !v.is_null())
}

/// `data:<media type>;base64,<data>` split into its media type and data.
pub(crate) fn data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    Some((meta.strip_suffix(";base64")?, data))
}

/// A `function` tool of an OpenAI request: what each provider's tool list is made from.
pub(crate) struct FunctionTool<'a> {
    /// `function.name`.
    pub name: &'a str,
    /// `function.description`, when it is a string.
    pub description: Option<&'a str>,
    /// `function.parameters`, or an object schema without properties when it is absent.
    pub parameters: Value,
}

/// The `tools` of an OpenAI request, each checked to be a `function` with a name; `to`
/// names, in the error, the provider that takes no other kind.
pub(crate) fn function_tools<'a>(
    body: &'a Map<String, Value>,
    to: &str,
) -> Result<Vec<FunctionTool<'a>>, BadRequest> {
    let tools = match given(body, "tools") {
        None => return Ok(Vec::new()),
        Some(Value::Array(tools)) => tools,
        Some(_) => return Err(bad("`tools` must be an array", "tools")),
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, tool)| {
            if tool.get("type").and_then(Value::as_str) != Some("function") {
                return Err(bad(
                    format!("only tools of type `function` can be sent to {to}"),
                    format!("tools[{i}].type"),
                ));
            }
            let function = tool.get("function");
            let Some(name) = str_of(function, "name") else {
                return Err(bad(
                    "a tool needs a string `function.name`",
                    format!("tools[{i}].function.name"),
                ));
            };
            let parameters = function
                .and_then(|f| f.get("parameters"))
                .filter(|p| p.is_object())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            Ok(FunctionTool {
                name,
                description: str_of(function, "description"),
                parameters,
            })
        })
        .collect()
}

/// `max_completion_tokens` (or the older `max_tokens`) when given, checked to be at least 1
/// and at most `most` (what the provider's field holds).
pub(crate) fn max_tokens(body: &Map<String, Value>, most: u64) -> Result<Option<u64>, BadRequest> {
    let (param, value) = match given(body, "max_completion_tokens") {
        Some(value) => ("max_completion_tokens", value),
        None => match given(body, "max_tokens") {
            Some(value) => ("max_tokens", value),
            None => return Ok(None),
        },
    };
    value
        .as_u64()
        .filter(|n| (1..=most).contains(n))
        .map(Some)
        .ok_or_else(|| {
            bad(
                format!("`{param}` must be an integer greater than or equal to 1"),
                param,
            )
        })
}

/// The system instruction standing in for OpenAI's `response_format` JSON modes, for
/// providers that have none: none for `text` or no format.
pub(crate) fn response_format_instruction(
    body: &Map<String, Value>,
) -> Result<Option<String>, BadRequest> {
    let Some(format) = given(body, "response_format") else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(JSON_INSTRUCTION.to_string())),
        Some("json_schema") => {
            let schema = format
                .get("json_schema")
                .and_then(|s| s.get("schema"))
                .cloned()
                .unwrap_or(Value::Null);
            Ok(Some(format!(
                "{JSON_INSTRUCTION} The object must conform to this JSON Schema: {schema}"
            )))
        }
        _ => Err(bad(
            "`response_format.type` must be `text`, `json_object` or `json_schema`",
            "response_format.type",
        )),
    }
}

/// OpenAI's `tool_choice`, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ToolChoice<'a> {
    /// `auto`: the model decides.
    Auto,
    /// `none`: no tool call.
    None,
    /// `required`: some tool call.
    Required,
    /// `{"type": "function", "function": {"name": ...}}`: a call of this one.
    Function(&'a str),
}

/// The request's `tool_choice`, when given.
pub(crate) fn tool_choice(body: &Map<String, Value>) -> Result<Option<ToolChoice<'_>>, BadRequest> {
    let choice = match given(body, "tool_choice") {
        None => return Ok(None),
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            _ => {
                return Err(bad(
                    "`tool_choice` must be `auto`, `none`, `required` or a function",
                    "tool_choice",
                ));
            }
        },
        Some(choice @ Value::Object(_)) => match str_of(choice.get("function"), "name") {
            Some(name) => ToolChoice::Function(name),
            None => {
                return Err(bad(
                    "`tool_choice` needs a string `function.name`",
                    "tool_choice.function.name",
                ));
            }
        },
        Some(_) => {
            return Err(bad(
                "`tool_choice` must be a string or an object",
                "tool_choice",
            ));
        }
    };
    Ok(Some(choice))
}

/// A content part of an OpenAI request's message, checked: what Anthropic's and Bedrock's
/// content blocks are made from.
pub(crate) enum UserPart<'a> {
    /// A `text` part (possibly empty).
    Text(&'a str),
    /// An `image_url` part holding a base64 data URL.
    InlineImage { media_type: &'a str, data: &'a str },
    /// An `image_url` part holding an http(s) link.
    LinkedImage(&'a str),
    /// A `file` part with base64 `file_data`.
    File {
        media_type: &'a str,
        data: &'a str,
        filename: Option<&'a str>,
    },
}

/// Reads the content part that `param` names (`messages[0].content[1]`); `to` names, in
/// the error, the provider that cannot take a part of another kind.
pub(crate) fn user_part<'a>(
    part: &'a Value,
    param: &str,
    to: &str,
) -> Result<UserPart<'a>, BadRequest> {
    match part.get("type").and_then(Value::as_str) {
        Some("text") => match part.get("text") {
            Some(Value::String(text)) => Ok(UserPart::Text(text)),
            _ => Err(bad(
                "a text part needs a string `text`",
                format!("{param}.text"),
            )),
        },
        Some("image_url") => {
            let url = match part.get("image_url") {
                Some(Value::String(url)) => Some(url.as_str()),
                other => str_of(other, "url"),
            };
            let param = format!("{param}.image_url.url");
            match url {
                Some(url) if url.starts_with("data:") => match data_url(url) {
                    Some((media_type, data)) => Ok(UserPart::InlineImage { media_type, data }),
                    None => Err(bad(
                        "an image data URL must be base64-encoded (`data:image/png;base64,...`)",
                        param,
                    )),
                },
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                    Ok(UserPart::LinkedImage(url))
                }
                _ => Err(bad(
                    "an image needs a base64 data URL (`data:image/png;base64,...`) or an http(s) link",
                    param,
                )),
            }
        }
        Some("file") => {
            let file = part.get("file");
            match str_of(file, "file_data").and_then(data_url) {
                Some((media_type, data)) => Ok(UserPart::File {
                    media_type,
                    data,
                    filename: str_of(file, "filename"),
                }),
                None => Err(bad(
                    format!("only files sent inline as base64 `file_data` can be passed to {to}"),
                    format!("{param}.file"),
                )),
            }
        }
        Some(other) => Err(bad(
            format!("content parts of type `{other}` cannot be sent to {to}"),
            format!("{param}.type"),
        )),
        None => Err(bad(
            "each content part needs a string `type`",
            format!("{param}.type"),
        )),
    }
}

/// An assistant message of an OpenAI request, checked: its texts and its tool calls, as
/// Anthropic's and Bedrock's assistant turns are made from.
pub(crate) struct AssistantTurn<'a> {
    /// The non-empty texts: `content` as a string, or its `text` and `refusal` parts.
    pub texts: Vec<&'a str>,
    /// The tool calls, in order.
    pub calls: Vec<AssistantCall<'a>>,
}

/// A tool call of an assistant message.
pub(crate) struct AssistantCall<'a> {
    /// `id`, never empty.
    pub id: &'a str,
    /// `function.name`.
    pub name: &'a str,
    /// `function.arguments` as a JSON object (`{}` when absent or blank).
    pub input: Value,
}

/// Reads the assistant message at `messages[i]`.
pub(crate) fn assistant_turn(message: &Value, i: usize) -> Result<AssistantTurn<'_>, BadRequest> {
    let mut texts = Vec::new();
    match message.get("content") {
        Some(Value::String(text)) if !text.is_empty() => texts.push(text.as_str()),
        Some(Value::Array(parts)) => {
            for (j, part) in parts.iter().enumerate() {
                let text = match part.get("type").and_then(Value::as_str) {
                    Some("text") => part.get("text").and_then(Value::as_str),
                    Some("refusal") => part.get("refusal").and_then(Value::as_str),
                    _ => {
                        return Err(bad(
                            "assistant content parts must be `text` or `refusal`",
                            format!("messages[{i}].content[{j}].type"),
                        ));
                    }
                };
                texts.extend(text.filter(|t| !t.is_empty()));
            }
        }
        _ => {}
    }
    let calls = match message.get("tool_calls") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(calls)) => calls.as_slice(),
        Some(_) => {
            return Err(bad(
                "`tool_calls` must be an array",
                format!("messages[{i}].tool_calls"),
            ));
        }
    };
    let calls = calls
        .iter()
        .enumerate()
        .map(|(j, call)| {
            let param = format!("messages[{i}].tool_calls[{j}]");
            let Some(id) = call
                .get("id")
                .and_then(Value::as_str)
                .filter(|id| !id.is_empty())
            else {
                return Err(bad(
                    "a tool call needs a string `id`",
                    format!("{param}.id"),
                ));
            };
            let function = call.get("function");
            let Some(name) = str_of(function, "name") else {
                return Err(bad(
                    "a tool call needs a string `function.name`",
                    format!("{param}.function.name"),
                ));
            };
            let input = call_arguments(function.and_then(|f| f.get("arguments")), &param)?;
            Ok(AssistantCall { id, name, input })
        })
        .collect::<Result<_, _>>()?;
    Ok(AssistantTurn { texts, calls })
}

/// The `tool_call_id` of the tool message at `messages[i]`: the call it answers, never
/// empty (neither Anthropic nor Bedrock could pair an empty one with its call).
pub(crate) fn tool_call_id(message: &Value, i: usize) -> Result<&str, BadRequest> {
    message
        .get("tool_call_id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| {
            bad(
                "a tool message needs a string `tool_call_id`",
                format!("messages[{i}].tool_call_id"),
            )
        })
}

/// Tool call arguments (a JSON string, or an object) as an input object; `param` names the
/// call in the error.
fn call_arguments(arguments: Option<&Value>, param: &str) -> Result<Value, BadRequest> {
    let refused = || {
        bad(
            "tool call arguments must be a JSON object encoded as a string",
            format!("{param}.function.arguments"),
        )
    };
    match arguments {
        None | Some(Value::Null) => Ok(json!({})),
        Some(Value::String(text)) if text.trim().is_empty() => Ok(json!({})),
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Object(_)) => Ok(value),
            _ => Err(refused()),
        },
        Some(value @ Value::Object(_)) => Ok(value.clone()),
        Some(_) => Err(refused()),
    }
}

/// OpenAI's sampling parameters, checked, as Anthropic and Bedrock's Converse take them
/// (each under its own names).
#[derive(Debug, Default)]
pub(crate) struct Sampling {
    pub temperature: Option<Value>,
    pub top_p: Option<Value>,
    /// Stop sequences; empty when none were given.
    pub stop: Vec<Value>,
}

/// Reads `temperature`, `top_p` and `stop` of an OpenAI request.
pub(crate) fn sampling(body: &Map<String, Value>) -> Result<Sampling, BadRequest> {
    let mut out = Sampling::default();
    if let Some(t) = given(body, "temperature") {
        let Some(value) = t.as_f64() else {
            return Err(bad("`temperature` must be a number", "temperature"));
        };
        // OpenAI's range is 0–2, Anthropic's and Converse's 0–1 (they refuse more): anything
        // above 1 is sent as 1, the most varied sampling they offer.
        out.temperature = Some(if (0.0..=1.0).contains(&value) {
            t.clone()
        } else {
            json!(value.clamp(0.0, 1.0))
        });
    }
    if let Some(p) = given(body, "top_p") {
        if !p.is_number() {
            return Err(bad("`top_p` must be a number", "top_p"));
        }
        out.top_p = Some(p.clone());
    }
    if let Some(stop) = given(body, "stop") {
        out.stop = match stop {
            Value::String(s) => vec![Value::String(s.clone())],
            Value::Array(items) if items.iter().all(Value::is_string) => items.clone(),
            _ => {
                return Err(bad(
                    "`stop` must be a string or an array of strings",
                    "stop",
                ));
            }
        };
    }
    Ok(out)
}

mod stream;
mod to_anthropic;
mod to_openai;

pub use stream::{AnthropicToOpenAiStream, OpenAiToAnthropicStream};
pub use to_anthropic::openai_to_anthropic_request;
pub use to_openai::anthropic_to_openai_request;
pub(crate) use to_openai::assistant_message;
use to_openai::openai_tool_call;

// ---------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------

/// OpenAI's `finish_reason` for Anthropic's `stop_reason`.
fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic's `stop_reason` for OpenAI's `finish_reason`.
fn stop_reason(finish_reason: Option<&str>) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// OpenAI's `usage` for Anthropic's (or Converse's, read into the same struct):
/// `prompt_tokens` counts cached tokens too, as OpenAI's does, and the cache reads show as
/// `prompt_tokens_details.cached_tokens`.
pub(crate) fn openai_usage(usage: &Usage) -> Value {
    let prompt = usage.prompt_tokens();
    let mut out = Map::new();
    out.insert("prompt_tokens".into(), json!(prompt));
    out.insert("completion_tokens".into(), json!(usage.output));
    out.insert(
        "total_tokens".into(),
        json!(prompt.saturating_add(usage.output)),
    );
    if let Some(cached) = usage.cache_read {
        out.insert(
            "prompt_tokens_details".into(),
            json!({"cached_tokens": cached}),
        );
    }
    Value::Object(out)
}

/// OpenAI's `usage` read: prompt tokens, completion tokens, cached prompt tokens.
fn usage_of_openai(usage: Option<&Value>) -> (u64, u64, u64) {
    let field = |name: &str| {
        usage
            .and_then(|u| u.get(name))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let cached = usage
        .and_then(|u| u.get("prompt_tokens_details"))
        .and_then(|d| d.get("cached_tokens"))
        .and_then(Value::as_u64)
        .unwrap_or(0);
    (field("prompt_tokens"), field("completion_tokens"), cached)
}

/// Anthropic's `usage` for OpenAI's counts: `input_tokens` leaves the cache reads out, as
/// Anthropic's does.
fn anthropic_usage((prompt, completion, cached): (u64, u64, u64)) -> Value {
    json!({
        "input_tokens": prompt.saturating_sub(cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": completion,
    })
}

/// Translates an Anthropic Messages response into a chat completion answered as `model`:
/// text blocks joined into `message.content`, `tool_use` blocks as `tool_calls`, other blocks
/// (thinking, server tools) left out. Anthropic's answer carries no timestamp, so `created`
/// is 0 for the caller to set.
pub fn anthropic_to_openai_response(body: &Value, model: &str) -> Value {
    let blocks = body
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(str_of(Some(block), "text").unwrap_or("")),
            Some("tool_use") => calls.push(openai_tool_call(block)),
            _ => {}
        }
    }
    let message = assistant_message(text, calls, true);
    json!({
        "id": format!("chatcmpl-{}", str_of(Some(body), "id").unwrap_or("sluice")),
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(str_of(Some(body), "stop_reason")),
        }],
        "usage": openai_usage(&Usage::of(body.get("usage"))),
    })
}

/// Tool call arguments (a JSON string) as a `tool_use` input, which must be an object:
/// arguments that are not one become `{}`.
fn tool_input(arguments: Option<&Value>) -> Value {
    match arguments {
        Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
            Ok(value @ Value::Object(_)) => value,
            _ => json!({}),
        },
        Some(value @ Value::Object(_)) => value.clone(),
        _ => json!({}),
    }
}

/// Translates a chat completion into an Anthropic Messages response answered as `model`:
/// the first choice's text as a text block (its refusal when there is no text), its tool
/// calls as `tool_use` blocks.
pub fn openai_to_anthropic_response(body: &Value, model: &str) -> Value {
    let choice = body
        .get("choices")
        .and_then(Value::as_array)
        .and_then(|c| c.first());
    let message = choice.and_then(|c| c.get("message"));
    let mut content = Vec::new();
    let mut finish = choice
        .and_then(|c| c.get("finish_reason"))
        .and_then(Value::as_str);
    let text = openai::text_of(message.and_then(|m| m.get("content")));
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    } else if let Some(refusal) = str_of(message, "refusal").filter(|r| !r.is_empty()) {
        content.push(json!({"type": "text", "text": refusal}));
        finish = Some("content_filter");
    }
    if let Some(Value::Array(calls)) = message.and_then(|m| m.get("tool_calls")) {
        for call in calls {
            let function = call.get("function");
            content.push(json!({
                "type": "tool_use",
                "id": str_of(Some(call), "id").unwrap_or(""),
                "name": str_of(function, "name").unwrap_or(""),
                "input": tool_input(function.and_then(|f| f.get("arguments"))),
            }));
        }
    }
    json!({
        "id": format!("msg_{}", str_of(Some(body), "id").unwrap_or("sluice")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": null,
        "usage": anthropic_usage(usage_of_openai(body.get("usage"))),
    })
}

#[cfg(test)]
mod tests;
