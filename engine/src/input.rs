//! The decision input: one shape for every surface, so one policy repo governs them all.
//!
//! This is a versioned contract (`schemas/decision-input.schema.json` is generated from these
//! types). Policies read it as `input` in Rego; the Cedar backend maps it to a principal,
//! action, resource and context (see `cedar/mapping.rs`).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Version of the decision input contract. Bumped on any incompatible change.
pub const INPUT_VERSION: &str = "1";

/// Everything a policy may look at for one decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionInput {
    /// Contract version, `"1"`.
    pub version: String,
    /// Unique id of this decision (also the audit row id).
    pub id: String,
    /// When the decision was requested, RFC 3339.
    pub time: String,
    /// Which agent surface this decision governs.
    pub surface: Surface,
    /// The operation, e.g. `llm.chat`, `llm.embed`, `mcp.tools.call`, `a2a.send`.
    pub action: String,
    /// Who is asking.
    pub principal: Principal,
    /// What is asked for.
    pub resource: Resource,
    /// The transport-level request.
    #[serde(default)]
    pub request: RequestInfo,
    /// Normalised content of the request or response.
    #[serde(default)]
    pub content: Content,
    /// What the detectors found in the content.
    #[serde(default)]
    pub findings: Findings,
    /// Token and cost estimate (request side) or settled usage (response side).
    #[serde(default)]
    pub usage: Usage,
    /// Budget and rate-limit state for every scope of the principal.
    #[serde(default)]
    pub limits: Vec<Limit>,
    /// The session this call belongs to, with flags carried across surfaces.
    #[serde(default)]
    pub session: Session,
}

/// The six surfaces of an agent that Sluice governs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Surface {
    /// The request to a model.
    Prompt,
    /// The answer of a model, streamed or not.
    Response,
    /// Documents retrieved for RAG.
    Retrieval,
    /// MCP tool listings, tool calls and their results.
    Tool,
    /// Session memory reads and writes.
    Memory,
    /// Agent-to-agent calls.
    A2a,
}

impl Surface {
    /// All surfaces, in a fixed order.
    pub const ALL: [Surface; 6] = [
        Surface::Prompt,
        Surface::Response,
        Surface::Retrieval,
        Surface::Tool,
        Surface::Memory,
        Surface::A2a,
    ];

    /// The name used in inputs, policies and the audit log.
    pub fn as_str(self) -> &'static str {
        match self {
            Surface::Prompt => "prompt",
            Surface::Response => "response",
            Surface::Retrieval => "retrieval",
            Surface::Tool => "tool",
            Surface::Memory => "memory",
            Surface::A2a => "a2a",
        }
    }
}

impl std::fmt::Display for Surface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Surface {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Surface::ALL
            .into_iter()
            .find(|surface| surface.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown surface `{s}`, expected one of prompt, response, retrieval, tool, memory, a2a"
                )
            })
    }
}

/// The caller, as resolved by authentication.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Principal {
    /// Id of the virtual API key (never the key itself).
    pub key_id: String,
    /// The human user the key belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The team that owns the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The agent acting with the key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Roles granted to the key.
    #[serde(default)]
    pub roles: Vec<String>,
    /// Free-form attributes from the key's configuration.
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// What the principal asks to use.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    /// The kind of thing.
    pub kind: ResourceKind,
    /// Its id: a model name, a tool name, an agent id, a data source id.
    pub id: String,
    /// The provider serving a model (`openai`, `anthropic`, `azure`, `bedrock`, `openai_compatible`, `demo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The MCP server or A2A endpoint a tool or agent lives on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The deployment chosen by routing, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// Free-form attributes (e.g. a tool's annotations).
    #[serde(default)]
    pub attributes: BTreeMap<String, serde_json::Value>,
}

/// Kinds of resource; each maps to a Cedar entity type of the same name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResourceKind {
    /// A model (alias) behind the LLM front doors.
    #[default]
    Model,
    /// An MCP tool.
    Tool,
    /// An MCP server as a whole (listings, resources).
    McpServer,
    /// A remote agent reached over A2A.
    Agent,
    /// A retrieval source.
    Datasource,
    /// A session memory store.
    Memory,
}

impl ResourceKind {
    /// The Cedar entity type name in the `Sluice` namespace.
    pub fn cedar_type(self) -> &'static str {
        match self {
            ResourceKind::Model => "Model",
            ResourceKind::Tool => "Tool",
            ResourceKind::McpServer => "McpServer",
            ResourceKind::Agent => "Agent",
            ResourceKind::Datasource => "Datasource",
            ResourceKind::Memory => "Memory",
        }
    }
}

/// The transport-level request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestInfo {
    /// HTTP method.
    #[serde(default)]
    pub method: String,
    /// HTTP path.
    #[serde(default)]
    pub path: String,
    /// Selected headers (lower-case names); credentials are never included.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The client's address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_address: Option<String>,
    /// Whether the caller asked for a streamed answer.
    #[serde(default)]
    pub stream: bool,
}

/// Content normalised across providers and protocols; the original body is kept elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Content {
    /// Chat messages (prompt side) or the answer (response side, role `assistant`).
    #[serde(default)]
    pub messages: Vec<Message>,
    /// Plain text inputs (embeddings, a memory value, an A2A text part).
    #[serde(default)]
    pub texts: Vec<String>,
    /// The tool being called (surface `tool`, action `mcp.tools.call`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool: Option<ToolCall>,
    /// Tools offered by a server (action `mcp.tools.list`).
    #[serde(default)]
    pub tools: Vec<ToolDescriptor>,
    /// Retrieved documents or memory entries.
    #[serde(default)]
    pub documents: Vec<Document>,
}

/// One chat message, its content flattened to text.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// `system`, `user`, `assistant` or `tool`.
    pub role: String,
    /// The text of the message (text parts joined; images are not inlined).
    #[serde(default)]
    pub content: String,
    /// Tool calls the assistant asks for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// A call of a tool with its arguments.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The tool's name as the upstream server knows it.
    pub name: String,
    /// The MCP server it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// The arguments, as sent.
    #[serde(default)]
    pub arguments: serde_json::Value,
}

/// A tool as a server describes it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolDescriptor {
    /// The tool's name.
    pub name: String,
    /// The MCP server offering it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
    /// Its description, as the model would read it.
    #[serde(default)]
    pub description: String,
    /// Its JSON Schema for arguments.
    #[serde(default)]
    pub input_schema: serde_json::Value,
}

/// A retrieved document or memory entry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// The document's id in its source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Where it came from (a data source, a URL, a memory key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Its text.
    #[serde(default)]
    pub text: String,
    /// Whether the source is trusted, as the caller or configuration says.
    #[serde(default)]
    pub trusted: bool,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// Detector results. Spans point into the normalised content, never copy secrets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Findings {
    /// Personal data found, one entry per match.
    #[serde(default)]
    pub pii: Vec<Span>,
    /// Secrets found (API keys, tokens, private keys), one entry per match.
    #[serde(default)]
    pub secrets: Vec<Span>,
    /// Prompt-injection assessment.
    #[serde(default)]
    pub injection: Injection,
    /// Tool-poisoning signals in tool descriptions or schemas.
    #[serde(default)]
    pub tool_poisoning: Vec<ToolPoisoning>,
}

/// One detector match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Span {
    /// The class of match: `email`, `phone`, `credit_card`, `iban`, `aws_access_key`, ...
    pub class: String,
    /// JSON pointer into the decision input of the text that matched.
    #[serde(default)]
    pub pointer: String,
    /// Byte offset of the match within that text.
    #[serde(default)]
    pub start: u64,
    /// Byte offset one past the end of the match.
    #[serde(default)]
    pub end: u64,
    /// Character (Unicode scalar) offset of the match within that text.
    #[serde(default)]
    pub char_start: u64,
    /// Character offset one past the end of the match.
    #[serde(default)]
    pub char_end: u64,
    /// How sure the detector is, in [0, 1].
    #[serde(default)]
    pub confidence: f64,
    /// What confirmed the match beyond its shape: `luhn`, `mod97`, `ssn_rules`,
    /// `context`, `entropy`, `jwt_header`, ... or `pattern` when only the shape matched.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub validator: String,
}

/// Prompt-injection assessment of the content.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Injection {
    /// Score from 0.0 (benign) to 1.0 (certain injection).
    #[serde(default)]
    pub score: f64,
    /// Names of the signals that contributed.
    #[serde(default)]
    pub signals: Vec<String>,
}

/// A tool-poisoning signal.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ToolPoisoning {
    /// The tool whose description or schema carries the signal.
    pub tool: String,
    /// The signal: `hidden_instruction`, `invisible_characters`, `sensitive_path`, `shadowing`, `changed_description`.
    pub signal: String,
}

/// Token and cost figures; estimates on the request side, settled on the response side.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Usage {
    /// Input (prompt) tokens.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output (completion) tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens served from a provider cache.
    #[serde(default)]
    pub cached_tokens: u64,
    /// Reasoning tokens.
    #[serde(default)]
    pub reasoning_tokens: u64,
    /// Cost in US dollars.
    #[serde(default)]
    pub cost_usd: f64,
    /// Whether the figures are estimates.
    #[serde(default)]
    pub estimated: bool,
}

/// Budget or rate-limit state of one scope.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Limit {
    /// The scope: `key`, `user`, `team`, `agent` or `org`.
    pub scope: String,
    /// The scope's id (e.g. the team name).
    pub id: String,
    /// What is limited: `cost_usd`, `requests`, `tokens` or `concurrent`.
    pub kind: String,
    /// The window: `minute`, `hour`, `day`, `month`, `rolling_<N>h` (the last N hours), or
    /// `in_flight` (calls at once).
    pub window: String,
    /// The limit in the window.
    pub limit: f64,
    /// How much is used in the current window, this request's estimate excluded.
    pub used: f64,
}

/// The session a call belongs to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// Session id (from `x-sluice-session` or the protocol's own session id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Turn number within the session, starting at 1.
    #[serde(default)]
    pub turn: u64,
    /// Flags set by earlier decisions in the session (e.g. `untrusted_content_read`).
    #[serde(default)]
    pub flags: Vec<String>,
}
