//! The configuration of `sluice serve`: a YAML or JSON file, every field optional.
//!
//! `schemas/config.schema.json` is generated from these types; a unit test fails when it is
//! stale (regenerate with `SLUICE_UPDATE_SCHEMAS=1 cargo test -p sluice-server config`).

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::{BTreeMap, BTreeSet};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

mod gateway;

pub use gateway::{
    AwsCredentialsConfig, DeploymentConfig, KeyConfig, ProviderConfig, ProviderKind, RequestLimits,
    RoutingConfig, Timeouts,
};

/// Longest accepted debounce window: beyond it a change would look lost to an operator.
const MAX_DEBOUNCE_MS: u64 = 60_000;

/// Shortest accepted poll interval: a tighter re-scan would burn CPU reading the bundle.
const MIN_POLL_INTERVAL_MS: u64 = 100;

/// The gateway's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// The policy directory (`*.rego`, `*.cedar`, data files). When read from a config
    /// file, a relative path (the default included) is resolved against the directory of
    /// that file; without a config file, against the working directory.
    pub policy_dir: PathBuf,
    /// How policy changes are picked up.
    pub reload: ReloadConfig,
    /// The admin endpoints (`/admin/...`).
    pub admin: AdminConfig,
    /// Virtual API keys callers authenticate with.
    pub keys: Vec<KeyConfig>,
    /// Upstream providers.
    pub providers: Vec<ProviderConfig>,
    /// Model aliases callers name, each with the deployments that serve it, tried in
    /// order when one fails before answering.
    pub models: BTreeMap<String, Vec<DeploymentConfig>>,
    /// Fallback chains: when every deployment of an alias failed, the aliases to try next,
    /// in order (for example another provider's model).
    pub fallbacks: BTreeMap<String, Vec<String>>,
    /// Load balancing, retries and circuit breaking.
    pub routing: RoutingConfig,
    /// Limits on requests.
    pub limits: RequestLimits,
    /// Budgets and rate limits per key, user, team, agent or organisation
    /// (`{scope, id?, kind: requests|tokens|cost_usd, window: minute|hour|day|month|rolling_<N>h,
    /// limit}`);
    /// a call is refused with 429 when one has no room left.
    pub budgets: Vec<crate::meter::LimitConfig>,
    /// Model prices in US dollars per million tokens (`{input, cached_input?, output}`) by
    /// upstream model name or prefix, on top of the prices Sluice ships.
    pub prices: BTreeMap<String, crate::meter::prices::Price>,
    /// Where budget spend is kept across restarts (JSON, written about every second and at
    /// shutdown); relative paths are resolved like `audit.path`.
    pub budget_state_file: PathBuf,
    /// Where budget counters live: in this process by default, or in a Redis every replica
    /// shares (`{redis_url, on_error: fail_closed|fail_open}`).
    pub budget_store: crate::meter::shared::StoreConfig,
    /// The time zone (IANA name, e.g. `Europe/Berlin`) whose calendar the hour, day and
    /// month windows of `budgets` follow; UTC by default.
    pub budget_time_zone: String,
    /// The audit trail (DuckDB).
    pub audit: crate::audit::AuditConfig,
    /// How policies' redactions are carried out.
    pub redaction: RedactionConfig,
    /// Upstream MCP servers behind the MCP proxy: all of them at `/mcp` (tools named
    /// `<server>__<tool>`), each at `/mcp/<server>`.
    pub mcp_servers: Vec<McpServerConfig>,
    /// Where the MCP proxy keeps the tools it has seen (a fingerprint of each description
    /// as first seen), so a description changed while the gateway was down is still
    /// caught; relative paths are resolved like `audit.path`.
    pub mcp_state_file: PathBuf,
    /// Remote agents behind the A2A proxy, each at `/a2a/<name>` (its card at
    /// `/a2a/<name>/.well-known/agent-card.json`).
    pub a2a_agents: Vec<A2aAgentConfig>,
    /// The URL callers reach Sluice at (e.g. `https://sluice.example.com`), for the links
    /// Sluice hands out (A2A agent cards); by default `http://` and the request's `Host`.
    pub public_url: Option<String>,
    /// Sessions tying an agent's calls on every surface together (`x-sluice-session`, MCP
    /// sessions, A2A contexts): how long an idle one is kept, and how many at most.
    pub sessions: crate::sessions::SessionConfig,
}

/// An upstream MCP server (Streamable HTTP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerConfig {
    /// Its name (letters, digits, `-` and `_`, no `__`): policies name its tools
    /// `<name>.<tool>`, the federated endpoint `<name>__<tool>`.
    pub name: String,
    /// Its endpoint, e.g. `http://127.0.0.1:9000/mcp`.
    pub url: String,
    /// A header that tells the server who is calling (`{"key_id", "user", "team",
    /// "agent"}` as JSON), e.g. `x-sluice-principal`; none by default.
    #[serde(default)]
    pub principal_header: Option<String>,
    /// A file holding the token Sluice authenticates to the server with (`Authorization:
    /// Bearer`); the caller's own credentials never reach the server, and this one never
    /// reaches the caller.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// How long one request to the server may take, in milliseconds.
    #[serde(default = "default_mcp_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_mcp_timeout_ms() -> u64 {
    30_000
}

/// A remote agent (A2A, JSON-RPC).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct A2aAgentConfig {
    /// Its name (letters, digits, `-` and `_`): the resource `Agent::"<name>"` policies
    /// decide on.
    pub name: String,
    /// Its base URL; its card is at `<url>/.well-known/agent-card.json`.
    pub url: String,
    /// A header that tells the agent who is calling (`{"key_id", "user", "team",
    /// "agent"}` as JSON); none by default.
    #[serde(default)]
    pub principal_header: Option<String>,
    /// A file holding the token Sluice authenticates to the agent with (`Authorization:
    /// Bearer`); the caller's own credentials never reach the agent.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// How long the agent may take to start answering, in milliseconds (a stream may
    /// last longer).
    #[serde(default = "default_a2a_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_a2a_timeout_ms() -> u64 {
    60_000
}

/// The lists of remote endpoints (MCP servers, A2A agents) in the config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RemoteList {
    McpServers,
    A2aAgents,
}

impl RemoteList {
    /// The config fields of its name, URL and timeout, and what one entry is called.
    fn fields(self) -> (&'static str, &'static str, &'static str, &'static str) {
        match self {
            RemoteList::McpServers => (
                "mcp_servers.name",
                "mcp_servers.url",
                "mcp_servers.timeout_ms",
                "server",
            ),
            RemoteList::A2aAgents => (
                "a2a_agents.name",
                "a2a_agents.url",
                "a2a_agents.timeout_ms",
                "agent",
            ),
        }
    }
}

/// Checks each remote endpoint's name (letters, digits, `-` and `_`, unique; an MCP
/// server's without `__`, which separates it from its tools' names), URL and timeout.
fn check_remotes<'a>(
    list: RemoteList,
    entries: impl Iterator<Item = (&'a str, &'a str, u64)>,
) -> Result<(), ConfigError> {
    let (name_field, url_field, timeout_field, what) = list.fields();
    let invalid = |field: &'static str, message: String| ConfigError::Invalid { field, message };
    let mut names = BTreeSet::new();
    for (name, url, timeout_ms) in entries {
        let separator = list == RemoteList::McpServers && name.contains("__");
        let valid = !name.is_empty()
            && !separator
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !valid {
            let rule = if list == RemoteList::McpServers {
                ", without `__` (it prefixes tool names)"
            } else {
                ""
            };
            return Err(invalid(
                name_field,
                format!("`{name}` must be letters, digits, `-` and `_`{rule}"),
            ));
        }
        if !names.insert(name) {
            return Err(invalid(name_field, format!("`{name}` is used twice")));
        }
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(invalid(
                url_field,
                format!("{what} `{name}`: `{url}` is not an http(s) URL"),
            ));
        }
        if timeout_ms == 0 {
            return Err(invalid(
                timeout_field,
                format!("{what} `{name}`: must be more than 0"),
            ));
        }
    }
    Ok(())
}

/// Redaction settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RedactionConfig {
    /// A file holding the secret key of `mode: hash` redactions (at least 32 bytes; e.g.
    /// `head -c 32 /dev/urandom | base64`). The hash of a value is keyed per team, so it is
    /// stable within a team and unlinkable across teams. Without it, a policy asking for
    /// hashing fails its request closed.
    pub hash_key_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8080)),
            // The default policy repo is not embedded into the binary yet, so the default is
            // the conventional directory next to where the gateway is started.
            policy_dir: PathBuf::from("./policies"),
            reload: ReloadConfig::default(),
            admin: AdminConfig::default(),
            keys: Vec::new(),
            providers: Vec::new(),
            models: BTreeMap::new(),
            fallbacks: BTreeMap::new(),
            routing: RoutingConfig::default(),
            limits: RequestLimits::default(),
            budgets: Vec::new(),
            prices: BTreeMap::new(),
            budget_state_file: PathBuf::from("sluice-budgets.json"),
            budget_store: crate::meter::shared::StoreConfig::default(),
            budget_time_zone: "UTC".to_string(),
            audit: crate::audit::AuditConfig::default(),
            redaction: RedactionConfig::default(),
            sessions: crate::sessions::SessionConfig::default(),
            mcp_servers: Vec::new(),
            mcp_state_file: PathBuf::from("sluice-mcp-tools.json"),
            a2a_agents: Vec::new(),
            public_url: None,
        }
    }
}

/// Hot reload of the policy directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ReloadConfig {
    /// Quiet window after the last file change before the bundle is rebuilt, in
    /// milliseconds; lets an editor or `git checkout` finish writing.
    pub debounce_ms: u64,
    /// Interval of the fallback re-scan that catches changes the file watcher missed, in
    /// milliseconds; 0 disables it.
    pub poll_interval_ms: u64,
}

impl Default for ReloadConfig {
    fn default() -> Self {
        ReloadConfig {
            debounce_ms: 50,
            poll_interval_ms: 2_000,
        }
    }
}

impl ReloadConfig {
    /// The debounce window.
    pub fn debounce(&self) -> Duration {
        Duration::from_millis(self.debounce_ms)
    }

    /// The poll interval, `None` when polling is disabled.
    pub fn poll_interval(&self) -> Option<Duration> {
        (self.poll_interval_ms > 0).then(|| Duration::from_millis(self.poll_interval_ms))
    }
}

/// Access to the admin endpoints.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer token required by the admin endpoints. When absent, they answer only
    /// clients connecting from a loopback address.
    pub token: Option<String>,
}

// Written by hand so that the token never reaches a log line through `{:?}`.
impl std::fmt::Debug for AdminConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file `{path}`: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// The file name does not say which format it is in.
    #[error("config file `{path}` must end in `.yaml`, `.yml` or `.json`")]
    UnknownFormat {
        /// The file.
        path: PathBuf,
    },
    /// The file is not valid YAML or JSON for this schema.
    #[error("invalid config file `{path}`: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, with its position.
        message: String,
    },
    /// A field has a value outside what it accepts.
    #[error("invalid `{field}`: {message}")]
    Invalid {
        /// Dotted path of the field, e.g. `reload.poll_interval_ms`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl Config {
    /// Reads a config file, choosing the format by extension, and validates it. Relative
    /// paths inside it are resolved against the file's directory, so the file means the same
    /// thing whichever directory the gateway is started from.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let mut config = match extension.as_deref() {
            Some("yaml" | "yml") => Config::from_yaml(&text),
            Some("json") => Config::from_json(&text),
            _ => {
                return Err(ConfigError::UnknownFormat {
                    path: path.to_path_buf(),
                });
            }
        }
        .map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })?;
        if let Some(base) = path.parent() {
            if config.policy_dir.is_relative() {
                config.policy_dir = base.join(&config.policy_dir);
            }
            if config.budget_state_file.is_relative() {
                config.budget_state_file = base.join(&config.budget_state_file);
            }
            if config.mcp_state_file.is_relative() {
                config.mcp_state_file = base.join(&config.mcp_state_file);
            }
            if config.audit.path.is_relative() {
                config.audit.path = base.join(&config.audit.path);
            }
            if let Some(dir) = &mut config.audit.export_dir
                && dir.is_relative()
            {
                *dir = base.join(&*dir);
            }
            for provider in &mut config.providers {
                if let Some(file) = &mut provider.api_key_file
                    && file.is_relative()
                {
                    *file = base.join(&*file);
                }
            }
            if let Some(file) = &mut config.redaction.hash_key_file
                && file.is_relative()
            {
                *file = base.join(&*file);
            }
            let token_files = config
                .mcp_servers
                .iter_mut()
                .map(|s| &mut s.token_file)
                .chain(config.a2a_agents.iter_mut().map(|a| &mut a.token_file));
            for file in token_files.flatten() {
                if file.is_relative() {
                    *file = base.join(&*file);
                }
            }
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses YAML text (no validation).
    pub fn from_yaml(text: &str) -> Result<Config, String> {
        // An empty YAML document is `null`; it means "all defaults", like an empty object.
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        yaml_serde::from_str(text).map_err(|e| e.to_string())
    }

    /// Parses JSON text (no validation).
    pub fn from_json(text: &str) -> Result<Config, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }

    /// Checks the values that the types alone do not constrain.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.policy_dir.as_os_str().is_empty() {
            return Err(ConfigError::Invalid {
                field: "policy_dir",
                message: "must not be empty".to_string(),
            });
        }
        if self.reload.debounce_ms > MAX_DEBOUNCE_MS {
            return Err(ConfigError::Invalid {
                field: "reload.debounce_ms",
                message: format!(
                    "`{}` is larger than the maximum of {MAX_DEBOUNCE_MS}",
                    self.reload.debounce_ms
                ),
            });
        }
        if self.reload.poll_interval_ms != 0 && self.reload.poll_interval_ms < MIN_POLL_INTERVAL_MS
        {
            return Err(ConfigError::Invalid {
                field: "reload.poll_interval_ms",
                message: format!(
                    "`{}` is below the minimum of {MIN_POLL_INTERVAL_MS} (use 0 to disable polling)",
                    self.reload.poll_interval_ms
                ),
            });
        }
        self.validate_gateway()?;
        if let Some(token) = &self.admin.token {
            // The token itself is never echoed: it is a secret.
            if token.is_empty() {
                return Err(ConfigError::Invalid {
                    field: "admin.token",
                    message: "must not be empty (omit it to restrict the admin endpoints to loopback clients)".to_string(),
                });
            }
            if !token.chars().all(|c| c.is_ascii_graphic()) {
                return Err(ConfigError::Invalid {
                    field: "admin.token",
                    message: "must consist of printable ASCII characters without spaces"
                        .to_string(),
                });
            }
        }
        Ok(())
    }
}

impl Config {
    fn validate_gateway(&self) -> Result<(), ConfigError> {
        let invalid =
            |field: &'static str, message: String| ConfigError::Invalid { field, message };
        let servers = self
            .mcp_servers
            .iter()
            .map(|s| (s.name.as_str(), s.url.as_str(), s.timeout_ms));
        check_remotes(RemoteList::McpServers, servers)?;
        let agents = self
            .a2a_agents
            .iter()
            .map(|a| (a.name.as_str(), a.url.as_str(), a.timeout_ms));
        check_remotes(RemoteList::A2aAgents, agents)?;
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            return Err(invalid(
                "public_url",
                format!("`{url}` is not an http(s) URL"),
            ));
        }
        let mut ids = BTreeSet::new();
        let mut hashes = BTreeSet::new();
        for key in &self.keys {
            if key.id.is_empty() {
                return Err(invalid("keys.id", "must not be empty".to_string()));
            }
            if !ids.insert(key.id.as_str()) {
                return Err(invalid("keys.id", format!("`{}` is used twice", key.id)));
            }
            let valid_hash = key
                .hash
                .strip_prefix("sha256:")
                .is_some_and(|hex| hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()));
            if !valid_hash {
                return Err(invalid(
                    "keys.hash",
                    format!(
                        "key `{}`: expected `sha256:` and 64 hex digits (`sluice keys hash` prints one)",
                        key.id
                    ),
                ));
            }
            if !hashes.insert(key.hash.to_ascii_lowercase()) {
                return Err(invalid(
                    "keys.hash",
                    format!("key `{}` has the same hash as another key", key.id),
                ));
            }
        }
        let mut names = BTreeSet::new();
        for provider in &self.providers {
            if provider.name.is_empty() {
                return Err(invalid("providers.name", "must not be empty".to_string()));
            }
            if !names.insert(provider.name.as_str()) {
                return Err(invalid(
                    "providers.name",
                    format!("`{}` is used twice", provider.name),
                ));
            }
            if provider.kind == ProviderKind::Bedrock && provider.region.is_none() {
                return Err(invalid(
                    "providers.region",
                    format!("provider `{}` (bedrock) needs a `region`", provider.name),
                ));
            }
            if matches!(provider.kind, ProviderKind::Azure) && provider.api_version.is_none() {
                return Err(invalid(
                    "providers.api_version",
                    format!(
                        "provider `{}` (azure) needs an `api_version`",
                        provider.name
                    ),
                ));
            }
            if matches!(
                provider.kind,
                ProviderKind::OpenaiCompatible | ProviderKind::Azure
            ) && provider.base_url.is_none()
            {
                return Err(invalid(
                    "providers.base_url",
                    format!(
                        "provider `{}` ({}) needs a `base_url`",
                        provider.name,
                        provider.kind.as_str()
                    ),
                ));
            }
            if let Some(url) = &provider.base_url
                && !(url.starts_with("http://") || url.starts_with("https://"))
            {
                return Err(invalid(
                    "providers.base_url",
                    format!(
                        "provider `{}`: `{url}` is not an http(s) URL",
                        provider.name
                    ),
                ));
            }
            if provider.api_key_env.is_some() && provider.api_key_file.is_some() {
                return Err(invalid(
                    "providers.api_key_env",
                    format!(
                        "provider `{}`: set `api_key_env` or `api_key_file`, not both",
                        provider.name
                    ),
                ));
            }
            let t = provider.timeouts;
            if t.connect_ms == 0 || t.first_byte_ms == 0 || t.total_ms == 0 {
                return Err(invalid(
                    "providers.timeouts",
                    format!("provider `{}`: timeouts must be above 0", provider.name),
                ));
            }
        }
        for (alias, deployments) in &self.models {
            if deployments.is_empty() {
                return Err(invalid(
                    "models",
                    format!("model `{alias}` has no deployment"),
                ));
            }
            for deployment in deployments {
                if !names.contains(deployment.provider.as_str()) {
                    return Err(invalid(
                        "models.provider",
                        format!(
                            "model `{alias}` names provider `{}`, which is not configured",
                            deployment.provider
                        ),
                    ));
                }
            }
        }
        for (alias, chain) in &self.fallbacks {
            if !self.models.contains_key(alias) {
                return Err(invalid(
                    "fallbacks",
                    format!("`{alias}` is not a configured model"),
                ));
            }
            for next in chain {
                if !self.models.contains_key(next) || next == alias {
                    return Err(invalid(
                        "fallbacks",
                        format!(
                            "`{alias}` falls back to `{next}`, which is not another configured model"
                        ),
                    ));
                }
            }
        }
        if self.models.values().flatten().any(|d| d.weight == 0) {
            return Err(invalid(
                "models.weight",
                "weights must be above 0 (remove a deployment to stop using it)".to_string(),
            ));
        }
        if self.routing.breaker_failures == 0 {
            return Err(invalid(
                "routing.breaker_failures",
                "must be above 0".to_string(),
            ));
        }
        if self.limits.max_body_bytes == 0 {
            return Err(invalid(
                "limits.max_body_bytes",
                "must be above 0".to_string(),
            ));
        }
        for (model, price) in &self.prices {
            let valid = |n: f64| n.is_finite() && n >= 0.0;
            if !(valid(price.input) && valid(price.output) && price.cached_input.is_none_or(valid))
            {
                return Err(invalid(
                    "prices",
                    format!("the price of `{model}` must be numbers of 0 or more"),
                ));
            }
        }
        if let Err(e) = jiff::tz::TimeZone::get(&self.budget_time_zone) {
            return Err(invalid(
                "budget_time_zone",
                format!("`{}` is not a time zone: {e}", self.budget_time_zone),
            ));
        }
        for (index, budget) in self.budgets.iter().enumerate() {
            if let Some(problem) = budget.problem() {
                return Err(invalid("budgets[]", format!("budget {index}: {problem}")));
            }
        }
        Ok(())
    }
}

/// `schemas/config.schema.json`.
pub fn schema() -> serde_json::Value {
    let mut schema = schemars::schema_for!(Config).to_value();
    if let Some(object) = schema.as_object_mut() {
        object.insert(
            "$id".to_string(),
            serde_json::Value::String("https://sluice.dev/schemas/config.schema.json".to_string()),
        );
    }
    schema
}

#[cfg(test)]
mod tests;
