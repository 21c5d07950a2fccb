//! Streams from an upstream to the caller: each upstream event goes through an adapter that
//! re-emits it in the caller's format (unchanged when the formats match, translated when
//! not) and remembers what the answer has said, so the response policy can decide on it.
//!
//! The terminal event (`data: [DONE]`, Anthropic's `message_stop`) is held back until the
//! whole answer is decided: a denied or broken-off stream ends with an error event in the
//! caller's format instead, never with a clean end.

use bytes::Bytes;
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use serde_json::Value;
use sluice_engine::input::ToolCall;

use super::error::{Format, GatewayError, Kind};
use super::sse;
use super::translate::{AnthropicToOpenAiStream, OpenAiToAnthropicStream};
use super::window::Window;

/// Token counts a stream's upstream reported; 0 for a count it did not report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamUsage {
    /// Prompt tokens, cached ones included.
    pub input: u64,
    /// Prompt tokens served from a cache.
    pub cached: u64,
    /// Completion tokens.
    pub output: u64,
    /// Reasoning tokens, a part of the completion tokens.
    pub reasoning: u64,
}

/// One direction of stream handling.
pub trait Adapter: Send {
    /// The events to send the caller for one upstream event's `data`.
    fn push(&mut self, data: &str) -> Vec<Vec<u8>>;
    /// Events owed when the upstream stream ends.
    fn finish(&mut self) -> Vec<Vec<u8>>;
    /// The answer's text so far.
    fn text(&self) -> &str;
    /// The token counts the upstream reported (0 where it did not).
    fn usage(&self) -> StreamUsage;
    /// Whether the upstream ended its stream properly.
    fn completed(&self) -> bool;
    /// The tool calls the answer made so far (name, arguments parsed when complete).
    fn tool_calls(&self) -> Vec<ToolCall>;
}

/// What one OpenAI tool-call delta adds to the call at `index` (absent parts are empty).
#[derive(Debug)]
pub struct ToolCallDelta<'a> {
    /// The call's position in the stream.
    pub index: u64,
    /// A piece of the function's name.
    pub name: &'a str,
    /// A piece of the arguments' JSON text.
    pub arguments: &'a str,
}

impl<'a> ToolCallDelta<'a> {
    /// Reads one element of a chunk's `delta.tool_calls`.
    pub fn read(delta: &'a Value) -> ToolCallDelta<'a> {
        let function = delta.get("function");
        let part = |field: &str| {
            function
                .and_then(|f| f.get(field))
                .and_then(Value::as_str)
                .unwrap_or_default()
        };
        ToolCallDelta {
            index: delta.get("index").and_then(Value::as_u64).unwrap_or(0),
            name: part("name"),
            arguments: part("arguments"),
        }
    }
}

/// A tool call assembled from stream deltas, keyed by its index in the stream.
#[derive(Debug, Default)]
struct Calls {
    calls: std::collections::BTreeMap<u64, (String, String)>,
}

impl Calls {
    fn name(&mut self, index: u64, name: &str) {
        self.calls.entry(index).or_default().0.push_str(name);
    }
    fn arguments(&mut self, index: u64, part: &str) {
        self.calls.entry(index).or_default().1.push_str(part);
    }
    fn get(&self) -> Vec<ToolCall> {
        self.calls
            .values()
            .map(|(name, arguments)| ToolCall {
                name: name.clone(),
                server: None,
                arguments: super::openai::parsed_arguments(arguments),
            })
            .collect()
    }
}

/// OpenAI chunks passed on as they are, except the usage-only chunk when Sluice asked for
/// usage on the caller's behalf (it settles budgets) and the caller did not.
#[derive(Debug, Default)]
pub struct OpenAiPassthrough {
    text: String,
    usage: StreamUsage,
    done: bool,
    calls: Calls,
    hide_usage_chunk: bool,
}

impl OpenAiPassthrough {
    /// A passthrough that drops the final usage-only chunk, for a caller that did not ask
    /// for `stream_options.include_usage`.
    pub fn hiding_usage() -> OpenAiPassthrough {
        OpenAiPassthrough {
            hide_usage_chunk: true,
            ..OpenAiPassthrough::default()
        }
    }
}

impl Adapter for OpenAiPassthrough {
    fn push(&mut self, data: &str) -> Vec<Vec<u8>> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return vec![sse::data_event("[DONE]")];
        }
        if let Ok(chunk) = serde_json::from_str::<Value>(data) {
            if let Some(Value::Array(choices)) = chunk.get("choices") {
                for choice in choices {
                    if let Some(delta) = choice
                        .get("delta")
                        .and_then(|d| d.get("content"))
                        .and_then(Value::as_str)
                    {
                        self.text.push_str(delta);
                    }
                    let calls = choice
                        .get("delta")
                        .and_then(|d| d.get("tool_calls"))
                        .and_then(Value::as_array);
                    for call in calls.into_iter().flatten() {
                        let delta = ToolCallDelta::read(call);
                        if !delta.name.is_empty() {
                            self.calls.name(delta.index, delta.name);
                        }
                        if !delta.arguments.is_empty() {
                            self.calls.arguments(delta.index, delta.arguments);
                        }
                    }
                }
            }
            if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
                let count = |pointer: &str| usage.pointer(pointer).and_then(Value::as_u64);
                self.usage = StreamUsage {
                    input: count("/prompt_tokens").unwrap_or(self.usage.input),
                    cached: count("/prompt_tokens_details/cached_tokens")
                        .unwrap_or(self.usage.cached),
                    output: count("/completion_tokens").unwrap_or(self.usage.output),
                    reasoning: count("/completion_tokens_details/reasoning_tokens")
                        .unwrap_or(self.usage.reasoning),
                };
                let usage_only = chunk
                    .get("choices")
                    .and_then(Value::as_array)
                    .is_none_or(Vec::is_empty);
                if self.hide_usage_chunk && usage_only {
                    return Vec::new();
                }
            }
        }
        vec![sse::data_event(data)]
    }
    fn finish(&mut self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    fn text(&self) -> &str {
        &self.text
    }
    fn usage(&self) -> StreamUsage {
        self.usage
    }
    fn completed(&self) -> bool {
        self.done
    }
    fn tool_calls(&self) -> Vec<ToolCall> {
        self.calls.get()
    }
}

/// Anthropic events passed on as they are.
#[derive(Debug, Default)]
pub struct AnthropicPassthrough {
    text: String,
    usage: StreamUsage,
    done: bool,
    calls: Calls,
}

impl Adapter for AnthropicPassthrough {
    fn push(&mut self, data: &str) -> Vec<Vec<u8>> {
        let Ok(event) = serde_json::from_str::<Value>(data) else {
            return Vec::new();
        };
        let kind = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message")
            .to_string();
        let index = event.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind.as_str() {
            "content_block_start" => {
                if let Some(block) = event
                    .get("content_block")
                    .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
                {
                    let name = block.get("name").and_then(Value::as_str).unwrap_or("");
                    self.calls.name(index, name);
                }
            }
            "content_block_delta" => {
                let delta = event.get("delta");
                match delta.and_then(|d| d.get("type")).and_then(Value::as_str) {
                    Some("text_delta") => {
                        if let Some(text) =
                            delta.and_then(|d| d.get("text")).and_then(Value::as_str)
                        {
                            self.text.push_str(text);
                        }
                    }
                    Some("input_json_delta") => {
                        if let Some(part) = delta
                            .and_then(|d| d.get("partial_json"))
                            .and_then(Value::as_str)
                        {
                            self.calls.arguments(index, part);
                        }
                    }
                    _ => {}
                }
            }
            "message_start" => {
                let usage =
                    super::anthropic::Usage::of(event.get("message").and_then(|m| m.get("usage")));
                self.usage.input = usage.prompt_tokens();
                self.usage.cached = usage.cache_read.unwrap_or(0);
            }
            "message_delta" => {
                if let Some(tokens) = event
                    .get("usage")
                    .and_then(|u| u.get("output_tokens"))
                    .and_then(Value::as_u64)
                {
                    self.usage.output = tokens;
                }
            }
            "message_stop" => self.done = true,
            _ => {}
        }
        vec![format!("event: {kind}\ndata: {data}\n\n").into_bytes()]
    }
    fn finish(&mut self) -> Vec<Vec<u8>> {
        Vec::new()
    }
    fn text(&self) -> &str {
        &self.text
    }
    fn usage(&self) -> StreamUsage {
        self.usage
    }
    fn completed(&self) -> bool {
        self.done
    }
    fn tool_calls(&self) -> Vec<ToolCall> {
        self.calls.get()
    }
}

/// The translators in `translate` already have the adapter's methods.
macro_rules! adapter_for_translator {
    ($($translator:ty),*) => {$(
        impl Adapter for $translator {
            fn push(&mut self, data: &str) -> Vec<Vec<u8>> {
                <$translator>::push(self, data)
            }
            fn finish(&mut self) -> Vec<Vec<u8>> {
                <$translator>::finish(self)
            }
            fn text(&self) -> &str {
                <$translator>::text(self)
            }
            fn usage(&self) -> StreamUsage {
                StreamUsage {
                    input: <$translator>::input_tokens(self),
                    cached: <$translator>::cached_tokens(self),
                    output: <$translator>::output_tokens(self),
                    reasoning: 0,
                }
            }
            fn completed(&self) -> bool {
                <$translator>::completed(self)
            }
            fn tool_calls(&self) -> Vec<ToolCall> {
                <$translator>::answer(self)
                    .messages
                    .into_iter()
                    .flat_map(|m| m.tool_calls)
                    .collect()
            }
        }
    )*};
}

adapter_for_translator!(AnthropicToOpenAiStream, OpenAiToAnthropicStream);

/// Whether an outgoing event ends the stream (held back until the answer is decided).
fn is_terminal(event: &[u8]) -> bool {
    event.starts_with(b"data: [DONE]") || event.starts_with(b"event: message_stop")
}

/// How a relayed stream's answer is settled.
#[derive(Debug)]
pub struct Outcome<D, E> {
    /// Decides on the whole answer (text, reported usage, tool calls) before the terminal
    /// event; the event waits for the future it returns (the session flags the decisions
    /// set reaching the replicas' shared store).
    pub decide: D,
    /// Told once if the stream ends before the answer could be decided: the caller went
    /// away or the upstream broke off (a deny is recorded when it is decided).
    pub ended: E,
}

/// Why a relay stops before its end.
enum Halt {
    /// The caller went away before the answer was decided.
    CallerGone,
    /// The stream failed before the answer was decided; the error ends it.
    Failed(GatewayError),
    /// After the answer was decided (and recorded): the error ends the stream.
    Decided(GatewayError),
}

/// One outgoing event through the window (when there is one).
fn through(window: &mut Option<Window>, event: Vec<u8>) -> Result<Vec<Vec<u8>>, GatewayError> {
    match window {
        Some(window) => window.event(&event),
        None => Ok(vec![event]),
    }
}

/// Runs a stream to its end: upstream events through `adapter` and the inspection
/// `window` to the caller; then `decide` on the whole answer (text, output tokens) before
/// the terminal event. Returns the caller's body.
pub fn relay(
    mut upstream: BoxStream<'static, Result<Bytes, String>>,
    mut adapter: Box<dyn Adapter>,
    format: Format,
    provider: String,
    mut window: Option<Window>,
    outcome: Outcome<
        impl FnOnce(&str, StreamUsage, Vec<ToolCall>) -> BoxFuture<'static, Result<(), GatewayError>>
        + Send
        + 'static,
        impl FnOnce(&GatewayError) + Send + 'static,
    >,
    hold: impl Send + 'static,
) -> axum::body::Body {
    let Outcome { decide, ended } = outcome;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        // Kept until the stream ends (the deployment's in-flight count).
        let _hold = hold;
        // Told once if the stream ends before the answer could be decided: the caller went
        // away, or the upstream broke off. (A deny was recorded when it was decided.)
        let mut ended = Some(ended);
        let mut end = |error: &GatewayError| {
            if error.kind != Kind::PolicyDenied
                && let Some(ended) = ended.take()
            {
                ended(error);
            }
        };
        let gone = || {
            GatewayError::new(
                Kind::InvalidRequest,
                "the caller closed the stream before its end".to_string(),
            )
        };
        let send = |bytes: Vec<u8>| {
            let tx = tx.clone();
            async move { tx.send(Ok(Bytes::from(bytes))).await.is_ok() }
        };
        let fail = |message: String| GatewayError::new(Kind::BadGateway, message);
        let mut splitter = sse::Splitter::default();
        let mut held = Vec::new();
        let halt = 'relay: {
            let mut finished = false;
            while !finished {
                // The next upstream chunk's events, or at the end what the splitter and the
                // adapter still hold.
                let data: Vec<String> = match upstream.next().await {
                    Some(Ok(chunk)) => match splitter.push(&chunk) {
                        Ok(events) => events.into_iter().map(|e| e.data).collect(),
                        Err(_) => {
                            break 'relay Some(Halt::Failed(fail(format!(
                                "upstream `{provider}` sent an oversized event"
                            ))));
                        }
                    },
                    Some(Err(e)) => {
                        break 'relay Some(Halt::Failed(fail(format!(
                            "upstream `{provider}` broke off the stream: {e}"
                        ))));
                    }
                    None => {
                        finished = true;
                        splitter.finish().map(|e| e.data).into_iter().collect()
                    }
                };
                let mut outs = Vec::new();
                for data in data.iter().filter(|d| !d.is_empty()) {
                    outs.extend(adapter.push(data));
                }
                if finished {
                    outs.extend(adapter.finish());
                }
                for out in outs {
                    if is_terminal(&out) {
                        held.push(out);
                        continue;
                    }
                    let outs = match through(&mut window, out) {
                        Ok(outs) => outs,
                        Err(error) => break 'relay Some(Halt::Failed(error)),
                    };
                    for out in outs {
                        if !send(out).await {
                            // The caller went away: stop reading from the upstream.
                            break 'relay Some(Halt::CallerGone);
                        }
                    }
                }
            }
            // The text still held is released only once the whole answer is allowed.
            let tail = match window.as_mut().map(Window::finish).transpose() {
                Ok(tail) => tail.unwrap_or_default(),
                Err(error) => break 'relay Some(Halt::Failed(error)),
            };
            let decided = decide(adapter.text(), adapter.usage(), adapter.tool_calls());
            if let Err(error) = decided.await {
                break 'relay Some(Halt::Decided(error));
            }
            // From here the answer is decided (and recorded): a caller who goes away
            // changes nothing.
            for event in tail {
                if !send(event).await {
                    break 'relay None;
                }
            }
            if !adapter.completed() {
                break 'relay Some(Halt::Decided(fail(format!(
                    "upstream `{provider}` ended the stream before it was complete"
                ))));
            }
            for out in held {
                if !send(out).await {
                    break 'relay None;
                }
            }
            None
        };
        match halt {
            Some(Halt::CallerGone) => end(&gone()),
            Some(Halt::Failed(error)) => {
                end(&error);
                let _ = send(error.stream_event(format)).await;
            }
            Some(Halt::Decided(error)) => {
                let _ = send(error.stream_event(format)).await;
            }
            None => {}
        }
    });
    axum::body::Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }))
}

#[cfg(test)]
mod tests;
