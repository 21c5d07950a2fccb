//! Requests: an Anthropic caller to an OpenAI-compatible upstream.

use super::*;

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
pub(super) fn openai_part(block: &Value, param: &str) -> Result<Value, BadRequest> {
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

pub(super) fn openai_user(
    content: Option<&Value>,
    i: usize,
    out: &mut Vec<Value>,
) -> Result<(), BadRequest> {
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

pub(super) fn openai_tool_call(block: &Value) -> Value {
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

pub(super) fn openai_assistant(content: Option<&Value>, i: usize) -> Result<Value, BadRequest> {
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
    Ok(Value::Object(assistant_message(text, calls, false)))
}

/// An OpenAI assistant message: `content` is `null` when the message only calls tools;
/// an answer (rather than a request's history) also carries `refusal: null`.
pub(crate) fn assistant_message(
    text: String,
    calls: Vec<Value>,
    answer: bool,
) -> Map<String, Value> {
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    let content = if text.is_empty() && !calls.is_empty() {
        Value::Null
    } else {
        Value::String(text)
    };
    message.insert("content".into(), content);
    if answer {
        message.insert("refusal".into(), Value::Null);
    }
    if !calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(calls));
    }
    message
}

pub(super) fn openai_tool(tool: &Value, i: usize) -> Result<Value, BadRequest> {
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

pub(super) fn openai_tool_choice(
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
