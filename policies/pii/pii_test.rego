package sluice.pii_test

import rego.v1

import data.sluice.pii

mock_pii := {
	"redact": {
		"prompt": ["email", "credit_card"],
		"response": ["email"],
	},
	"deny_secrets_on": ["prompt", "tool"],
	"redact_secrets_on": ["response"],
	"sensitive_teams": ["hr"],
}

with_findings(surface, team, findings) := {
	"surface": surface,
	"action": "llm.chat",
	"principal": {"key_id": "k-1", "team": team},
	"resource": {"kind": "model", "id": "gpt-4o"},
	"content": {"messages": [
		{"role": "system", "content": "You are helpful."},
		{"role": "user", "content": "mail bob@example.com card 4111 1111 1111 1111"},
	]},
	"findings": findings,
}

email := {"class": "email", "pointer": "/content/messages/1/content", "start": 5, "end": 20}

card := {"class": "credit_card", "pointer": "/content/messages/1/content", "start": 26, "end": 45}

phone := {"class": "phone", "pointer": "/content/messages/1/content", "start": 0, "end": 4}

aws_key := {"class": "aws_access_key", "pointer": "/content/messages/1/content", "start": 0, "end": 20}

test_prompt_redacts_configured_classes if {
	inp := with_findings("prompt", "payments", {"pii": [email, card, phone]})
	redactions := pii.redact with input as inp with data.pii as mock_pii
	redactions == {"email", "credit_card"}
}

test_response_redacts_its_own_classes if {
	inp := with_findings("response", "payments", {"pii": [email, card]})
	redactions := pii.redact with input as inp with data.pii as mock_pii
	redactions == {"email"}
}

test_no_findings_no_redaction if {
	inp := with_findings("prompt", "payments", {})
	count(pii.redact) == 0 with input as inp with data.pii as mock_pii
}

test_surface_without_list_redacts_nothing if {
	inp := with_findings("retrieval", "payments", {"pii": [email]})
	count(pii.redact) == 0 with input as inp with data.pii as mock_pii
}

test_secret_in_prompt_denied if {
	github_token := {"class": "github_token", "pointer": "/content/messages/1/content", "start": 30, "end": 70}
	inp := with_findings("prompt", "payments", {"secrets": [aws_key, github_token, aws_key]})
	denies := pii.deny with input as inp with data.pii as mock_pii
	denies == {{
		"msg": "the request contains secrets (aws_access_key, github_token); credentials must never be sent to models or tools",
		"rule": "pii.secret-in-request",
	}}
	count(pii.redact) == 0 with input as inp with data.pii as mock_pii
}

test_secret_in_tool_call_denied if {
	inp := object.union(
		with_findings("tool", "payments", {"secrets": [aws_key]}),
		{"action": "mcp.tools.call"},
	)
	count(pii.deny) == 1 with input as inp with data.pii as mock_pii
}

test_secret_in_response_redacted_not_denied if {
	inp := with_findings("response", "payments", {"secrets": [aws_key]})
	count(pii.deny) == 0 with input as inp with data.pii as mock_pii
	redactions := pii.redact with input as inp with data.pii as mock_pii
	redactions == {"aws_access_key"}
}

test_no_secret_no_deny if {
	inp := with_findings("prompt", "payments", {"pii": [email]})
	count(pii.deny) == 0 with input as inp with data.pii as mock_pii
}

test_secrets_are_masked_in_audit_log if {
	inp := with_findings("prompt", "payments", {"secrets": [aws_key]})
	masks := pii.mask with input as inp with data.pii as mock_pii
	masks == {{"pointer": "/content/messages/1/content", "replacement": "[secret removed]"}}
}

test_secret_without_pointer_not_masked if {
	inp := with_findings("prompt", "payments", {"secrets": [{"class": "aws_access_key", "pointer": ""}]})
	count(pii.mask) == 0 with input as inp with data.pii as mock_pii
}

test_sensitive_team_content_masked if {
	inp := object.union(
		with_findings("prompt", "hr", {}),
		{"content": {
			"messages": [{"role": "user", "content": "salary review for bob"}],
			"texts": ["a", "b"],
			"documents": [{"id": "d1", "text": "contract"}],
			"tool": {"name": "lookup", "arguments": {"employee": "bob"}},
		}},
	)
	masks := pii.mask with input as inp with data.pii as mock_pii
	masks == {
		{"pointer": "/content/messages/0/content", "replacement": "[masked: sensitive team]"},
		{"pointer": "/content/texts/0", "replacement": "[masked: sensitive team]"},
		{"pointer": "/content/texts/1", "replacement": "[masked: sensitive team]"},
		{"pointer": "/content/documents/0/text", "replacement": "[masked: sensitive team]"},
		{"pointer": "/content/tool/arguments", "replacement": "[masked: sensitive team]"},
	}
}

test_sensitive_team_secret_masked_once if {
	inp := with_findings("prompt", "hr", {"secrets": [aws_key]})
	masks := pii.mask with input as inp with data.pii as mock_pii
	masks == {
		{"pointer": "/content/messages/0/content", "replacement": "[masked: sensitive team]"},
		{"pointer": "/content/messages/1/content", "replacement": "[secret removed]"},
	}
}

test_other_teams_not_masked if {
	inp := with_findings("prompt", "payments", {"pii": [email]})
	count(pii.mask) == 0 with input as inp with data.pii as mock_pii
}

test_shipped_data if {
	ssn := {"class": "us_ssn", "pointer": "/content/texts/0", "start": 0, "end": 11}
	memory_write := {
		"surface": "memory",
		"action": "memory.write",
		"principal": {"key_id": "k-1", "team": "legal"},
		"resource": {"kind": "memory", "id": "session-store"},
		"content": {"texts": ["ssn 123-45-6789, mail bob@example.com"]},
		"findings": {"pii": [ssn, email]},
	}
	pii.redact == {"us_ssn"} with input as memory_write
	pii.mask == {{"pointer": "/content/texts/0", "replacement": "[masked: sensitive team]"}} with input as memory_write
}
