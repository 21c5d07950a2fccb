//! Inspection of streamed answers: a sliding window over the text of the caller's events.
//!
//! Text is held back only while it could still be part of something a detector would find:
//! the trailing word (an email or a token may go on in the next chunk), the groups of
//! digits or codes before it (card, phone and IBAN numbers are written in groups), an
//! unfinished private key block, and any finding the window boundary would cut. Everything
//! before that is scanned — with the last emitted bytes as context, for detectors that need
//! a word such as "born on" before the value — redacted and sent on. The response policy is
//! asked again whenever a class appears that the stream has not shown before; it may
//! redact it, or deny, which ends the stream with an error event. Text never waits for more
//! than [`MAX_HOLD`] bytes.
//!
//! The window rewrites the caller's own events (OpenAI chunks, Anthropic
//! `content_block_delta`s): text events carry the released text, and any other event first
//! releases everything held so that order is kept. An event that cannot be parsed cannot be
//! inspected, and ends the stream.

use std::collections::BTreeSet;

use serde_json::Value;
use sluice_engine::input::ToolCall;
use sluice_engine::inspect::{self, Finding};

use super::error::{Format, GatewayError, Kind};
use super::sse;
use super::stream::ToolCallDelta;
use super::{Redactor, SharedVault};

/// The most text held back at once, in bytes; beyond it the text is released, redacted as
/// far as it can be.
pub const MAX_HOLD: usize = 8 * 1024;
/// Bytes of already released text kept as context for the next scan.
const LOOKBEHIND: usize = 64;

/// What the window asks the response policy.
pub trait StreamPolicy: Send {
    /// The redactions that apply to the answer so far (`text`, and the tool calls it made),
    /// or the error that ends the stream (a deny). Asked before the first release and
    /// whenever a new class appears.
    fn redactor(
        &mut self,
        text: &str,
        calls: &[ToolCall],
    ) -> Result<Option<Redactor>, GatewayError>;
}

/// A tool call whose arguments are held until the call is complete: its arguments are
/// released once, whole and redacted (nobody reads half an argument list).
#[derive(Debug, Default)]
struct HeldCall {
    /// OpenAI: the call's `id` and `type`; Anthropic: the raw `content_block_start` event.
    id: Option<Value>,
    kind: Option<Value>,
    start: Option<Vec<u8>>,
    name: String,
    arguments: String,
}

/// The window over one streamed answer.
pub struct Window {
    format: Format,
    policy: Box<dyn StreamPolicy>,
    redactor: Option<Redactor>,
    asked: bool,
    seen: BTreeSet<&'static str>,
    /// Everything the answer said so far (what the policy decides on).
    text: String,
    /// Text not released yet.
    pending: String,
    /// The end of the released text, as context.
    lookbehind: String,
    /// The last text event, the shape of the events the window emits.
    template: Option<Value>,
    /// Placeholders to put back into released text.
    vault: Option<SharedVault>,
    /// Tool calls being streamed, by their index in the stream.
    calls: std::collections::BTreeMap<u64, HeldCall>,
    /// Tool calls already released, for the policy's view of the answer.
    released_calls: Vec<ToolCall>,
}

impl std::fmt::Debug for Window {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Window")
            .field("format", &self.format)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// Where the held-back part of `pending` starts.
fn hold_from(pending: &str) -> usize {
    if pending.len() > MAX_HOLD {
        return pending.len();
    }
    let bytes = pending.as_bytes();
    let token_start = |end: usize| {
        let mut i = end;
        while i > 0 && bytes.get(i - 1).is_some_and(|b| !b.is_ascii_whitespace()) {
            i -= 1;
        }
        i
    };
    let grouped = |token: &str| {
        token.len() <= 6
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase() || b"+-().".contains(&b))
    };
    // The trailing word may go on.
    let mut cut = token_start(bytes.len());
    // When it is (or may start) a group, the groups before it, one space apart, may belong
    // to the same number or code; after any other word they are complete.
    if grouped(pending.get(cut..).unwrap_or_default()) {
        while cut >= 2 && bytes.get(cut - 1) == Some(&b' ') {
            let start = token_start(cut - 1);
            let token = pending.get(start..cut - 1).unwrap_or_default();
            if token.is_empty() || !grouped(token) {
                break;
            }
            cut = start;
        }
    }
    // An unfinished private key block is held from its first line.
    if let Some(begin) = pending.rfind("-----BEGIN") {
        let rest = pending.get(begin..).unwrap_or_default();
        let finished = rest
            .find("-----END")
            .and_then(|end| rest.get(end + 8..))
            .is_some_and(|tail| tail.contains("-----"));
        if !finished {
            cut = cut.min(begin);
        }
    }
    cut
}

impl Window {
    /// A window for a stream in the caller's `format`.
    pub fn new(format: Format, policy: Box<dyn StreamPolicy>) -> Window {
        Window {
            format,
            policy,
            redactor: None,
            asked: false,
            seen: BTreeSet::new(),
            text: String::new(),
            pending: String::new(),
            lookbehind: String::new(),
            template: None,
            vault: None,
            calls: std::collections::BTreeMap::new(),
            released_calls: Vec::new(),
        }
    }

    /// Puts the placeholders of the call's `tokenize` redactions back into released text
    /// (a placeholder has no space in it, so the window never splits one).
    pub fn restoring(mut self, vault: SharedVault) -> Window {
        self.vault = Some(vault);
        self
    }

    /// Adds answer text; returns the part released now, redacted.
    pub fn push(&mut self, delta: &str) -> Result<String, GatewayError> {
        self.text.push_str(delta);
        self.pending.push_str(delta);
        let cut = hold_from(&self.pending);
        self.release(cut, false)
    }

    /// Releases everything held (the stream ends, or a non-text event follows).
    pub fn flush(&mut self) -> Result<String, GatewayError> {
        self.release(self.pending.len(), true)
    }

    fn release(&mut self, cut: usize, all: bool) -> Result<String, GatewayError> {
        if cut == 0 && !all {
            return Ok(String::new());
        }
        let offset = self.lookbehind.len();
        let scanned = format!("{}{}", self.lookbehind, self.pending);
        let findings = inspect::scan(&scanned);
        // A finding the boundary would cut stays held, unless everything goes.
        let mut cut = cut;
        if !all {
            for f in &findings {
                if f.start < offset + cut && offset + cut < f.end {
                    cut = f.start.saturating_sub(offset);
                }
            }
        }
        if cut == 0 {
            return Ok(String::new());
        }
        let released: Vec<Finding> = findings
            .into_iter()
            .filter(|f| f.end > offset && f.end <= offset + cut)
            .map(|mut f| {
                f.start = f.start.saturating_sub(offset);
                f.end -= offset;
                f
            })
            .collect();
        let new_class = released.iter().any(|f| !self.seen.contains(f.class));
        if !self.asked || new_class {
            self.seen.extend(released.iter().map(|f| f.class));
            self.redactor = self.policy.redactor(&self.text, &self.released_calls)?;
            self.asked = true;
            if self.redactor.as_ref().is_some_and(|r| !r.whole.is_empty()) {
                // Part of the answer may be out already; replacing it whole is impossible.
                return Err(GatewayError::new(
                    Kind::Internal,
                    "a policy asked to redact the whole answer, which a stream cannot do once part of it is out, so the stream was stopped".to_string(),
                ));
            }
        }
        let region = self.pending.get(..cut).unwrap_or_default().to_string();
        let mut out = match &self.redactor {
            Some(redactor) => redactor.redact_scanned(&region, &released),
            None => region.clone(),
        };
        if let Some(vault) = &self.vault {
            out = vault
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .restore(&out);
        }
        self.pending.drain(..cut);
        self.lookbehind.push_str(&region);
        if self.lookbehind.len() > LOOKBEHIND {
            let mut from = self.lookbehind.len() - LOOKBEHIND;
            while !self.lookbehind.is_char_boundary(from) {
                from += 1;
            }
            self.lookbehind.drain(..from);
        }
        Ok(out)
    }

    /// Releases the held tool calls whose arguments are complete (all of them when `all`):
    /// the policy sees them, and their arguments go out redacted.
    fn release_calls(&mut self, only: Option<u64>) -> Result<Vec<(u64, HeldCall)>, GatewayError> {
        let indices: Vec<u64> = match only {
            Some(index) => vec![index],
            None => self.calls.keys().copied().collect(),
        };
        let mut out = Vec::new();
        for index in indices {
            let Some(mut call) = self.calls.remove(&index) else {
                continue;
            };
            let findings = inspect::scan(&call.arguments);
            self.released_calls.push(ToolCall {
                name: call.name.clone(),
                server: None,
                arguments: super::openai::parsed_arguments(&call.arguments),
            });
            if findings.iter().any(|f| !self.seen.contains(f.class)) || !self.asked {
                self.seen.extend(findings.iter().map(|f| f.class));
                self.redactor = self.policy.redactor(&self.text, &self.released_calls)?;
                self.asked = true;
            }
            if let Some(redactor) = &self.redactor {
                call.arguments = redactor.redact_scanned(&call.arguments, &findings);
            }
            out.push((index, call));
        }
        Ok(out)
    }

    /// The OpenAI chunk carrying released tool calls, shaped like the stream's chunks.
    fn openai_calls_event(&self, calls: Vec<(u64, HeldCall)>, like: &Value) -> Option<Vec<u8>> {
        if calls.is_empty() {
            return None;
        }
        let calls: Vec<Value> = calls
            .into_iter()
            .map(|(index, call)| {
                let mut value = serde_json::json!({
                    "index": index,
                    "function": {"name": call.name, "arguments": call.arguments},
                });
                if let (Some(object), Some(id)) = (value.as_object_mut(), call.id) {
                    object.insert("id".to_string(), id);
                }
                if let (Some(object), Some(kind)) = (value.as_object_mut(), call.kind) {
                    object.insert("type".to_string(), kind);
                }
                value
            })
            .collect();
        let mut event = like.clone();
        let choice = serde_json::json!({
            "index": 0, "delta": {"tool_calls": calls}, "finish_reason": null
        });
        let object = event.as_object_mut()?;
        object.insert("choices".to_string(), Value::Array(vec![choice]));
        object.remove("usage");
        Some(sse::data_event(&event.to_string()))
    }

    /// Everything still held when the stream ends: the text, then any tool calls.
    pub fn finish(&mut self) -> Result<Vec<Vec<u8>>, GatewayError> {
        let text = self.flush()?;
        let mut events: Vec<Vec<u8>> = self.text_event(&text).into_iter().collect();
        let calls = self.release_calls(None)?;
        match self.format {
            Format::OpenAi => {
                let like = self
                    .template
                    .clone()
                    .unwrap_or_else(|| serde_json::json!({}));
                events.extend(self.openai_calls_event(calls, &like));
            }
            Format::Anthropic => {
                for (index, call) in calls {
                    events.extend(anthropic_call_events(index, call));
                }
            }
        }
        Ok(events)
    }

    /// Rewrites one event for the caller (in the caller's format) through the window.
    pub fn event(&mut self, event: &[u8]) -> Result<Vec<Vec<u8>>, GatewayError> {
        let text = String::from_utf8_lossy(event);
        let (name, data) = parse_event(&text);
        if data.trim() == "[DONE]" {
            return Ok(vec![event.to_vec()]);
        }
        let Ok(mut value) = serde_json::from_str::<Value>(&data) else {
            return Err(GatewayError::new(
                Kind::BadGateway,
                "the upstream's stream carried an event Sluice cannot parse, so it cannot be inspected".to_string(),
            ));
        };
        match self.format {
            Format::OpenAi => self.openai_event(&mut value),
            Format::Anthropic => self.anthropic_event(name.as_deref(), value, event),
        }
    }

    fn openai_event(&mut self, chunk: &mut Value) -> Result<Vec<Vec<u8>>, GatewayError> {
        // Tool-call deltas are taken out of the chunk and held until the call is complete.
        let deltas = chunk
            .pointer_mut("/choices/0/delta")
            .and_then(Value::as_object_mut)
            .and_then(|delta| delta.remove("tool_calls"));
        if let Some(Value::Array(deltas)) = deltas {
            for delta in deltas {
                let parts = ToolCallDelta::read(&delta);
                let call = self.calls.entry(parts.index).or_default();
                if let Some(id) = delta.get("id") {
                    call.id = Some(id.clone());
                }
                if let Some(kind) = delta.get("type") {
                    call.kind = Some(kind.clone());
                }
                call.name.push_str(parts.name);
                call.arguments.push_str(parts.arguments);
            }
            if self.template.is_none() {
                let mut template = chunk.clone();
                if let Some(object) = template.as_object_mut() {
                    object.remove("usage");
                }
                self.template = Some(template);
            }
            let finished = chunk
                .pointer("/choices/0/finish_reason")
                .is_some_and(|r| !r.is_null());
            let has_content = chunk
                .pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
                .is_some_and(|c| !c.is_empty());
            let has_usage = chunk.get("usage").is_some_and(|u| !u.is_null());
            let has_role = chunk.pointer("/choices/0/delta/role").is_some();
            if !finished && !has_content && !has_usage && !has_role {
                // Nothing else in this chunk: it goes out with its call, complete.
                return Ok(Vec::new());
            }
        }
        let content = chunk
            .pointer("/choices/0/delta/content")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let pure_text = !content.is_empty()
            && chunk
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(|c| c.len() == 1)
            && chunk
                .pointer("/choices/0/delta")
                .and_then(Value::as_object)
                .is_some_and(|d| d.keys().all(|k| k == "content"))
            && chunk
                .pointer("/choices/0/finish_reason")
                .is_none_or(Value::is_null)
            && chunk.get("usage").is_none_or(Value::is_null);
        if pure_text {
            self.template = Some(chunk.clone());
            let out = self.push(&content)?;
            return Ok(self.text_event(&out).into_iter().collect());
        }
        if !content.is_empty() {
            self.push(&content)?;
            if let Some(delta) = chunk
                .pointer_mut("/choices/0/delta")
                .and_then(Value::as_object_mut)
            {
                delta.insert("content".to_string(), Value::String(String::new()));
            }
            if self.template.is_none() {
                let mut template = chunk.clone();
                if let Some(object) = template.as_object_mut() {
                    object.remove("usage");
                }
                self.template = Some(template);
            }
        }
        let out = self.flush()?;
        let mut events: Vec<Vec<u8>> = self.text_event(&out).into_iter().collect();
        // A chunk that ends the choice (or reports usage) comes after every call.
        let ends = chunk
            .pointer("/choices/0/finish_reason")
            .is_some_and(|r| !r.is_null())
            || chunk.get("usage").is_some_and(|u| !u.is_null());
        if ends {
            let calls = self.release_calls(None)?;
            events.extend(self.openai_calls_event(calls, chunk));
        }
        events.push(sse::data_event(&chunk.to_string()));
        Ok(events)
    }

    fn anthropic_event(
        &mut self,
        name: Option<&str>,
        value: Value,
        raw: &[u8],
    ) -> Result<Vec<Vec<u8>>, GatewayError> {
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .or(name)
            .unwrap_or_default()
            .to_string();
        let text = value
            .pointer("/delta/text")
            .and_then(Value::as_str)
            .filter(|_| value.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta"))
            .map(str::to_string);
        let index = value.get("index").and_then(Value::as_u64).unwrap_or(0);
        let tool_start = kind == "content_block_start"
            && value.pointer("/content_block/type").and_then(Value::as_str) == Some("tool_use");
        if tool_start {
            let name = value
                .pointer("/content_block/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            // Text before the call goes out first, in order.
            let out = self.flush()?;
            let events: Vec<Vec<u8>> = self.text_event(&out).into_iter().collect();
            self.calls.insert(
                index,
                HeldCall {
                    start: Some(raw.to_vec()),
                    name,
                    ..HeldCall::default()
                },
            );
            return Ok(events);
        }
        if self.calls.contains_key(&index) {
            match kind.as_str() {
                "content_block_delta" => {
                    if let (Some(call), Some(part)) = (
                        self.calls.get_mut(&index),
                        value.pointer("/delta/partial_json").and_then(Value::as_str),
                    ) {
                        call.arguments.push_str(part);
                    }
                    return Ok(Vec::new());
                }
                "content_block_stop" => {
                    let mut events = Vec::new();
                    for (index, call) in self.release_calls(Some(index))? {
                        events.extend(anthropic_call_events(index, call));
                    }
                    events.push(raw.to_vec());
                    return Ok(events);
                }
                _ => {}
            }
        }
        match (kind.as_str(), text) {
            ("content_block_delta", Some(text)) => {
                self.template = Some(value);
                let out = self.push(&text)?;
                Ok(self.text_event(&out).into_iter().collect())
            }
            ("ping", _) => Ok(vec![raw.to_vec()]),
            _ => {
                let out = self.flush()?;
                let mut events: Vec<Vec<u8>> = self.text_event(&out).into_iter().collect();
                events.push(raw.to_vec());
                Ok(events)
            }
        }
    }

    /// An event carrying `text`, shaped like the last text event; nothing for no text.
    pub fn text_event(&self, text: &str) -> Option<Vec<u8>> {
        if text.is_empty() {
            return None;
        }
        let mut event = self.template.clone()?;
        match self.format {
            Format::OpenAi => {
                let choice = serde_json::json!({
                    "index": 0, "delta": {"content": text}, "finish_reason": null
                });
                if let Some(object) = event.as_object_mut() {
                    object.insert("choices".to_string(), Value::Array(vec![choice]));
                    object.remove("usage");
                }
                Some(sse::data_event(&event.to_string()))
            }
            Format::Anthropic => {
                if let Some(delta) = event.get_mut("delta").and_then(Value::as_object_mut) {
                    delta.insert("text".to_string(), Value::String(text.to_string()));
                }
                Some(format!("event: content_block_delta\ndata: {event}\n\n").into_bytes())
            }
        }
    }
}

/// An Anthropic tool call released whole: its start event, then its input in one delta.
fn anthropic_call_events(index: u64, call: HeldCall) -> Vec<Vec<u8>> {
    let mut events: Vec<Vec<u8>> = call.start.into_iter().collect();
    if !call.arguments.is_empty() {
        let delta = serde_json::json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "input_json_delta", "partial_json": call.arguments}});
        events.push(format!("event: content_block_delta\ndata: {delta}\n\n").into_bytes());
    }
    events
}

/// The `event:` name and the `data:` of one serialised event.
fn parse_event(text: &str) -> (Option<String>, String) {
    let mut name = None;
    let mut data = Vec::new();
    for line in text.lines() {
        if let Some(value) = line.strip_prefix("event:") {
            name = Some(value.trim().to_string());
        } else if let Some(value) = line.strip_prefix("data:") {
            data.push(value.strip_prefix(' ').unwrap_or(value));
        }
    }
    (name, data.join("\n"))
}

#[cfg(test)]
mod tests;
