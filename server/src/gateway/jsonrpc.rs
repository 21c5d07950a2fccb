//! JSON-RPC as the MCP and A2A proxies answer it: error messages and the HTTP responses
//! carrying them, the errors a decision or an upstream produces, and the decide-then-rewrite
//! step every governed message goes through.

use std::net::SocketAddr;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sluice_engine::Decision;
use sluice_engine::input::DecisionInput;

use crate::audit::CallFacts;

use super::error::{GatewayError, Kind, closing};
use super::{Call, Gateway, denial_message, read_bytes, redactor};

/// The JSON-RPC error code of a message that is not a valid request.
pub const INVALID_REQUEST: i64 = -32600;
/// The JSON-RPC error code of a policy denial.
pub const DENIED: i64 = -32050;
/// The JSON-RPC error code of an upstream server that failed (unreachable, no answer in
/// time, broken off).
pub const UPSTREAM_FAILED: i64 = -32000;

/// Sets `field` of `value` when it is an object (anything else has no fields to set).
pub(crate) fn set_field(value: &mut Value, field: &str, to: Value) {
    if let Some(object) = value.as_object_mut() {
        object.insert(field.to_string(), to);
    }
}

/// A text rewrite: a decision's redactions.
pub(crate) type Rewrite = Box<dyn Fn(&str) -> String + Send + Sync>;

/// A JSON-RPC error message answering request `id`.
pub(crate) fn error_message(
    id: &Value,
    code: i64,
    message: impl Into<String>,
    data: Option<Value>,
) -> Value {
    let mut error = json!({"code": code, "message": message.into()});
    if let Some(data) = data {
        set_field(&mut error, "data", data);
    }
    json!({"jsonrpc": "2.0", "id": id, "error": error})
}

/// An answer sent before the request's body is read (an endpoint not configured, a
/// refused key, an oversized body): a JSON-RPC error, closing the connection.
pub(crate) fn refused_early(status: StatusCode, message: impl Into<String>) -> Response {
    closing(invalid_request(status, &Value::Null, message, None))
}

/// The first steps of a JSON-RPC POST to `path`: the caller authenticated (phase 1), then
/// the body read; a failure of either is the answer, sent by [`refused_early`]. Also the
/// request's headers, for what the endpoint reads from them.
pub(crate) async fn start_call(
    gateway: &Gateway,
    request: Request,
    path: &str,
    client: SocketAddr,
) -> Result<(Call, HeaderMap, Vec<u8>), Response> {
    let refused = |e: GatewayError| refused_early(e.kind.status(), e.message);
    let headers = request.headers().clone();
    let call = Call::start(gateway, &headers, "POST", path, Some(client))
        .await
        .map_err(refused)?;
    let bytes = read_bytes(request, gateway.max_body_bytes)
        .await
        .map_err(refused)?;
    Ok((call, headers, bytes))
}

/// An HTTP response carrying one JSON-RPC message (of MCP session `session`, if any).
pub(crate) fn reply(status: StatusCode, message: &Value, session: Option<&str>) -> Response {
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json");
    if let Some(session) = session {
        builder = builder.header("mcp-session-id", session);
    }
    builder
        .body(Body::from(message.to_string()))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// An HTTP response carrying an [`INVALID_REQUEST`] error answering request `id`.
pub(crate) fn invalid_request(
    status: StatusCode,
    id: &Value,
    message: impl Into<String>,
    session: Option<&str>,
) -> Response {
    reply(
        status,
        &error_message(id, INVALID_REQUEST, message, None),
        session,
    )
}

/// A JSON-RPC error to answer with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RpcError {
    /// The code.
    pub code: i64,
    /// The message.
    pub message: String,
    /// More about it.
    pub data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub(crate) fn invalid_params(message: impl Into<String>) -> RpcError {
        RpcError::new(-32602, message)
    }

    /// A policy's refusal.
    pub(crate) fn denied(what: &str, decision: &Decision) -> RpcError {
        RpcError {
            code: DENIED,
            message: format!("{what}: {}", denial_message(decision)),
            data: Some(json!({"decision_id": decision.id, "reasons": decision.reasons})),
        }
    }

    pub(crate) fn from_gateway(error: GatewayError) -> RpcError {
        RpcError::new(
            if error.kind == Kind::PolicyDenied {
                DENIED
            } else {
                UPSTREAM_FAILED
            },
            error.message,
        )
    }

    /// The error as the JSON-RPC message answering request `id`.
    pub(crate) fn message(self, id: &Value) -> Value {
        error_message(id, self.code, self.message, self.data)
    }
}

/// Makes protocol session `id` (an MCP session, an A2A context) the call's decision
/// session; an error when the shared session store cannot be read and fails closed.
pub(crate) async fn open_session(
    gateway: &Gateway,
    call: &mut Call,
    id: &str,
) -> Result<(), RpcError> {
    call.session = gateway
        .sessions
        .open(&call.principal.key_id, Some(id))
        .await
        .map_err(|e| match e {
            crate::sessions::OpenError::TooLong(_) => RpcError::invalid_params(e.to_string()),
            unavailable => RpcError::from_gateway(super::session_error(unavailable)),
        })?;
    Ok(())
}

/// Decides and records, with `facts` (the upstream's status and time, for a decision on
/// its answer); the decision, allowed or not.
pub(crate) async fn decide(
    gateway: &Gateway,
    call: &Call,
    mut input: DecisionInput,
    facts: &CallFacts,
) -> Result<(DecisionInput, Decision), RpcError> {
    call.meter(gateway, &mut input)
        .await
        .map_err(RpcError::from_gateway)?;
    let decision = call.record(&input, facts).map_err(RpcError::from_gateway)?;
    call.flags_shared().await;
    Ok((input, decision))
}

/// Decides on `input`: on an allow, the input and the decision's redactions as a rewrite;
/// on a deny, the error saying that `what` was refused.
pub(crate) async fn allowed(
    gateway: &Gateway,
    call: &Call,
    input: DecisionInput,
    what: &str,
    facts: &CallFacts,
) -> Result<(DecisionInput, Rewrite), RpcError> {
    let (input, decision) = decide(gateway, call, input, facts).await?;
    if !decision.allow {
        return Err(RpcError::denied(what, &decision));
    }
    let rewrite = apply_fn(gateway, call, &decision, &input)?;
    Ok((input, rewrite))
}

/// The decision's redactor as a text function (identity when it asks for none).
pub(crate) fn apply_fn(
    gateway: &Gateway,
    call: &Call,
    decision: &Decision,
    input: &DecisionInput,
) -> Result<Rewrite, RpcError> {
    let redactor = redactor(decision, input, call, gateway.hash_key.as_ref())
        .map_err(RpcError::from_gateway)?;
    Ok(match redactor {
        Some(r) => Box::new(move |text: &str| r.redact(text)),
        None => Box::new(|text: &str| text.to_string()),
    })
}
