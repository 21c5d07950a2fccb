//! The data-plane part of the configuration: virtual API keys, upstream providers, and the
//! model aliases that route to them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A virtual API key: what callers present, mapped to the principal policies see.
///
/// Only a hash of the key is stored (`sha256:<64 hex digits>` of the key's bytes; `sluice
/// keys hash` prints one), so the configuration file is not itself a credential.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Stable identifier of the key (`principal.key_id`), never the key itself.
    pub id: String,
    /// `sha256:<hex>` of the key.
    pub hash: String,
    /// The user the key belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The team the key belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The agent the key belongs to, when it is an agent's key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Roles of the key.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    /// Free-form attributes, visible to policies as `principal.attributes`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// The wire protocol of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI's API (`https://api.openai.com/v1`).
    Openai,
    /// Any server speaking OpenAI's chat completions API (vLLM, Ollama, llama.cpp, ...).
    OpenaiCompatible,
    /// Azure OpenAI: deployments in the URL, `api-version`, the `api-key` header.
    Azure,
    /// Anthropic's Messages API (`https://api.anthropic.com/v1`).
    Anthropic,
    /// AWS Bedrock's Converse API, signed with SigV4 (or a Bedrock API key).
    Bedrock,
    /// Sluice's built-in deterministic local model, for the quickstart and tests.
    Demo,
}

impl ProviderKind {
    /// The kind's name in configuration files and decision inputs.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Openai => "openai",
            ProviderKind::OpenaiCompatible => "openai_compatible",
            ProviderKind::Azure => "azure",
            ProviderKind::Anthropic => "anthropic",
            ProviderKind::Bedrock => "bedrock",
            ProviderKind::Demo => "demo",
        }
    }
}

/// An upstream provider.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Name used by model deployments and route obligations.
    pub name: String,
    /// Wire protocol.
    pub kind: ProviderKind,
    /// Base URL including the version path, e.g. `http://127.0.0.1:8000/v1`. Defaults to
    /// OpenAI's for `openai`; required for `openai_compatible`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
    /// Environment variable holding the upstream API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// File holding the upstream API key (trailing whitespace is ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_file: Option<PathBuf>,
    /// Timeouts for calls to this provider.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Azure's `api-version` query parameter (required for `azure`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// AWS region (required for `bedrock`); the base URL defaults to
    /// `https://bedrock-runtime.<region>.amazonaws.com`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Where `bedrock` finds AWS credentials when no Bedrock API key (`api_key_env`,
    /// `api_key_file`) is configured.
    #[serde(default)]
    pub aws: AwsCredentialsConfig,
}

/// Environment variables holding AWS credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AwsCredentialsConfig {
    /// The access key id.
    pub access_key_id_env: String,
    /// The secret access key.
    pub secret_access_key_env: String,
    /// The session token of temporary credentials; used when the variable is set.
    pub session_token_env: String,
}

impl Default for AwsCredentialsConfig {
    fn default() -> Self {
        AwsCredentialsConfig {
            access_key_id_env: "AWS_ACCESS_KEY_ID".to_string(),
            secret_access_key_env: "AWS_SECRET_ACCESS_KEY".to_string(),
            session_token_env: "AWS_SESSION_TOKEN".to_string(),
        }
    }
}

// By hand, so that a future secret-bearing field cannot reach a log through `{:?}`.
impl std::fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("base_url", &self.base_url)
            .field("api_key_env", &self.api_key_env)
            .field("api_key_file", &self.api_key_file)
            .field("timeouts", &self.timeouts)
            .field("api_version", &self.api_version)
            .field("region", &self.region)
            .field("aws", &self.aws)
            .finish()
    }
}

/// Timeouts of upstream calls, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Timeouts {
    /// Establishing the connection.
    pub connect_ms: u64,
    /// From sending the request to the response headers.
    pub first_byte_ms: u64,
    /// The whole call, body included (streams: until the last event).
    pub total_ms: u64,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect_ms: 5_000,
            first_byte_ms: 60_000,
            total_ms: 600_000,
        }
    }
}

/// One deployment of a model alias: a provider and the model name it knows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeploymentConfig {
    /// The provider's `name`.
    pub provider: String,
    /// The model name sent upstream; defaults to the alias.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Share of the alias's traffic relative to its other deployments.
    #[serde(default = "default_weight")]
    pub weight: u32,
}

fn default_weight() -> u32 {
    1
}

/// How calls are spread over deployments and retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingConfig {
    /// Extra attempts within an alias after a failure that happened before the upstream
    /// accepted the call (connection error, timeout, 429, 5xx); a started stream is never
    /// retried. Another deployment is preferred for each attempt.
    pub retries: u32,
    /// Base of the jittered exponential backoff between attempts, in milliseconds.
    pub backoff_ms: u64,
    /// Longest backoff between attempts, in milliseconds.
    pub max_backoff_ms: u64,
    /// Consecutive failures that open a deployment's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker keeps the deployment out before one probe call is let
    /// through, in milliseconds.
    pub breaker_open_ms: u64,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        RoutingConfig {
            retries: 2,
            backoff_ms: 50,
            max_backoff_ms: 2_000,
            breaker_failures: 5,
            breaker_open_ms: 30_000,
        }
    }
}

/// Limits on what callers may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RequestLimits {
    /// Largest accepted request body, in bytes; larger bodies get 413.
    pub max_body_bytes: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            max_body_bytes: 4 * 1024 * 1024,
        }
    }
}
