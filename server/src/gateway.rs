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
use serde_json::{Map, Value, json};
use sluice_engine::decision::RedactMode;
use sluice_engine::input::{
    Content, DecisionInput, INPUT_VERSION, Principal, RequestInfo, Resource, ResourceKind, Session,
    Surface,
};
use sluice_engine::{Decision, Policies};

use crate::audit::{self, Audit};
use crate::config::{Config, ProviderKind};
use crate::meter;
use crate::reload::PolicyStore;

mod a2a;
pub mod anthropic;
pub mod bedrock;
mod converse;
pub mod demo;
pub mod error;
mod guard;
mod jsonrpc;
pub mod keys;
pub mod mcp;
pub mod openai;
pub mod routing;
pub mod sse;
pub mod stream;
pub mod translate;
pub mod upstream;
pub mod window;

use error::{Format, GatewayError, Kind};
use keys::Keys;
use openai::EmbeddingsRequest;
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
    audit: Option<Arc<Audit>>,
    keys: Keys,
    upstreams: Upstreams,
    max_body_bytes: usize,
    /// The key of `mode: hash` redactions.
    hash_key: Option<Arc<[u8]>>,
    /// Budgets and rate limits.
    meter: Arc<crate::meter::Ledger>,
    /// Model prices.
    prices: meter::prices::Prices,
    /// Sessions across surfaces.
    sessions: Arc<crate::sessions::Sessions>,
    /// The MCP proxy.
    mcp: mcp::Mcp,
    /// The A2A proxy.
    a2a: a2a::A2a,
    /// The URL callers reach Sluice at, if configured.
    public_url: Option<String>,
}

impl Gateway {
    /// Builds the gateway for a validated configuration; fails when a provider credential
    /// cannot be read.
    pub fn new(
        config: &Config,
        store: Arc<PolicyStore>,
        audit: Option<Arc<Audit>>,
    ) -> anyhow::Result<Gateway> {
        Ok(Gateway {
            store,
            audit,
            keys: Keys::new(&config.keys),
            upstreams: Upstreams::new(config)?,
            max_body_bytes: config.limits.max_body_bytes,
            meter: crate::meter::Ledger::with_store(
                config.budgets.clone(),
                meter::shared::Store::new(&config.budget_store)
                    .map_err(|e| anyhow::anyhow!("budget_store.redis_url: {e}"))?,
                jiff::tz::TimeZone::get(&config.budget_time_zone).map_err(|e| {
                    anyhow::anyhow!("budget_time_zone `{}`: {e}", config.budget_time_zone)
                })?,
            ),
            prices: meter::prices::Prices::new(&config.prices),
            sessions: Arc::new(
                crate::sessions::Sessions::new(&config.sessions)
                    .map_err(|e| anyhow::anyhow!("sessions.store.redis_url: {e}"))?,
            ),
            mcp: mcp::Mcp::new(config)?,
            a2a: a2a::A2a::new(&config.a2a_agents)?,
            public_url: config.public_url.clone(),
            hash_key: config
                .redaction
                .hash_key_file
                .as_deref()
                .map(read_hash_key)
                .transpose()?,
        })
    }

    /// The budget and rate-limit ledger.
    pub fn meter(&self) -> Arc<meter::Ledger> {
        Arc::clone(&self.meter)
    }

    /// What `input_tokens` of prompt cost on the dearest deployment of `alias`.
    pub(crate) fn prompt_cost(&self, alias: &str, input_tokens: u64) -> f64 {
        self.upstreams
            .deployments(alias)
            .unwrap_or_default()
            .iter()
            .filter_map(|d| self.prices.of(&d.model))
            .map(|price| {
                price.cost(meter::prices::Tokens {
                    input: input_tokens,
                    ..Default::default()
                })
            })
            .fold(0.0, f64::max)
    }

    /// The upstream model of the alias's first deployment (what its prompt is counted
    /// for); the alias itself when it has none.
    pub(crate) fn upstream_model<'a>(&'a self, alias: &'a str) -> &'a str {
        self.upstreams
            .deployments(alias)
            .and_then(|d| d.first())
            .map_or(alias, |d| d.model.as_str())
    }

    /// Whether any API key is configured (without one, every call is refused).
    pub fn has_keys(&self) -> bool {
        !self.keys.is_empty()
    }
}

/// Reads the hash-redaction key: the file's bytes, trimmed of surrounding whitespace.
fn read_hash_key(path: &std::path::Path) -> anyhow::Result<Arc<[u8]>> {
    let bytes = std::fs::read(path).map_err(|e| {
        anyhow::anyhow!(
            "cannot read redaction.hash_key_file `{}`: {e}",
            path.display()
        )
    })?;
    let key = bytes.trim_ascii();
    if key.len() < 32 {
        anyhow::bail!(
            "redaction.hash_key_file `{}` holds {} bytes; a hash key needs at least 32",
            path.display(),
            key.len()
        );
    }
    Ok(Arc::from(key))
}

/// The front-door routes.
pub fn router(gateway: Arc<Gateway>) -> Router {
    Router::new()
        .route("/v1/chat/completions", post(converse::chat_completions))
        .route("/v1/messages", post(converse::messages))
        .route("/v1/messages/count_tokens", post(converse::count_tokens))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/models", get(models))
        .route("/v1/guard", post(guard::guard))
        .route(
            "/mcp",
            post(mcp::federated).get(mcp::no_stream).delete(mcp::end),
        )
        .route(
            "/mcp/{server}",
            post(mcp::single).get(mcp::listen).delete(mcp::end),
        )
        .route("/a2a/{agent}", post(a2a::rpc))
        .route("/a2a/{agent}/.well-known/agent-card.json", get(a2a::card))
        // Bodies are read with the configured limit, so that a 413 is in the caller's format.
        .layer(DefaultBodyLimit::disable())
        .with_state(gateway)
}

/// What one call carries through its phases.
struct Call {
    /// The call's id: its request and response decisions share it in the audit trail.
    id: String,
    started: std::time::Instant,
    principal: Principal,
    policies: Arc<Policies>,
    request: RequestInfo,
    session: Session,
    audit: Option<Arc<Audit>>,
    /// Placeholders of `mode: tokenize` redactions, restored in the answer.
    vault: SharedVault,
    /// The protocol session the call belongs to (a client's MCP session with Sluice).
    protocol_session: Option<String>,
    /// The gateway's sessions, for the flags this call's decisions set.
    sessions: Arc<crate::sessions::Sessions>,
    /// Writes of this call's flags to the shared session store, still running.
    sharing: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

/// How long an answer waits for its session flags to reach the shared store; a write
/// still running after that carries on (and retries) behind the answer.
const FLAG_SHARE_WAIT: std::time::Duration = std::time::Duration::from_secs(1);

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
    async fn start(
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
        let session = gateway
            .sessions
            .open(
                &principal.key_id,
                headers.get(SESSION_HEADER).and_then(|v| v.to_str().ok()),
            )
            .await
            .map_err(session_error)?;
        Ok(Call {
            id: next_id("req"),
            started: std::time::Instant::now(),
            principal,
            audit: gateway.audit.clone(),
            policies: gateway.store.current(),
            request: RequestInfo {
                method: method.to_string(),
                path: path.to_string(),
                headers: selected,
                client_address: client.map(|a| a.ip().to_string()),
                stream: false,
            },
            session,
            vault: SharedVault::default(),
            protocol_session: None,
            sessions: Arc::clone(&gateway.sessions),
            sharing: Arc::default(),
        })
    }

    fn input(
        &self,
        surface: Surface,
        action: &str,
        model: &str,
        content: Content,
    ) -> DecisionInput {
        let mut input = DecisionInput {
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
        };
        // Phase 4, inspect: what detectors find in the content is part of the input.
        sluice_engine::inspect::inspect_input(&mut input);
        input
    }

    /// Records how a call whose prompt was allowed ended without an answer to decide on
    /// (an upstream failure or timeout, an unknown alias, a broken answer): a `response`
    /// row with `allow = false`, the error as its reason and `error_source` set, so every
    /// allowed call has its outcome in the audit trail. Returns the error unchanged.
    fn failed(
        &self,
        prompt: &DecisionInput,
        provider: Option<&str>,
        error: GatewayError,
    ) -> GatewayError {
        self.failed_on(Surface::Response, prompt, provider, error)
    }

    /// [`failed`](Self::failed), with the row on `surface` (an MCP tool call that failed
    /// upstream is a `tool` row).
    fn failed_on(
        &self,
        surface: Surface,
        prompt: &DecisionInput,
        provider: Option<&str>,
        error: GatewayError,
    ) -> GatewayError {
        let Some(audit) = &self.audit else {
            return error;
        };
        let mut input = self.input(
            surface,
            &prompt.action,
            &prompt.resource.id,
            Content::default(),
        );
        input.resource.provider = provider.map(str::to_string);
        input.resource.kind = prompt.resource.kind;
        input.resource.server = prompt.resource.server.clone();
        let source = error.kind.source();
        let decision = Decision {
            version: prompt.version.clone(),
            id: input.id.clone(),
            surface,
            allow: false,
            reasons: vec![sluice_engine::Reason {
                backend: sluice_engine::Backend::Gateway,
                effect: sluice_engine::Effect::Error,
                file: None,
                rule: format!("gateway.{source}"),
                message: error.message.clone(),
            }],
            obligations: Default::default(),
            revision: self.policies.revision().to_string(),
            timing: Default::default(),
        };
        let facts = audit::CallFacts {
            request_id: self.id.clone(),
            total_ms: self.started.elapsed().as_secs_f64() * 1e3,
            upstream_status: (source == "upstream")
                .then(|| i32::from(error.kind.status().as_u16())),
            error_source: Some(source),
            ..Default::default()
        };
        // The caller gets the original error either way; a refused row is counted and
        // logged by the writer's handle.
        let _ = audit.record_decision(&input, &decision, facts);
        error
    }

    /// Phase 4, meter: the state of every budget and rate limit of the principal, for the
    /// policies to see (`input.limits`).
    async fn meter(
        &self,
        gateway: &Gateway,
        input: &mut DecisionInput,
    ) -> Result<(), GatewayError> {
        let subject = meter::Subject::of(&self.principal);
        match gateway.meter.state_async(&subject, meter::now()).await {
            Ok(limits) => input.limits = limits,
            Err(error) => {
                unmetered(gateway, &error)?;
            }
        }
        Ok(())
    }

    /// Phase 4 for a model call: the prompt's `tokens` (counted exactly or estimated) and
    /// what they cost on the alias's dearest deployment, then [`meter`](Self::meter).
    async fn meter_prompt(
        &self,
        gateway: &Gateway,
        input: &mut DecisionInput,
        alias: &str,
        (tokens, exact): (u64, bool),
    ) -> Result<(), GatewayError> {
        input.usage.input_tokens = tokens;
        input.usage.cost_usd = gateway.prompt_cost(alias, tokens);
        input.usage.estimated = !exact;
        self.meter(gateway, input).await
    }

    /// Reserves an allowed call's estimate (one request, its input tokens and what they cost
    /// on the alias's dearest deployment), and any `throttle` obligation's per-minute limits,
    /// against every
    /// limit of the principal; a limit without room refuses the call with 429 and a
    /// `retry-after` of the time its window resets, recorded like any failed call.
    async fn reserve(
        &self,
        gateway: &Gateway,
        input: &DecisionInput,
        alias: &str,
        decision: &Decision,
    ) -> Result<meter::Reservation, GatewayError> {
        let estimate = meter::Usage {
            tokens: input.usage.input_tokens as f64,
            cost_usd: gateway.prompt_cost(alias, input.usage.input_tokens),
        };
        let reserved = gateway
            .meter
            .reserve_async(
                &meter::Subject::of(&self.principal),
                estimate,
                meter::now(),
                decision.obligations.throttle.as_ref(),
            )
            .await;
        let reserved = match reserved {
            Ok(reserved) => reserved,
            Err(error) => {
                return unmetered(gateway, &error)
                    .map(|()| gateway.meter.unmetered())
                    .map_err(|e| self.failed(input, None, e));
            }
        };
        reserved.map_err(|exceeded| {
            let limit = &exceeded.limit;
            let mut error = GatewayError::new(
                Kind::LimitExceeded,
                format!(
                    "{} limit of {} `{}` reached: {} of {} used this {}; retry in {} s",
                    limit.kind,
                    limit.scope,
                    limit.id,
                    limit.used,
                    limit.limit,
                    limit.window,
                    exceeded.retry_after_s
                ),
            );
            error.retry_after = Some(exceeded.retry_after_s);
            error.headroom = vec![exceeded.headroom];
            self.failed(input, None, error)
        })
    }

    /// Phase 5, decide; a deny becomes the caller's 403 with the policies' reasons.
    fn decide(&self, input: &DecisionInput) -> Result<Decision, GatewayError> {
        self.decide_with(input, &audit::CallFacts::default())
    }

    /// Phase 5 where the answer can wait: [`Call::decide`], then the session flags the
    /// decision set reach the replicas' shared store before the answer leaves.
    async fn decide_and_share(&self, input: &DecisionInput) -> Result<Decision, GatewayError> {
        let decided = self.decide(input);
        self.flags_shared().await;
        decided
    }

    /// Waits (a bounded time) for this call's session flags to reach the shared store, so
    /// that the agent's next call, on any replica, sees them.
    async fn flags_shared(&self) {
        let pending: Vec<_> = std::mem::take(
            &mut *self
                .sharing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for write in pending {
            let _ = tokio::time::timeout(FLAG_SHARE_WAIT, write).await;
        }
    }

    /// Phase 5 (and 9): decide, then record the decision in the audit trail before its
    /// effect; a decision that cannot be recorded fails the call closed.
    fn decide_with(
        &self,
        input: &DecisionInput,
        facts: &audit::CallFacts,
    ) -> Result<Decision, GatewayError> {
        let decision = self.record(input, facts)?;
        if decision.allow {
            Ok(decision)
        } else {
            Err(GatewayError::new(
                Kind::PolicyDenied,
                denial_message(&decision),
            ))
        }
    }

    /// Decides, sets the session flags the decision asks for, and records the decision in
    /// the audit trail; a decision that cannot be recorded fails the call closed. A deny
    /// is returned like an allow.
    fn record(
        &self,
        input: &DecisionInput,
        facts: &audit::CallFacts,
    ) -> Result<Decision, GatewayError> {
        let decision = self.policies.evaluate(input);
        if let Some(write) = self.sessions.flag(
            &self.principal.key_id,
            self.session.id.as_deref(),
            &decision.obligations.flags,
        ) {
            self.sharing
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(write);
        }
        if let Some(audit) = &self.audit {
            let facts = audit::CallFacts {
                request_id: self.id.clone(),
                total_ms: self.started.elapsed().as_secs_f64() * 1e3,
                ..facts.clone()
            };
            audit
                .record_decision(input, &decision, facts)
                .map_err(|e| GatewayError::new(Kind::Unavailable, e.to_string()))?;
        }
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
        Ok(decision)
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

/// How much of an oversized body is still read (and discarded) before answering 413, so
/// that a client that is still sending reads the answer instead of a broken pipe (as
/// nginx's lingering close does). Larger bodies are refused on their `Content-Length`.
const DRAIN_BYTES: usize = 64 * 1024 * 1024;

/// How long draining an oversized body may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Phase 2, the body: read with the size limit, then parsed as a JSON object.
async fn read_body(request: Request, limit: usize) -> Result<Map<String, Value>, GatewayError> {
    Ok(openai::parse_object(&read_bytes(request, limit).await?)?)
}

/// The body's bytes, read with the size limit (413 past it).
async fn read_bytes(request: Request, limit: usize) -> Result<Vec<u8>, GatewayError> {
    use http_body_util::BodyExt as _;
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
    if declared.is_some_and(|n| n > limit.saturating_add(DRAIN_BYTES)) {
        return Err(too_large());
    }
    let mut body = request.into_body();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    let mut drain_until = None;
    loop {
        let frame = match drain_until {
            None => body.frame().await,
            // Past the limit: keep reading only for a while, and only so much.
            Some(deadline) => match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(frame) => frame,
                Err(_) => break,
            },
        };
        let Some(frame) = frame else { break };
        let Ok(frame) = frame else {
            if seen > limit {
                break;
            }
            return Err(GatewayError::new(
                Kind::InvalidRequest,
                "the request body could not be read",
            ));
        };
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= limit {
                bytes.extend_from_slice(&data);
            } else if seen > limit.saturating_add(DRAIN_BYTES) {
                break;
            } else if drain_until.is_none() {
                bytes = Vec::new();
                drain_until = Some(tokio::time::Instant::now() + DRAIN_TIME);
            }
        }
    }
    if seen > limit {
        return Err(too_large());
    }
    Ok(bytes)
}

/// The placeholders of `mode: tokenize` redactions within one call, and the values they
/// stand for.
#[derive(Debug, Default)]
pub struct Vault {
    by_value: std::collections::HashMap<(String, String), String>,
    by_placeholder: std::collections::HashMap<String, String>,
    counts: std::collections::HashMap<String, usize>,
}

impl Vault {
    /// The placeholder for `value` of `class`, the same one each time.
    fn token(&mut self, class: &str, value: &str) -> String {
        let key = (class.to_string(), value.to_string());
        if let Some(placeholder) = self.by_value.get(&key) {
            return placeholder.clone();
        }
        let n = self.counts.entry(class.to_string()).or_default();
        *n += 1;
        let placeholder = format!("[{}_{n}]", class.to_uppercase());
        self.by_placeholder
            .insert(placeholder.clone(), value.to_string());
        self.by_value.insert(key, placeholder.clone());
        placeholder
    }

    /// `text` with every placeholder this call handed out put back to its value.
    pub fn restore(&self, text: &str) -> String {
        if self.by_placeholder.is_empty() || !text.contains('[') {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find('[') {
            let (before, from) = rest.split_at(open);
            out.push_str(before);
            let restored = from.find(']').and_then(|close| {
                let candidate = from.get(..=close)?;
                Some((self.by_placeholder.get(candidate)?, close + 1))
            });
            match restored {
                Some((value, len)) => {
                    out.push_str(value);
                    rest = from.get(len..).unwrap_or_default();
                }
                None => {
                    out.push('[');
                    rest = from.get(1..).unwrap_or_default();
                }
            }
        }
        out.push_str(rest);
        out
    }
}

/// A call's vault, shared by its request and response sides.
pub type SharedVault = Arc<std::sync::Mutex<Vault>>;

/// What a class redaction replaces a match with.
#[derive(Debug, Clone)]
struct ClassRule {
    mode: RedactMode,
    replacement: Option<String>,
}

/// A decision's `redact` obligations, ready to apply to text: detector classes first
/// (masked, partly starred, or hashed with the team's key), then patterns.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    classes: std::collections::HashMap<String, ClassRule>,
    patterns: Vec<(regex::Regex, String)>,
    team: String,
    hash_key: Option<Arc<[u8]>>,
    vault: SharedVault,
    /// Whole texts named by `pointer` redactions, and what replaces them.
    whole: Vec<(String, String)>,
}

impl Redactor {
    /// Scans `text` and redacts it.
    pub fn redact(&self, text: &str) -> String {
        // A text a pointer names is replaced whole (a multi-part message shows as its
        // parts joined by newlines, so each part of it is replaced too).
        for (target, replacement) in &self.whole {
            if !text.is_empty() && (text == target || target.split('\n').any(|part| part == text)) {
                return replacement.clone();
            }
        }
        if self.classes.is_empty() {
            return self.patterns_only(text.to_string());
        }
        self.redact_scanned(text, &sluice_engine::inspect::scan(text))
    }

    /// Redacts `text` whose findings are already known.
    pub fn redact_scanned(
        &self,
        text: &str,
        findings: &[sluice_engine::inspect::Finding],
    ) -> String {
        let out = sluice_engine::inspect::replace_findings(text, findings, |finding, value| {
            let rule = self.classes.get(finding.class)?;
            if rule.mode == RedactMode::Tokenize {
                let mut vault = self
                    .vault
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                return Some(vault.token(finding.class, value));
            }
            Some(replacement(
                rule,
                finding.class,
                value,
                &self.team,
                self.hash_key.as_deref(),
            ))
        });
        self.patterns_only(out)
    }

    fn patterns_only(&self, mut text: String) -> String {
        for (regex, replacement) in &self.patterns {
            text = regex
                .replace_all(&text, regex::NoExpand(replacement))
                .into_owned();
        }
        text
    }

    fn is_empty(&self) -> bool {
        self.classes.is_empty() && self.patterns.is_empty() && self.whole.is_empty()
    }
}

/// The redactor of a decision's `redact` obligations on `input`; `None` when it asks for
/// none.
fn redactor(
    decision: &Decision,
    input: &DecisionInput,
    call: &Call,
    hash_key: Option<&Arc<[u8]>>,
) -> Result<Option<Redactor>, GatewayError> {
    let mut redactor = Redactor {
        team: call.principal.team.clone().unwrap_or_default(),
        hash_key: hash_key.cloned(),
        vault: Arc::clone(&call.vault),
        ..Redactor::default()
    };
    let mut input_value: Option<Value> = None;
    for redaction in &decision.obligations.redact {
        if let Some(class) = &redaction.class {
            let mode = redaction.mode.unwrap_or(RedactMode::Mask);
            if mode == RedactMode::Hash && hash_key.is_none() {
                return Err(GatewayError::new(
                    Kind::Internal,
                    format!(
                        "a policy asked to hash `{class}` values, but the gateway has no `redaction.hash_key_file`, so the request was stopped"
                    ),
                ));
            }
            redactor.classes.insert(
                class.clone(),
                ClassRule {
                    mode,
                    replacement: redaction.replacement.clone(),
                },
            );
        }
        if let Some(pointer) = &redaction.pointer {
            let replacement = redaction
                .replacement
                .clone()
                .unwrap_or_else(|| "[REDACTED]".to_string());
            // The input as JSON, serialised once for all of the decision's pointers.
            let value = input_value
                .get_or_insert_with(|| serde_json::to_value(input).unwrap_or(Value::Null));
            match value.pointer(pointer).cloned() {
                // Nothing there: nothing to redact.
                None | Some(Value::Null) => {}
                Some(Value::String(text)) => redactor.whole.push((text, replacement)),
                Some(_) => {
                    return Err(GatewayError::new(
                        Kind::Internal,
                        format!(
                            "a policy asked to redact `{pointer}`, which is not a text the gateway can rewrite, so the request was stopped"
                        ),
                    ));
                }
            }
        }
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
            redactor.patterns.push((regex, replacement));
        }
    }
    Ok((!redactor.is_empty()).then_some(redactor))
}

/// The text a redacted match becomes.
fn replacement(
    rule: &ClassRule,
    class: &str,
    value: &str,
    team: &str,
    hash_key: Option<&[u8]>,
) -> String {
    match rule.mode {
        RedactMode::Mask => rule
            .replacement
            .clone()
            .unwrap_or_else(|| format!("[REDACTED:{class}]")),
        RedactMode::Partial => {
            let kept: Vec<char> = value.chars().filter(|c| c.is_alphanumeric()).collect();
            let tail: String = kept.iter().skip(kept.len().saturating_sub(4)).collect();
            format!("****{tail}")
        }
        RedactMode::Hash => {
            use hmac::Mac;
            let digest = hash_key
                .and_then(|key| hmac::Hmac::<sha2::Sha256>::new_from_slice(key).ok())
                .map(|mut mac| {
                    mac.update(team.as_bytes());
                    mac.update(&[0]);
                    mac.update(value.as_bytes());
                    mac.finalize().into_bytes()
                });
            match digest {
                Some(digest) => {
                    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
                    format!("[{}:{hex}]", class.to_uppercase())
                }
                // Unreachable: the redactor refuses hashing without a key.
                None => format!("[REDACTED:{class}]"),
            }
        }
        // Handled by the redactor, which holds the call's vault.
        RedactMode::Tokenize => format!("[REDACTED:{class}]"),
    }
}

/// Where a call goes: the alias (a `route` obligation may replace it) and a provider to
/// prefer.
struct Plan {
    alias: String,
    prefer: Option<String>,
}

fn plan(gateway: &Gateway, requested: &str, decision: &Decision) -> Result<Plan, GatewayError> {
    let route = decision.obligations.route.as_ref();
    let alias = route
        .and_then(|r| r.model.clone())
        .filter(|m| gateway.upstreams.deployments(m).is_some())
        .unwrap_or_else(|| requested.to_string());
    if gateway.upstreams.deployments(&alias).is_none() {
        return Err(GatewayError {
            param: Some("model".to_string()),
            ..GatewayError::new(
                Kind::ModelNotFound,
                format!("the model `{alias}` does not exist or you do not have access to it"),
            )
        });
    }
    Ok(Plan {
        alias,
        prefer: route.and_then(|r| r.provider.clone()),
    })
}

/// An upstream's answer, or the demo provider's.
enum Answer {
    Upstream(reqwest::Response),
    Local(Value),
    LocalStream(Vec<String>),
}

/// The deployment that answered, its answer, and the in-flight count it holds until the
/// answer is consumed.
struct Forwarded {
    deployment: Deployment,
    answer: Answer,
    in_flight: routing::InFlight,
}

/// When the shared budget store cannot be reached: `fail_closed` refuses the call with 503,
/// `fail_open` lets it through unmetered (logged either way).
fn unmetered(gateway: &Gateway, error: &meter::resp::RedisError) -> Result<(), GatewayError> {
    match gateway.meter.on_error() {
        meter::shared::OnError::FailOpen => {
            tracing::warn!(%error, "budgets unavailable; the call goes through unmetered (budget_store.on_error: fail_open)");
            Ok(())
        }
        meter::shared::OnError::FailClosed => {
            tracing::error!(%error, "budgets unavailable; refusing the call (budget_store.on_error: fail_closed)");
            Err(shared_state_unavailable("budgets and rate limits", error))
        }
    }
}

/// A session that cannot be opened: a 400 for an id that is too long, a 503 while the
/// shared store cannot be read.
fn session_error(error: crate::sessions::OpenError) -> GatewayError {
    match error {
        crate::sessions::OpenError::Unavailable(e) => shared_state_unavailable("sessions", &e),
        too_long => GatewayError::new(Kind::InvalidRequest, too_long.to_string()),
    }
}

/// The 503 of a call refused because state shared by the replicas (`what`) cannot be read.
fn shared_state_unavailable(what: &str, error: &meter::resp::RedisError) -> GatewayError {
    GatewayError {
        retry_after: Some(1),
        ..GatewayError::new(
            Kind::Unavailable,
            format!("{what} cannot be checked right now ({error}); try again shortly"),
        )
    }
}

/// Phase 7, forward. Within the alias and then each fallback alias, every attempt picks a
/// deployment whose breaker is closed by power of two choices, preferring ones this call
/// has not tried yet; failures that happened before the upstream accepted the call
/// (connection, timeout, 429, 5xx) are retried after a jittered backoff, other errors go
/// straight back to the caller.
async fn forward(
    gateway: &Gateway,
    plan: &Plan,
    headers: &HeaderMap,
    build: impl Fn(&Deployment) -> Result<(String, Value), GatewayError>,
    local: impl Fn(&Deployment) -> Result<Answer, GatewayError>,
) -> Result<Forwarded, GatewayError> {
    let config = gateway.upstreams.routing;
    let mut last = None;
    let mut soonest_open: Option<std::time::Instant> = None;
    let mut attempt = 0u32;
    for (_, deployments) in gateway.upstreams.tiers(&plan.alias) {
        let mut failed = std::collections::BTreeSet::new();
        let mut tier_attempts = 0;
        while tier_attempts <= config.retries {
            let now = std::time::Instant::now();
            let available: Vec<(usize, &Deployment)> = deployments
                .iter()
                .enumerate()
                .filter(|(_, d)| d.health.available(now))
                .collect();
            for d in deployments {
                if let Some(until) = d.health.open_until() {
                    soonest_open = Some(soonest_open.map_or(until, |s| s.min(until)));
                }
            }
            let untried: Vec<(usize, &Deployment)> = available
                .iter()
                .copied()
                .filter(|(i, _)| !failed.contains(i))
                .collect();
            let pool = if untried.is_empty() {
                available
            } else {
                untried
            };
            let preferred: Vec<(usize, &Deployment)> = pool
                .iter()
                .copied()
                .filter(|(_, d)| Some(&d.provider.name) == plan.prefer.as_ref())
                .collect();
            let pool = if preferred.is_empty() {
                pool
            } else {
                preferred
            };
            let candidates: Vec<(usize, u32, &routing::Health)> = pool
                .iter()
                .map(|(i, d)| (*i, d.weight, &*d.health))
                .collect();
            let Some(index) = routing::power_of_two(&candidates) else {
                break;
            };
            let Some(deployment) = deployments.get(index) else {
                break;
            };
            tier_attempts += 1;
            if !deployment.health.admit(now) {
                // Another call took the half-open probe first.
                failed.insert(index);
                continue;
            }
            if attempt > 0 {
                tokio::time::sleep(routing::backoff(&config, attempt)).await;
            }
            attempt += 1;
            let in_flight = deployment.health.start();
            let started = std::time::Instant::now();
            if deployment.provider.kind == ProviderKind::Demo {
                deployment.health.record(
                    true,
                    started.elapsed(),
                    &config,
                    std::time::Instant::now(),
                );
                return Ok(Forwarded {
                    deployment: deployment.clone(),
                    answer: local(deployment)?,
                    in_flight,
                });
            }
            let (path, body) = build(deployment)?;
            let result = deployment
                .provider
                .post_json(&path, &deployment.model, &body, headers)
                .await;
            let finished = std::time::Instant::now();
            match result {
                Ok(response) => {
                    deployment
                        .health
                        .record(true, finished - started, &config, finished);
                    return Ok(Forwarded {
                        deployment: deployment.clone(),
                        answer: Answer::Upstream(response),
                        in_flight,
                    });
                }
                Err(error) => {
                    tracing::warn!(provider = %deployment.provider.name, model = %deployment.model, attempt, error = ?error, "upstream call failed");
                    let retryable = error.retryable();
                    // A request the upstream rejected as invalid says nothing about its
                    // health; only failures count against the breaker.
                    deployment
                        .health
                        .record(!retryable, finished - started, &config, finished);
                    if !retryable {
                        return Err(upstream_error(&deployment.provider.name, error));
                    }
                    failed.insert(index);
                    last = Some((deployment.provider.name.clone(), error));
                }
            }
        }
    }
    Err(match last {
        Some((name, error)) => upstream_error(&name, error),
        None => {
            let wait = soonest_open
                .map(|until| until.saturating_duration_since(std::time::Instant::now()))
                .unwrap_or_default();
            GatewayError {
                retry_after: Some(wait.as_secs().max(1)),
                ..GatewayError::new(
                    Kind::Unavailable,
                    format!(
                        "every deployment of `{}` is unavailable (circuit breakers open after repeated failures)",
                        plan.alias
                    ),
                )
            }
        }
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
            // OpenAI and Anthropic nest the message under `error`; Bedrock does not.
            let upstream_message = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("error")
                        .and_then(|e| e.get("message"))
                        .or_else(|| v.get("message"))
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
    )
    .await?;
    let mut embeddings =
        EmbeddingsRequest::parse(read_body(request, gateway.max_body_bytes).await?)?;
    let mut input = call.input(
        Surface::Prompt,
        "llm.embed",
        &embeddings.model,
        Content {
            texts: embeddings.texts.clone(),
            ..Content::default()
        },
    );
    let (tokens, exact) = meter::tokens::text_tokens(
        gateway.upstream_model(&embeddings.model),
        embeddings.texts.iter().map(String::as_str),
    );
    call.meter_prompt(gateway, &mut input, &embeddings.model, (tokens, exact))
        .await?;
    let decision = call.decide_and_share(&input).await?;
    if let Some(redactor) = redactor(&decision, &input, &call, gateway.hash_key.as_ref())? {
        embeddings.rewrite_text(|text| redactor.redact(text));
    }
    let plan =
        plan(gateway, &embeddings.model, &decision).map_err(|e| call.failed(&input, None, e))?;
    // Charged its estimate (the input tokens and their price) when the call ends, nothing
    // if it fails.
    let reservation = call
        .reserve(gateway, &input, &plan.alias, &decision)
        .await?;
    let refund = |error: GatewayError| {
        reservation.refund();
        call.failed(&input, None, error)
    };
    let headers = upstream_headers(&decision);
    let build = |d: &Deployment| {
        if matches!(
            d.provider.kind,
            ProviderKind::Anthropic | ProviderKind::Bedrock
        ) {
            return Err(GatewayError::new(
                Kind::InvalidRequest,
                format!(
                    "model `{}` is served by a {} provider, for which Sluice has no embeddings API",
                    plan.alias,
                    d.provider.kind.as_str()
                ),
            ));
        }
        let mut body = embeddings.body.clone();
        body.insert("model".to_string(), Value::String(d.model.clone()));
        Ok(("/embeddings".to_string(), Value::Object(body)))
    };
    let local = |d: &Deployment| Ok(Answer::Local(demo::embeddings(&d.model, &embeddings.texts)));
    let Forwarded {
        deployment,
        answer,
        in_flight: _in_flight,
    } = forward(gateway, &plan, &headers, build, local)
        .await
        .map_err(&refund)?;
    let body = match answer {
        Answer::Upstream(response) => response.bytes().await.map_err(|e| {
            let provider = &deployment.provider.name;
            let error = GatewayError::new(
                Kind::BadGateway,
                format!("upstream `{provider}` broke off its answer: {e}"),
            );
            call.failed(&input, Some(provider), error)
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
    let call = match Call::start(&gateway, &headers, "GET", "/v1/models", Some(client)).await {
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
