//! The A2A proxy: an agent calls another agent through Sluice, and every message it sends
//! and every answer it gets back is a decision — principal the calling agent (its API
//! key), resource the target agent (`Agent::"<name>"`), message parts inspected like a
//! prompt, answers like untrusted content.
//!
//! `GET /a2a/<agent>/.well-known/agent-card.json` serves the agent's card with its
//! interface URLs pointing at Sluice (interfaces Sluice cannot govern — gRPC, HTTP+JSON —
//! removed, so a client cannot go around it), after an `a2a.card` decision. `POST
//! /a2a/<agent>` takes JSON-RPC in both protocol generations: `SendMessage`,
//! `SendStreamingMessage`, `GetTask`, `CancelTask`, `SubscribeToTask` (1.0) and
//! `message/send`, `message/stream`, `tasks/get`, `tasks/cancel`, `tasks/resubscribe`
//! (0.3). Sends are decided (`a2a.send`) with their text parts, redactions rewrite them;
//! answers — whole, or event by event in a stream — are decided (`a2a.response`) before the
//! caller sees them. The A2A context id is the decision session unless the caller sends
//! `x-sluice-session`.
//!
//! A deny is a JSON-RPC error (-32050, HTTP 200 as A2A answers errors); in a stream it is
//! an `error` event that ends the stream.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sluice_engine::input::{Content, DecisionInput, Message, ResourceKind, Surface};

use super::jsonrpc::{
    RpcError, UPSTREAM_FAILED, allowed, decide, error_message, invalid_request, refused_early,
    reply, set_field, start_call,
};
use super::mcp::upstream::Credentials;
use super::sse::Splitter;
use super::{Call, Gateway, denial_message};
use crate::audit::CallFacts;
use crate::config::A2aAgentConfig;

/// Headers of the caller passed on to the agent (A2A's own).
const PASSED_HEADERS: [&str; 3] = ["a2a-version", "a2a-extensions", "x-a2a-extensions"];

/// One remote agent.
#[derive(Debug)]
pub struct RemoteAgent {
    name: String,
    url: String,
    credentials: Credentials,
    timeout: Duration,
    client: reqwest::Client,
    /// The agent's card as last fetched.
    card: Mutex<Option<Value>>,
}

/// The A2A proxy's agents.
#[derive(Debug, Default)]
pub struct A2a {
    agents: Vec<Arc<RemoteAgent>>,
}

impl A2a {
    /// The configured agents; fails when a token file cannot be read.
    pub fn new(configs: &[A2aAgentConfig]) -> anyhow::Result<A2a> {
        let agents = configs
            .iter()
            .map(|c| RemoteAgent::new(c).map(Arc::new))
            .collect::<anyhow::Result<_>>()?;
        Ok(A2a { agents })
    }

    fn agent(&self, name: &str) -> Option<&Arc<RemoteAgent>> {
        self.agents.iter().find(|a| a.name == name)
    }
}

impl RemoteAgent {
    fn new(config: &A2aAgentConfig) -> anyhow::Result<RemoteAgent> {
        let credentials = Credentials::new(
            &format!("A2A agent `{}`", config.name),
            config.token_file.as_deref(),
            config.principal_header.as_deref(),
        )?;
        Ok(RemoteAgent {
            name: config.name.clone(),
            url: config.url.trim_end_matches('/').to_string(),
            credentials,
            timeout: Duration::from_millis(config.timeout_ms),
            client: super::mcp::upstream::remote_client(&format!("A2A agent `{}`", config.name))?,
            card: Mutex::new(None),
        })
    }

    /// A request to the agent with Sluice's credentials and the caller's identity and A2A
    /// headers (never the caller's own credentials).
    fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        call: &Call,
        headers: &HeaderMap,
    ) -> reqwest::RequestBuilder {
        let mut request = self.client.request(method, url);
        for name in PASSED_HEADERS {
            if let Some(value) = headers.get(name) {
                request = request.header(name, value);
            }
        }
        self.credentials.apply(request, &call.principal)
    }

    /// The agent's card, fetched.
    async fn fetch_card(&self, call: &Call, headers: &HeaderMap) -> Result<Value, String> {
        let url = format!("{}/.well-known/agent-card.json", self.url);
        let response = tokio::time::timeout(
            self.timeout,
            self.request(reqwest::Method::GET, &url, call, headers)
                .send(),
        )
        .await
        .map_err(|_| {
            format!(
                "A2A agent `{}` did not answer within {} ms",
                self.name,
                self.timeout.as_millis()
            )
        })?
        .map_err(|e| format!("A2A agent `{}` is unreachable: {e}", self.name))?;
        if !response.status().is_success() {
            return Err(format!(
                "A2A agent `{}` answered its card request with HTTP {}",
                self.name,
                response.status()
            ));
        }
        let card: Value = response.json().await.map_err(|e| {
            format!(
                "A2A agent `{}` sent a card that is not JSON: {e}",
                self.name
            )
        })?;
        *self.card.lock().unwrap_or_else(PoisonError::into_inner) = Some(card.clone());
        Ok(card)
    }

    /// Where JSON-RPC calls of protocol `version` go: the card's JSON-RPC interface of that
    /// version (or its 0.3 `url`), else the configured URL.
    async fn rpc_url(&self, call: &Call, headers: &HeaderMap, version: &str) -> String {
        let cached = self
            .card
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let card = match cached {
            Some(card) => Some(card),
            None => self.fetch_card(call, headers).await.ok(),
        };
        let from_card = card.as_ref().and_then(|card| {
            let interfaces = card.get("supportedInterfaces").and_then(Value::as_array);
            let chosen = interfaces.into_iter().flatten().find(|i| {
                i.get("protocolBinding").and_then(Value::as_str) == Some("JSONRPC")
                    && i.get("protocolVersion")
                        .and_then(Value::as_str)
                        .is_some_and(|v| v.starts_with(version))
            });
            chosen
                .and_then(|i| i.get("url"))
                .or_else(|| card.get("url"))
                .and_then(Value::as_str)
                .map(str::to_string)
        });
        // The card is the agent's word: Sluice follows it only within the agent's own
        // origin, so a card cannot send Sluice (and the token it holds for the agent) to
        // another host.
        match from_card {
            Some(url) if same_origin(&url, &self.url) => url,
            Some(url) => {
                tracing::warn!(agent = %self.name, %url, "agent card names an interface on another origin; using the configured URL");
                self.url.clone()
            }
            None => self.url.clone(),
        }
    }
}

/// Whether two URLs share scheme, host and port (the port a scheme implies counts).
pub fn same_origin(a: &str, b: &str) -> bool {
    match (reqwest::Url::parse(a), reqwest::Url::parse(b)) {
        (Ok(a), Ok(b)) => {
            a.scheme() == b.scheme()
                && a.host_str() == b.host_str()
                && a.port_or_known_default() == b.port_or_known_default()
        }
        _ => false,
    }
}

/// The URL clients reach agent `name` at through Sluice.
fn public_url(gateway: &Gateway, headers: &HeaderMap, name: &str) -> String {
    let base = gateway.public_url.clone().unwrap_or_else(|| {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}")
    });
    format!("{}/a2a/{name}", base.trim_end_matches('/'))
}

/// The card with every interface pointing at `url`; interfaces other than JSON-RPC are
/// removed (Sluice governs JSON-RPC only).
pub fn rewrite_card(mut card: Value, url: &str) -> Value {
    // A2A 1.0 lists `supportedInterfaces` by `protocolBinding`, 0.3 lists
    // `additionalInterfaces` by `transport`.
    for (list, binding) in [
        ("supportedInterfaces", "protocolBinding"),
        ("additionalInterfaces", "transport"),
    ] {
        if let Some(interfaces) = card.get_mut(list).and_then(Value::as_array_mut) {
            interfaces.retain(|i| i.get(binding).and_then(Value::as_str) == Some("JSONRPC"));
            for interface in interfaces {
                set_field(interface, "url", json!(url));
            }
        }
    }
    if card.get("url").is_some() {
        set_field(&mut card, "url", json!(url));
    }
    if card.get("preferredTransport").is_some() {
        set_field(&mut card, "preferredTransport", json!("JSONRPC"));
    }
    card
}

/// `GET /a2a/<agent>/.well-known/agent-card.json`.
pub(super) async fn card(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let error = |status: StatusCode, message: String| {
        let body = json!({"error": {"message": message, "type": "a2a_error"}});
        reply(status, &body, None)
    };
    let Some(agent) = gateway.a2a.agent(&name) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no A2A agent `{name}` is configured"),
        );
    };
    let path = format!("/a2a/{name}/.well-known/agent-card.json");
    let call = match Call::start(&gateway, &headers, "GET", &path, Some(client)).await {
        Ok(call) => call,
        Err(e) => return error(e.kind.status(), e.message),
    };
    let input = agent_input(&call, &name, "a2a.card", Content::default());
    match decide(&gateway, &call, input, &CallFacts::default()).await {
        Ok((_, decision)) if decision.allow => {}
        Ok((_, decision)) => return error(StatusCode::FORBIDDEN, denial_message(&decision)),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, e.message),
    }
    match agent.fetch_card(&call, &headers).await {
        Ok(card) => {
            let card = rewrite_card(card, &public_url(&gateway, &headers, &name));
            reply(StatusCode::OK, &card, None)
        }
        Err(why) => error(StatusCode::BAD_GATEWAY, why),
    }
}

fn agent_input(call: &Call, agent: &str, action: &str, content: Content) -> DecisionInput {
    let mut input = call.input(Surface::A2a, action, agent, content);
    input.resource.kind = ResourceKind::Agent;
    input
}

/// The text parts of a list of parts (1.0 `{"text"}`, 0.3 `{"kind": "text", "text"}`);
/// data parts as their JSON text.
fn part_texts(parts: Option<&Value>) -> Vec<String> {
    parts
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|part| match (part.get("text"), part.get("data")) {
            (Some(Value::String(text)), _) => Some(text.clone()),
            (_, Some(data)) if part.get("kind").is_none_or(|k| k == "data") => {
                Some(data.to_string())
            }
            _ => None,
        })
        .collect()
}

/// Rewrites every text part of `parts`.
fn rewrite_parts(parts: Option<&mut Value>, apply: &dyn Fn(&str) -> String) {
    let Some(parts) = parts.and_then(Value::as_array_mut) else {
        return;
    };
    for part in parts {
        if let Some(Value::String(text)) = part.get_mut("text") {
            *text = apply(text);
        }
    }
}

/// The parts lists of what an agent answers: messages, a task's artifacts and status
/// message (not its history, which repeats what the caller sent), stream events.
fn answer_parts(result: &mut Value) -> Vec<&mut Value> {
    let mut found: Vec<&mut Value> = Vec::new();
    let Some(object) = result.as_object_mut() else {
        return found;
    };
    for (key, value) in object.iter_mut() {
        match key.as_str() {
            // 1.0 wrappers and the 0.3 bare objects alike.
            "task" | "message" | "statusUpdate" | "artifactUpdate" | "status" | "artifact"
            | "result" => found.extend(answer_parts(value)),
            "artifacts" => {
                for artifact in value.as_array_mut().into_iter().flatten() {
                    if let Some(parts) = artifact.get_mut("parts") {
                        found.push(parts);
                    }
                }
            }
            "parts" => found.push(value),
            _ => {}
        }
    }
    found
}

/// The parts of what is sent: `params.message.parts`.
fn sent_message(params: &mut Value) -> Option<&mut Value> {
    params.get_mut("message")
}

/// What kind of call a method is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// Sends a message, answered whole.
    Send,
    /// Sends a message, answered as a stream.
    SendStream,
    /// Reads or cancels a task, answered whole.
    Task,
    /// Subscribes to a task's stream.
    Subscribe,
    /// Anything else (push notification settings, extended cards): passed on.
    Other,
}

fn method_kind(method: &str) -> Method {
    match method {
        "SendMessage" | "message/send" => Method::Send,
        "SendStreamingMessage" | "message/stream" => Method::SendStream,
        "GetTask" | "tasks/get" | "CancelTask" | "tasks/cancel" | "ListTasks" | "tasks/list" => {
            Method::Task
        }
        "SubscribeToTask" | "tasks/resubscribe" => Method::Subscribe,
        _ => Method::Other,
    }
}

/// `POST /a2a/<agent>`.
pub(super) async fn rpc(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(name): Path<String>,
    request: Request,
) -> Response {
    let Some(agent) = gateway.a2a.agent(&name).cloned() else {
        let message = format!("no A2A agent `{name}` is configured");
        return refused_early(StatusCode::NOT_FOUND, message);
    };
    let path = format!("/a2a/{name}");
    let (mut call, headers, bytes) = match start_call(&gateway, request, &path, client).await {
        Ok(started) => started,
        Err(refused) => return refused,
    };
    let ok = |body: Value| reply(StatusCode::OK, &body, None);
    let mut message: Value = match serde_json::from_slice(&bytes) {
        Ok(message) => message,
        Err(e) => {
            return ok(error_message(
                &Value::Null,
                -32700,
                format!("Parse error: {e}"),
                None,
            ));
        }
    };
    if message.is_array() {
        let why = "Batch requests are not supported";
        return invalid_request(StatusCode::OK, &Value::Null, why, None);
    }
    let id = message.get("id").cloned().unwrap_or(Value::Null);
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    let (Some(method), true) = (method, message.get("jsonrpc") == Some(&json!("2.0"))) else {
        let why = "Invalid request: a JSON-RPC 2.0 request needs `jsonrpc: \"2.0\"` and a `method`";
        return invalid_request(StatusCode::OK, &id, why, None);
    };
    let kind = method_kind(&method);
    // The protocol generation picks the interface: 1.0 method names need `A2A-Version`.
    let version = if method.contains('/') { "0.3" } else { "1.0" };
    if matches!(kind, Method::Send | Method::SendStream) {
        let params = message.get_mut("params").and_then(sent_message);
        let Some(sent) = params else {
            return ok(error_message(
                &id,
                -32602,
                format!("{method} needs `params.message`"),
                None,
            ));
        };
        let context = sent
            .get("contextId")
            .and_then(Value::as_str)
            .map(str::to_string);
        if call.session.id.is_none()
            && let Some(context) = &context
            && let Err(error) = super::jsonrpc::open_session(&gateway, &mut call, context).await
        {
            return ok(error.message(&id));
        }
        let text = part_texts(sent.get("parts")).join("\n");
        let input = agent_input(
            &call,
            &name,
            "a2a.send",
            Content {
                messages: vec![Message {
                    role: "user".into(),
                    content: text,
                    tool_calls: Vec::new(),
                }],
                ..Content::default()
            },
        );
        let what = format!("message to agent `{name}` refused");
        match allowed(&gateway, &call, input, &what, &CallFacts::default()).await {
            Ok((_, apply)) => rewrite_parts(sent.get_mut("parts"), &apply),
            Err(error) => return ok(error.message(&id)),
        }
    }
    let url = agent.rpc_url(&call, &headers, version).await;
    let mut upstream = agent
        .request(reqwest::Method::POST, &url, &call, &headers)
        .header("content-type", "application/json")
        .body(message.to_string());
    let streams = matches!(kind, Method::SendStream | Method::Subscribe);
    if streams {
        upstream = upstream.header("accept", "text/event-stream");
    }
    let asked = Instant::now();
    let response = match tokio::time::timeout(agent.timeout, upstream.send()).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            return ok(error_message(
                &id,
                UPSTREAM_FAILED,
                format!("A2A agent `{name}` is unreachable: {e}"),
                None,
            ));
        }
        Err(_) => {
            return ok(error_message(
                &id,
                UPSTREAM_FAILED,
                format!(
                    "A2A agent `{name}` did not answer within {} ms",
                    agent.timeout.as_millis()
                ),
                None,
            ));
        }
    };
    let is_stream = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/event-stream"));
    match (is_stream, streams) {
        (true, true) => return stream_answer(gateway, call, name, id, response, asked),
        (true, false) => {
            return ok(error_message(
                &id,
                UPSTREAM_FAILED,
                format!(
                    "A2A agent `{name}` answered {method}, which does not stream, with an event stream"
                ),
                None,
            ));
        }
        _ => {}
    }
    let status = response.status();
    let body = match tokio::time::timeout(agent.timeout, response.bytes()).await {
        Ok(Ok(body)) => body,
        _ => {
            return ok(error_message(
                &id,
                UPSTREAM_FAILED,
                format!("A2A agent `{name}` broke off its answer"),
                None,
            ));
        }
    };
    let Ok(mut answer) = serde_json::from_slice::<Value>(&body) else {
        return ok(error_message(
            &id,
            UPSTREAM_FAILED,
            format!(
                "A2A agent `{name}` answered HTTP {status} with something that is not JSON-RPC"
            ),
            None,
        ));
    };
    if kind == Method::Other || answer.get("result").is_none() {
        return ok(answer);
    }
    let facts = answered(status, asked);
    match inspect_answer(&gateway, &call, &name, &mut answer, &facts).await {
        Ok(()) => ok(answer),
        Err(error) => ok(error.message(&id)),
    }
}

/// The audit facts of a decision on an agent's answer: the HTTP status it came with, and
/// the time from asking to the answer (to the event, in a stream).
fn answered(status: StatusCode, asked: Instant) -> CallFacts {
    CallFacts::answered(status.as_u16(), asked.elapsed().as_secs_f64() * 1e3)
}

/// Decides on what an agent answered (`a2a.response`) and applies the decision's
/// redactions in place; on a deny, the error to answer with instead.
async fn inspect_answer(
    gateway: &Gateway,
    call: &Call,
    agent: &str,
    answer: &mut Value,
    facts: &CallFacts,
) -> Result<(), RpcError> {
    let Some(result) = answer.get_mut("result") else {
        return Ok(());
    };
    let texts: Vec<String> = answer_parts(result)
        .into_iter()
        .flat_map(|parts| part_texts(Some(parts)))
        .collect();
    if texts.is_empty() {
        return Ok(());
    }
    let input = agent_input(
        call,
        agent,
        "a2a.response",
        Content {
            messages: vec![Message {
                role: "assistant".into(),
                content: texts.join("\n"),
                tool_calls: Vec::new(),
            }],
            ..Content::default()
        },
    );
    let what = format!("the answer of agent `{agent}` was withheld");
    let (_, apply) = allowed(gateway, call, input, &what, facts).await?;
    for parts in answer_parts(result) {
        rewrite_parts(Some(parts), &apply);
    }
    Ok(())
}

/// Passes a streamed answer on event by event, each decided before the caller sees it; a
/// denied event becomes an `error` event that ends the stream.
fn stream_answer(
    gateway: Arc<Gateway>,
    call: Call,
    agent: String,
    id: Value,
    response: reqwest::Response,
    asked: Instant,
) -> Response {
    let status = response.status();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut splitter = Splitter::default();
        let mut body = response.bytes_stream();
        let send = |bytes: Vec<u8>| {
            let sender = sender.clone();
            async move { sender.send(Ok(bytes::Bytes::from(bytes))).await.is_ok() }
        };
        let fail = |error: RpcError| {
            format!("event: error\r\ndata: {}\r\n\r\n", error.message(&id)).into_bytes()
        };
        while let Some(chunk) = body.next().await {
            let Ok(chunk) = chunk else {
                let why = format!("A2A agent `{agent}` broke off its stream");
                let _ = send(fail(RpcError::new(UPSTREAM_FAILED, why))).await;
                return;
            };
            let Ok(events) = splitter.push(&chunk) else {
                let why = "an event larger than 4 MiB";
                let _ = send(fail(RpcError::new(UPSTREAM_FAILED, why))).await;
                return;
            };
            for event in events {
                let Ok(mut message) = serde_json::from_str::<Value>(&event.data) else {
                    // Comments (pings) and anything else pass unchanged.
                    if !send(event.raw).await {
                        return;
                    }
                    continue;
                };
                let facts = answered(status, asked);
                match inspect_answer(&gateway, &call, &agent, &mut message, &facts).await {
                    Ok(()) => {
                        let bytes = format!("data: {message}\r\n\r\n").into_bytes();
                        if !send(bytes).await {
                            return;
                        }
                    }
                    Err(error) => {
                        let _ = send(fail(error)).await;
                        return;
                    }
                }
            }
        }
    });
    let stream = tokio_stream_from(receiver);
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// A receiver as a stream of body chunks.
fn tokio_stream_from(
    receiver: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, std::io::Error>>,
) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::io::Error>> {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|item| (item, receiver))
    })
}

#[cfg(test)]
mod tests;
