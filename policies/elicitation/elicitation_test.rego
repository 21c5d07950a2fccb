package sluice.elicitation_test

import rego.v1

import data.sluice.elicitation

request(documents) := {
	"surface": "tool",
	"action": "mcp.elicitation",
	"principal": {"key_id": "k-invoice", "team": "payments", "agent": "invoice-agent"},
	"resource": {"kind": "mcp_server", "id": "crm"},
	"content": {"documents": documents},
}

message(text) := {"source": "crm", "text": text, "metadata": {"part": "message"}}

field(name, text) := {"source": "crm", "text": text, "metadata": {"part": "field", "field": name}}

url(u) := {"source": "crm", "text": u, "metadata": {"part": "url", "url": u}}

test_a_confirmation_passes if {
	count(elicitation.deny) == 0 with input as request([
		message("Archive project apollo?"),
		field("confirm", "Confirm. Archive the project"),
	])
}

test_a_field_named_for_a_secret_is_denied if {
	denies := elicitation.deny with input as request([
		message("Connect your GitHub account"),
		field("api_key", ""),
		field("user", "Your login"),
	])
	denies == {{
		"msg": "MCP server \"crm\" asked the user for sensitive information (api_key): servers must not elicit it",
		"rule": "elicitation.sensitive-information",
	}}
}

test_a_harmless_name_with_a_sensitive_description_is_denied if {
	denies := elicitation.deny with input as request([
		field("value", "Card number. The 16 digits on the front of your card"),
		field("code", "Security code"),
		field("login", "PASSWORD"),
	])
	[d.rule | some d in denies] == ["elicitation.sensitive-information"]
	some d in denies
	contains(d.msg, "(code, login, value)")
}

test_words_that_only_contain_a_pattern_pass if {
	# "spinach" holds "pin", "passage" holds "pass": neither is a PIN or a password.
	count(elicitation.deny) == 0 with input as request([
		field("spinach", "How much spinach?"),
		field("passage", "Which passage of the text"),
	])
}

test_the_message_alone_is_not_matched if {
	# The message may talk about passwords ("reset the password policy?"); only what the
	# form asks for is.
	count(elicitation.deny) == 0 with input as request([
		message("Reset the password policy of project apollo?"),
		field("confirm", "Confirm"),
	])
}

test_a_url_that_is_not_https_is_denied if {
	denies := elicitation.deny with input as request([url("http://login.example.com/oauth")])
	denies == {{
		"msg": "MCP server \"crm\" asked the user to open a URL that is not https: http://login.example.com/oauth",
		"rule": "elicitation.url-scheme",
	}}
	count(elicitation.deny) == 0 with input as request([url("HTTPS://login.example.com/oauth")])
	count(elicitation.deny) == 1 with input as request([url("javascript:alert(1)")])
}

test_other_actions_are_not_judged_here if {
	inp := object.union(request([field("password", "")]), {"action": "mcp.tools.result"})
	count(elicitation.deny) == 0 with input as inp
}
