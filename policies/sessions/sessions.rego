# Session flags.
#
# A session (the `x-sluice-session` header, an MCP session, an A2A context) ties an agent's
# calls on every surface together. A `flag` set by any decision is carried into every later
# decision of the session as `input.session.flags`, so a policy can judge a call by what
# the session has already been shown: ../tools.cedar refuses side-effecting tools once a
# session has read untrusted content flagged as a prompt injection.
package sluice.sessions

import rego.v1

# Content that reached the agent from outside its principal: tool results, MCP resources,
# retrieved documents, memory reads, other agents' answers.
untrusted_read if input.action in data.sessions.untrusted_actions

# Documents the caller did not mark trusted count as untrusted wherever they come in.
untrusted_read if {
	some doc in input.content.documents
	not doc.trusted
}

flag contains "untrusted_content_read" if {
	untrusted_read
	input.findings.injection.score >= data.sessions.injection_threshold
}

flag contains "pii_seen" if count(input.findings.pii) > 0

flag contains "secret_seen" if count(input.findings.secrets) > 0
