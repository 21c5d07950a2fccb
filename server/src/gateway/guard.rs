//! `POST /v1/guard`: a decision on content that does not pass through Sluice on its way —
//! chunks a RAG pipeline retrieved before they enter a prompt, a memory store's writes and
//! reads, a prompt, an answer or a tool call an application handles itself. The content
//! goes through the same inspection, policies, session flags and audit trail as proxied
//! calls; the answer says whether it is allowed, why, and the content with the policies'
//! redactions applied.
//!
//! A deny is an answer, not an error (200 with `allow: false`): the caller asked a
//! question. Errors (a bad key, a malformed body) are OpenAI-style `{"error": {...}}`.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sluice_engine::input::{
    Content, Document, Findings, Message, ResourceKind, Session, Surface, ToolCall,
};
use sluice_engine::{Decision, Reason};

use super::error::{Format, GatewayError, Kind};
use super::{Call, Gateway, SESSION_HEADER, read_body, redactor};

/// One text or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Texts {
    One(String),
    Many(Vec<String>),
}

impl Texts {
    fn into_vec(self) -> Vec<String> {
        match self {
            Texts::One(text) => vec![text],
            Texts::Many(texts) => texts,
        }
    }
}

/// The body of `POST /v1/guard`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GuardRequest {
    /// `retrieval`, `memory`, `prompt`, `response` or `tool`.
    surface: Surface,
    /// The operation, one of those the surface allows; its first by default.
    #[serde(default)]
    action: Option<String>,
    /// The session the content belongs to (or the `x-sluice-session` header).
    #[serde(default)]
    session_id: Option<String>,
    /// What the content is checked for: the data source, memory store, model or tool.
    #[serde(default)]
    resource: Option<String>,
    /// Plain text: a prompt (`user`), an answer (`assistant`), a memory value, or
    /// retrieved chunks (each an untrusted document).
    #[serde(default)]
    text: Option<Texts>,
    /// Retrieved documents or memory entries, with their source and trust.
    #[serde(default)]
    documents: Vec<Document>,
    /// Chat messages.
    #[serde(default)]
    messages: Vec<Message>,
    /// A tool call (surface `tool`).
    #[serde(default)]
    tool: Option<ToolCall>,
}

/// The actions each surface takes; the first is the default.
fn actions(surface: Surface) -> &'static [&'static str] {
    match surface {
        Surface::Prompt | Surface::Response => &["llm.chat"],
        Surface::Retrieval => &["retrieval.read"],
        Surface::Memory => &["memory.write", "memory.read"],
        Surface::Tool => &["mcp.tools.call", "mcp.tools.result"],
        Surface::A2a => &[],
    }
}

/// The content after the decision's redactions, in the shape it was sent.
#[derive(Debug, Default, Serialize)]
struct Redacted {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    text: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    documents: Vec<Document>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    messages: Vec<Message>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool: Option<ToolCall>,
}

/// The answer of `POST /v1/guard`.
#[derive(Debug, Serialize)]
struct GuardAnswer {
    /// The decision's id (its audit row).
    id: String,
    allow: bool,
    surface: Surface,
    action: String,
    reasons: Vec<Reason>,
    findings: Findings,
    /// The content with redactions applied (allowed content only).
    #[serde(skip_serializing_if = "Option::is_none")]
    redacted: Option<Redacted>,
    /// The session after this decision, its flags included.
    session: Session,
    /// The policy revision that decided.
    revision: String,
}

/// `POST /v1/guard`.
pub(super) async fn guard(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    match answer(&gateway, client, request).await {
        Ok(answer) => Json(answer).into_response(),
        Err(error) => error.into_response(Format::OpenAi),
    }
}

fn invalid(message: impl Into<String>) -> GatewayError {
    GatewayError::new(Kind::InvalidRequest, message)
}

async fn answer(
    gateway: &Gateway,
    client: SocketAddr,
    request: Request,
) -> Result<GuardAnswer, GatewayError> {
    let mut call = Call::start(
        gateway,
        request.headers(),
        "POST",
        "/v1/guard",
        Some(client),
    )
    .await?;
    let body = read_body(request, gateway.max_body_bytes).await?;
    let guard: GuardRequest = serde_json::from_value(Value::Object(body))
        .map_err(|e| invalid(format!("invalid guard request: {e}")))?;
    let action = checked_action(&guard)?;
    match (&call.session.id, guard.session_id.as_deref()) {
        (Some(header), Some(body)) if header != body => {
            return Err(invalid(format!(
                "the `{SESSION_HEADER}` header (`{header}`) and `session_id` (`{body}`) name different sessions"
            )));
        }
        (None, Some(id)) => {
            call.session = gateway
                .sessions
                .open(&call.principal.key_id, Some(id))
                .await
                .map_err(super::session_error)?;
        }
        _ => {}
    }
    let (content, kind) = content(&guard, &action)?;
    // A tool is `<server>.<tool>`, as the MCP proxy and the policies' entities name it.
    let resource_id = guard
        .resource
        .clone()
        .or_else(|| {
            guard.tool.as_ref().map(|t| match &t.server {
                Some(server) => format!("{server}.{}", t.name),
                None => t.name.clone(),
            })
        })
        .unwrap_or_default();
    let mut input = call.input(guard.surface, &action, &resource_id, content);
    input.resource.kind = kind;
    input.resource.server = guard.tool.as_ref().and_then(|t| t.server.clone());
    call.meter(gateway, &mut input).await?;
    let decision = call.record(&input, &Default::default())?;
    call.flags_shared().await;
    let redacted = if decision.allow {
        Some(redact(gateway, &call, &decision, &input)?)
    } else {
        None
    };
    let session = Session {
        flags: call
            .session
            .flags
            .iter()
            .chain(&decision.obligations.flags)
            .fold(Vec::new(), |mut flags, flag| {
                if !flags.contains(flag) {
                    flags.push(flag.clone());
                }
                flags
            }),
        ..call.session.clone()
    };
    Ok(GuardAnswer {
        id: decision.id.clone(),
        allow: decision.allow,
        surface: guard.surface,
        action,
        reasons: decision.reasons,
        findings: input.findings,
        redacted,
        session,
        revision: decision.revision,
    })
}

/// The request's action, checked against its surface.
fn checked_action(guard: &GuardRequest) -> Result<String, GatewayError> {
    let allowed = actions(guard.surface);
    let Some(default) = allowed.first() else {
        return Err(invalid(
            "surface `a2a` is governed by the A2A proxy, not the guard API; use retrieval, memory, prompt, response or tool",
        ));
    };
    match guard.action.as_deref() {
        None => Ok((*default).to_string()),
        Some(action) if allowed.contains(&action) => Ok(action.to_string()),
        Some(action) => Err(invalid(format!(
            "action `{action}` is not one of surface `{}`: {}",
            guard.surface,
            allowed.join(", ")
        ))),
    }
}

/// The decision input's content for the request, and the kind of its resource.
fn content(guard: &GuardRequest, action: &str) -> Result<(Content, ResourceKind), GatewayError> {
    let texts = guard.text.clone().map(Texts::into_vec).unwrap_or_default();
    let mut content = Content {
        messages: guard.messages.clone(),
        documents: guard.documents.clone(),
        tool: guard.tool.clone(),
        ..Content::default()
    };
    let kind = match guard.surface {
        Surface::Prompt | Surface::Response => {
            let role = if guard.surface == Surface::Prompt {
                "user"
            } else {
                "assistant"
            };
            content
                .messages
                .extend(texts.into_iter().map(|text| Message {
                    role: role.to_string(),
                    content: text,
                    tool_calls: Vec::new(),
                }));
            ResourceKind::Model
        }
        // What is read comes from elsewhere: each chunk is a document, untrusted unless
        // the caller sends it as a trusted one.
        Surface::Retrieval | Surface::Memory if action != "memory.write" => {
            content
                .documents
                .extend(texts.into_iter().map(|text| Document {
                    text,
                    ..Document::default()
                }));
            if guard.surface == Surface::Retrieval {
                ResourceKind::Datasource
            } else {
                ResourceKind::Memory
            }
        }
        Surface::Retrieval | Surface::Memory => {
            content.texts = texts;
            ResourceKind::Memory
        }
        Surface::Tool => {
            if guard.tool.is_none() && action == "mcp.tools.call" {
                return Err(invalid(
                    "a tool call needs `tool`: {\"name\", \"server\"?, \"arguments\"}",
                ));
            }
            // A tool's result is untrusted content, like a retrieved document.
            content
                .documents
                .extend(texts.into_iter().map(|text| Document {
                    text,
                    ..Document::default()
                }));
            ResourceKind::Tool
        }
        Surface::A2a => ResourceKind::Agent,
    };
    let empty = content.messages.is_empty()
        && content.documents.is_empty()
        && content.texts.is_empty()
        && content.tool.is_none();
    if empty {
        return Err(invalid(
            "nothing to check: send `text`, `documents`, `messages` or `tool`",
        ));
    }
    Ok((content, kind))
}

/// The input's content with the decision's redactions applied.
fn redact(
    gateway: &Gateway,
    call: &Call,
    decision: &Decision,
    input: &sluice_engine::input::DecisionInput,
) -> Result<Redacted, GatewayError> {
    let content = &input.content;
    let input_redactor = redactor(decision, input, call, gateway.hash_key.as_ref())?;
    let apply = |text: &str| match &input_redactor {
        Some(r) => r.redact(text),
        None => text.to_string(),
    };
    Ok(Redacted {
        text: content.texts.iter().map(|t| apply(t)).collect(),
        documents: content
            .documents
            .iter()
            .map(|d| Document {
                text: apply(&d.text),
                ..d.clone()
            })
            .collect(),
        messages: content
            .messages
            .iter()
            .map(|m| Message {
                content: apply(&m.content),
                ..m.clone()
            })
            .collect(),
        tool: content.tool.as_ref().map(|t| ToolCall {
            arguments: map_strings(&t.arguments, &apply),
            ..t.clone()
        }),
    })
}

/// `value` with every string (not object keys) passed through `apply`.
pub(crate) fn map_strings(value: &Value, apply: &impl Fn(&str) -> String) -> Value {
    match value {
        Value::String(text) => Value::String(apply(text)),
        Value::Array(items) => Value::Array(items.iter().map(|v| map_strings(v, apply)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), map_strings(v, apply)))
                .collect(),
        ),
        other => other.clone(),
    }
}
