//! A gateway governing agents with the policies Sluice ships (`policies/` of this
//! repository, unchanged): the agent surfaces — guard API, MCP, A2A — are tested against
//! the rules users get, not against test-only ones.
//!
//! Keys, as those policies and their entity data (`policies/entities.json`) know them:
//! - `triage-agent` of team `platform`: may call read-only GitHub tools and open issues in
//!   `acme` repositories;
//! - `invoice-agent` of team `payments`: read-only ERP tools, invoices under 5,000.00;
//! - a developer (`alice`, role `developer`, no agent): may list tools, not call them.

#![expect(
    clippy::expect_used,
    reason = "test support: a broken test setup must fail the run loudly"
)]

use sluice_server::gateway::keys::hash;

use crate::server::Server;

/// The triage agent's key.
pub const TRIAGE_KEY: &str = "sk-test-triage";
/// The invoice agent's key.
pub const INVOICE_KEY: &str = "sk-test-invoice";
/// A developer's key (role `developer`, no agent identity).
pub const DEVELOPER_KEY: &str = "sk-test-developer";

/// A running gateway on the shipped policies; stops when dropped.
#[derive(Debug)]
pub struct AgentGateway {
    /// Holds the config and the audit database for the life of the server.
    pub dir: tempfile::TempDir,
    pub server: Server,
}

impl AgentGateway {
    /// `sluice serve` on the shipped policies, with `extra` appended to its config.
    pub fn start(extra: &str) -> AgentGateway {
        AgentGateway::start_with(extra, &[], &[])
    }

    /// [`start`](Self::start) on a copy of the shipped policies with `files` added (path,
    /// text) and `entities` (Cedar entities as JSON) added to their entity data: what a
    /// user's policy repository adds for its own servers and tools.
    pub fn start_with(
        extra: &str,
        files: &[(&str, &str)],
        entities: &[serde_json::Value],
    ) -> AgentGateway {
        let dir = tempfile::tempdir().expect("temporary directory");
        let shipped = crate::repo().join("policies");
        let policies = if files.is_empty() && entities.is_empty() {
            shipped
        } else {
            let copy = dir.path().join("policies");
            copy_tree(&shipped, &copy);
            for (path, text) in files {
                crate::write_file(&copy, path, text);
            }
            let path = copy.join("entities.json");
            let mut all: Vec<serde_json::Value> = serde_json::from_str(
                &std::fs::read_to_string(&path).expect("the shipped entities.json"),
            )
            .expect("entities.json is a JSON array");
            all.extend(entities.iter().cloned());
            std::fs::write(&path, serde_json::to_string_pretty(&all).expect("JSON"))
                .expect("entities.json written");
            copy
        };
        crate::write_file(
            dir.path(),
            "sluice.yaml",
            &format!(
                r#"listen: 127.0.0.1:0
policy_dir: "{policies}"
reload: {{poll_interval_ms: 0}}
limits: {{max_body_bytes: 65536}}
keys:
  - {{id: k-triage, hash: "{triage}", team: platform, agent: triage-agent}}
  - {{id: k-invoice, hash: "{invoice}", team: payments, agent: invoice-agent}}
  - {{id: k-developer, hash: "{developer}", team: platform, user: alice, roles: [developer]}}
{extra}"#,
                policies = policies.display(),
                triage = hash(TRIAGE_KEY),
                invoice = hash(INVOICE_KEY),
                developer = hash(DEVELOPER_KEY),
            ),
        );
        let config = dir.path().join("sluice.yaml");
        let server = Server::start(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);
        AgentGateway { dir, server }
    }

    /// Stops the gateway (gracefully) and starts it again on the same files.
    pub fn restart(&mut self) {
        assert!(self.server.terminate().success(), "{}", self.server.log());
        let config = self.dir.path().join("sluice.yaml");
        self.server = Server::start(&["serve".as_ref(), "--config".as_ref(), config.as_os_str()]);
    }

    /// Stops the gateway (gracefully, so every decision is written) and opens its audit
    /// database.
    pub fn stop(&mut self) -> duckdb::Connection {
        assert!(self.server.terminate().success(), "{}", self.server.log());
        duckdb::Connection::open(self.dir.path().join("sluice-audit.duckdb"))
            .expect("the audit database opens")
    }
}

/// Copies a directory tree (files and subdirectories, hidden ones included).
fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("directory created");
    for entry in std::fs::read_dir(from).expect("directory readable") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("file copied");
        }
    }
}

/// A guard request for the side-effecting `github.create_issue` tool in `session`.
pub fn create_issue(session: &str) -> serde_json::Value {
    serde_json::json!({
        "surface": "tool",
        "session_id": session,
        "tool": {"name": "create_issue", "server": "github",
                 "arguments": {"owner": "acme", "repo": "api", "title": "Flaky test"}},
    })
}
