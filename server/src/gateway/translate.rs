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
/// Anthropic's API does not have.
const JSON_INSTRUCTION: &str =
    "Respond with a single valid JSON object and nothing else: no prose, no code fences.";

fn bad(message: impl Into<String>, param: impl Into<String>) -> BadRequest {
    BadRequest {
        message: message.into(),
        param: Some(param.into()),
    }
}

fn str_of<'a>(value: Option<&'a Value>, field: &str) -> Option<&'a str> {
    value?.get(field)?.as_str()
}

/// A value that is present and not `null`.
fn given<'a>(body: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    body.get(field).filter(|v| !v.is_null())
}

// ---------------------------------------------------------------------------------------
// Requests, OpenAI caller → Anthropic upstream
// ---------------------------------------------------------------------------------------

/// Translates an OpenAI chat completion request into an Anthropic Messages request for
/// `model`. System and developer messages become `system`; tool messages become
/// `tool_result` blocks of a user message (consecutive ones merged); `response_format` JSON
/// modes become a system instruction; `temperature` is clamped to Anthropic's 0–1; without
/// `max_tokens` (which Anthropic requires) [`DEFAULT_MAX_TOKENS`] is asked for. Parameters
/// Anthropic has no use for (`logprobs`, penalties, `seed`, `stream_options`) are dropped.
pub fn openai_to_anthropic_request(
    body: &Map<String, Value>,
    model: &str,
) -> Result<Map<String, Value>, BadRequest> {
    if let Some(n) = given(body, "n")
        && n.as_u64() != Some(1)
    {
        return Err(bad(
            "`n` must be 1: this model's provider returns a single choice",
            "n",
        ));
    }
    let Some(Value::Array(list)) = body.get("messages") else {
        return Err(bad("`messages` must be an array", "messages"));
    };
    let mut system: Vec<String> = Vec::new();
    let mut messages: Vec<Value> = Vec::new();
    let mut after_tool = false;
    for (i, message) in list.iter().enumerate() {
        match message.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => {
                let text = openai::text_of(message.get("content"));
                if !text.is_empty() {
                    system.push(text);
                }
                continue;
            }
            Some("user") => {
                let content = match message.get("content") {
                    Some(Value::String(text)) => Value::String(text.clone()),
                    Some(Value::Array(parts)) => Value::Array(
                        parts
                            .iter()
                            .enumerate()
                            .map(|(j, part)| {
                                anthropic_block(part, &format!("messages[{i}].content[{j}]"))
                            })
                            .collect::<Result<_, _>>()?,
                    ),
                    _ => {
                        return Err(bad(
                            "a user message needs a string or an array of content parts",
                            format!("messages[{i}].content"),
                        ));
                    }
                };
                messages.push(json!({"role": "user", "content": content}));
            }
            Some("assistant") => {
                // Anthropic refuses an assistant turn with no content; it says nothing anyway.
                if let Some(message) = anthropic_assistant(message, i)? {
                    messages.push(message);
                }
            }
            Some("tool") => {
                let block = anthropic_tool_result(message, i)?;
                if after_tool
                    && let Some(Value::Array(blocks)) =
                        messages.last_mut().and_then(|m| m.get_mut("content"))
                {
                    blocks.push(block);
                } else {
                    messages.push(json!({"role": "user", "content": [block]}));
                }
                after_tool = true;
                continue;
            }
            Some(other) => {
                return Err(bad(
                    format!("the role `{other}` cannot be sent to this model's provider"),
                    format!("messages[{i}].role"),
                ));
            }
            None => {
                return Err(bad(
                    "each message needs a string `role`",
                    format!("messages[{i}].role"),
                ));
            }
        }
        after_tool = false;
    }
    if messages.is_empty() {
        return Err(bad(
            "`messages` must contain at least one message that is not a system message",
            "messages",
        ));
    }
    if let Some(format) = given(body, "response_format") {
        match format.get("type").and_then(Value::as_str) {
            Some("text") => {}
            Some("json_object") => system.push(JSON_INSTRUCTION.to_string()),
            Some("json_schema") => {
                let schema = format
                    .get("json_schema")
                    .and_then(|s| s.get("schema"))
                    .cloned()
                    .unwrap_or(Value::Null);
                system.push(format!(
                    "{JSON_INSTRUCTION} The object must conform to this JSON Schema: {schema}"
                ));
            }
            _ => {
                return Err(bad(
                    "`response_format.type` must be `text`, `json_object` or `json_schema`",
                    "response_format.type",
                ));
            }
        }
    }

    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("max_tokens".into(), json!(openai_max_tokens(body)?));
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(messages));
    if let Some(t) = given(body, "temperature") {
        let Some(value) = t.as_f64() else {
            return Err(bad("`temperature` must be a number", "temperature"));
        };
        // OpenAI's range is 0–2, Anthropic's 0–1 (it refuses more): anything above 1 is
        // sent as 1, the most varied sampling Anthropic offers.
        let clamped = if (0.0..=1.0).contains(&value) {
            t.clone()
        } else {
            json!(value.clamp(0.0, 1.0))
        };
        out.insert("temperature".into(), clamped);
    }
    if let Some(p) = given(body, "top_p") {
        if !p.is_number() {
            return Err(bad("`top_p` must be a number", "top_p"));
        }
        out.insert("top_p".into(), p.clone());
    }
    if let Some(stop) = given(body, "stop") {
        let sequences = match stop {
            Value::String(s) => vec![Value::String(s.clone())],
            Value::Array(items) if items.iter().all(Value::is_string) => items.clone(),
            _ => {
                return Err(bad(
                    "`stop` must be a string or an array of strings",
                    "stop",
                ));
            }
        };
        if !sequences.is_empty() {
            out.insert("stop_sequences".into(), Value::Array(sequences));
        }
    }
    if let Some(stream) = given(body, "stream") {
        if !stream.is_boolean() {
            return Err(bad("`stream` must be a boolean", "stream"));
        }
        out.insert("stream".into(), stream.clone());
    }
    if let Some(Value::String(user)) = body.get("user") {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    let tools = anthropic_tools(body)?;
    if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        if let Some(choice) = anthropic_tool_choice(body)? {
            out.insert("tool_choice".into(), choice);
        }
    }
    Ok(out)
}

fn openai_max_tokens(body: &Map<String, Value>) -> Result<u64, BadRequest> {
    let (param, value) = match given(body, "max_completion_tokens") {
        Some(value) => ("max_completion_tokens", value),
        None => match given(body, "max_tokens") {
            Some(value) => ("max_tokens", value),
            None => return Ok(DEFAULT_MAX_TOKENS),
        },
    };
    value.as_u64().filter(|n| *n >= 1).ok_or_else(|| {
        bad(
            format!("`{param}` must be an integer greater than or equal to 1"),
            param,
        )
    })
}

/// `data:<media type>;base64,<data>` split into its media type and data.
fn data_url(url: &str) -> Option<(&str, &str)> {
    let (meta, data) = url.strip_prefix("data:")?.split_once(',')?;
    Some((meta.strip_suffix(";base64")?, data))
}

/// An Anthropic block for an OpenAI content part (`param` names the part).
fn anthropic_block(part: &Value, param: &str) -> Result<Value, BadRequest> {
    let mut block = match part.get("type").and_then(Value::as_str) {
        Some("text") => match part.get("text") {
            Some(Value::String(text)) => json!({"type": "text", "text": text}),
            _ => {
                return Err(bad(
                    "a text part needs a string `text`",
                    format!("{param}.text"),
                ));
            }
        },
        Some("image_url") => {
            let url = match part.get("image_url") {
                Some(Value::String(url)) => Some(url.as_str()),
                other => str_of(other, "url"),
            };
            let source = match url {
                Some(url) if url.starts_with("data:") => match data_url(url) {
                    Some((media_type, data)) => {
                        json!({"type": "base64", "media_type": media_type, "data": data})
                    }
                    None => {
                        return Err(bad(
                            "an image data URL must be base64-encoded (`data:image/png;base64,...`)",
                            format!("{param}.image_url.url"),
                        ));
                    }
                },
                Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                    json!({"type": "url", "url": url})
                }
                _ => {
                    return Err(bad(
                        "an image needs an http(s) or base64 data URL",
                        format!("{param}.image_url.url"),
                    ));
                }
            };
            json!({"type": "image", "source": source})
        }
        Some("file") => match str_of(part.get("file"), "file_data").and_then(data_url) {
            Some((media_type, data)) => json!({
                "type": "document",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }),
            None => {
                return Err(bad(
                    "only files sent inline as base64 `file_data` can be passed to this model's provider",
                    format!("{param}.file"),
                ));
            }
        },
        Some(other) => {
            return Err(bad(
                format!("content parts of type `{other}` cannot be sent to this model's provider"),
                format!("{param}.type"),
            ));
        }
        None => {
            return Err(bad(
                "each content part needs a string `type`",
                format!("{param}.type"),
            ));
        }
    };
    // Prompt caching hints, as some OpenAI-format clients send them, keep their meaning.
    if let (Some(cache), Some(map)) = (part.get("cache_control"), block.as_object_mut()) {
        map.insert("cache_control".into(), cache.clone());
    }
    Ok(block)
}

/// Tool call ids as Anthropic accepts them (`^[a-zA-Z0-9_-]+$`).
fn anthropic_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn anthropic_assistant(message: &Value, i: usize) -> Result<Option<Value>, BadRequest> {
    let mut blocks = Vec::new();
    match message.get("content") {
        Some(Value::String(text)) if !text.is_empty() => {
            blocks.push(json!({"type": "text", "text": text}));
        }
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
                if let Some(text) = text.filter(|t| !t.is_empty()) {
                    blocks.push(json!({"type": "text", "text": text}));
                }
            }
        }
        _ => {}
    }
    let calls = match message.get("tool_calls") {
        Some(Value::Array(calls)) => calls.as_slice(),
        _ => &[],
    };
    for (j, call) in calls.iter().enumerate() {
        let param = format!("messages[{i}].tool_calls[{j}]");
        let Some(id) = call.get("id").and_then(Value::as_str) else {
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
        let input = match function.and_then(|f| f.get("arguments")) {
            None | Some(Value::Null) => json!({}),
            Some(Value::String(text)) if text.trim().is_empty() => json!({}),
            Some(Value::String(text)) => match serde_json::from_str::<Value>(text) {
                Ok(value @ Value::Object(_)) => value,
                _ => {
                    return Err(bad(
                        "tool call arguments must be a JSON object encoded as a string",
                        format!("{param}.function.arguments"),
                    ));
                }
            },
            Some(value @ Value::Object(_)) => value.clone(),
            Some(_) => {
                return Err(bad(
                    "tool call arguments must be a JSON object encoded as a string",
                    format!("{param}.function.arguments"),
                ));
            }
        };
        blocks.push(
            json!({"type": "tool_use", "id": anthropic_id(id), "name": name, "input": input}),
        );
    }
    let content = match (message.get("content"), calls.is_empty()) {
        (Some(Value::String(text)), true) if !text.is_empty() => Value::String(text.clone()),
        _ if blocks.is_empty() => return Ok(None),
        _ => Value::Array(blocks),
    };
    Ok(Some(json!({"role": "assistant", "content": content})))
}

fn anthropic_tool_result(message: &Value, i: usize) -> Result<Value, BadRequest> {
    let Some(id) = message.get("tool_call_id").and_then(Value::as_str) else {
        return Err(bad(
            "a tool message needs a string `tool_call_id`",
            format!("messages[{i}].tool_call_id"),
        ));
    };
    let content = match message.get("content") {
        Some(Value::String(text)) => Value::String(text.clone()),
        Some(Value::Array(parts)) => Value::Array(
            parts
                .iter()
                .enumerate()
                .map(|(j, part)| anthropic_block(part, &format!("messages[{i}].content[{j}]")))
                .collect::<Result<_, _>>()?,
        ),
        _ => Value::String(String::new()),
    };
    Ok(json!({"type": "tool_result", "tool_use_id": anthropic_id(id), "content": content}))
}

fn anthropic_tools(body: &Map<String, Value>) -> Result<Vec<Value>, BadRequest> {
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
                    "only tools of type `function` can be sent to this model's provider",
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
            let mut out = Map::new();
            out.insert("name".into(), json!(name));
            if let Some(description) = str_of(function, "description") {
                out.insert("description".into(), json!(description));
            }
            let schema = function
                .and_then(|f| f.get("parameters"))
                .filter(|p| p.is_object())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            out.insert("input_schema".into(), schema);
            Ok(Value::Object(out))
        })
        .collect()
}

fn anthropic_tool_choice(body: &Map<String, Value>) -> Result<Option<Value>, BadRequest> {
    let parallel_off = body.get("parallel_tool_calls") == Some(&Value::Bool(false));
    let mut choice = match given(body, "tool_choice") {
        None if parallel_off => json!({"type": "auto"}),
        None => return Ok(None),
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" => json!({"type": "auto"}),
            "none" => json!({"type": "none"}),
            "required" => json!({"type": "any"}),
            _ => {
                return Err(bad(
                    "`tool_choice` must be `auto`, `none`, `required` or a function",
                    "tool_choice",
                ));
            }
        },
        Some(choice @ Value::Object(_)) => match str_of(choice.get("function"), "name") {
            Some(name) => json!({"type": "tool", "name": name}),
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
    if parallel_off
        && str_of(Some(&choice), "type") != Some("none")
        && let Some(map) = choice.as_object_mut()
    {
        map.insert("disable_parallel_tool_use".into(), json!(true));
    }
    Ok(Some(choice))
}

// ---------------------------------------------------------------------------------------
// Requests, Anthropic caller → OpenAI-compatible upstream
// ---------------------------------------------------------------------------------------

/// Translates an Anthropic Messages request into an OpenAI chat completion request for
/// `model`. `system` becomes the first message; `tool_result` blocks become tool messages
/// (before the rest of their user message); `tool_use` blocks become `tool_calls`. A
/// streamed request asks for the usage chunk, so the stream can report tokens. Thinking
/// blocks and parameters OpenAI has no use for (`top_k`, `thinking`) are dropped.
pub fn anthropic_to_openai_request(
    body: &Map<String, Value>,
    model: &str,
) -> Result<Map<String, Value>, BadRequest> {
    let mut messages = Vec::new();
    match given(body, "system") {
        None => {}
        Some(system @ (Value::String(_) | Value::Array(_))) => {
            let text = anthropic::text_of(Some(system));
            if !text.is_empty() {
                messages.push(json!({"role": "system", "content": text}));
            }
        }
        Some(_) => {
            return Err(bad(
                "system: must be a string or an array of text blocks",
                "system",
            ));
        }
    }
    let Some(Value::Array(list)) = body.get("messages") else {
        return Err(bad("messages: must be an array", "messages"));
    };
    for (i, message) in list.iter().enumerate() {
        match message.get("role").and_then(Value::as_str) {
            Some("user") => openai_user(message.get("content"), i, &mut messages)?,
            Some("assistant") => messages.push(openai_assistant(message.get("content"), i)?),
            _ => {
                return Err(bad(
                    format!("messages.{i}.role: must be `user` or `assistant`"),
                    format!("messages.{i}.role"),
                ));
            }
        }
    }

    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("messages".into(), Value::Array(messages));
    if let Some(max) = given(body, "max_tokens") {
        out.insert("max_tokens".into(), max.clone());
    }
    for field in ["temperature", "top_p"] {
        if let Some(value) = given(body, field) {
            out.insert(field.into(), value.clone());
        }
    }
    match given(body, "stop_sequences") {
        None => {}
        Some(Value::Array(stops)) if stops.is_empty() => {}
        Some(Value::Array(stops)) if stops.iter().all(Value::is_string) => {
            out.insert("stop".into(), Value::Array(stops.clone()));
        }
        Some(_) => {
            return Err(bad(
                "stop_sequences: must be an array of strings",
                "stop_sequences",
            ));
        }
    }
    if let Some(stream) = given(body, "stream") {
        out.insert("stream".into(), stream.clone());
        if stream.as_bool() == Some(true) {
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
    }
    if let Some(user) = str_of(body.get("metadata"), "user_id") {
        out.insert("user".into(), json!(user));
    }
    if let Some(tools) = given(body, "tools") {
        let Value::Array(tools) = tools else {
            return Err(bad("tools: must be an array", "tools"));
        };
        let tools = tools
            .iter()
            .enumerate()
            .map(|(i, tool)| openai_tool(tool, i))
            .collect::<Result<Vec<_>, _>>()?;
        if !tools.is_empty() {
            out.insert("tools".into(), Value::Array(tools));
            openai_tool_choice(body, &mut out)?;
        }
    }
    Ok(out)
}

/// An OpenAI content part for an Anthropic block of a user message.
fn openai_part(block: &Value, param: &str) -> Result<Value, BadRequest> {
    let source = block.get("source");
    match block.get("type").and_then(Value::as_str) {
        Some("text") => {
            Ok(json!({"type": "text", "text": str_of(Some(block), "text").unwrap_or("")}))
        }
        Some("image") => {
            let url = match str_of(source, "type") {
                Some("base64") => format!(
                    "data:{};base64,{}",
                    str_of(source, "media_type").unwrap_or("image/png"),
                    str_of(source, "data").unwrap_or("")
                ),
                Some("url") => str_of(source, "url").unwrap_or("").to_string(),
                _ => {
                    return Err(bad(
                        format!(
                            "{param}.source: only base64 and url image sources can be sent to this model's provider"
                        ),
                        format!("{param}.source"),
                    ));
                }
            };
            Ok(json!({"type": "image_url", "image_url": {"url": url}}))
        }
        Some("document") => match str_of(source, "type") {
            Some("base64") => Ok(json!({"type": "file", "file": {"file_data": format!(
                "data:{};base64,{}",
                str_of(source, "media_type").unwrap_or("application/pdf"),
                str_of(source, "data").unwrap_or("")
            )}})),
            Some("text") => {
                Ok(json!({"type": "text", "text": str_of(source, "data").unwrap_or("")}))
            }
            _ => Err(bad(
                format!(
                    "{param}.source: only base64 and text documents can be sent to this model's provider"
                ),
                format!("{param}.source"),
            )),
        },
        Some(other) => Err(bad(
            format!("{param}.type: `{other}` blocks cannot be sent to this model's provider"),
            format!("{param}.type"),
        )),
        None => Err(bad(
            format!("{param}.type: field required"),
            format!("{param}.type"),
        )),
    }
}

fn openai_user(content: Option<&Value>, i: usize, out: &mut Vec<Value>) -> Result<(), BadRequest> {
    let blocks = match content {
        Some(Value::String(text)) => {
            out.push(json!({"role": "user", "content": text}));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(bad(
                format!("messages.{i}.content: must be a string or an array of content blocks"),
                format!("messages.{i}.content"),
            ));
        }
    };
    let mut parts = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        if block.get("type").and_then(Value::as_str) == Some("tool_result") {
            // Tool messages must follow the assistant's calls, so what came before goes first.
            if !parts.is_empty() {
                out.push(json!({"role": "user", "content": std::mem::take(&mut parts)}));
            }
            let Some(id) = str_of(Some(block), "tool_use_id") else {
                return Err(bad(
                    format!("messages.{i}.content.{j}.tool_use_id: field required"),
                    format!("messages.{i}.content.{j}.tool_use_id"),
                ));
            };
            let text = anthropic::text_of(block.get("content"));
            out.push(json!({"role": "tool", "tool_call_id": id, "content": text}));
        } else {
            parts.push(openai_part(block, &format!("messages.{i}.content.{j}"))?);
        }
    }
    if !parts.is_empty() {
        out.push(json!({"role": "user", "content": parts}));
    }
    Ok(())
}

fn openai_tool_call(block: &Value) -> Value {
    let arguments = block
        .get("input")
        .map(Value::to_string)
        .unwrap_or_else(|| "{}".into());
    json!({
        "id": str_of(Some(block), "id").unwrap_or(""),
        "type": "function",
        "function": {"name": str_of(Some(block), "name").unwrap_or(""), "arguments": arguments},
    })
}

fn openai_assistant(content: Option<&Value>, i: usize) -> Result<Value, BadRequest> {
    let blocks = match content {
        Some(Value::String(text)) => return Ok(json!({"role": "assistant", "content": text})),
        Some(Value::Array(blocks)) => blocks,
        _ => {
            return Err(bad(
                format!("messages.{i}.content: must be a string or an array of content blocks"),
                format!("messages.{i}.content"),
            ));
        }
    };
    let mut text = String::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => text.push_str(str_of(Some(block), "text").unwrap_or("")),
            Some("tool_use") => calls.push(openai_tool_call(block)),
            // The model's own reasoning is not part of the conversation OpenAI models read.
            Some("thinking" | "redacted_thinking") => {}
            _ => {
                return Err(bad(
                    format!(
                        "messages.{i}.content.{j}.type: only text, tool_use and thinking blocks can be sent to this model's provider"
                    ),
                    format!("messages.{i}.content.{j}.type"),
                ));
            }
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    Ok(Value::Object(message))
}

fn openai_tool(tool: &Value, i: usize) -> Result<Value, BadRequest> {
    let custom = matches!(str_of(Some(tool), "type"), None | Some("custom"));
    let Some(name) = str_of(Some(tool), "name").filter(|_| custom) else {
        return Err(bad(
            format!(
                "tools.{i}: only custom tools (`name`, `input_schema`) can be sent to this model's provider"
            ),
            format!("tools.{i}"),
        ));
    };
    let mut function = Map::new();
    function.insert("name".into(), json!(name));
    if let Some(description) = str_of(Some(tool), "description") {
        function.insert("description".into(), json!(description));
    }
    function.insert(
        "parameters".into(),
        tool.get("input_schema")
            .cloned()
            .unwrap_or_else(|| json!({"type": "object"})),
    );
    Ok(json!({"type": "function", "function": function}))
}

fn openai_tool_choice(
    body: &Map<String, Value>,
    out: &mut Map<String, Value>,
) -> Result<(), BadRequest> {
    let Some(choice) = given(body, "tool_choice") else {
        return Ok(());
    };
    let value = match str_of(Some(choice), "type") {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => match str_of(Some(choice), "name") {
            Some(name) => json!({"type": "function", "function": {"name": name}}),
            None => return Err(bad("tool_choice.name: field required", "tool_choice.name")),
        },
        _ => {
            return Err(bad(
                "tool_choice.type: must be `auto`, `any`, `tool` or `none`",
                "tool_choice.type",
            ));
        }
    };
    out.insert("tool_choice".into(), value);
    if choice.get("disable_parallel_tool_use") == Some(&Value::Bool(true)) {
        out.insert("parallel_tool_calls".into(), json!(false));
    }
    Ok(())
}

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

/// OpenAI's `usage` for Anthropic's: `prompt_tokens` counts cached tokens too, as OpenAI's
/// does, and the cache reads show as `prompt_tokens_details.cached_tokens`.
fn openai_usage(usage: &Usage) -> Value {
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
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    message.insert("refusal".into(), Value::Null);
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
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

// ---------------------------------------------------------------------------------------
// Streams
// ---------------------------------------------------------------------------------------

/// A tool call assembled from a stream.
#[derive(Debug, Clone, Default)]
struct StreamedTool {
    id: String,
    name: String,
    arguments: String,
}

/// What a stream has said so far, as an [`Answer`].
fn streamed_answer(text: &str, tools: &[StreamedTool], input: u64, output: u64) -> Answer {
    let tool_calls = tools
        .iter()
        .map(|tool| ToolCall {
            name: tool.name.clone(),
            server: None,
            arguments: serde_json::from_str(&tool.arguments)
                .unwrap_or_else(|_| Value::String(tool.arguments.clone())),
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
    }
}

/// An Anthropic stream event: its `event:` line is its `type`.
fn anthropic_event(value: &Value) -> Vec<u8> {
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

#[cfg(test)]
mod tests;
