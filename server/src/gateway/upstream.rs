//! Upstream providers and the deployments of each model alias.
//!
//! A provider is a closed set of kinds; each knows how to send a call. Credentials are read
//! once at startup from the environment variable or file the configuration names; they are
//! sent only upstream and never logged or shown to callers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;
use serde_json::Value;

use super::bedrock::{Credentials, sign};
use super::routing::Health;
use crate::config::{Config, ProviderConfig, ProviderKind, RoutingConfig, Timeouts};

/// OpenAI's API, the default base URL of the `openai` kind.
const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";

/// Anthropic's API, the default base URL of the `anthropic` kind.
const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com/v1";

/// The Messages API version Sluice speaks to Anthropic.
const ANTHROPIC_VERSION: &str = "2023-06-01";

/// A configured provider, ready to call.
pub struct Provider {
    /// The configured name.
    pub name: String,
    /// The wire protocol.
    pub kind: ProviderKind,
    base_url: String,
    api_key: Option<String>,
    api_version: Option<String>,
    /// Region and credentials of a `bedrock` provider signing with SigV4.
    aws: Option<(String, Credentials)>,
    timeouts: Timeouts,
    client: reqwest::Client,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

/// One way to serve an alias: a provider and the model name it knows.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The provider.
    pub provider: Arc<Provider>,
    /// The model name sent upstream.
    pub model: String,
    /// Share of the alias's traffic.
    pub weight: u32,
    /// Load, latency and circuit breaker.
    pub health: Arc<Health>,
}

/// All providers and model aliases.
#[derive(Debug, Default)]
pub struct Upstreams {
    models: BTreeMap<String, Vec<Deployment>>,
    fallbacks: BTreeMap<String, Vec<String>>,
    /// Retries, backoff and breaker settings.
    pub routing: RoutingConfig,
}

/// Why an upstream call failed before Sluice could pass anything on.
#[derive(Debug)]
pub enum UpstreamError {
    /// The connection could not be made (refused, reset, DNS, TLS).
    Connect(String),
    /// No response headers within the first-byte timeout (or the whole call's).
    Timeout,
    /// The upstream answered with an error status.
    Status {
        /// The status.
        status: StatusCode,
        /// Its `retry-after`, in seconds.
        retry_after: Option<u64>,
        /// Its body.
        body: Bytes,
    },
}

impl UpstreamError {
    /// Whether another deployment may be tried: connection failures, timeouts, 429 and 5xx.
    /// The request was not accepted in any of these cases, so retrying cannot duplicate it.
    pub fn retryable(&self) -> bool {
        match self {
            UpstreamError::Connect(_) | UpstreamError::Timeout => true,
            UpstreamError::Status { status, .. } => {
                *status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
            }
        }
    }
}

fn read_key(config: &ProviderConfig) -> anyhow::Result<Option<String>> {
    if let Some(var) = &config.api_key_env {
        let value = std::env::var(var).map_err(|_| {
            anyhow::anyhow!(
                "provider `{}`: environment variable `{var}` (api_key_env) is not set",
                config.name
            )
        })?;
        return Ok(Some(value.trim().to_string()));
    }
    if let Some(file) = &config.api_key_file {
        let value = std::fs::read_to_string(file).map_err(|e| {
            anyhow::anyhow!(
                "provider `{}`: cannot read api_key_file `{}`: {e}",
                config.name,
                file.display()
            )
        })?;
        return Ok(Some(value.trim().to_string()));
    }
    if matches!(
        config.kind,
        ProviderKind::Openai | ProviderKind::Azure | ProviderKind::Anthropic
    ) {
        // (A `bedrock` provider without a key signs with AWS credentials instead.)
        anyhow::bail!(
            "provider `{}` ({}) needs `api_key_env` or `api_key_file`",
            config.name,
            config.kind.as_str()
        );
    }
    Ok(None)
}

/// AWS credentials from the environment variables the config names.
fn read_aws(config: &ProviderConfig) -> anyhow::Result<Credentials> {
    let var = |name: &str, field: &str| {
        std::env::var(name).map_err(|_| {
            anyhow::anyhow!(
                "provider `{}` (bedrock): environment variable `{name}` (aws.{field}) is not set; set it or configure a Bedrock API key with `api_key_env`",
                config.name
            )
        })
    };
    Ok(Credentials {
        access_key_id: var(&config.aws.access_key_id_env, "access_key_id_env")?,
        secret_access_key: var(&config.aws.secret_access_key_env, "secret_access_key_env")?,
        session_token: std::env::var(&config.aws.session_token_env).ok(),
    })
}

impl Provider {
    fn new(config: &ProviderConfig) -> anyhow::Result<Provider> {
        let api_key = read_key(config)?;
        let region = config.region.clone().unwrap_or_default();
        let aws = match (config.kind, &api_key) {
            (ProviderKind::Bedrock, None) => Some((region.clone(), read_aws(config)?)),
            _ => None,
        };
        let default = match config.kind {
            ProviderKind::Anthropic => ANTHROPIC_BASE_URL.to_string(),
            ProviderKind::Bedrock => format!("https://bedrock-runtime.{region}.amazonaws.com"),
            _ => OPENAI_BASE_URL.to_string(),
        };
        let base_url = config
            .base_url
            .clone()
            .unwrap_or(default)
            .trim_end_matches('/')
            .to_string();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_millis(config.timeouts.connect_ms))
            .timeout(Duration::from_millis(config.timeouts.total_ms))
            .pool_idle_timeout(Duration::from_secs(90))
            .build()
            .map_err(|e| anyhow::anyhow!("provider `{}`: {e}", config.name))?;
        Ok(Provider {
            name: config.name.clone(),
            kind: config.kind,
            base_url,
            api_key,
            api_version: config.api_version.clone(),
            aws,
            timeouts: config.timeouts,
            client,
        })
    }

    /// The URL of an operation (`/chat/completions`, `/embeddings`, `/messages`) for
    /// `model`: Azure puts the deployment and the API version in the URL.
    pub fn url(&self, path: &str, model: &str) -> String {
        match (self.kind, &self.api_version) {
            (ProviderKind::Azure, Some(version)) => format!(
                "{}/openai/deployments/{model}{path}?api-version={version}",
                self.base_url
            ),
            _ => format!("{}{path}", self.base_url),
        }
    }

    /// POSTs a JSON body to an operation for `model` and waits for the response headers,
    /// authenticating the way the provider expects. Error statuses come back as
    /// [`UpstreamError::Status`] with their body read.
    pub async fn post_json(
        &self,
        path: &str,
        model: &str,
        body: &Value,
        extra_headers: &HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = self.url(path, model);
        let bytes = serde_json::to_vec(body).unwrap_or_default();
        let mut request = self
            .client
            .post(&url)
            .headers(extra_headers.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(key) = &self.api_key {
            request = match self.kind {
                ProviderKind::Azure => request.header("api-key", key),
                ProviderKind::Anthropic => request
                    .header("x-api-key", key)
                    .header("anthropic-version", ANTHROPIC_VERSION),
                _ => request.bearer_auth(key),
            };
        }
        if let Some((region, credentials)) = &self.aws {
            // Signed over exactly what is sent: the URL, the body and no other header
            // (the policy's extra headers travel unsigned).
            let signed = sign(
                "POST",
                &url,
                &[("content-type".to_string(), "application/json".to_string())],
                &bytes,
                credentials,
                region,
                "bedrock",
                time::OffsetDateTime::now_utc(),
            )
            .map_err(UpstreamError::Connect)?;
            for (name, value) in signed {
                request = request.header(name, value);
            }
        }
        let request = request.body(bytes);
        let first_byte = Duration::from_millis(self.timeouts.first_byte_ms);
        let response = match tokio::time::timeout(first_byte, request.send()).await {
            Err(_) => return Err(UpstreamError::Timeout),
            Ok(Err(e)) if e.is_timeout() => return Err(UpstreamError::Timeout),
            Ok(Err(e)) => return Err(UpstreamError::Connect(describe(&e))),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let body = match tokio::time::timeout(first_byte, response.bytes()).await {
            Ok(Ok(body)) => body,
            _ => Bytes::new(),
        };
        Err(UpstreamError::Status {
            status: StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY),
            retry_after,
            body,
        })
    }
}

/// The error's chain without the URL (which may carry a host the caller should not learn).
fn describe(error: &reqwest::Error) -> String {
    let mut message = if error.is_connect() {
        "connection failed".to_string()
    } else if error.is_request() {
        "request failed".to_string()
    } else {
        "transport error".to_string()
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message = format!("{message}: {cause}");
        source = cause.source();
    }
    message
}

impl Upstreams {
    /// Builds the providers and aliases of a validated configuration; fails when a
    /// credential cannot be read.
    pub fn new(config: &Config) -> anyhow::Result<Upstreams> {
        let mut providers = BTreeMap::new();
        for provider in &config.providers {
            providers.insert(provider.name.clone(), Arc::new(Provider::new(provider)?));
        }
        let mut models = BTreeMap::new();
        for (alias, deployments) in &config.models {
            let resolved = deployments
                .iter()
                .map(|d| {
                    let provider = providers.get(&d.provider).cloned().ok_or_else(|| {
                        anyhow::anyhow!("model `{alias}`: unknown provider `{}`", d.provider)
                    })?;
                    Ok(Deployment {
                        provider,
                        model: d.model.clone().unwrap_or_else(|| alias.clone()),
                        weight: d.weight,
                        health: Arc::new(Health::default()),
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            models.insert(alias.clone(), resolved);
        }
        Ok(Upstreams {
            models,
            fallbacks: config.fallbacks.clone(),
            routing: config.routing,
        })
    }

    /// The aliases to try for `alias`, in order: itself, then its fallback chain.
    pub fn tiers<'a>(&'a self, alias: &'a str) -> Vec<(&'a str, &'a [Deployment])> {
        let chain = self.fallbacks.get(alias).map(Vec::as_slice).unwrap_or(&[]);
        std::iter::once(alias)
            .chain(chain.iter().map(String::as_str))
            .filter_map(|a| self.deployments(a).map(|d| (a, d)))
            .collect()
    }

    /// The deployments of an alias, in failover order.
    pub fn deployments(&self, alias: &str) -> Option<&[Deployment]> {
        self.models.get(alias).map(Vec::as_slice)
    }

    /// Every alias, sorted.
    pub fn aliases(&self) -> impl Iterator<Item = &str> {
        self.models.keys().map(String::as_str)
    }
}
