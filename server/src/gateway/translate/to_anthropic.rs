//! Requests: an OpenAI caller to an Anthropic upstream.

use super::*;

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
    system.extend(response_format_instruction(body)?);

    let mut out = Map::new();
    out.insert("model".into(), json!(model));
    out.insert("max_tokens".into(), json!(openai_max_tokens(body)?));
    if !system.is_empty() {
        out.insert("system".into(), json!(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(messages));
    let sampling = sampling(body)?;
    if let Some(temperature) = sampling.temperature {
        out.insert("temperature".into(), temperature);
    }
    if let Some(top_p) = sampling.top_p {
        out.insert("top_p".into(), top_p);
    }
    if !sampling.stop.is_empty() {
        out.insert("stop_sequences".into(), Value::Array(sampling.stop));
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

/// The answer's token limit: the caller's, or [`DEFAULT_MAX_TOKENS`] (Anthropic requires one).
pub(super) fn openai_max_tokens(body: &Map<String, Value>) -> Result<u64, BadRequest> {
    Ok(max_tokens(body, u64::MAX)?.unwrap_or(DEFAULT_MAX_TOKENS))
}

/// An Anthropic block for an OpenAI content part (`param` names the part).
pub(super) fn anthropic_block(part: &Value, param: &str) -> Result<Value, BadRequest> {
    let mut block = match user_part(part, param, "this model's provider")? {
        UserPart::Text(text) => json!({"type": "text", "text": text}),
        UserPart::InlineImage { media_type, data } => json!({
            "type": "image",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }),
        UserPart::LinkedImage(url) => {
            json!({"type": "image", "source": {"type": "url", "url": url}})
        }
        UserPart::File {
            media_type, data, ..
        } => json!({
            "type": "document",
            "source": {"type": "base64", "media_type": media_type, "data": data},
        }),
    };
    // Prompt caching hints, as some OpenAI-format clients send them, keep their meaning.
    if let (Some(cache), Some(map)) = (part.get("cache_control"), block.as_object_mut()) {
        map.insert("cache_control".into(), cache.clone());
    }
    Ok(block)
}

/// Tool call ids as Anthropic accepts them (`^[a-zA-Z0-9_-]+$`).
pub(super) fn anthropic_id(id: &str) -> String {
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

pub(super) fn anthropic_assistant(message: &Value, i: usize) -> Result<Option<Value>, BadRequest> {
    let turn = assistant_turn(message, i)?;
    // A plain text answer stays a string, as it came.
    if let (Some(Value::String(text)), true) = (message.get("content"), turn.calls.is_empty())
        && !text.is_empty()
    {
        return Ok(Some(json!({"role": "assistant", "content": text})));
    }
    let texts = turn
        .texts
        .into_iter()
        .map(|text| json!({"type": "text", "text": text}));
    let calls = turn.calls.into_iter().map(|call| {
        json!({"type": "tool_use", "id": anthropic_id(call.id), "name": call.name, "input": call.input})
    });
    let blocks: Vec<Value> = texts.chain(calls).collect();
    if blocks.is_empty() {
        return Ok(None);
    }
    Ok(Some(json!({"role": "assistant", "content": blocks})))
}

pub(super) fn anthropic_tool_result(message: &Value, i: usize) -> Result<Value, BadRequest> {
    let id = tool_call_id(message, i)?;
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

pub(super) fn anthropic_tools(body: &Map<String, Value>) -> Result<Vec<Value>, BadRequest> {
    let tools = function_tools(body, "this model's provider")?;
    let tools = tools.into_iter().map(|tool| {
        let mut out = Map::new();
        out.insert("name".into(), json!(tool.name));
        if let Some(description) = tool.description {
            out.insert("description".into(), json!(description));
        }
        out.insert("input_schema".into(), tool.parameters);
        Value::Object(out)
    });
    Ok(tools.collect())
}

pub(super) fn anthropic_tool_choice(
    body: &Map<String, Value>,
) -> Result<Option<Value>, BadRequest> {
    let parallel_off = body.get("parallel_tool_calls") == Some(&Value::Bool(false));
    let mut choice = match tool_choice(body)? {
        None if parallel_off => json!({"type": "auto"}),
        None => return Ok(None),
        Some(ToolChoice::Auto) => json!({"type": "auto"}),
        Some(ToolChoice::None) => json!({"type": "none"}),
        Some(ToolChoice::Required) => json!({"type": "any"}),
        Some(ToolChoice::Function(name)) => json!({"type": "tool", "name": name}),
    };
    if parallel_off
        && str_of(Some(&choice), "type") != Some("none")
        && let Some(map) = choice.as_object_mut()
    {
        map.insert("disable_parallel_tool_use".into(), json!(true));
    }
    Ok(Some(choice))
}
