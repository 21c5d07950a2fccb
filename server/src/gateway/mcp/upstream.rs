//! Sluice as an MCP client of one upstream server: Streamable HTTP with the session-based
//! protocol versions (initialize, `mcp-session-id`), answers as JSON or as an SSE stream.
//!
//! Each API key gets its own upstream session (the server may tie state and identity to
//! it), opened on first use and opened again when the server has forgotten it (404). The
//! caller's credentials never go upstream: Sluice sends the server's own token, if
//! configured, and the caller's identity in the configured principal header.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, StatusCode};
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sluice_engine::input::Principal;

use crate::config::McpServerConfig;
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
    Answer(Result<Value, Failure>),
    /// The server no longer knows the session.
    Expired,
}

/// One upstream MCP server.
#[derive(Debug)]
pub struct McpUpstream {
    /// The server's configured name.
    pub name: String,
    url: String,
    principal_header: Option<HeaderName>,
    token: Option<String>,
    timeout: Duration,
    client: reqwest::Client,
    /// Per API key, its session (opened once at a time).
    sessions: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Option<Session>>>>>,
    next_id: AtomicU64,
}

impl McpUpstream {
    /// A client for `config`; fails when its token file cannot be read.
    pub fn new(config: &McpServerConfig) -> anyhow::Result<McpUpstream> {
        let token = config
            .token_file
            .as_ref()
            .map(|file| {
                std::fs::read_to_string(file)
                    .map(|t| t.trim().to_string())
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "MCP server `{}`: cannot read token_file `{}`: {e}",
                            config.name,
                            file.display()
                        )
                    })
            })
            .transpose()?;
        let principal_header = config
            .principal_header
            .as_deref()
            .map(|name| {
                HeaderName::from_bytes(name.as_bytes()).map_err(|e| {
                    anyhow::anyhow!(
                        "MCP server `{}`: principal_header `{name}`: {e}",
                        config.name
                    )
                })
            })
            .transpose()?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| anyhow::anyhow!("MCP server `{}`: {e}", config.name))?;
        Ok(McpUpstream {
            name: config.name.clone(),
            url: config.url.clone(),
            principal_header,
            token,
            timeout: Duration::from_millis(config.timeout_ms),
            client,
            sessions: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
        })
    }

    /// Sends `method` with `params` on behalf of `principal`; the server's result.
    pub async fn request(
        &self,
        principal: &Principal,
        method: &str,
        params: Value,
    ) -> Result<Value, Failure> {
        for _ in 0..2 {
            let slot = self.slot(&principal.key_id);
            let session = {
                let mut held = slot.lock().await;
                match held.as_ref() {
                    Some(session) => session.clone(),
                    None => {
                        let opened = self.open(principal).await?;
                        *held = Some(opened.clone());
                        opened
                    }
                }
            };
            match self
                .exchange(principal, Some(&session), method, params.clone())
                .await
            {
                Exchange::Answer(answer) => return answer,
                Exchange::Expired => {
                    let mut held = slot.lock().await;
                    // Another request may have opened a new session already.
                    if held.as_ref().map(|s| &s.id) == Some(&session.id) {
                        *held = None;
                    }
                }
            }
        }
        Err(Failure::Transport(format!(
            "MCP server `{}` keeps forgetting its session",
            self.name
        )))
    }

    fn slot(&self, key_id: &str) -> Arc<tokio::sync::Mutex<Option<Session>>> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(sessions.entry(key_id.to_string()).or_default())
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
            )
            .await;
        let result = match answer {
            Exchange::Answer(answer) => answer?,
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
    ) -> Exchange {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.post(principal, session, Some(id), method, params)
            .await
            .0
    }

    /// POSTs one message; for a request (`id` set), its answer, and the session id the
    /// server named.
    async fn post(
        &self,
        principal: &Principal,
        session: Option<&Session>,
        id: Option<u64>,
        method: &str,
        params: Value,
    ) -> (Exchange, Option<String>) {
        let mut message = json!({"jsonrpc": "2.0", "method": method});
        if let Some(id) = id {
            super::set_field(&mut message, "id", json!(id));
        }
        if !params.is_null() {
            super::set_field(&mut message, "params", params);
        }
        let mut request = self
            .client
            .post(&self.url)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .body(message.to_string());
        if let Some(session) = session {
            request = request.header("mcp-protocol-version", &session.protocol);
            if let Some(id) = &session.id {
                request = request.header("mcp-session-id", id);
            }
        }
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        if let Some(header) = &self.principal_header
            && let Ok(value) = HeaderValue::from_str(&principal_json(principal))
        {
            request = request.header(header, value);
        }
        let exchange = async {
            let response = request.send().await.map_err(|e| {
                Failure::Transport(format!("MCP server `{}` is unreachable: {e}", self.name))
            })?;
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
                return Ok((Exchange::Answer(Ok(Value::Null)), session_id));
            };
            let answer = self.answer(response, id).await;
            Ok((Exchange::Answer(answer), session_id))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok(done)) => done,
            Ok(Err(failure)) => (Exchange::Answer(Err(failure)), None),
            Err(_) => (
                Exchange::Answer(Err(Failure::Transport(format!(
                    "MCP server `{}` did not answer within {} ms",
                    self.name,
                    self.timeout.as_millis()
                )))),
                None,
            ),
        }
    }

    /// The answer to request `id` in a response: a JSON body, or the message with that id
    /// in an SSE stream (messages before it — progress, logs — are skipped).
    async fn answer(&self, response: reqwest::Response, id: u64) -> Result<Value, Failure> {
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
            }
        }
        Err(broke("its event stream ended before the response".into()))
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
