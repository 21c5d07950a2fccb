//! The MCP proxy: agents reach their MCP servers through Sluice (Streamable HTTP), and every
//! tool listing, tool call, tool result, resource read and server prompt is a decision on
//! the same decision input and policies as prompts.
//!
//! `/mcp` federates every configured server (tools named `<server>__<tool>`, prompts too);
//! `/mcp/<server>` serves one server with its own names. Sluice is the MCP server its
//! clients talk to — it answers `initialize` itself, keeps their sessions, and answers in
//! JSON — and an MCP client of the upstream servers ([`upstream`]).
//!
//! - `tools/list`: each server's listing is inspected for tool poisoning (and for
//!   descriptions changed since first seen) and decided (`mcp.tools.list`); a denied
//!   listing is an error on a server's own endpoint and is left out of the federated one.
//!   Tools the principal may not call are removed: each is checked as a call without
//!   arguments, and hidden when the policies refuse it outright (a refusal that depends on
//!   the arguments — a policy that fails to read them — keeps it listed).
//! - `tools/call`: decided with the arguments in the input (`mcp.tools.call`; Cedar's
//!   per-tool actions see them typed), redactions rewrite the arguments; the result is
//!   decided again (`mcp.tools.result`), as untrusted content, before the agent sees it.
//!   A server's requests of its client, while its tool runs or on its `GET` stream, are
//!   decided before the client gets them: sampling is a prompt the server wrote for the
//!   client's model (`mcp.sampling`, surface `prompt`), elicitation a question it asks the
//!   user (`mcp.elicitation`, surface `tool`).
//! - `resources/read` results are surface `retrieval` (`mcp.resources.read`), `prompts/get`
//!   results surface `tool` (`mcp.prompts.get`).
//!
//! A deny is a JSON-RPC error (code -32050) naming the policies' reasons; a malformed
//! message, a batch, an unknown method, an oversized body, a server that does not answer
//! or breaks off are JSON-RPC errors too, never a hang.

pub mod upstream;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use sluice_engine::input::{
    Content, DecisionInput, Document, Message, ResourceKind, Surface, ToolCall, ToolDescriptor,
    ToolPoisoning,
};
use sluice_engine::inspect::poisoning;

use super::error::{GatewayError, Kind};
use super::jsonrpc::{
    Rewrite, RpcError, UPSTREAM_FAILED, allowed, decide, error_message, invalid_request,
    refused_early, reply, set_field, start_call,
};
use super::{Call, Gateway};
use crate::audit::CallFacts;
use upstream::{Failure, McpUpstream, Relay};

/// Protocol versions Sluice speaks with MCP clients, newest first.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// Separates a server's name from its tool's (or prompt's) on the federated endpoint.
const SEPARATOR: &str = "__";

/// What the proxy knows of a tool.
#[derive(Debug, Clone)]
struct Known {
    /// The fingerprint of the description first seen.
    first: u64,
    /// The description last listed by this process (none for a tool known only from the
    /// state file, until it is listed again).
    latest: Option<ToolDescriptor>,
    /// The tool-poisoning signals a call of this tool carries (those of `latest` alone,
    /// then [`Mcp::flags`]), worked out at the first call after a listing rather than at
    /// every call.
    call_flags: Option<Vec<ToolPoisoning>>,
}

/// A tool as first seen, kept in `mcp_state_file` so a description changed while the
/// gateway was down is still caught.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirstSeen {
    /// The server.
    pub server: String,
    /// The tool's name on the server.
    pub tool: String,
    /// [`poisoning::fingerprint`] of its description and schema when first seen.
    pub fingerprint: u64,
}

/// A client's session with Sluice.
#[derive(Debug)]
struct ClientSession {
    key_id: String,
    seen: Instant,
}

/// The MCP proxy's state.
#[derive(Debug)]
pub struct Mcp {
    servers: Vec<Arc<McpUpstream>>,
    sessions: Mutex<HashMap<String, ClientSession>>,
    idle: Duration,
    max_sessions: usize,
    /// Each tool by (server, tool).
    tools: Mutex<HashMap<(String, String), Known>>,
    /// The server of each resource URI a federated listing showed.
    resources: Mutex<HashMap<String, String>>,
    /// Where the tools first seen are kept across restarts.
    state_file: std::path::PathBuf,
    /// Elicitations relayed to clients and not yet answered, by (client session, server,
    /// request id), with when each was relayed: the user's answer is decided too.
    elicited: Mutex<HashMap<(String, String, String), Instant>>,
}

/// How long a relayed elicitation waits for the user's answer to be decided; an answer
/// later than that passes as an answer to a request Sluice did not see.
const ELICITATION_KEPT: Duration = Duration::from_secs(3600);

/// Elicitations awaiting an answer, at most (the oldest are forgotten first).
const ELICITATIONS_KEPT: usize = 10_000;

impl Mcp {
    /// The proxy for the configured servers.
    pub fn new(config: &crate::config::Config) -> anyhow::Result<Mcp> {
        let seen: Vec<FirstSeen> = if config.mcp_servers.is_empty() {
            Vec::new()
        } else {
            crate::state_file::load(&config.mcp_state_file, "MCP tool state")?
        };
        let tools = seen
            .into_iter()
            .map(|s| {
                let known = Known {
                    first: s.fingerprint,
                    latest: None,
                    call_flags: None,
                };
                ((s.server, s.tool), known)
            })
            .collect();
        Ok(Mcp {
            servers: config
                .mcp_servers
                .iter()
                .map(|s| McpUpstream::new(s).map(Arc::new))
                .collect::<anyhow::Result<_>>()?,
            sessions: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(config.sessions.idle_minutes.saturating_mul(60)),
            max_sessions: config.sessions.max_sessions.max(1),
            tools: Mutex::new(tools),
            resources: Mutex::new(HashMap::new()),
            state_file: config.mcp_state_file.clone(),
            elicited: Mutex::new(HashMap::new()),
        })
    }

    fn server(&self, name: &str) -> Option<&Arc<McpUpstream>> {
        self.servers.iter().find(|s| s.name == name)
    }

    /// Opens a client session for `key_id`; its id.
    fn open(&self, key_id: &str) -> String {
        let id = super::next_id("mcp");
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        let mut ended: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| now.duration_since(s.seen) > self.idle)
            .map(|(id, _)| id.clone())
            .collect();
        if sessions.len() - ended.len() >= self.max_sessions
            && let Some(oldest) = sessions
                .iter()
                .filter(|(id, _)| !ended.contains(id))
                .min_by_key(|(_, s)| s.seen)
                .map(|(id, _)| id.clone())
        {
            ended.push(oldest);
        }
        for id in &ended {
            sessions.remove(id);
            for server in &self.servers {
                server.forget(id);
            }
        }
        sessions.insert(
            id.clone(),
            ClientSession {
                key_id: key_id.to_string(),
                seen: now,
            },
        );
        id
    }

    /// Whether session `id` is open for `key_id` (a session of another key is unknown).
    fn touch(&self, id: &str, key_id: &str) -> bool {
        let now = Instant::now();
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        match sessions.get_mut(id) {
            Some(s) if s.key_id == key_id && now.duration_since(s.seen) <= self.idle => {
                s.seen = now;
                true
            }
            _ => false,
        }
    }

    fn close(&self, id: &str, key_id: &str) -> bool {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions.get(id).is_some_and(|s| s.key_id == key_id) {
            sessions.remove(id);
            for server in &self.servers {
                server.forget(id);
            }
            true
        } else {
            false
        }
    }

    /// Records that `server`'s elicitation `id` reached the user of client session `session`.
    fn elicit(&self, session: &str, server: &str, id: &Value) {
        let now = Instant::now();
        let mut elicited = self.elicited.lock().unwrap_or_else(PoisonError::into_inner);
        if elicited.len() >= ELICITATIONS_KEPT {
            elicited.retain(|_, asked| now.duration_since(*asked) < ELICITATION_KEPT);
            if elicited.len() >= ELICITATIONS_KEPT
                && let Some(oldest) = elicited
                    .iter()
                    .min_by_key(|(_, a)| **a)
                    .map(|(k, _)| k.clone())
            {
                elicited.remove(&oldest);
            }
        }
        let key = (session.to_string(), server.to_string(), id.to_string());
        elicited.insert(key, now);
    }

    /// Whether `id` answers an elicitation of `server` relayed in client session `session`
    /// (forgotten once answered).
    fn answers_elicitation(&self, session: &str, server: &str, id: &Value) -> bool {
        let key = (session.to_string(), server.to_string(), id.to_string());
        let mut elicited = self.elicited.lock().unwrap_or_else(PoisonError::into_inner);
        elicited
            .remove(&key)
            .is_some_and(|asked| asked.elapsed() < ELICITATION_KEPT)
    }

    /// Records a listing of `server`: each tool's latest description, and its first
    /// fingerprint if new (saved to the state file).
    fn remember(&self, server: &str, tools: &[ToolDescriptor]) {
        let mut known = self.tools.lock().unwrap_or_else(PoisonError::into_inner);
        let mut new = false;
        let mut changed = false;
        for tool in tools {
            let entry = known
                .entry((server.to_string(), tool.name.clone()))
                .or_insert_with(|| {
                    new = true;
                    Known {
                        first: poisoning::fingerprint(tool),
                        latest: None,
                        call_flags: None,
                    }
                });
            if entry.latest.as_ref() != Some(tool) {
                changed = true;
                entry.latest = Some(tool.clone());
            }
        }
        if changed {
            // Shadowing judges a tool against every other server's: any change counts.
            for entry in known.values_mut() {
                entry.call_flags = None;
            }
        }
        if new {
            let mut seen: Vec<FirstSeen> = known
                .iter()
                .map(|((server, tool), k)| FirstSeen {
                    server: server.clone(),
                    tool: tool.clone(),
                    fingerprint: k.first,
                })
                .collect();
            seen.sort_by(|a, b| (&a.server, &a.tool).cmp(&(&b.server, &b.tool)));
            drop(known);
            // Rare (a tool seen for the first time) and small: written on the spot. A
            // failure is logged; the tools stay known to this process.
            if let Err(error) = crate::state_file::save(&self.state_file, &seen, "MCP tool state") {
                tracing::error!(error = %format!("{error:#}"), "cannot save the MCP tools first seen");
            }
        }
    }

    /// The signals about `tools` of `server` that the tools alone cannot show: a
    /// description changed since it was first seen, and shadowing of other servers' tools
    /// (as last listed).
    fn flags(&self, server: &str, tools: &[ToolDescriptor]) -> Vec<ToolPoisoning> {
        let known = self.tools.lock().unwrap_or_else(PoisonError::into_inner);
        flags_of(&known, server, tools)
    }

    /// A tool's latest description, once this process has listed it, with the
    /// tool-poisoning signals a call of it carries.
    fn known(&self, server: &str, tool: &str) -> Option<(ToolDescriptor, Vec<ToolPoisoning>)> {
        let mut known = self.tools.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (server.to_string(), tool.to_string());
        let entry = known.get(&key)?;
        let latest = entry.latest.clone()?;
        if let Some(flags) = &entry.call_flags {
            return Some((latest, flags.clone()));
        }
        // What inspecting an input holding only this descriptor finds (`scan` gives each
        // signal once), then what the other tools show.
        let mut flags = poisoning::scan(std::slice::from_ref(&latest));
        flags.extend(flags_of(&known, server, std::slice::from_ref(&latest)));
        if let Some(entry) = known.get_mut(&key) {
            entry.call_flags = Some(flags.clone());
        }
        Some((latest, flags))
    }
}

/// [`Mcp::flags`], under its lock.
fn flags_of(
    known: &HashMap<(String, String), Known>,
    server: &str,
    tools: &[ToolDescriptor],
) -> Vec<ToolPoisoning> {
    let mut flags: Vec<ToolPoisoning> = tools
        .iter()
        .filter(|tool| {
            known
                .get(&(server.to_string(), tool.name.clone()))
                .is_some_and(|k| k.first != poisoning::fingerprint(tool))
        })
        .map(|tool| ToolPoisoning {
            tool: tool.name.clone(),
            signal: poisoning::CHANGED_DESCRIPTION.to_string(),
        })
        .collect();
    // Judged under the lock, against references: a call's check copies no listing.
    let others: Vec<&ToolDescriptor> = known
        .iter()
        .filter(|((owner, _), _)| owner != server)
        .filter_map(|(_, k)| k.latest.as_ref())
        .collect();
    flags.extend(
        poisoning::scan_against(tools, &others)
            .into_iter()
            .filter(|p| p.signal == poisoning::SHADOWING),
    );
    flags
}

/// The client session a call belongs to, which picks its sessions with the servers.
fn client_of(call: &Call) -> &str {
    call.protocol_session.as_deref().unwrap_or_default()
}

/// `POST /mcp`: every server.
pub(super) async fn federated(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    handle(gateway, client, None, request).await
}

/// `POST /mcp/<server>`: one server.
pub(super) async fn single(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(server): Path<String>,
    request: Request,
) -> Response {
    handle(gateway, client, Some(server), request).await
}

/// `GET /mcp`: the federated endpoint offers no server-to-client stream.
pub(super) async fn no_stream() -> Response {
    let mut response = invalid_request(
        StatusCode::METHOD_NOT_ALLOWED,
        &Value::Null,
        "no server-to-client stream here: send requests with POST (each server's own endpoint, /mcp/<server>, passes the server's stream through)",
        None,
    );
    response.headers_mut().insert(
        header::ALLOW,
        header::HeaderValue::from_static("POST, DELETE"),
    );
    response
}

/// `GET /mcp/<server>`: the server's own stream of messages to the client (notifications,
/// its requests such as sampling), in the client's session; 405 when the server offers
/// none. Its sampling and elicitation requests are decided like those sent while a tool
/// runs ([`Listener`]); everything else passes as the server sent it.
pub(super) async fn listen(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    Path(server): Path<String>,
    headers: HeaderMap,
) -> Response {
    let error =
        |status: StatusCode, message: String| invalid_request(status, &Value::Null, message, None);
    let Some(upstream) = gateway.mcp.server(&server) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no MCP server `{server}` is configured"),
        );
    };
    let principal = match gateway.keys.authenticate(&headers) {
        Ok(principal) => principal.clone(),
        Err(e) => return error(StatusCode::UNAUTHORIZED, e.message().to_string()),
    };
    let Some(session) = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()) else {
        return error(StatusCode::BAD_REQUEST, "Missing mcp-session-id".into());
    };
    if !gateway.mcp.touch(session, &principal.key_id) {
        return error(StatusCode::NOT_FOUND, "Session not found".into());
    }
    let last = headers.get("last-event-id").and_then(|v| v.to_str().ok());
    match upstream.listen(&principal, session, last).await {
        Ok(Some(stream)) => {
            let session = session.to_string();
            let listener = Listener {
                gateway: Arc::clone(&gateway),
                server: Arc::clone(upstream),
                path: format!("/mcp/{server}"),
                headers,
                client,
                principal,
                session: session.clone(),
            };
            Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, "text/event-stream")
                .header(header::CACHE_CONTROL, "no-cache")
                .header("mcp-session-id", session)
                .body(Body::from_stream(listener.govern(stream)))
                .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
        }
        Ok(None) => no_stream().await,
        Err(failure) => {
            let failed = failure_error(upstream, failure);
            reply(
                StatusCode::BAD_GATEWAY,
                &error_message(&Value::Null, failed.code, failed.message, failed.data),
                Some(session),
            )
        }
    }
}

/// A client's `GET` stream from one server: the server's requests on it ([`gate_request`]) are
/// decided, each as a call of its own in the client's session (the session's flags as they
/// are when the request comes, the key checked again), before the client sees them.
struct Listener {
    gateway: Arc<Gateway>,
    server: Arc<McpUpstream>,
    path: String,
    headers: HeaderMap,
    client: SocketAddr,
    principal: sluice_engine::input::Principal,
    session: String,
}

impl Listener {
    /// The client's stream: the server's events, whole and in order, each passed on once it
    /// is decided. Reading stops when either side goes away.
    fn govern(
        self,
        response: reqwest::Response,
    ) -> impl futures_util::Stream<Item = Result<bytes::Bytes, std::convert::Infallible>> + use<>
    {
        use futures_util::StreamExt;
        let (to_client, from_server) = tokio::sync::mpsc::channel(RELAYED_MESSAGES);
        tokio::spawn(async move {
            let mut splitter = super::sse::Splitter::default();
            let mut body = response.bytes_stream();
            loop {
                let chunk = tokio::select! {
                    chunk = body.next() => chunk,
                    () = to_client.closed() => return,
                };
                let Some(Ok(chunk)) = chunk else { break };
                let Ok(events) = splitter.push(&chunk) else {
                    tracing::warn!(server = %self.server.name, "MCP server sent an event over 4 MiB on its stream; stream ended");
                    return;
                };
                for event in events {
                    let passed = self.pass(event).await;
                    if !passed.is_empty()
                        && to_client.send(bytes::Bytes::from(passed)).await.is_err()
                    {
                        return;
                    }
                }
            }
            if let Some(tail) = splitter.finish() {
                let _ = to_client.send(bytes::Bytes::from(tail.raw)).await;
            }
        });
        futures_util::stream::unfold(from_server, |mut from_server| async move {
            let event = from_server.recv().await?;
            Some((Ok(event), from_server))
        })
    }

    /// What the client gets of `event`: the event as it came, a governed request as decided,
    /// or, for a refused one, only its place in the stream (the server gets the refusal).
    async fn pass(&self, event: super::sse::Event) -> Vec<u8> {
        let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
            return event.raw;
        };
        let Some(id) = message
            .get("id")
            .cloned()
            .filter(|_| is_governed_request(&message))
        else {
            return event.raw;
        };
        let decided = match self.call().await {
            Ok(call) => gate_request(&self.gateway, &call, &self.server, message.clone()).await,
            Err(error) => Err(error),
        };
        match decided {
            Ok(decided) if decided == message => event.raw,
            Ok(decided) => super::sse::with_data(&event.raw, Some(&decided.to_string())),
            Err(error) => {
                let refusal = error.message(&id);
                if let Err(failure) = self
                    .server
                    .notify(&self.principal, &self.session, &refusal)
                    .await
                {
                    tracing::warn!(server = %self.server.name, ?failure, "refusal of a request not delivered to its server");
                }
                super::sse::with_data(&event.raw, None)
            }
        }
    }

    /// A call for one decision in the client's session, as it stands now.
    async fn call(&self) -> Result<Call, RpcError> {
        if !self
            .gateway
            .mcp
            .touch(&self.session, &self.principal.key_id)
        {
            return Err(RpcError::new(-32600, "the client's session has ended"));
        }
        let mut call = Call::start(
            &self.gateway,
            &self.headers,
            "GET",
            &self.path,
            Some(self.client),
        )
        .await
        .map_err(RpcError::from_gateway)?;
        call.protocol_session = Some(self.session.clone());
        if call.session.id.is_none() {
            super::jsonrpc::open_session(&self.gateway, &mut call, &self.session).await?;
        }
        Ok(call)
    }
}

/// `DELETE /mcp[/<server>]`: ends the caller's session.
pub(super) async fn end(State(gateway): State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    let key = match gateway.keys.authenticate(&headers) {
        Ok(principal) => principal.key_id.clone(),
        Err(e) => {
            return invalid_request(StatusCode::UNAUTHORIZED, &Value::Null, e.message(), None);
        }
    };
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
    match session {
        Some(id) if gateway.mcp.close(id, &key) => StatusCode::OK.into_response(),
        Some(_) => invalid_request(
            StatusCode::NOT_FOUND,
            &Value::Null,
            "Session not found",
            None,
        ),
        None => invalid_request(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            "Missing mcp-session-id",
            None,
        ),
    }
}

/// Which servers a request reaches.
#[derive(Debug, Clone, Copy)]
enum Scope<'a> {
    /// Every server, names prefixed.
    All,
    /// One server, its own names.
    One(&'a Arc<McpUpstream>),
}

async fn handle(
    shared: Arc<Gateway>,
    client: SocketAddr,
    server: Option<String>,
    request: Request,
) -> Response {
    let gateway: &Gateway = &shared;
    let mcp = &gateway.mcp;
    let scope = match &server {
        None => Scope::All,
        Some(name) => match mcp.server(name) {
            Some(server) => Scope::One(server),
            None => {
                let message = format!("no MCP server `{name}` is configured");
                return refused_early(StatusCode::NOT_FOUND, message);
            }
        },
    };
    let path = request.uri().path().to_string();
    let (mut call, headers, bytes) = match start_call(gateway, request, &path, client).await {
        Ok(started) => started,
        Err(refused) => return refused,
    };
    // Checked once the body is read, so the connection stays usable for the client's
    // fallback to a version Sluice speaks.
    if let Some(version) = headers
        .get("mcp-protocol-version")
        .and_then(|v| v.to_str().ok())
        && !SUPPORTED_VERSIONS.contains(&version)
    {
        return reply(
            StatusCode::BAD_REQUEST,
            &error_message(
                &Value::Null,
                -32022,
                "Unsupported protocol version",
                Some(json!({"supported": SUPPORTED_VERSIONS, "requested": version})),
            ),
            None,
        );
    }

    let message: Value = match serde_json::from_slice(&bytes) {
        Ok(message) => message,
        Err(e) => {
            return reply(
                StatusCode::BAD_REQUEST,
                &error_message(&Value::Null, -32700, format!("Parse error: {e}"), None),
                None,
            );
        }
    };
    if message.is_array() {
        return invalid_request(
            StatusCode::BAD_REQUEST,
            &Value::Null,
            "batch requests are not supported: send one JSON-RPC message per request",
            None,
        );
    }
    let method = message.get("method").and_then(Value::as_str);
    let id = message.get("id").cloned();
    let valid = message.get("jsonrpc") == Some(&json!("2.0"))
        && id
            .as_ref()
            .is_none_or(|id| id.is_string() || id.is_i64() || id.is_u64());
    let answer_to_server = valid
        && method.is_none()
        && id.is_some()
        && (message.get("result").is_some() || message.get("error").is_some());
    let Some(method) = method.filter(|_| valid).or(answer_to_server.then_some("")) else {
        return invalid_request(
            StatusCode::BAD_REQUEST,
            id.as_ref().unwrap_or(&Value::Null),
            "Invalid request: a JSON-RPC 2.0 message needs `jsonrpc: \"2.0\"`, a `method` and a string or integer `id`",
            None,
        );
    };
    let params = message.get("params").cloned().unwrap_or(Value::Null);

    if method == "initialize" {
        let Some(id) = id else {
            return invalid_request(
                StatusCode::BAD_REQUEST,
                &Value::Null,
                "initialize is a request: it needs an id",
                None,
            );
        };
        return initialize(gateway, &call, scope, &id, &params);
    }
    // Every other message belongs to a session.
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok());
    let Some(session) = session else {
        return invalid_request(
            StatusCode::BAD_REQUEST,
            id.as_ref().unwrap_or(&Value::Null),
            "Bad Request: Missing session ID (send initialize first)",
            None,
        );
    };
    if !mcp.touch(session, &call.principal.key_id) {
        return invalid_request(
            StatusCode::NOT_FOUND,
            id.as_ref().unwrap_or(&Value::Null),
            "Session not found",
            None,
        );
    }
    call.protocol_session = Some(session.to_string());
    if answer_to_server {
        // The client's answer to a request a server sent on its stream (sampling,
        // elicitation): back to that server, the user's answer to an elicitation decided
        // first. On the federated endpoint no server stream reaches the client, so there is
        // nothing to answer.
        let Scope::One(server) = scope else {
            return StatusCode::ACCEPTED.into_response();
        };
        let mut message = message;
        if let Some(id) = id.as_ref()
            && mcp.answers_elicitation(session, &server.name, id)
        {
            message = match gate_answer(gateway, &mut call, server, session, message).await {
                Ok(message) => message,
                Err(error) => error.message(id),
            };
        }
        if let Err(failure) = server.notify(&call.principal, session, &message).await {
            let error = failure_error(server, failure);
            return reply(
                StatusCode::BAD_GATEWAY,
                &error_message(&Value::Null, error.code, error.message, error.data),
                Some(session),
            );
        }
        return StatusCode::ACCEPTED.into_response();
    }
    let Some(id) = id else {
        // Notifications (initialized, cancelled, progress) need no answer.
        return StatusCode::ACCEPTED.into_response();
    };
    // The MCP session is the decision session unless the caller names one
    // (`x-sluice-session`) to tie its MCP calls to its other surfaces.
    if call.session.id.is_none()
        && let Err(error) = super::jsonrpc::open_session(gateway, &mut call, session).await
    {
        return reply(StatusCode::OK, &error.message(&id), Some(session));
    }
    if method == "tools/call" && accepts_stream(&headers) {
        let session = session.to_string();
        return relayed_call(Arc::clone(&shared), call, server, params, id, session).await;
    }
    let outcome = match method {
        "ping" => Ok(json!({})),
        "tools/list" => list_tools(gateway, &call, scope).await,
        "tools/call" => call_tool(gateway, &call, scope, &params, None).await,
        "resources/list" => {
            list_resources(gateway, &call, scope, "resources/list", "resources").await
        }
        "resources/templates/list" => {
            list_resources(
                gateway,
                &call,
                scope,
                "resources/templates/list",
                "resourceTemplates",
            )
            .await
        }
        "resources/read" => read_resource(gateway, &call, scope, &params).await,
        "prompts/list" => list_prompts(gateway, &call, scope).await,
        "prompts/get" => get_prompt(gateway, &call, scope, &params).await,
        other => match scope {
            // One server: what Sluice does not govern (completion, logging levels) passes.
            Scope::One(server) => server
                .request(&call.principal, client_of(&call), other, params)
                .await
                .map(|answered| answered.result)
                .map_err(|f| failure_error(server, f)),
            Scope::All => Err(RpcError::new(-32601, format!("Method not found: {other}"))),
        },
    };
    let answer = match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(error) => error_message(&id, error.code, error.message, error.data),
    };
    reply(StatusCode::OK, &answer, Some(session))
}

/// Messages a server sent while its tool runs that wait for a slow client at most; more
/// progress and log messages are dropped.
const RELAYED_MESSAGES: usize = 64;

/// Whether the client takes an event stream as the answer to its POST.
fn accepts_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("text/event-stream"))
}

/// `tools/call` for a client that takes an event stream: what the server sends while the
/// tool runs (progress, log messages, and on a server's own endpoint its requests, such as
/// elicitation, whose answers the client POSTs back) reaches the client as it comes, then
/// the decided result. A call nothing is sent for is answered with plain JSON, like every
/// other request. Once streaming, the call runs to its end (decided and audited) even if
/// the client leaves.
async fn relayed_call(
    gateway: Arc<Gateway>,
    call: Call,
    server: Option<String>,
    params: Value,
    id: Value,
    session: String,
) -> Response {
    let (to_client, mut from_server) = tokio::sync::mpsc::channel::<Value>(RELAYED_MESSAGES);
    let relay = Relay {
        to_client: to_client.clone(),
        requests: server.is_some(),
        gate: None,
    };
    let answer_id = id;
    // The call owns what it uses, so that it can move to a task of its own if it has to
    // outlive this handler.
    let mut work = Box::pin(async move {
        let scope = match &server {
            None => Some(Scope::All),
            Some(name) => gateway.mcp.server(name).map(Scope::One),
        };
        let outcome = match scope {
            Some(scope) => call_tool(&gateway, &call, scope, &params, Some(&relay)).await,
            None => Err(RpcError::new(-32602, "no such MCP server")),
        };
        match outcome {
            Ok(result) => json!({"jsonrpc": "2.0", "id": answer_id, "result": result}),
            Err(error) => error_message(&answer_id, error.code, error.message, error.data),
        }
    });
    // Most calls send nothing before their answer: they are answered in JSON, here. The
    // first message sent before the answer turns the answer into an event stream, fed by
    // the call carrying on in a task of its own.
    let first = tokio::select! {
        // A message sent before the answer goes first, as the server sent it.
        biased;
        Some(first) = from_server.recv() => first,
        answer = &mut work => return reply(StatusCode::OK, &answer, Some(&session)),
    };
    tokio::spawn(async move {
        let answer = work.await;
        let _ = to_client.send(answer).await;
    });
    // Relayed messages all have a method; the call's own answer has none.
    let is_answer = |message: &Value| message.get("method").is_none();
    let frames = futures_util::stream::unfold(
        (Some(first), from_server, false),
        move |(pending, mut from_server, done)| async move {
            if done {
                return None;
            }
            let message = match pending {
                Some(message) => message,
                None => from_server.recv().await?,
            };
            let done = is_answer(&message);
            let frame = format!("event: message\ndata: {message}\n\n");
            Some((
                Ok::<_, std::convert::Infallible>(bytes::Bytes::from(frame)),
                (None, from_server, done),
            ))
        },
    );
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("mcp-session-id", session)
        .body(Body::from_stream(frames))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// An upstream failure as the error the client gets: the server's own JSON-RPC error as
/// is, a transport failure as [`UPSTREAM_FAILED`].
fn failure_error(server: &McpUpstream, failure: Failure) -> RpcError {
    match failure {
        Failure::Error(error) => RpcError {
            code: error.get("code").and_then(Value::as_i64).unwrap_or(-32603),
            message: error
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("the MCP server failed")
                .to_string(),
            data: error.get("data").cloned(),
        },
        Failure::Transport(why) => RpcError {
            code: UPSTREAM_FAILED,
            message: why,
            data: Some(json!({"server": server.name})),
        },
    }
}

fn initialize(
    gateway: &Gateway,
    call: &Call,
    scope: Scope<'_>,
    id: &Value,
    params: &Value,
) -> Response {
    let asked = params.get("protocolVersion").and_then(Value::as_str);
    let version = asked
        .filter(|v| SUPPORTED_VERSIONS.contains(v))
        .unwrap_or(SUPPORTED_VERSIONS[0]);
    let session = gateway.mcp.open(&call.principal.key_id);
    let name = match scope {
        Scope::All => "sluice".to_string(),
        Scope::One(server) => format!("sluice/{}", server.name),
    };
    let result = json!({
        "protocolVersion": version,
        "capabilities": {
            "tools": {"listChanged": false},
            "resources": {"listChanged": false, "subscribe": false},
            "prompts": {"listChanged": false},
        },
        "serverInfo": {"name": name, "version": env!("CARGO_PKG_VERSION")},
        "instructions": "Tools, resources and prompts of MCP servers, governed by Sluice.",
    });
    reply(
        StatusCode::OK,
        &json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Some(&session),
    )
}

/// The servers of a scope.
fn servers<'a>(gateway: &'a Gateway, scope: Scope<'a>) -> Vec<&'a Arc<McpUpstream>> {
    match scope {
        Scope::All => gateway.mcp.servers.iter().collect(),
        Scope::One(server) => vec![server],
    }
}

/// The name a client sees for `name` of `server`.
fn exposed(scope: Scope<'_>, server: &str, name: &str) -> String {
    match scope {
        Scope::All => format!("{server}{SEPARATOR}{name}"),
        Scope::One(_) => name.to_string(),
    }
}

/// The server and upstream name of a name a client sent.
fn resolve<'a>(
    gateway: &'a Gateway,
    scope: Scope<'a>,
    name: &str,
) -> Result<(&'a Arc<McpUpstream>, String), RpcError> {
    match scope {
        Scope::One(server) => Ok((server, name.to_string())),
        Scope::All => {
            let unknown = || {
                RpcError::invalid_params(format!(
                    "unknown name `{name}`: on the federated endpoint names are <server>{SEPARATOR}<name>"
                ))
            };
            let (server, rest) = name.split_once(SEPARATOR).ok_or_else(unknown)?;
            let server = gateway.mcp.server(server).ok_or_else(unknown)?;
            Ok((server, rest.to_string()))
        }
    }
}

/// The input of a decision on `server`'s content.
fn input_for(
    call: &Call,
    surface: Surface,
    action: &str,
    kind: ResourceKind,
    id: &str,
    server: &str,
    content: Content,
) -> DecisionInput {
    let mut input = call.input(surface, action, id, content);
    input.resource.kind = kind;
    input.resource.server = Some(server.to_string());
    input
}

/// The descriptors of a `tools/list` result.
fn descriptors(server: &str, result: &Value) -> Vec<(ToolDescriptor, Value)> {
    result
        .get("tools")
        .and_then(Value::as_array)
        .map(|tools| {
            tools
                .iter()
                .filter_map(|tool| {
                    let name = tool.get("name")?.as_str()?.to_string();
                    Some((
                        ToolDescriptor {
                            name,
                            server: Some(server.to_string()),
                            description: tool
                                .get("description")
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_string(),
                            input_schema: tool.get("inputSchema").cloned().unwrap_or(Value::Null),
                        },
                        tool.clone(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A server's tools as it lists them (descriptor and the tool as sent), remembered, and
/// the audit facts of its answer.
async fn fetch_tools(
    gateway: &Gateway,
    call: &Call,
    server: &McpUpstream,
) -> Result<(Vec<(ToolDescriptor, Value)>, CallFacts), RpcError> {
    let answered = server
        .request(&call.principal, client_of(call), "tools/list", json!({}))
        .await
        .map_err(|f| failure_error(server, f))?;
    let tools = descriptors(&server.name, &answered.result);
    let listed: Vec<ToolDescriptor> = tools.iter().map(|(d, _)| d.clone()).collect();
    gateway.mcp.remember(&server.name, &listed);
    Ok((tools, answered.facts()))
}

/// One server's tools, listed, inspected and decided: the tools the principal may see, or
/// why the listing was refused.
async fn server_tools(
    gateway: &Gateway,
    call: &Call,
    server: &McpUpstream,
) -> Result<Vec<(ToolDescriptor, Value)>, RpcError> {
    let (tools, facts) = fetch_tools(gateway, call, server).await?;
    let listed: Vec<ToolDescriptor> = tools.iter().map(|(d, _)| d.clone()).collect();
    let flagged = gateway.mcp.flags(&server.name, &listed);
    let mut input = input_for(
        call,
        Surface::Tool,
        "mcp.tools.list",
        ResourceKind::McpServer,
        &server.name,
        &server.name,
        Content {
            tools: listed,
            ..Content::default()
        },
    );
    input.findings.tool_poisoning.extend(flagged);
    let (_, decision) = decide(gateway, call, input, &facts).await?;
    if !decision.allow {
        return Err(RpcError::denied(
            &format!("tool listing of MCP server `{}` refused", server.name),
            &decision,
        ));
    }
    Ok(tools
        .into_iter()
        .filter(|(tool, _)| may_call(call, &server.name, tool))
        .collect())
}

/// Whether the principal may call `tool` at all: a call without arguments that the
/// policies refuse outright (no evaluation error, which would mean the answer depends on
/// the arguments) hides the tool.
fn may_call(call: &Call, server: &str, tool: &ToolDescriptor) -> bool {
    let input = input_for(
        call,
        Surface::Tool,
        "mcp.tools.call",
        ResourceKind::Tool,
        &format!("{server}.{}", tool.name),
        server,
        Content {
            tool: Some(ToolCall {
                name: tool.name.clone(),
                server: Some(server.to_string()),
                arguments: json!({}),
            }),
            tools: vec![tool.clone()],
            ..Content::default()
        },
    );
    let decision = call.policies.evaluate(&input);
    decision.allow
        || decision
            .reasons
            .iter()
            .any(|r| r.effect == sluice_engine::Effect::Error)
}

async fn list_tools(gateway: &Gateway, call: &Call, scope: Scope<'_>) -> Result<Value, RpcError> {
    let mut out = Vec::new();
    for server in servers(gateway, scope) {
        match server_tools(gateway, call, server).await {
            Ok(tools) => {
                for (tool, mut raw) in tools {
                    set_field(
                        &mut raw,
                        "name",
                        json!(exposed(scope, &server.name, &tool.name)),
                    );
                    out.push(raw);
                }
            }
            Err(error) => match scope {
                Scope::One(_) => return Err(error),
                // A server whose listing was refused, or that failed, is left out of the
                // federation; the others still serve.
                Scope::All => tracing::warn!(
                    server = %server.name,
                    error = %error.message,
                    "MCP server left out of the federated tool listing"
                ),
            },
        }
    }
    Ok(json!({"tools": out}))
}

/// The content blocks of a `content` field: a list of them (a tool result, a resource, a
/// sampling message since 2025-11-25), or one block on its own (a prompt's message, a
/// sampling message before).
fn blocks(content: Option<&Value>) -> &[Value] {
    match content {
        Some(Value::Array(items)) => items,
        Some(block @ Value::Object(_)) => std::slice::from_ref(block),
        _ => &[],
    }
}

/// The text of a `content` field's blocks (text blocks, embedded text resources).
fn texts_of(content: Option<&Value>) -> Vec<String> {
    blocks(content)
        .iter()
        .filter_map(|item| {
            item.get("text")
                .or_else(|| item.get("resource").and_then(|r| r.get("text")))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect()
}

/// `content` with every text (as [`texts_of`] finds them) passed through `apply`.
fn rewrite_texts(content: &mut Value, apply: &dyn Fn(&str) -> String) {
    let items = match content {
        Value::Array(items) => items.as_mut_slice(),
        block @ Value::Object(_) => std::slice::from_mut(block),
        _ => return,
    };
    for item in items {
        if let Some(Value::String(text)) = item.get_mut("text") {
            *text = apply(text);
        } else if let Some(Value::String(text)) =
            item.get_mut("resource").and_then(|r| r.get_mut("text"))
        {
            *text = apply(text);
        }
    }
}

/// The `messages` of a prompt or a sampling request with every text passed through
/// `apply`.
fn rewrite_message_texts(holder: &mut Value, apply: &dyn Fn(&str) -> String) {
    if let Some(Value::Array(messages)) = holder.get_mut("messages") {
        for content in messages.iter_mut().filter_map(|m| m.get_mut("content")) {
            rewrite_texts(content, apply);
        }
    }
}

/// Texts a server sent (from `source`, perhaps naming `id`), as the untrusted documents of
/// a decision's content.
fn documents_from(source: &str, id: Option<&str>, texts: Vec<String>) -> Content {
    let documents = texts
        .into_iter()
        .map(|text| Document {
            id: id.map(str::to_string),
            source: Some(source.to_string()),
            text,
            ..Document::default()
        })
        .collect();
    Content {
        documents,
        ..Content::default()
    }
}

/// Decides on `content` a server sent (`surface` and `action` on `McpServer::"<server>"`);
/// on an allow, its redactions as a rewrite.
async fn from_server(
    gateway: &Gateway,
    call: &Call,
    (surface, action): (Surface, &str),
    server: &McpUpstream,
    content: Content,
    what: &str,
    facts: &CallFacts,
) -> Result<Rewrite, RpcError> {
    let input = input_for(
        call,
        surface,
        action,
        ResourceKind::McpServer,
        &server.name,
        &server.name,
        content,
    );
    Ok(allowed(gateway, call, input, what, facts).await?.1)
}

/// `method` asked of every server of the scope, with each server's result: a failing
/// server fails a one-server scope and is left out of a federated one.
async fn each_server<'a>(
    gateway: &'a Gateway,
    call: &Call,
    scope: Scope<'a>,
    method: &str,
) -> Result<Vec<(&'a Arc<McpUpstream>, Value)>, RpcError> {
    let mut results = Vec::new();
    for server in servers(gateway, scope) {
        match server
            .request(&call.principal, client_of(call), method, json!({}))
            .await
        {
            Ok(answered) => results.push((server, answered.result)),
            Err(failure) => match scope {
                Scope::One(_) => return Err(failure_error(server, failure)),
                Scope::All => tracing::warn!(
                    server = %server.name,
                    method,
                    "MCP server left out of a federated listing"
                ),
            },
        }
    }
    Ok(results)
}

async fn call_tool(
    gateway: &Gateway,
    call: &Call,
    scope: Scope<'_>,
    params: &Value,
    relay: Option<&Relay<'_>>,
) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("tools/call needs `name`"))?;
    let arguments = params
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if !arguments.is_object() {
        return Err(RpcError::invalid_params("`arguments` must be an object"));
    }
    let (server, tool) = resolve(gateway, scope, name)?;
    // The descriptor the policies judge the call by: a tool never listed is listed first,
    // so calling a tool directly cannot skip the poisoning checks.
    let known = match gateway.mcp.known(&server.name, &tool) {
        Some(known) => Some(known),
        None => {
            fetch_tools(gateway, call, server).await?;
            gateway.mcp.known(&server.name, &tool)
        }
    };
    let content = Content {
        tool: Some(ToolCall {
            name: tool.clone(),
            server: Some(server.name.clone()),
            arguments: arguments.clone(),
        }),
        ..Content::default()
    };
    let resource = format!("{}.{tool}", server.name);
    let mut input = input_for(
        call,
        Surface::Tool,
        "mcp.tools.call",
        ResourceKind::Tool,
        &resource,
        &server.name,
        content,
    );
    // The descriptor joins the input after inspection: its signals are kept from its
    // listing rather than scanned again at every call.
    if let Some((latest, flagged)) = known {
        input.content.tools.push(latest);
        input.findings.tool_poisoning.extend(flagged);
    }
    let (input, apply) = allowed(
        gateway,
        call,
        input,
        &format!("call of tool `{name}` refused"),
        &CallFacts::default(),
    )
    .await?;
    let forwarded = super::guard::map_strings(&arguments, &apply);
    let mut upstream_params = json!({"name": tool, "arguments": forwarded});
    // The client's `_meta` (its progress token) goes along, so the server's progress
    // notifications name it.
    if let Some(meta) = params.get("_meta") {
        set_field(&mut upstream_params, "_meta", meta.clone());
    }
    // The server's requests of the client while the tool runs are decided first (sampling
    // is a prompt for the client's model, elicitation a question to the user, both written
    // by the server).
    let gate = |message: Value| -> BoxFuture<'_, Result<Value, RpcError>> {
        Box::pin(gate_request(gateway, call, server, message))
    };
    let relay = relay.map(|relay| Relay {
        gate: Some(&gate),
        ..relay.clone()
    });
    let answered = match server
        .request_relayed(
            &call.principal,
            client_of(call),
            "tools/call",
            upstream_params,
            relay.as_ref(),
        )
        .await
    {
        Ok(answered) => answered,
        Err(Failure::Transport(why)) => {
            let error = call.failed_on(
                Surface::Tool,
                &input,
                Some(&server.name),
                GatewayError::new(Kind::BadGateway, why),
            );
            return Err(RpcError {
                code: UPSTREAM_FAILED,
                message: error.message,
                data: Some(json!({"server": server.name})),
            });
        }
        Err(failure) => return Err(failure_error(server, failure)),
    };
    let facts = answered.facts();
    let mut result = answered.result;
    // The result reaches the agent only if the policies allow it: it is untrusted content.
    let answer = input_for(
        call,
        Surface::Tool,
        "mcp.tools.result",
        ResourceKind::Tool,
        &resource,
        &server.name,
        Content {
            tool: Some(ToolCall {
                name: tool.clone(),
                server: Some(server.name.clone()),
                arguments: forwarded,
            }),
            ..documents_from(&resource, None, texts_of(result.get("content")))
        },
    );
    let (_, apply) = allowed(
        gateway,
        call,
        answer,
        &format!("the result of tool `{name}` was withheld"),
        &facts,
    )
    .await?;
    if let Some(items) = result.get_mut("content") {
        rewrite_texts(items, &apply);
    }
    if let Some(structured) = result.get_mut("structuredContent") {
        *structured = super::guard::map_strings(structured, &apply);
    }
    Ok(result)
}

/// A server's request of the client, decided before it is relayed: sampling
/// ([`gate_sampling`]) and elicitation ([`gate_elicitation`]); other requests (roots, ping)
/// pass as they are. A deny is the server's JSON-RPC error.
async fn gate_request(
    gateway: &Gateway,
    call: &Call,
    server: &McpUpstream,
    mut message: Value,
) -> Result<Value, RpcError> {
    let method = message
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_string);
    let id = message.get("id").cloned();
    let Some(params) = message.get_mut("params") else {
        return Ok(message);
    };
    let decided = match method.as_deref() {
        Some(SAMPLING) => gate_sampling(gateway, call, server, params).await,
        Some(ELICITATION) => {
            let relayed = gate_elicitation(gateway, call, server, params).await;
            if let (Ok(()), Some(id)) = (&relayed, &id) {
                gateway.mcp.elicit(client_of(call), &server.name, id);
            }
            relayed
        }
        _ => Ok(()),
    };
    decided.map(|()| message)
}

/// The server requests Sluice decides on before its client sees them.
const SAMPLING: &str = "sampling/createMessage";
const ELICITATION: &str = "elicitation/create";

/// Whether `message` is a server's request Sluice decides on before relaying it.
fn is_governed_request(message: &Value) -> bool {
    message.get("id").is_some()
        && matches!(
            message.get("method").and_then(Value::as_str),
            Some(SAMPLING | ELICITATION)
        )
}

/// The user's answer to an elicitation (what it typed into the server's form) on its way to
/// the server: a tool-surface decision (`mcp.elicitation.answer` on `McpServer::"<server>"`)
/// with the answer's fields as the arguments of a call of `elicitation` (inspected like a
/// tool's arguments); redactions rewrite them, and a deny is the server's JSON-RPC error.
/// A declined or cancelled elicitation carries nothing to decide.
async fn gate_answer(
    gateway: &Gateway,
    call: &mut Call,
    server: &McpUpstream,
    session: &str,
    mut message: Value,
) -> Result<Value, RpcError> {
    let Some(fields) = message.pointer("/result/content").filter(|c| c.is_object()) else {
        return Ok(message);
    };
    let fields = fields.clone();
    if call.session.id.is_none() {
        super::jsonrpc::open_session(gateway, call, session).await?;
    }
    let content = Content {
        tool: Some(ToolCall {
            name: "elicitation".to_string(),
            server: Some(server.name.clone()),
            arguments: fields.clone(),
        }),
        ..Content::default()
    };
    let input = input_for(
        call,
        Surface::Tool,
        "mcp.elicitation.answer",
        ResourceKind::McpServer,
        &server.name,
        &server.name,
        content,
    );
    let what = format!("the user's answer to MCP server `{}` refused", server.name);
    let (_, apply) = allowed(gateway, call, input, &what, &CallFacts::default()).await?;
    if let Some(slot) = message.pointer_mut("/result/content") {
        *slot = super::guard::map_strings(&fields, &apply);
    }
    Ok(message)
}

/// `sampling/createMessage` asks the client's model to generate from messages the server
/// wrote: its system prompt and message texts are untrusted documents of a prompt-surface
/// decision (`mcp.sampling` on `McpServer::"<server>"`); redactions rewrite what the client
/// gets.
async fn gate_sampling(
    gateway: &Gateway,
    call: &Call,
    server: &McpUpstream,
    params: &mut Value,
) -> Result<(), RpcError> {
    let system = params.get("systemPrompt").and_then(Value::as_str);
    let mut texts: Vec<String> = system.map(str::to_string).into_iter().collect();
    for each in params
        .get("messages")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        texts.extend(texts_of(each.get("content")));
    }
    let content = documents_from(&server.name, None, texts);
    let what = format!("sampling request of MCP server `{}` refused", server.name);
    let action = (Surface::Prompt, "mcp.sampling");
    let apply = from_server(
        gateway,
        call,
        action,
        server,
        content,
        &what,
        &CallFacts::default(),
    )
    .await?;
    if let Some(Value::String(system)) = params.get_mut("systemPrompt") {
        *system = apply(system);
    }
    rewrite_message_texts(params, &apply);
    Ok(())
}

/// `elicitation/create` asks the user for information (a form) or to open a URL, on the
/// server's behalf: a tool-surface decision (`mcp.elicitation` on `McpServer::"<server>"`)
/// whose untrusted documents are the message (`metadata.part: "message"`), each field the
/// form asks for (`part: "field"`, `metadata.field` its name, the text its title and
/// description) and the URL (`part: "url"`); redactions rewrite the message and the
/// fields' titles and descriptions.
async fn gate_elicitation(
    gateway: &Gateway,
    call: &Call,
    server: &McpUpstream,
    params: &mut Value,
) -> Result<(), RpcError> {
    let document = |part: &str, text: String, more: Option<(&str, Value)>| {
        let mut metadata = std::collections::BTreeMap::from([("part".to_string(), json!(part))]);
        metadata.extend(more.map(|(k, v)| (k.to_string(), v)));
        Document {
            source: Some(server.name.clone()),
            text,
            metadata,
            ..Document::default()
        }
    };
    let mut documents = Vec::new();
    if let Some(text) = params.get("message").and_then(Value::as_str) {
        documents.push(document("message", text.to_string(), None));
    }
    let fields = params
        .pointer("/requestedSchema/properties")
        .and_then(Value::as_object);
    for (name, field) in fields.into_iter().flatten() {
        let said = ["title", "description"]
            .iter()
            .filter_map(|key| field.get(*key).and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(". ");
        documents.push(document("field", said, Some(("field", json!(name)))));
    }
    if let Some(url) = params.get("url").and_then(Value::as_str) {
        documents.push(document("url", url.to_string(), Some(("url", json!(url)))));
    }
    let content = Content {
        documents,
        ..Content::default()
    };
    let what = format!(
        "elicitation request of MCP server `{}` refused",
        server.name
    );
    let action = (Surface::Tool, "mcp.elicitation");
    let apply = from_server(
        gateway,
        call,
        action,
        server,
        content,
        &what,
        &CallFacts::default(),
    )
    .await?;
    if let Some(Value::String(text)) = params.get_mut("message") {
        *text = apply(text);
    }
    let fields = params
        .pointer_mut("/requestedSchema/properties")
        .and_then(Value::as_object_mut);
    for field in fields.into_iter().flat_map(|f| f.values_mut()) {
        for key in ["title", "description"] {
            if let Some(Value::String(text)) = field.get_mut(key) {
                *text = apply(text);
            }
        }
    }
    Ok(())
}

async fn list_resources(
    gateway: &Gateway,
    call: &Call,
    scope: Scope<'_>,
    method: &str,
    field: &str,
) -> Result<Value, RpcError> {
    let mut out = Vec::new();
    for (server, result) in each_server(gateway, call, scope, method).await? {
        for item in result
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let (Scope::All, Some(uri)) = (scope, item.get("uri").and_then(Value::as_str)) {
                // A URI belongs to the first server that listed it: another server listing
                // the same URI cannot take its reads over.
                let mut owners = gateway
                    .mcp
                    .resources
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let owner = owners
                    .entry(uri.to_string())
                    .or_insert_with(|| server.name.clone());
                if *owner != server.name {
                    tracing::warn!(
                        %uri,
                        owner = %owner,
                        server = %server.name,
                        "MCP server lists a resource another server owns; left out"
                    );
                    continue;
                }
            }
            out.push(item.clone());
        }
    }
    Ok(json!({field: out}))
}

async fn read_resource(
    gateway: &Gateway,
    call: &Call,
    scope: Scope<'_>,
    params: &Value,
) -> Result<Value, RpcError> {
    let uri = params
        .get("uri")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("resources/read needs `uri`"))?;
    let server = match scope {
        Scope::One(server) => server,
        Scope::All => {
            let owner = gateway
                .mcp
                .resources
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(uri)
                .cloned();
            let owner = match owner {
                Some(owner) => Some(owner),
                None => {
                    list_resources(gateway, call, scope, "resources/list", "resources").await?;
                    gateway
                        .mcp
                        .resources
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(uri)
                        .cloned()
                }
            };
            owner
                .as_deref()
                .and_then(|o| gateway.mcp.server(o))
                .ok_or_else(|| RpcError::invalid_params(format!("Unknown resource: {uri}")))?
        }
    };
    let answered = server
        .request(
            &call.principal,
            client_of(call),
            "resources/read",
            json!({"uri": uri}),
        )
        .await
        .map_err(|f| failure_error(server, f))?;
    let facts = answered.facts();
    let mut result = answered.result;
    let content = documents_from(&server.name, Some(uri), texts_of(result.get("contents")));
    let apply = from_server(
        gateway,
        call,
        (Surface::Retrieval, "mcp.resources.read"),
        server,
        content,
        &format!("resource `{uri}` was withheld"),
        &facts,
    )
    .await?;
    if let Some(contents) = result.get_mut("contents") {
        rewrite_texts(contents, &apply);
    }
    Ok(result)
}

async fn list_prompts(gateway: &Gateway, call: &Call, scope: Scope<'_>) -> Result<Value, RpcError> {
    let mut out = Vec::new();
    for (server, result) in each_server(gateway, call, scope, "prompts/list").await? {
        for prompt in result
            .get("prompts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let mut prompt = prompt.clone();
            if let Some(name) = prompt.get("name").and_then(Value::as_str) {
                let name = exposed(scope, &server.name, name);
                set_field(&mut prompt, "name", json!(name));
            }
            out.push(prompt);
        }
    }
    Ok(json!({"prompts": out}))
}

async fn get_prompt(
    gateway: &Gateway,
    call: &Call,
    scope: Scope<'_>,
    params: &Value,
) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| RpcError::invalid_params("prompts/get needs `name`"))?;
    let (server, prompt) = resolve(gateway, scope, name)?;
    let mut forwarded = params.clone();
    set_field(&mut forwarded, "name", json!(prompt));
    let answered = server
        .request(&call.principal, client_of(call), "prompts/get", forwarded)
        .await
        .map_err(|f| failure_error(server, f))?;
    let facts = answered.facts();
    let mut result = answered.result;
    let messages = result
        .get("messages")
        .and_then(Value::as_array)
        .map(|messages| {
            messages
                .iter()
                .map(|m| Message {
                    role: m
                        .get("role")
                        .and_then(Value::as_str)
                        .unwrap_or("user")
                        .to_string(),
                    content: texts_of(m.get("content")).join("\n"),
                    tool_calls: Vec::new(),
                })
                .collect()
        })
        .unwrap_or_default();
    let content = Content {
        messages,
        ..Content::default()
    };
    let apply = from_server(
        gateway,
        call,
        (Surface::Tool, "mcp.prompts.get"),
        server,
        content,
        &format!("prompt `{name}` was withheld"),
        &facts,
    )
    .await?;
    rewrite_message_texts(&mut result, &apply);
    Ok(result)
}

#[cfg(test)]
mod tests;
