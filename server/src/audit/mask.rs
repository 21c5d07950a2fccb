//! The decision input as it is stored: text omitted, policy masks applied.
//!
//! By default message, text and document contents and tool arguments are replaced by a
//! note of their size, so that neither prompts, answers nor anything a detector found in
//! them is in the audit database. A policy may ask to keep the text (the `log_text`
//! obligation); every detected PII or secret span in it is then replaced by its class, so a
//! finding is never stored in clear either way. Then every `mask` obligation erases its
//! JSON pointer, or replaces it when it names a replacement, as OPA's `system.log.mask`
//! does.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::Value;
use sluice_engine::input::{Content, Span, ToolCall};
use sluice_engine::{Decision, DecisionInput};

/// The note that stands for a text of `size` characters.
fn omission(size: usize) -> String {
    format!("[omitted: {size} chars]")
}

fn omitted(value: &Value) -> Value {
    let size = match value {
        Value::String(s) => s.chars().count(),
        other => other.to_string().chars().count(),
    };
    Value::String(omission(size))
}

fn omit_field(object: Option<&mut Value>, field: &str) {
    if let Some(Value::Object(map)) = object
        && let Some(value) = map.get_mut(field)
        && !value.is_null()
        && value != &Value::String(String::new())
    {
        *value = omitted(value);
    }
}

fn omit_each(array: Option<&mut Value>, field: Option<&str>) {
    let Some(Value::Array(items)) = array else {
        return;
    };
    for item in items.iter_mut() {
        match field {
            Some(field) => omit_field(Some(item), field),
            None => *item = omitted(item),
        }
    }
}

/// Erases (or replaces) the value at a JSON pointer; a pointer that names nothing is
/// ignored.
fn apply_mask(value: &mut Value, pointer: &str, replacement: Option<&str>) {
    if pointer.is_empty() {
        return;
    }
    if let Some(replacement) = replacement {
        if let Some(target) = value.pointer_mut(pointer) {
            *target = Value::String(replacement.to_string());
        }
        return;
    }
    let Some((parent, last)) = pointer.rsplit_once('/') else {
        return;
    };
    let last = last.replace("~1", "/").replace("~0", "~");
    match value.pointer_mut(parent) {
        Some(Value::Object(map)) => {
            map.remove(&last);
        }
        Some(Value::Array(items)) => {
            if let Ok(index) = last.parse::<usize>()
                && index < items.len()
            {
                items.remove(index);
            }
        }
        _ => {}
    }
}

/// Replaces every detector match in the stored text by `[class]`. A match that does not
/// fit its text (a stale offset, a pointer to something other than a string) omits the
/// whole value instead: a finding is never kept in clear.
fn replace_findings(value: &mut Value, input: &DecisionInput) {
    let mut by_pointer: BTreeMap<&str, Vec<&Span>> = BTreeMap::new();
    for span in input.findings.pii.iter().chain(&input.findings.secrets) {
        by_pointer
            .entry(span.pointer.as_str())
            .or_default()
            .push(span);
    }
    for (pointer, mut spans) in by_pointer {
        let Some(target) = value.pointer_mut(pointer).filter(|_| !pointer.is_empty()) else {
            continue;
        };
        let Value::String(text) = target else {
            *target = omitted(target);
            continue;
        };
        // Last match first, so earlier offsets stay valid; overlaps merge into one.
        spans.sort_by_key(|s| std::cmp::Reverse(s.start));
        let mut result = text.clone();
        let mut bound = usize::MAX;
        let mut fits = true;
        for span in spans {
            let (Ok(start), Ok(end)) = (usize::try_from(span.start), usize::try_from(span.end))
            else {
                fits = false;
                break;
            };
            let end = end.min(bound);
            if start >= end {
                continue;
            }
            if end > result.len()
                || !result.is_char_boundary(start)
                || !result.is_char_boundary(end)
            {
                fits = false;
                break;
            }
            result.replace_range(start..end, &format!("[{}]", span.class));
            bound = start;
        }
        *target = if fits {
            Value::String(result)
        } else {
            omitted(target)
        };
    }
}

/// Replaces a text by its note, unless it is empty.
fn omit_text(text: &mut String) {
    if !text.is_empty() {
        *text = omission(text.chars().count());
    }
}

/// Replaces tool arguments by their note, unless they are null or an empty string.
fn omit_arguments(call: &mut ToolCall) {
    if !call.arguments.is_null() && call.arguments != Value::String(String::new()) {
        call.arguments = omitted(&call.arguments);
    }
}

/// What [`masked_input`] does to `content` when no policy keeps the text, on the typed
/// content.
fn omit_content(content: &mut Content) {
    for message in &mut content.messages {
        omit_text(&mut message.content);
        message.tool_calls.iter_mut().for_each(omit_arguments);
    }
    for text in &mut content.texts {
        *text = omission(text.chars().count());
    }
    for document in &mut content.documents {
        omit_text(&mut document.text);
    }
    if let Some(tool) = &mut content.tool {
        omit_arguments(tool);
    }
}

/// The stored input's JSON text: [`masked_input`], serialised. Without a policy that keeps
/// the text or masks a pointer (the usual row), the text is omitted on the typed input and
/// serialised once, with no JSON tree in between: the same text at a fraction of the cost
/// (the writer builds most rows, see `Audit::record_decision`).
pub fn masked_input_text(input: Cow<'_, DecisionInput>, decision: &Decision) -> String {
    let obligations = &decision.obligations;
    if obligations.log_text || !obligations.mask.is_empty() {
        return masked_input(&input, decision).to_string();
    }
    let mut input = input.into_owned();
    omit_content(&mut input.content);
    serde_json::to_string(&input).unwrap_or_else(|_| Value::Null.to_string())
}

/// The input as stored for `decision`.
pub fn masked_input(input: &DecisionInput, decision: &Decision) -> Value {
    let mut value = serde_json::to_value(input).unwrap_or(Value::Null);
    if decision.obligations.log_text {
        replace_findings(&mut value, input);
    } else if let Some(content) = value.get_mut("content") {
        if let Some(Value::Array(messages)) = content.get_mut("messages") {
            for message in messages.iter_mut() {
                omit_field(Some(message), "content");
                if let Some(Value::Array(calls)) = message.get_mut("tool_calls") {
                    for call in calls.iter_mut() {
                        omit_field(Some(call), "arguments");
                    }
                }
            }
        }
        omit_each(content.get_mut("texts"), None);
        omit_each(content.get_mut("documents"), Some("text"));
        omit_field(content.get_mut("tool"), "arguments");
    }
    for mask in &decision.obligations.mask {
        apply_mask(&mut value, &mask.pointer, mask.replacement.as_deref());
    }
    value
}
