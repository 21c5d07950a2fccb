//! The data plane: OpenAI-compatible front doors in which every request passes through the
//! ordered pipeline of DESIGN.md — authenticate, parse, decide, apply, forward, decide on the
//! response — with errors in the caller's own format.
//!
//! One policy snapshot serves a request end to end (prompt and response decisions), so a
//! reload in the middle of a call cannot mix two bundles.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::StreamExt as _;
use serde_json::{Map, Value, json};
use sluice_engine::input::{
    Content, DecisionInput, INPUT_VERSION, Message, Principal, RequestInfo, Resource, ResourceKind,
    Session, Surface,
};
use sluice_engine::{Decision, Policies};

use crate::config::{Config, ProviderKind};
use crate::reload::PolicyStore;

pub mod demo;
pub mod error;
pub mod keys;
pub mod openai;
pub mod sse;
pub mod upstream;

use error::{Format, GatewayError, Kind};
use keys::Keys;
use openai::{ChatRequest, EmbeddingsRequest};
use upstream::{Deployment, UpstreamError, Upstreams};

/// Request headers copied into the decision input (`request.headers`). Credentials never are.
const INPUT_HEADERS: [&str; 4] = [
    "user-agent",
    "x-request-id",
    "x-sluice-session",
    "openai-organization",
];

/// The header carrying a session id that ties surfaces together.
const SESSION_HEADER: &str = "x-sluice-session";

/// The data plane's shared state.
#[derive(Debug)]
pub struct Gateway {
    store: Arc<PolicyStore>,
    keys: Keys,
    upstreams: Upstreams,
    max_body_bytes: usize,
}

impl Gateway {
    /// Builds the gateway for a validated configuration; fails when a provider credential
    /// cannot be read.
    pub fn new(config: &Config, store: Arc<PolicyStore>) -> anyhow::Result<Gateway> {
        Ok(Gateway {
            store,
            keys: Keys::new(&config.keys),
            upstreams: Upstreams::new(config)?,
            max_body_bytes: config.limits.max_body_bytes,
        })
    }

    /// Whether any API key is configured (without one, every call is refused).
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }
}

/// The front-door routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        // Bodies are read with the configured limit, so that a 413 is in the caller's format.
        .layer(DefaultBodyLimit::disable())
        .with_state(gateway)
}

/// What one call carries through its phases.
struct Call {
    principal: Principal,
    policies: Arc<Policies>,
    request: RequestInfo,
    session: Session,
}

fn next_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{nanos:x}-{n:x}")
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Call {
    /// Phase 1, authenticate: the key's principal and the snapshot this call will use.
    fn start(
        gateway: &Gateway,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        client: Option<SocketAddr>,
    ) -> Result<Call, GatewayError> {
        let principal = gateway
            .keys
            .authenticate(headers)
            .map_err(|e| GatewayError::new(Kind::Authentication, e.message()))?
            .clone();
        let selected = INPUT_HEADERS
            .iter()
            .filter_map(|name| {
                let value = headers.get(*name)?.to_str().ok()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect();
        let session = Session {
            id: headers
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            ..Session::default()
        };
        Ok(Call {
            principal,
            policies: gateway.store.current(),
            request: RequestInfo {
                method: method.to_string(),
                path: path.to_string(),
                headers: selected,
                client_address: client.map(|a| a.ip().to_string()),
                stream: false,
            },
            session,
        })
    }

    fn input(
        &self,
        surface: Surface,
        action: &str,
        model: &str,
        content: Content,
    ) -> DecisionInput {
        DecisionInput {
            version: INPUT_VERSION.to_string(),
            id: next_id("dec"),
            time: now_rfc3339(),
            surface,
            action: action.to_string(),
            principal: self.principal.clone(),
            resource: Resource {
                kind: ResourceKind::Model,
                id: model.to_string(),
                ..Resource::default()
            },
            request: self.request.clone(),
            content,
            findings: Default::default(),
            usage: Default::default(),
            limits: Vec::new(),
            session: self.session.clone(),
        }
    }

    /// Phase 5, decide; a deny becomes the caller's 403 with the policies' reasons.
    fn decide(&self, input: &DecisionInput) -> Result<Decision, GatewayError> {
        let decision = self.policies.evaluate(input);
        tracing::info!(
            decision = %decision.id,
            surface = %input.surface,
            action = %input.action,
            key = %input.principal.key_id,
            model = %input.resource.id,
            allow = decision.allow,
            revision = %decision.revision,
            "decision"
        );
        if decision.allow {
            Ok(decision)
        } else {
            Err(GatewayError::new(
                Kind::PolicyDenied,
                denial_message(&decision),
            ))
        }
    }
}

/// The message of a denial: every deny and error reason, in order.
pub fn denial_message(decision: &Decision) -> String {
    let reasons: Vec<String> = decision
        .reasons
        .iter()
        .filter(|r| r.effect != sluice_engine::decision::Effect::Allow)
        .map(|r| format!("{} ({})", r.message, r.rule))
        .collect();
    if reasons.is_empty() {
        format!(
            "denied by policy: no policy allows this {} request (decision {})",
            decision.surface, decision.id
        )
    } else {
        format!(
            "denied by policy: {} (decision {})",
            reasons.join("; "),
            decision.id
        )
    }
}

/// Phase 2, the body: read with the size limit, then parsed as a JSON object.
async fn read_body(request: Request, limit: usize) -> Result<Map<String, Value>, GatewayError> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        GatewayError::new(
            Kind::TooLarge,
            format!("the request body is larger than the limit of {limit} bytes"),
        )
    };
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let bytes = match axum::body::to_bytes(request.into_body(), limit).await {
        Ok(bytes) => bytes,
        Err(e) => {
            let limited = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return Err(if limited {
                too_large()
            } else {
                GatewayError::new(Kind::InvalidRequest, "the request body could not be read")
            });
        }
    };
    Ok(openai::parse_object(&bytes)?)
}

/// Applies `redact` obligations that carry a pattern to every piece of text.
fn redactor(decision: &Decision) -> Result<Option<impl Fn(&str) -> String>, GatewayError> {
    let mut rules = Vec::new();
    for redaction in &decision.obligations.redact {
        if let Some(pattern) = &redaction.pattern {
            let regex = regex::Regex::new(pattern).map_err(|e| {
                GatewayError::new(
                    Kind::Internal,
                    format!(
                        "a policy asked to redact with an invalid pattern, so the request was stopped: {e}"
                    ),
                )
            })?;
            let replacement = redaction
                .replacement
                .clone()
                .unwrap_or_else(|| "[REDACTED]".to_string());
            rules.push((regex, replacement));
        }
    }
    if rules.is_empty() {
        return Ok(None);
    }
    Ok(Some(move |text: &str| {
        let mut out = text.to_string();
        for (regex, replacement) in &rules {
            out = regex
                .replace_all(&out, regex::NoExpand(replacement))
                .into_owned();
        }
        out
    }))
}

/// The deployments to try: the alias's, with a `route` obligation applied.
fn plan<'a>(
    gateway: &'a Gateway,
    requested: &str,
    decision: &Decision,
) -> Result<(String, Vec<&'a Deployment>), GatewayError> {
    let route = decision.obligations.route.as_ref();
    let alias = route
        .and_then(|r| r.model.clone())
        .filter(|m| gateway.upstreams.deployments(m).is_some())
        .unwrap_or_else(|| requested.to_string());
    let Some(deployments) = gateway.upstreams.deployments(&alias) else {
        return Err(GatewayError {
            param: Some("model".to_string()),
            ..GatewayError::new(
                Kind::ModelNotFound,
                format!("the model `{alias}` does not exist or you do not have access to it"),
            )
        });
    };
    let mut ordered: Vec<&Deployment> = deployments.iter().collect();
    if let Some(provider) = route.and_then(|r| r.provider.as_deref()) {
        // Preferred provider first, the others kept as fallbacks.
        ordered.sort_by_key(|d| d.provider.name != provider);
    }
    Ok((alias, ordered))
}

/// An upstream's answer, or the demo provider's.
enum Answer {
    Upstream(reqwest::Response),
    Local(Value),
    LocalStream(Vec<String>),
}

/// Phase 7, forward: each deployment in turn until one answers; only failures that happened
/// before the upstream accepted the request move on to the next.
async fn forward(
    deployments: &[&Deployment],
    path: &str,
    body: &Map<String, Value>,
    headers: &HeaderMap,
    local: impl Fn(&Deployment) -> Answer,
) -> Result<(Deployment, Answer), GatewayError> {
    let mut last = None;
    for deployment in deployments {
        if deployment.provider.kind == ProviderKind::Demo {
            return Ok(((*deployment).clone(), local(deployment)));
        }
        let mut body = body.clone();
        body.insert("model".to_string(), Value::String(deployment.model.clone()));
        match deployment
            .provider
            .post_json(path, &Value::Object(body), headers)
            .await
        {
            Ok(response) => return Ok(((*deployment).clone(), Answer::Upstream(response))),
            Err(error) => {
                tracing::warn!(provider = %deployment.provider.name, model = %deployment.model, error = ?error, "upstream call failed");
                let retryable = error.retryable();
                last = Some((deployment.provider.name.clone(), error));
                if !retryable {
                    break;
                }
            }
        }
    }
    Err(match last {
        None => GatewayError::new(
            Kind::Unavailable,
            "no deployment is available for this model",
        ),
        Some((name, error)) => upstream_error(&name, error),
    })
}

fn upstream_error(name: &str, error: UpstreamError) -> GatewayError {
    match error {
        UpstreamError::Connect(cause) => GatewayError::new(
            Kind::BadGateway,
            format!("upstream `{name}` could not be reached: {cause}"),
        ),
        UpstreamError::Timeout => GatewayError::new(
            Kind::Timeout,
            format!("upstream `{name}` did not answer in time"),
        ),
        UpstreamError::Status {
            status,
            retry_after,
            body,
        } => {
            let upstream_message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("error")
                        .and_then(|e| e.get("message"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            let detail = if upstream_message.is_empty() {
                String::new()
            } else {
                format!(": {upstream_message}")
            };
            let kind = if status == StatusCode::TOO_MANY_REQUESTS {
                Kind::RateLimited
            } else if status.is_server_error() {
                Kind::BadGateway
            } else {
                // A client error the upstream found (bad parameter, context too long, ...):
                // the caller's request is at fault, so it keeps the upstream's status class.
                Kind::InvalidRequest
            };
            GatewayError {
                retry_after,
                ..GatewayError::new(
                    kind,
                    format!("upstream `{name}` answered {}{detail}", status.as_u16()),
                )
            }
        }
    }
}

/// Headers for the upstream request from a `headers` obligation; invalid ones are skipped.
fn upstream_headers(decision: &Decision) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in &decision.obligations.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    }
    headers
}

fn with_decision_header(mut response: Response, decision: &Decision) -> Response {
    if let Ok(value) = HeaderValue::from_str(&decision.id) {
        response.headers_mut().insert("x-sluice-decision", value);
    }
    response
}

async fn chat_completions(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    match chat(&gateway, client, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(Format::OpenAi),
    }
}

async fn chat(
    gateway: &Gateway,
    client: SocketAddr,
    request: Request,
) -> Result<Response, GatewayError> {
    let mut call = Call::start(
        gateway,
        request.headers(),
        "POST",
        "/v1/chat/completions",
        Some(client),
    )?;
    let mut chat = ChatRequest::parse(read_body(request, gateway.max_body_bytes).await?)?;
    call.request.stream = chat.stream;

    let mut input = call.input(Surface::Prompt, "llm.chat", &chat.model, chat.content());
    let text_len: usize = input.content.messages.iter().map(|m| m.content.len()).sum();
    input.usage.input_tokens = (text_len as u64).div_ceil(4);
    let decision = call.decide(&input)?;
    if let Some(redact) = redactor(&decision)? {
        chat.rewrite_text(redact);
    }
    let (alias, deployments) = plan(gateway, &chat.model, &decision)?;
    let headers = upstream_headers(&decision);
    let stream = chat.stream;
    let local = |d: &Deployment| {
        if stream {
            Answer::LocalStream(demo::chat_stream(&d.model, &chat))
        } else {
            Answer::Local(demo::chat(&d.model, &chat))
        }
    };
    let (deployment, answer) = forward(
        &deployments,
        "/chat/completions",
        &chat.body,
        &headers,
        local,
    )
    .await?;
    let response_call = ResponseCall {
        call,
        alias,
        provider: deployment.provider.name.clone(),
    };
    let response = if stream {
        let events: futures_util::stream::BoxStream<'static, Result<bytes::Bytes, String>> =
            match answer {
                Answer::Upstream(response) => response
                    .bytes_stream()
                    .map(|r| r.map_err(|e| e.to_string()))
                    .boxed(),
                Answer::LocalStream(events) => futures_util::stream::iter(
                    events
                        .into_iter()
                        .map(|e| Ok(bytes::Bytes::from(sse::data_event(&e)))),
                )
                .boxed(),
                Answer::Local(_) => futures_util::stream::empty().boxed(),
            };
        stream_chat(response_call, events)
    } else {
        let body = match answer {
            Answer::Upstream(response) => {
                let bytes = response.bytes().await.map_err(|e| {
                    GatewayError::new(
                        Kind::BadGateway,
                        format!(
                            "upstream `{}` broke off its answer: {e}",
                            response_call.provider
                        ),
                    )
                })?;
                serde_json::from_slice::<Value>(&bytes).map_err(|_| {
                    GatewayError::new(
                        Kind::BadGateway,
                        format!(
                            "upstream `{}` answered with a body that is not JSON",
                            response_call.provider
                        ),
                    )
                })?
            }
            Answer::Local(body) => body,
            Answer::LocalStream(_) => Value::Null,
        };
        finish_chat(&response_call, body)?
    };
    Ok(with_decision_header(response, &decision))
}

/// What the response side needs from the call.
struct ResponseCall {
    call: Call,
    alias: String,
    provider: String,
}

impl ResponseCall {
    fn input(&self, messages: Vec<Message>, output_tokens: u64) -> DecisionInput {
        let mut input = self.call.input(
            Surface::Response,
            "llm.chat",
            &self.alias,
            Content {
                messages,
                ..Content::default()
            },
        );
        input.resource.provider = Some(self.provider.clone());
        input.usage.output_tokens = output_tokens;
        input
    }
}

/// Phase 8 for a whole answer: decide on it, apply redactions, return it.
fn finish_chat(call: &ResponseCall, mut body: Value) -> Result<Response, GatewayError> {
    let answer = openai::answer(&body);
    let input = call.input(answer.messages, answer.output_tokens);
    let decision = call.call.decide(&input)?;
    if let Some(redact) = redactor(&decision)?
        && let Some(Value::Array(choices)) = body.get_mut("choices")
    {
        for choice in choices.iter_mut() {
            if let Some(Value::String(text)) =
                choice.get_mut("message").and_then(|m| m.get_mut("content"))
            {
                *text = redact(text);
            }
        }
    }
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// Phase 8 for a stream: events pass through as they arrive while their text accumulates;
/// before the closing `[DONE]` the whole answer is decided on, and a deny (or an upstream
/// that breaks off) ends the stream with an error event in OpenAI's format instead.
fn stream_chat(
    call: ResponseCall,
    mut upstream: futures_util::stream::BoxStream<'static, Result<bytes::Bytes, String>>,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<bytes::Bytes, std::io::Error>>(16);
    tokio::spawn(async move {
        let mut splitter = sse::Splitter::default();
        let mut text = String::new();
        let mut output_tokens = 0;
        let mut done = false;
        let send = |bytes: Vec<u8>| {
            let tx = tx.clone();
            async move { tx.send(Ok(bytes::Bytes::from(bytes))).await.is_ok() }
        };
        let error_event = |message: &str, kind: Kind| {
            let error = GatewayError::new(kind, message);
            sse::data_event(&error.body(Format::OpenAi).to_string())
        };
        'outer: while let Some(chunk) = upstream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let message = format!("upstream `{}` broke off the stream: {e}", call.provider);
                    let _ = send(error_event(&message, Kind::BadGateway)).await;
                    return;
                }
            };
            let events = match splitter.push(&chunk) {
                Ok(events) => events,
                Err(sse::EventTooLarge) => {
                    let message = format!("upstream `{}` sent an oversized event", call.provider);
                    let _ = send(error_event(&message, Kind::BadGateway)).await;
                    return;
                }
            };
            for event in events {
                if event.data.trim() == "[DONE]" {
                    done = true;
                    break 'outer;
                }
                if let Ok(value) = serde_json::from_str::<Value>(&event.data) {
                    accumulate(&value, &mut text, &mut output_tokens);
                }
                if !send(event.raw).await {
                    // The client went away; stop reading from the upstream.
                    return;
                }
            }
        }
        let input = call.input(
            vec![Message {
                role: "assistant".to_string(),
                content: text,
                tool_calls: Vec::new(),
            }],
            output_tokens,
        );
        if let Err(error) = call.call.decide(&input) {
            let _ = send(sse::data_event(&error.body(Format::OpenAi).to_string())).await;
            return;
        }
        if done {
            let _ = send(sse::data_event("[DONE]")).await;
        } else {
            let message = format!(
                "upstream `{}` ended the stream before it was complete",
                call.provider
            );
            let _ = send(error_event(&message, Kind::BadGateway)).await;
        }
    });
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    }));
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(body)
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// Adds a chunk's text deltas and usage to what the stream has said so far.
fn accumulate(chunk: &Value, text: &mut String, output_tokens: &mut u64) {
    if let Some(Value::Array(choices)) = chunk.get("choices") {
        for choice in choices {
            if let Some(delta) = choice
                .get("delta")
                .and_then(|d| d.get("content"))
                .and_then(Value::as_str)
            {
                text.push_str(delta);
            }
        }
    }
    if let Some(tokens) = chunk
        .get("usage")
        .and_then(|u| u.get("completion_tokens"))
        .and_then(Value::as_u64)
    {
        *output_tokens = tokens;
    }
}

async fn embeddings(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    match embed(&gateway, client, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(Format::OpenAi),
    }
}

async fn embed(
    gateway: &Gateway,
    client: SocketAddr,
    request: Request,
) -> Result<Response, GatewayError> {
    let call = Call::start(
        gateway,
        request.headers(),
        "POST",
        "/v1/embeddings",
        Some(client),
    )?;
    let embeddings = EmbeddingsRequest::parse(read_body(request, gateway.max_body_bytes).await?)?;
    let mut input = call.input(
        Surface::Prompt,
        "llm.embed",
        &embeddings.model,
        Content {
            texts: embeddings.texts.clone(),
            ..Content::default()
        },
    );
    let chars: usize = embeddings.texts.iter().map(String::len).sum();
    input.usage.input_tokens = (chars as u64).div_ceil(4);
    let decision = call.decide(&input)?;
    let (_, deployments) = plan(gateway, &embeddings.model, &decision)?;
    let headers = upstream_headers(&decision);
    let local = |d: &Deployment| Answer::Local(demo::embeddings(&d.model, &embeddings.texts));
    let (deployment, answer) = forward(
        &deployments,
        "/embeddings",
        &embeddings.body,
        &headers,
        local,
    )
    .await?;
    let body = match answer {
        Answer::Upstream(response) => response.bytes().await.map_err(|e| {
            GatewayError::new(
                Kind::BadGateway,
                format!(
                    "upstream `{}` broke off its answer: {e}",
                    deployment.provider.name
                ),
            )
        })?,
        Answer::Local(body) => bytes::Bytes::from(body.to_string()),
        Answer::LocalStream(_) => bytes::Bytes::new(),
    };
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response());
    Ok(with_decision_header(response, &decision))
}

/// `GET /v1/models`: the aliases this key may use, each checked against the policies as a
/// chat request with no content would be.
async fn models(
    State(gateway): State<Arc<Gateway>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let call = match Call::start(&gateway, &headers, "GET", "/v1/models", Some(client)) {
        Ok(call) => call,
        Err(error) => return error.into_response(Format::OpenAi),
    };
    let data: Vec<Value> = gateway
        .upstreams
        .aliases()
        .filter(|alias| {
            let input = call.input(Surface::Prompt, "llm.chat", alias, Content::default());
            call.policies.evaluate(&input).allow
        })
        .map(|alias| json!({"id": alias, "object": "model", "created": 0, "owned_by": "sluice"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}
