//! Bedrock Runtime's Converse API in OpenAI's terms: chat completion requests become
//! `Converse` / `ConverseStream` bodies, and answers and streams come back as chat
//! completions and chunks.
//!
//! The model is not in the body but in the path ([`paths`]). Converse's content blocks are
//! objects keyed by their kind (`{"text": ...}`, `{"image": ...}`, `{"toolUse": ...}`,
//! `{"toolResult": ...}`); messages alternate between `user` and `assistant`, so
//! consecutive messages of one role (tool results in particular) are merged into one.
//!
//! As in `translate`, what Converse cannot say is either dropped (`logprobs`, penalties,
//! `seed`, `user`, `parallel_tool_calls`) or refused with a [`BadRequest`] naming the
//! parameter when dropping it would change the answer: images given as links (Bedrock
//! takes bytes only), audio, `n` > 1. Tool call ids are kept, made to fit Bedrock's
//! `^[a-zA-Z0-9_-]{1,64}$` the same way wherever they appear.

use base64::Engine as _;
use serde_json::{Map, Value, json};

use super::sigv4::encode_path_segment;
use crate::gateway::anthropic::Usage;
use crate::gateway::error::Kind;
use crate::gateway::openai::{self, BadRequest};
use crate::gateway::translate::{self, ToolChoice, UserPart, bad, given, str_of};

mod stream;

pub use stream::ConverseStreamToOpenAi;

/// The longest tool use id Bedrock accepts.
const MAX_TOOL_ID: usize = 64;

/// The path of a model's Converse endpoint: `/model/{id}/converse`, or
/// `/model/{id}/converse-stream` for a stream, the id percent-encoded (`:` as `%3A`, the
/// `/` of an inference profile ARN as `%2F`) as it must be sent and signed.
pub fn paths(model_id: &str, stream: bool) -> String {
    let action = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    format!("/model/{}/{action}", encode_path_segment(model_id))
}

/// A tool call id as Bedrock accepts it: other characters become `_`, at most 64 kept.
fn tool_id(id: &str) -> String {
    id.chars()
        .take(MAX_TOOL_ID)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn image_format(media_type: &str) -> Option<&'static str> {
    match media_type.to_ascii_lowercase().as_str() {
        "image/png" => Some("png"),
        "image/jpeg" | "image/jpg" => Some("jpeg"),
        "image/gif" => Some("gif"),
        "image/webp" => Some("webp"),
        _ => None,
    }
}

fn document_format(media_type: &str) -> Option<&'static str> {
    match media_type.to_ascii_lowercase().as_str() {
        "application/pdf" => Some("pdf"),
        "text/csv" => Some("csv"),
        "application/msword" => Some("doc"),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document" => Some("docx"),
        "application/vnd.ms-excel" => Some("xls"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some("xlsx"),
        "text/html" => Some("html"),
        "text/plain" => Some("txt"),
        "text/markdown" => Some("md"),
        _ => None,
    }
}

/// A document name as Bedrock accepts it (letters, digits, single spaces, hyphens,
/// parentheses, square brackets): the file name without its extension, other characters
/// as `-`; `fallback` when nothing is left.
fn document_name(filename: Option<&str>, fallback: String) -> String {
    let stem = filename
        .map(|f| f.rsplit_once('.').map_or(f, |(stem, _)| stem))
        .unwrap_or_default();
    let mut name = String::new();
    for c in stem.chars().take(100) {
        if c.is_whitespace() {
            if !name.is_empty() && !name.ends_with(' ') {
                name.push(' ');
            }
        } else if c.is_ascii_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') {
            name.push(c);
        } else {
            name.push('-');
        }
    }
    let name = name.trim_end().to_string();
    if name.is_empty() { fallback } else { name }
}

/// Checks base64 data, as Bedrock would, so the caller hears which part is wrong.
fn check_base64(data: &str, what: &str, param: String) -> Result<(), BadRequest> {
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map(|_| ())
        .map_err(|_| bad(format!("the {what} data is not valid base64"), param))
}

/// The Converse blocks for one OpenAI user content part (`param` names the part): the
/// block, and a cache point after it when the part asks for prompt caching.
fn user_part(part: &Value, i: usize, j: usize, out: &mut Vec<Value>) -> Result<(), BadRequest> {
    let param = format!("messages[{i}].content[{j}]");
    match translate::user_part(part, &param, "Bedrock")? {
        // Bedrock refuses blank text blocks.
        UserPart::Text("") => {}
        UserPart::Text(text) => out.push(json!({"text": text})),
        UserPart::InlineImage { media_type, data } => {
            let param = format!("{param}.image_url.url");
            let Some(format) = image_format(media_type) else {
                return Err(bad(
                    format!(
                        "images of type `{media_type}` cannot be sent to Bedrock: use PNG, JPEG, GIF or WebP"
                    ),
                    param,
                ));
            };
            check_base64(data, "image", param)?;
            out.push(json!({"image": {"format": format, "source": {"bytes": data}}}));
        }
        UserPart::LinkedImage(_) => {
            return Err(bad(
                "Bedrock takes images as bytes, not links: send the image inline as a base64 data URL (`data:image/png;base64,...`)",
                format!("{param}.image_url.url"),
            ));
        }
        UserPart::File {
            media_type,
            data,
            filename,
        } => {
            let param = format!("{param}.file");
            let Some(format) = document_format(media_type) else {
                return Err(bad(
                    format!("files of type `{media_type}` cannot be sent to Bedrock"),
                    param,
                ));
            };
            check_base64(data, "file", format!("{param}.file_data"))?;
            let name = document_name(filename, format!("document-{i}-{j}"));
            out.push(
                json!({"document": {"format": format, "name": name, "source": {"bytes": data}}}),
            );
        }
    }
    // Prompt caching hints, as some OpenAI-format clients send them, keep their meaning.
    if part.get("cache_control").is_some_and(|c| !c.is_null()) {
        out.push(json!({"cachePoint": {"type": "default"}}));
    }
    Ok(())
}

fn user_blocks(content: Option<&Value>, i: usize) -> Result<Vec<Value>, BadRequest> {
    match content {
        // Bedrock refuses blank text blocks; an empty message says nothing anyway.
        Some(Value::String(text)) if text.is_empty() => Ok(Vec::new()),
        Some(Value::String(text)) => Ok(vec![json!({"text": text})]),
        Some(Value::Array(parts)) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                user_part(part, i, j, &mut blocks)?;
            }
            Ok(blocks)
        }
        _ => Err(bad(
            "a user message needs a string or an array of content parts",
            format!("messages[{i}].content"),
        )),
    }
}

fn assistant_blocks(message: &Value, i: usize) -> Result<Vec<Value>, BadRequest> {
    let turn = translate::assistant_turn(message, i)?;
    let texts = turn.texts.into_iter().map(|text| json!({"text": text}));
    let calls = turn.calls.into_iter().map(|call| {
        json!({"toolUse": {"toolUseId": tool_id(call.id), "name": call.name, "input": call.input}})
    });
    Ok(texts.chain(calls).collect())
}

fn tool_result(message: &Value, i: usize) -> Result<Value, BadRequest> {
    let id = translate::tool_call_id(message, i)?;
    let text = openai::text_of(message.get("content"));
    Ok(json!({"toolResult": {"toolUseId": tool_id(id), "content": [{"text": text}]}}))
}

/// Messages being built, one per run of a role.
#[derive(Debug, Default)]
struct Turns(Vec<(&'static str, Vec<Value>)>);

impl Turns {
    fn push(&mut self, role: &'static str, blocks: Vec<Value>) {
        if blocks.is_empty() {
            return;
        }
        match self.0.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => self.0.push((role, blocks)),
        }
    }

    fn has_tool_blocks(&self) -> bool {
        self.0
            .iter()
            .flat_map(|(_, blocks)| blocks)
            .any(|block| block.get("toolUse").is_some() || block.get("toolResult").is_some())
    }
}

fn inference_config(body: &Map<String, Value>) -> Result<Map<String, Value>, BadRequest> {
    let mut config = Map::new();
    // Converse's `maxTokens` is a 32-bit integer.
    if let Some(max) = translate::max_tokens(body, u64::from(i32::MAX.unsigned_abs()))? {
        config.insert("maxTokens".into(), json!(max));
    }
    let sampling = translate::sampling(body)?;
    if let Some(temperature) = sampling.temperature {
        config.insert("temperature".into(), temperature);
    }
    if let Some(top_p) = sampling.top_p {
        config.insert("topP".into(), top_p);
    }
    if !sampling.stop.is_empty() {
        config.insert("stopSequences".into(), Value::Array(sampling.stop));
    }
    Ok(config)
}

fn tool_specs(body: &Map<String, Value>) -> Result<Vec<Value>, BadRequest> {
    let tools = translate::function_tools(body, "Bedrock")?;
    let specs = tools.into_iter().map(|tool| {
        let mut spec = Map::new();
        spec.insert("name".into(), json!(tool.name));
        // Bedrock refuses an empty description.
        if let Some(description) = tool.description.filter(|d| !d.is_empty()) {
            spec.insert("description".into(), json!(description));
        }
        spec.insert("inputSchema".into(), json!({"json": tool.parameters}));
        json!({"toolSpec": spec})
    });
    Ok(specs.collect())
}

/// `toolConfig`, if any. Converse has no "none" choice: with `tool_choice: "none"` the
/// tools are left out, unless the conversation already holds tool calls or results, which
/// Bedrock accepts only alongside a tool configuration: then they are sent without a
/// choice, and the model may still call one.
fn tool_config(
    body: &Map<String, Value>,
    has_tool_blocks: bool,
) -> Result<Option<Value>, BadRequest> {
    let tools = tool_specs(body)?;
    if tools.is_empty() {
        return Ok(None);
    }
    let choice = match translate::tool_choice(body)? {
        None => None,
        Some(ToolChoice::Auto) => Some(json!({"auto": {}})),
        Some(ToolChoice::Required) => Some(json!({"any": {}})),
        Some(ToolChoice::None) if has_tool_blocks => None,
        Some(ToolChoice::None) => return Ok(None),
        Some(ToolChoice::Function(name)) => Some(json!({"tool": {"name": name}})),
    };
    let mut config = Map::new();
    config.insert("tools".into(), Value::Array(tools));
    if let Some(choice) = choice {
        config.insert("toolChoice".into(), choice);
    }
    Ok(Some(Value::Object(config)))
}

/// Translates an OpenAI chat completion request into a Converse request body (for
/// `Converse` and `ConverseStream` alike; the model goes in the path, see [`paths`]).
///
/// System and developer messages become `system` blocks wherever they stand; tool messages
/// become `toolResult` blocks of a user message; consecutive messages of one role are
/// merged, empty ones left out. Images and files must be inline base64 data URLs.
/// `max_tokens` (or `max_completion_tokens`), `temperature` (clamped to 0–1), `top_p` and
/// `stop` become `inferenceConfig`; `tools` and `tool_choice` become `toolConfig`;
/// `response_format` JSON modes become a system instruction.
pub fn openai_to_converse(body: &Map<String, Value>) -> Result<Value, BadRequest> {
    if let Some(n) = given(body, "n")
        && n.as_u64() != Some(1)
    {
        return Err(bad("`n` must be 1: Bedrock returns a single choice", "n"));
    }
    let Some(Value::Array(list)) = body.get("messages") else {
        return Err(bad("`messages` must be an array", "messages"));
    };
    let mut system: Vec<Value> = Vec::new();
    let mut turns = Turns::default();
    for (i, message) in list.iter().enumerate() {
        match message.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => {
                let text = openai::text_of(message.get("content"));
                if !text.trim().is_empty() {
                    system.push(json!({"text": text}));
                }
            }
            Some("user") => turns.push("user", user_blocks(message.get("content"), i)?),
            Some("assistant") => turns.push("assistant", assistant_blocks(message, i)?),
            Some("tool") => turns.push("user", vec![tool_result(message, i)?]),
            Some(other) => {
                return Err(bad(
                    format!("the role `{other}` cannot be sent to Bedrock"),
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
    }
    if turns.0.is_empty() {
        return Err(bad(
            "`messages` must contain at least one message with content that is not a system message",
            "messages",
        ));
    }
    if let Some(instruction) = translate::response_format_instruction(body)? {
        system.push(json!({"text": instruction}));
    }
    let inference = inference_config(body)?;
    let tools = tool_config(body, turns.has_tool_blocks())?;

    let messages: Vec<Value> = turns
        .0
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(messages));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tools) = tools {
        out.insert("toolConfig".into(), tools);
    }
    Ok(Value::Object(out))
}

/// Translates an Anthropic Messages request into a Converse request body, by way of
/// OpenAI's format ([`translate::anthropic_to_openai_request`], then
/// [`openai_to_converse`]), so both front doors share one mapping. Errors found in the
/// Anthropic body name the parameter as Anthropic does (`messages.1.content.0`); those
/// found in the second step carry no parameter, since its positions are OpenAI's. What
/// the first step drops stays dropped: thinking blocks and settings, `top_k`,
/// `cache_control`.
pub fn anthropic_to_converse(body: &Map<String, Value>) -> Result<Value, BadRequest> {
    let openai_body = translate::anthropic_to_openai_request(body, "bedrock")?;
    openai_to_converse(&openai_body).map_err(|e| BadRequest {
        message: e.message,
        param: None,
    })
}

/// OpenAI's `finish_reason` for Converse's `stopReason`.
fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("guardrail_intervened" | "content_filtered") => "content_filter",
        _ => "stop",
    }
}

/// Converse's `usage`, in the struct Anthropic's is read into: `inputTokens` leaves out
/// the tokens read from or written to the prompt cache, which come separately, as
/// Anthropic's `input_tokens` does.
fn usage_of(usage: Option<&Value>) -> Usage {
    let field = |name: &str| usage.and_then(|u| u.get(name)).and_then(Value::as_u64);
    Usage {
        input: field("inputTokens").unwrap_or(0),
        output: field("outputTokens").unwrap_or(0),
        cache_read: field("cacheReadInputTokens"),
        cache_creation: field("cacheWriteInputTokens").unwrap_or(0),
    }
}

/// Translates a Converse response into a chat completion answered as `model`: text blocks
/// joined into `message.content`, `toolUse` blocks as `tool_calls`, other blocks
/// (reasoning, citations, images) left out. Converse answers carry neither an id nor a
/// timestamp: the id is `chatcmpl-sluice` and `created` 0, for the caller to set.
pub fn converse_to_openai(body: &Value, model: &str) -> Value {
    let blocks = body
        .pointer("/output/message/content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let mut text = String::new();
    let mut calls = Vec::new();
    for block in blocks {
        if let Some(part) = block.get("text").and_then(Value::as_str) {
            text.push_str(part);
        } else if let Some(tool) = block.get("toolUse") {
            let arguments = tool
                .get("input")
                .map(Value::to_string)
                .unwrap_or_else(|| "{}".into());
            calls.push(json!({
                "id": str_of(Some(tool), "toolUseId").unwrap_or(""),
                "type": "function",
                "function": {"name": str_of(Some(tool), "name").unwrap_or(""), "arguments": arguments},
            }));
        }
    }
    let message = translate::assistant_message(text, calls, true);
    json!({
        "id": "chatcmpl-sluice",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{
            "index": 0,
            "message": message,
            "logprobs": null,
            "finish_reason": finish_reason(str_of(Some(body), "stopReason")),
        }],
        "usage": translate::openai_usage(&usage_of(body.get("usage"))),
    })
}

/// What an error Bedrock reports by name is, in Sluice's terms: the `:exception-type` of a
/// stream's exception frame, or the `x-amzn-ErrorType` of an error response (its suffix
/// after `:` ignored, either case of the first letter accepted). Refused credentials and
/// unknown models are Sluice's configuration at fault, not the caller's request, so they
/// are a bad gateway like every error not named here.
pub fn exception_kind(exception: &str) -> Kind {
    let name = exception.split(':').next().unwrap_or_default();
    let mut chars = name.chars();
    let name: String = chars
        .next()
        .map(|c| c.to_ascii_lowercase())
        .into_iter()
        .chain(chars)
        .collect();
    match name.as_str() {
        "validationException" => Kind::InvalidRequest,
        "throttlingException" | "serviceQuotaExceededException" => Kind::RateLimited,
        "serviceUnavailableException" | "modelNotReadyException" => Kind::Unavailable,
        "modelTimeoutException" => Kind::Timeout,
        _ => Kind::BadGateway,
    }
}

#[cfg(test)]
mod tests;
