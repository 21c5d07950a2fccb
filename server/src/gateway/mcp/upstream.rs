//! Sluice as an MCP client of one upstream server: Streamable HTTP with the session-based
//! protocol versions (initialize, `mcp-session-id`), answers as JSON or as an SSE stream.
//!
//! Each client session with Sluice gets its own session with each server it uses (the
//! server may tie state, subscriptions and identity to it), opened on first use, opened
//! again when the server has forgotten it (404), and ended (DELETE) when the client's ends.
//! The caller's credentials never go upstream: Sluice sends the server's own token, if
//! configured, and the caller's identity in the configured principal header.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::http::{HeaderName, HeaderValue, StatusCode};
use futures_util::StreamExt as _;
use futures_util::future::BoxFuture;
use serde_json::{Value, json};
use sluice_engine::input::Principal;

use crate::config::McpServerConfig;
use crate::gateway::jsonrpc::RpcError;
use crate::gateway::sse::Splitter;

/// The protocol version Sluice asks upstream servers for.
pub const PROTOCOL: &str = "2025-11-25";

/// Largest answer read from an upstream server.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Why a request to an upstream server did not return a result.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The server answered with a JSON-RPC error (`{code, message, data?}`), passed on.
    Error(Value),
    /// The server could not be reached, did not answer in time, broke off, or answered
    /// something that is not JSON-RPC.
    Transport(String),
}

/// An upstream session: its id (none for a stateless server) and protocol version.
#[derive(Debug, Clone)]
struct Session {
    id: Option<String>,
    protocol: String,
}

/// How one exchange ended.
enum Exchange {
    /// The answer, with the HTTP status of the response that carried it.
    Answer(Result<(Value, u16), Failure>),
    /// The server no longer knows the session.
    Expired,
}

/// A server's answer to a request, with what the audit trail records of it.
#[derive(Debug)]
pub struct Answered {
    /// The JSON-RPC result.
    pub result: Value,
    /// The HTTP status of the response that carried it.
    pub status: u16,
    /// From asking (a session opened first included) to the answer, in milliseconds.
    pub ms: f64,
}

impl Answered {
    /// The audit facts of a decision on this answer.
    pub(crate) fn facts(&self) -> crate::audit::CallFacts {
        crate::audit::CallFacts::answered(self.status, self.ms)
    }
}

/// One upstream MCP server.
#[derive(Debug)]
pub struct McpUpstream {
    /// The server's configured name.
    pub name: String,
    url: String,
    credentials: Credentials,
    timeout: Duration,
    client: reqwest::Client,
    /// Per client session with Sluice, the session with this server (opened once at a
    /// time).
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Session>>>>>,
    next_id: AtomicU64,
}

impl McpUpstream {
    /// A client for `config`; fails when its token file cannot be read.
    pub fn new(config: &McpServerConfig) -> anyhow::Result<McpUpstream> {
        let credentials = Credentials::new(
            &format!("MCP server `{}`", config.name),
            config.token_file.as_deref(),
            config.principal_header.as_deref(),
        )?;
        let client = remote_client(&format!("MCP server `{}`", config.name))?;
        Ok(McpUpstream {
            name: config.name.clone(),
            url: config.url.clone(),
            credentials,
            timeout: Duration::from_millis(config.timeout_ms),
            client,
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// Sends `method` with `params` on behalf of `principal`, in the server session of
    /// client session `client`; the server's result. Requests the server sends while it
    /// answers are refused (nobody could answer them).
    pub async fn request(
        &self,
        principal: &Principal,
        client: &str,
        method: &str,
        params: Value,
    ) -> Result<Answered, Failure> {
        self.request_relayed(principal, client, method, params, None)
            .await
    }

    /// [`request`](Self::request), passing what the server sends while it answers
    /// (progress, log messages and, if `relay` allows, its own requests) to `relay`.
    pub async fn request_relayed(
        &self,
        principal: &Principal,
        client: &str,
        method: &str,
        params: Value,
        relay: Option<&Relay<'_>>,
    ) -> Result<Answered, Failure> {
        let asked = Instant::now();
        for _ in 0..2 {
            let (slot, session) = self.session(principal, client).await?;
            match self
                .exchange(principal, Some(&session), method, params.clone(), relay)
                .await
            {
                Exchange::Answer(answer) => {
                    return answer.map(|(result, status)| Answered {
                        result,
                        status,
                        ms: asked.elapsed().as_secs_f64() * 1e3,
                    });
                }
                Exchange::Expired => forget_in(&slot, &session).await,
            }
        }
        Err(Failure::Transport(format!(
            "MCP server `{}` keeps forgetting its session",
            self.name
        )))
    }

    fn slot(&self, client: &str) -> Arc<tokio::sync::Mutex<Option<Session>>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(sessions.entry(client.to_string()).or_default())
    }

    /// The server session of client session `client`, opened if needed, and its slot.
    async fn session(
        &self,
        principal: &Principal,
        client: &str,
    ) -> Result<(Arc<tokio::sync::Mutex<Option<Session>>>, Session), Failure> {
        let slot = self.slot(client);
        let mut held = slot.lock().await;
        let session = match held.as_ref() {
            Some(session) => session.clone(),
            None => {
                let opened = self.open(principal).await?;
                *held = Some(opened.clone());
                opened
            }
        };
        drop(held);
        Ok((slot, session))
    }

    /// Passes a message that needs no answer (a notification, or the client's answer to a
    /// request of the server) on, in the server session of client session `client`.
    pub async fn notify(
        &self,
        principal: &Principal,
        client: &str,
        message: &Value,
    ) -> Result<(), Failure> {
        let (_, session) = self.session(principal, client).await?;
        let request = self.post_request(principal, Some(&session), message.to_string());
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| self.late())?
            .map_err(|e| self.unreachable(e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(Failure::Transport(format!(
                "MCP server `{}` refused a message with HTTP {}",
                self.name,
                response.status()
            )))
        }
    }

    /// The server's stream of messages to the client (`GET`), in the server session of
    /// client session `client`; `None` when the server offers none.
    pub async fn listen(
        &self,
        principal: &Principal,
        client: &str,
        last_event_id: Option<&str>,
    ) -> Result<Option<reqwest::Response>, Failure> {
        let (slot, session) = self.session(principal, client).await?;
        let mut request = self
            .credentials
            .apply(self.client.get(&self.url), principal)
            .header("accept", "text/event-stream")
            .header("mcp-protocol-version", &session.protocol);
        if let Some(id) = &session.id {
            request = request.header("mcp-session-id", id);
        }
        if let Some(last) = last_event_id {
            request = request.header("last-event-id", last);
        }
        let response = tokio::time::timeout(self.timeout, request.send())
            .await
            .map_err(|_| self.late())?
            .map_err(|e| self.unreachable(e))?;
        match response.status() {
            StatusCode::METHOD_NOT_ALLOWED => Ok(None),
            StatusCode::NOT_FOUND => {
                forget_in(&slot, &session).await;
                Err(Failure::Transport(format!(
                    "MCP server `{}` forgot the session; open the stream again",
                    self.name
                )))
            }
            status if status.is_success() => Ok(Some(response)),
            status => Err(Failure::Transport(format!(
                "MCP server `{}` refused the stream with HTTP {status}",
                self.name
            ))),
        }
    }

    /// Ends the server session of client session `client`, if any (DELETE, in the
    /// background).
    pub fn forget(&self, client: &str) {
        let slot = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(client);
        let Some(slot) = slot else { return };
        let request = self.client.delete(&self.url);
        let token = self.credentials.token.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let Some(Session { id: Some(id), .. }) = slot.lock().await.take() else {
                    return;
                };
                let mut request = request.header("mcp-session-id", id);
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), request.send()).await;
            });
        }
    }

    fn late(&self) -> Failure {
        Failure::Transport(format!(
            "MCP server `{}` did not answer within {} ms",
            self.name,
            self.timeout.as_millis()
        ))
    }

    fn unreachable(&self, error: reqwest::Error) -> Failure {
        Failure::Transport(format!(
            "MCP server `{}` is unreachable: {error}",
            self.name
        ))
    }

    /// A POST of `body` in `session`.
    fn post_request(
        &self,
        principal: &Principal,
        session: Option<&Session>,
        body: String,
    ) -> reqwest::RequestBuilder {
        let mut request = self
            .credentials
            .apply(self.client.post(&self.url), principal)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(body);
        if let Some(session) = session {
            request = request.header("mcp-protocol-version", &session.protocol);
            if let Some(id) = &session.id {
                request = request.header("mcp-session-id", id);
            }
        }
        request
    }

    /// Opens a session: `initialize`, then `notifications/initialized`.
    async fn open(&self, principal: &Principal) -> Result<Session, Failure> {
        let params = json!({
            "protocolVersion": PROTOCOL,
            "capabilities": {},
            "clientInfo": {"name": "sluice", "version": env!("CARGO_PKG_VERSION")},
        });
        let (answer, id) = self
            .post(
                principal,
                None,
                Some(self.next_id.fetch_add(1, Ordering::Relaxed)),
                "initialize",
                params,
                None,
            )
            .await;
        let result = match answer {
            Exchange::Answer(answer) => answer?.0,
            Exchange::Expired => {
                return Err(Failure::Transport(format!(
                    "MCP server `{}` refused to open a session (404)",
                    self.name
                )));
            }
        };
        let protocol = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or(PROTOCOL)
            .to_string();
        let session = Session { id, protocol };
        // The server needs no answer to the notification; a failure shows in the next
        // request.
        let _ = self
            .post(
                principal,
                Some(&session),
                None,
                "notifications/initialized",
                Value::Null,
                None,
            )
            .await;
        Ok(session)
    }

    async fn exchange(
        &self,
        principal: &Principal,
        session: Option<&Session>,
        method: &str,
        params: Value,
        relay: Option<&Relay<'_>>,
    ) -> Exchange {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.post(principal, session, Some(id), method, params, relay)
            .await
            .0
    }

    /// POSTs one message; for a request (`id` set), its answer (what comes before it goes
    /// to `relay`), and the session id the server named.
    async fn post(
        &self,
        principal: &Principal,
        session: Option<&Session>,
        id: Option<u64>,
        method: &str,
        params: Value,
        relay: Option<&Relay<'_>>,
    ) -> (Exchange, Option<String>) {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(id) = id {
            super::set_field(&mut message, "id", json!(id));
        }
        if !params.is_null() {
            super::set_field(&mut message, "params", params);
        }
        let request = self.post_request(principal, session, message.to_string());
        let exchange = async {
            let response = request.send().await.map_err(|e| self.unreachable(e))?;
            let session_id = response
                .headers()
                .get("mcp-session-id")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            let status = response.status();
            if status == StatusCode::NOT_FOUND && session.and_then(|s| s.id.as_ref()).is_some() {
                return Ok((Exchange::Expired, session_id));
            }
            let Some(id) = id else {
                return Ok((
                    Exchange::Answer(Ok((Value::Null, status.as_u16()))),
                    session_id,
                ));
            };
            let answer = self.answer(response, id, principal, session, relay).await;
            let answer = answer.map(|value| (value, status.as_u16()));
            Ok((Exchange::Answer(answer), session_id))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(done)) => done,
            Ok(Err(failure)) => (Exchange::Answer(Err(failure)), None),
            Err(_) => (Exchange::Answer(Err(self.late())), None),
        }
    }

    /// The answer to request `id` in a response: a JSON body, or the message with that id
    /// in an SSE stream. Messages before it (progress, logs, the server's own requests) go
    /// to `relay`; a request of the server that is not relayed is refused, so that the
    /// server does not wait for an answer that cannot come.
    async fn answer(
        &self,
        response: reqwest::Response,
        id: u64,
        principal: &Principal,
        session: Option<&Session>,
        relay: Option<&Relay<'_>>,
    ) -> Result<Value, Failure> {
        let status = response.status();
        let is_stream = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("text/event-stream"));
        let broke = |why: String| {
            Failure::Transport(format!(
                "MCP server `{}` broke off its answer: {why}",
                self.name
            ))
        };
        if !is_stream {
            let bytes = read_limited(response).await.map_err(broke)?;
            let message: Value = serde_json::from_slice(&bytes).map_err(|_| {
                Failure::Transport(format!(
                    "MCP server `{}` answered HTTP {status} with something that is not JSON-RPC: {}",
                    self.name,
                    String::from_utf8_lossy(bytes.get(..200).unwrap_or(&bytes))
                ))
            })?;
            return outcome(&self.name, message, status);
        }
        let mut splitter = Splitter::default();
        let mut body = response.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| broke(e.to_string()))?;
            let events = splitter
                .push(&chunk)
                .map_err(|_| broke("an event larger than 4 MiB".into()))?;
            for event in events {
                let Ok(message) = serde_json::from_str::<Value>(&event.data) else {
                    continue;
                };
                if message.get("id") == Some(&json!(id)) {
                    return outcome(&self.name, message, status);
                }
                let Some(method) = message.get("method").and_then(Value::as_str) else {
                    continue;
                };
                let refuse = |request: Value, error: RpcError| async move {
                    let refusal = error.message(&request);
                    let _ = self
                        .post_request(principal, session, refusal.to_string())
                        .send()
                        .await;
                };
                match (message.get("id").cloned(), relay) {
                    // Progress and logs are lossy by nature: a client that does not keep
                    // up misses some rather than Sluice holding them without bound.
                    (None, Some(relay)) => {
                        let _ = relay.to_client.try_send(message);
                    }
                    (Some(request), Some(relay)) if relay.requests => {
                        let decided = match relay.gate {
                            Some(gate) => gate(message).await,
                            None => Ok(message),
                        };
                        match decided {
                            // A client gone away stops reading; the answer still ends the
                            // call.
                            Ok(message) => {
                                let _ = relay.to_client.send(message).await;
                            }
                            Err(error) => refuse(request, error).await,
                        }
                    }
                    (Some(request), _) => {
                        let message =
                            format!("Sluice does not pass `{method}` on to the client here");
                        refuse(request, RpcError::new(-32601, message)).await;
                    }
                    (None, None) => {}
                }
            }
        }
        Err(broke("its event stream ended before the response".into()))
    }
}

/// Where a server's messages sent while it answers a request go: to the client, on the
/// stream Sluice answers it with.
#[derive(Clone)]
pub struct Relay<'a> {
    /// The client's stream (bounded: a server cannot make Sluice buffer without limit).
    pub to_client: tokio::sync::mpsc::Sender<Value>,
    /// Whether the server's own requests (elicitation, sampling) go too: only where the
    /// client's answers can find their way back to this server.
    pub requests: bool,
    /// Decides on each of the server's requests before it reaches the client.
    pub(crate) gate: Option<&'a Gate<'a>>,
}

/// A decision on a request a server sends its client: the message to relay (perhaps
/// rewritten), or the JSON-RPC error the server gets instead.
pub(crate) type Gate<'a> =
    dyn Fn(Value) -> BoxFuture<'a, Result<Value, RpcError>> + Send + Sync + 'a;

impl std::fmt::Debug for Relay<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay")
            .field("requests", &self.requests)
            .field("gated", &self.gate.is_some())
            .finish_non_exhaustive()
    }
}

/// Empties `slot` if it still holds `session` (another request may have opened a new one
/// meanwhile), so the next request opens a new session.
async fn forget_in(slot: &tokio::sync::Mutex<Option<Session>>, session: &Session) {
    let mut held = slot.lock().await;
    if held.as_ref().map(|s| &s.id) == Some(&session.id) {
        *held = None;
    }
}

/// A JSON-RPC response's result, or its error.
fn outcome(server: &str, message: Value, status: StatusCode) -> Result<Value, Failure> {
    if let Some(error) = message.get("error") {
        return Err(Failure::Error(error.clone()));
    }
    match message.get("result") {
        Some(result) if status.is_success() => Ok(result.clone()),
        _ => Err(Failure::Transport(format!(
            "MCP server `{server}` answered HTTP {status} without a JSON-RPC result"
        ))),
    }
}

async fn read_limited(response: reqwest::Response) -> Result<Vec<u8>, String> {
    let mut body = response.bytes_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(format!("an answer larger than {MAX_ANSWER_BYTES} bytes"));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// The HTTP client for a remote server or agent (named by `what`): redirects are followed
/// only within the origin they start from, so a server cannot send Sluice — and the token
/// and caller identity it carries — to another host.
pub(crate) fn remote_client(what: &str) -> anyhow::Result<reqwest::Client> {
    let redirects = reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 5 {
            attempt.error("more than 5 redirects")
        } else if same {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(90))
        .redirect(redirects)
        .build()
        .map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

/// What Sluice sends a remote server or agent on every request: its own token for it,
/// and the caller's identity in the configured header (never the caller's credentials).
#[derive(Debug, Clone, Default)]
pub(crate) struct Credentials {
    /// The token in `token_file`, sent as `Authorization: Bearer`.
    pub token: Option<String>,
    /// The header the caller's identity goes in.
    pub principal_header: Option<HeaderName>,
}

impl Credentials {
    /// The credentials of a remote server or agent (named by `what` in errors): the token
    /// read from `token_file`, the principal header's name checked.
    pub(crate) fn new(
        what: &str,
        token_file: Option<&std::path::Path>,
        principal_header: Option<&str>,
    ) -> anyhow::Result<Credentials> {
        let token = token_file
            .map(|file| {
                std::fs::read_to_string(file)
                    .map(|t| t.trim().to_string())
                    .map_err(|e| {
                        anyhow::anyhow!("{what}: cannot read token_file `{}`: {e}", file.display())
                    })
            })
            .transpose()?;
        let principal_header = principal_header
            .map(|name| {
                HeaderName::from_bytes(name.as_bytes())
                    .map_err(|e| anyhow::anyhow!("{what}: principal_header `{name}`: {e}"))
            })
            .transpose()?;
        Ok(Credentials {
            token,
            principal_header,
        })
    }

    /// `request` with the token and `principal`'s identity.
    pub(crate) fn apply(
        &self,
        mut request: reqwest::RequestBuilder,
        principal: &Principal,
    ) -> reqwest::RequestBuilder {
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(header) = &self.principal_header
            && let Ok(value) = HeaderValue::from_str(&principal_json(principal))
        {
            request = request.header(header, value);
        }
        request
    }
}

/// The caller's identity for an upstream server: `{"key_id", "user", "team", "agent"}` as
/// JSON, non-ASCII characters escaped so it fits in a header.
pub fn principal_json(principal: &Principal) -> String {
    let value = json!({
        "key_id": principal.key_id,
        "user": principal.user,
        "team": principal.team,
        "agent": principal.agent,
    });
    let mut out = String::new();
    for c in value.to_string().chars() {
        if c.is_ascii() && !c.is_ascii_control() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}
