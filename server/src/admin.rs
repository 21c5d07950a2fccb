//! Health, readiness and the admin API.
//!
//! - `GET /healthz`: the process answers (200 `ok`).
//! - `GET /readyz`: a policy bundle is active (200 with its revision).
//! - `GET /admin/status`: the reload status (revision, counters, last error with diagnostics).
//! - `POST /admin/reload`: reload now and report the outcome (422 when the bundle is broken).
//! - `GET /metrics`: the reload state in the Prometheus text format, so a failing policy
//!   directory (the last good bundle still serving) can be alerted on.
//!
//! The admin endpoints take `Authorization: Bearer <token>` when `admin.token` is configured;
//! without a token they answer only clients connecting from a loopback address.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq as _;

use crate::reload::{PolicyStore, ReloadOutcome, ReloadStatus, Trigger};

/// What the admin routes need.
#[derive(Clone)]
pub struct AdminState {
    /// The live policies.
    pub store: Arc<PolicyStore>,
    /// The admin bearer token, if configured.
    pub token: Option<Arc<str>>,
    /// The audit trail, when enabled.
    pub audit: Option<Arc<crate::audit::Audit>>,
    /// The gateway's budget and rate-limit ledger, when a gateway is served.
    pub meter: Option<Arc<crate::meter::Ledger>>,
}

// Written by hand so that the token never reaches a log line through `{:?}`.
impl std::fmt::Debug for AdminState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminState")
            .field("store", &self.store)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("audit", &self.audit.is_some())
            .finish()
    }
}

/// The routes, with their state applied.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/admin/status", get(status))
        .route("/admin/reload", post(reload))
        .route("/admin/usage", get(usage))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok"
}

#[derive(Debug, Serialize)]
struct Ready {
    status: &'static str,
    revision: String,
}

async fn readyz(State(state): State<AdminState>) -> Json<Ready> {
    // A store exists only once a valid bundle was loaded (a broken initial bundle stops the
    // process before it listens), so readiness is the active revision.
    Json(Ready {
        status: "ready",
        revision: state.store.current().revision().to_string(),
    })
}

async fn status(_: AdminAccess, State(state): State<AdminState>) -> Json<ReloadStatus> {
    Json(state.store.status())
}

/// Spend and what is left of every budget and rate limit, in its current window.
async fn usage(_: AdminAccess, State(state): State<AdminState>) -> Response {
    let Some(meter) = &state.meter else {
        return Json(Vec::<crate::meter::UsageRow>::new()).into_response();
    };
    match meter.usage_async(crate::meter::now()).await {
        Ok(rows) => Json(rows).into_response(),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"error": format!("budgets cannot be read: {error}")})),
        )
            .into_response(),
    }
}

async fn metrics(_: AdminAccess, State(state): State<AdminState>) -> Response {
    let mut body = render_metrics(&state.store.status());
    if let Some(audit) = &state.audit {
        body.push_str(&render_audit_metrics(audit.counters()));
    }
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        body,
    )
        .into_response()
}

/// The audit writer's counters in the Prometheus text format. `refused` and `failed` are
/// the rows that could not be recorded, and `sluice_audit_unwritable` says requests are
/// failing closed right now: alert on any.
pub fn render_audit_metrics(counters: &crate::audit::AuditCounters) -> String {
    use std::sync::atomic::Ordering::Relaxed;
    format!(
        "# HELP sluice_audit_rows_total Audit rows by outcome: queued, written, refused (queue full, database unwritable or writer stopped; the request failed closed), failed (accepted but lost: the database still refused them at shutdown).\n\
         # TYPE sluice_audit_rows_total counter\n\
         sluice_audit_rows_total{{outcome=\"queued\"}} {}\n\
         sluice_audit_rows_total{{outcome=\"written\"}} {}\n\
         sluice_audit_rows_total{{outcome=\"refused\"}} {}\n\
         sluice_audit_rows_total{{outcome=\"failed\"}} {}\n\
         # HELP sluice_audit_write_errors_total Batches the audit database refused (retried, not lost).\n\
         # TYPE sluice_audit_write_errors_total counter\n\
         sluice_audit_write_errors_total {}\n\
         # HELP sluice_audit_unwritable 1 while the audit database refuses writes (disk full, read-only, I/O error); requests fail closed meanwhile.\n\
         # TYPE sluice_audit_unwritable gauge\n\
         sluice_audit_unwritable {}\n\
         # HELP sluice_audit_writer_yielding 1 while the audit writer runs on CPU time the request threads leave (SCHED_IDLE), 0 while it runs at normal priority: behind, or not allowed to yield.\n\
         # TYPE sluice_audit_writer_yielding gauge\n\
         sluice_audit_writer_yielding {}\n",
        counters.queued.load(Relaxed),
        counters.written.load(Relaxed),
        counters.refused.load(Relaxed),
        counters.failed.load(Relaxed),
        counters.write_errors.load(Relaxed),
        u8::from(counters.unwritable.load(Relaxed)),
        u8::from(counters.yielding.load(Relaxed)),
    )
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The reload state in the Prometheus text exposition format.
pub fn render_metrics(status: &ReloadStatus) -> String {
    let r = &status.reloads;
    format!(
        "# HELP sluice_policy_reloads_total Policy reloads since start, by result.\n\
         # TYPE sluice_policy_reloads_total counter\n\
         sluice_policy_reloads_total{{result=\"success\"}} {}\n\
         sluice_policy_reloads_total{{result=\"failure\"}} {}\n\
         # HELP sluice_policy_reload_consecutive_failures Failed reloads since the last good one; the last good bundle keeps serving meanwhile.\n\
         # TYPE sluice_policy_reload_consecutive_failures gauge\n\
         sluice_policy_reload_consecutive_failures {}\n\
         # HELP sluice_policy_bundle_info The active policy bundle.\n\
         # TYPE sluice_policy_bundle_info gauge\n\
         sluice_policy_bundle_info{{revision=\"{}\",content_hash=\"{}\",rego_evaluator=\"{}\"}} 1\n",
        r.successes,
        r.failures,
        r.consecutive_failures,
        label(&status.revision),
        label(&status.content_hash),
        label(&status.rego_evaluator),
    )
}

#[derive(Debug, Serialize)]
struct ReloadResponse {
    #[serde(flatten)]
    outcome: ReloadOutcome,
    status: ReloadStatus,
}

async fn reload(_: AdminAccess, State(state): State<AdminState>) -> Response {
    let outcome = state.store.reload(Trigger::Manual).await;
    let code = match outcome {
        ReloadOutcome::Failed { .. } => StatusCode::UNPROCESSABLE_ENTITY,
        ReloadOutcome::Loaded { .. } | ReloadOutcome::Unchanged { .. } => StatusCode::OK,
    };
    let body = ReloadResponse {
        outcome,
        status: state.store.status(),
    };
    (code, Json(body)).into_response()
}

/// Proof that the caller may use the admin endpoints.
#[derive(Debug, Clone, Copy)]
pub struct AdminAccess;

/// Why an admin request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AdminAuthError {
    /// A token is configured and the request carries none.
    #[error("missing bearer token: send `Authorization: Bearer <admin token>`")]
    MissingToken,
    /// The request's token is not the configured one.
    #[error("invalid bearer token")]
    InvalidToken,
    /// No token is configured and the client is not on a loopback address.
    #[error("the admin endpoints answer only loopback clients unless `admin.token` is configured")]
    NotLoopback,
}

impl IntoResponse for AdminAuthError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "error": {
                "message": self.to_string(),
                "type": "authentication_error",
            }
        });
        let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"sluice admin\""),
        );
        response
    }
}

impl<S> FromRequestParts<S> for AdminAccess
where
    S: Send + Sync,
    AdminState: FromRef<S>,
{
    type Rejection = AdminAuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let state = AdminState::from_ref(state);
        let result = authorize(parts, state.token.as_deref());
        if let Err(error) = result {
            let peer = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(addr)| addr.to_string());
            tracing::warn!(peer = peer.as_deref().unwrap_or("unknown"), path = %parts.uri.path(), %error, "admin request refused");
        }
        result
    }
}

fn authorize(parts: &Parts, token: Option<&str>) -> Result<AdminAccess, AdminAuthError> {
    match token {
        Some(expected) => {
            let presented = parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|value| value.to_str().ok())
                .and_then(bearer)
                .ok_or(AdminAuthError::MissingToken)?;
            if tokens_match(presented, expected) {
                Ok(AdminAccess)
            } else {
                Err(AdminAuthError::InvalidToken)
            }
        }
        None => {
            // Without connection info (a server not set up with it) the peer is unknown:
            // refuse rather than guess.
            let loopback = parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .is_some_and(|ConnectInfo(addr)| is_loopback(addr));
            if loopback {
                Ok(AdminAccess)
            } else {
                Err(AdminAuthError::NotLoopback)
            }
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Compares in constant time. Hashing first makes both sides the same length, so not even
/// the length of the configured token leaks through timing.
fn tokens_match(presented: &str, expected: &str) -> bool {
    let presented = Sha256::digest(presented.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    presented.as_slice().ct_eq(expected.as_slice()).into()
}

fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        std::net::IpAddr::V4(ip) => ip.is_loopback(),
        // `::ffff:127.0.0.1` is how a dual-stack socket sees an IPv4 loopback client.
        std::net::IpAddr::V6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

#[cfg(test)]
mod tests;
