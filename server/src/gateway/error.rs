//! Errors of the data plane, rendered in the caller's own API format with the status its
//! SDK maps to the right exception.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The API format a caller speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// OpenAI: `{"error": {"message", "type", "param", "code"}}`.
    OpenAi,
    /// Anthropic: `{"type": "error", "error": {"type", "message"}}`.
    Anthropic,
}

/// What went wrong, in terms both formats can express.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 400: the request is malformed.
    InvalidRequest,
    /// 401: no or unknown API key.
    Authentication,
    /// 403: a policy denied the request.
    PolicyDenied,
    /// 404: the model is not configured.
    ModelNotFound,
    /// 413: the body is larger than the limit.
    TooLarge,
    /// 429: rate limited by the upstream.
    RateLimited,
    /// 429: the caller's budget or rate limit in Sluice is used up.
    LimitExceeded,
    /// 502: the upstream failed or answered with an error Sluice cannot pass on.
    BadGateway,
    /// 503: no upstream is available.
    Unavailable,
    /// 504: the upstream did not answer in time.
    Timeout,
    /// 500: a fault inside Sluice.
    Internal,
}

impl Kind {
    /// The audit trail's `error_source`: who caused a call to fail.
    pub fn source(self) -> &'static str {
        match self {
            Kind::InvalidRequest
            | Kind::Authentication
            | Kind::PolicyDenied
            | Kind::ModelNotFound
            | Kind::TooLarge
            | Kind::LimitExceeded => "client",
            Kind::RateLimited | Kind::BadGateway | Kind::Unavailable | Kind::Timeout => "upstream",
            Kind::Internal => "internal",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> StatusCode {
        match self {
            Kind::InvalidRequest => StatusCode::BAD_REQUEST,
            Kind::Authentication => StatusCode::UNAUTHORIZED,
            Kind::PolicyDenied => StatusCode::FORBIDDEN,
            Kind::ModelNotFound => StatusCode::NOT_FOUND,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::RateLimited | Kind::LimitExceeded => StatusCode::TOO_MANY_REQUESTS,
            Kind::BadGateway => StatusCode::BAD_GATEWAY,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Anthropic's error `type`.
    fn anthropic(self) -> &'static str {
        match self {
            Kind::InvalidRequest => "invalid_request_error",
            Kind::Authentication => "authentication_error",
            Kind::PolicyDenied => "permission_error",
            Kind::ModelNotFound => "not_found_error",
            Kind::TooLarge => "request_too_large",
            Kind::RateLimited | Kind::LimitExceeded => "rate_limit_error",
            Kind::Unavailable => "overloaded_error",
            Kind::Timeout => "timeout_error",
            Kind::BadGateway | Kind::Internal => "api_error",
        }
    }

    /// OpenAI's `type` and `code`.
    fn openai(self) -> (&'static str, Option<&'static str>) {
        match self {
            Kind::InvalidRequest => ("invalid_request_error", None),
            Kind::Authentication => ("invalid_request_error", Some("invalid_api_key")),
            Kind::PolicyDenied => ("permission_error", Some("policy_denied")),
            Kind::ModelNotFound => ("invalid_request_error", Some("model_not_found")),
            Kind::TooLarge => ("invalid_request_error", Some("request_too_large")),
            Kind::RateLimited => ("rate_limit_error", Some("rate_limit_exceeded")),
            Kind::LimitExceeded => ("rate_limit_error", Some("budget_or_rate_limit_exceeded")),
            Kind::BadGateway => ("api_error", Some("upstream_error")),
            Kind::Unavailable => ("api_error", Some("upstream_unavailable")),
            Kind::Timeout => ("api_error", Some("upstream_timeout")),
            Kind::Internal => ("api_error", None),
        }
    }
}

/// An error for the caller.
#[derive(Debug, Clone)]
pub struct GatewayError {
    /// What kind of failure.
    pub kind: Kind,
    /// The message, safe to show the caller (never a secret or an upstream credential).
    pub message: String,
    /// The request parameter at fault.
    pub param: Option<String>,
    /// Seconds after which a retry may succeed (429, 503).
    pub retry_after: Option<u64>,
    /// Sluice's own limits, for rate-limit headers.
    pub headroom: Vec<crate::meter::Headroom>,
}

impl GatewayError {
    /// An error of `kind` with `message`.
    pub fn new(kind: Kind, message: impl Into<String>) -> GatewayError {
        GatewayError {
            kind,
            message: message.into(),
            param: None,
            retry_after: None,
            headroom: Vec::new(),
        }
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.kind.status()
    }

    /// The body in `format`.
    pub fn body(&self, format: Format) -> Value {
        match format {
            Format::OpenAi => {
                let (kind, code) = self.kind.openai();
                super::openai::error_body(&self.message, kind, self.param.as_deref(), code)
            }
            Format::Anthropic => super::anthropic::error_body(self.kind.anthropic(), &self.message),
        }
    }

    /// The error as one server-sent event that ends a stream in `format`.
    pub fn stream_event(&self, format: Format) -> Vec<u8> {
        let body = self.body(format).to_string();
        match format {
            Format::OpenAi => super::sse::data_event(&body),
            Format::Anthropic => format!("event: error\ndata: {body}\n\n").into_bytes(),
        }
    }

    /// The whole response in `format`.
    pub fn into_response(self, format: Format) -> Response {
        let mut response = (self.status(), axum::Json(self.body(format))).into_response();
        // A bad key is refused, and an oversized body cut short, before the body is read:
        // the connection ends with the answer, and says so, so the client does not send its
        // next request on it.
        if matches!(self.kind, Kind::Authentication | Kind::TooLarge) {
            response = closing(response);
        }
        if let Some(seconds) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        insert_rate_limits(
            response.headers_mut(),
            format,
            &self.headroom,
            crate::meter::now(),
        );
        response
    }
}

/// `response` with `connection: close`: an answer sent before the request's body was read
/// ends its connection, and says so, so the client does not send its next request on a
/// connection the server is closing.
pub(crate) fn closing(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Rate-limit headers as each API sends them, for the tightest request and token limits:
/// OpenAI's `x-ratelimit-{limit,remaining,reset}-{requests,tokens}` (reset as a duration,
/// e.g. `6m0s`), Anthropic's `anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}`
/// (reset as an RFC 3339 time). Cost budgets have no standard header.
pub fn insert_rate_limits(
    headers: &mut axum::http::HeaderMap,
    format: Format,
    headroom: &[crate::meter::Headroom],
    now: i64,
) {
    use crate::meter::Kind as Counted;
    for h in headroom {
        let what = match h.kind {
            Counted::Requests => "requests",
            Counted::Tokens => "tokens",
            Counted::CostUsd | Counted::Concurrent => continue,
        };
        let whole = |n: f64| format!("{:.0}", n.max(0.0).floor());
        let (names, reset) = match format {
            Format::OpenAi => {
                let seconds = (h.reset_at - now).max(0);
                let (minutes, seconds) = (seconds / 60, seconds % 60);
                let reset = if minutes > 0 {
                    format!("{minutes}m{seconds}s")
                } else {
                    format!("{seconds}s")
                };
                (
                    [
                        format!("x-ratelimit-limit-{what}"),
                        format!("x-ratelimit-remaining-{what}"),
                        format!("x-ratelimit-reset-{what}"),
                    ],
                    reset,
                )
            }
            Format::Anthropic => (
                [
                    format!("anthropic-ratelimit-{what}-limit"),
                    format!("anthropic-ratelimit-{what}-remaining"),
                    format!("anthropic-ratelimit-{what}-reset"),
                ],
                time::OffsetDateTime::from_unix_timestamp(h.reset_at)
                    .ok()
                    .and_then(|t| {
                        t.format(&time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .unwrap_or_default(),
            ),
        };
        for (name, value) in names
            .iter()
            .zip([whole(h.limit), whole(h.remaining), reset])
        {
            if let (Ok(name), Ok(value)) = (
                axum::http::HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(name, value);
            }
        }
    }
}

impl From<super::openai::BadRequest> for GatewayError {
    fn from(bad: super::openai::BadRequest) -> Self {
        GatewayError {
            kind: Kind::InvalidRequest,
            message: bad.message,
            param: bad.param,
            retry_after: None,
            headroom: Vec::new(),
        }
    }
}
