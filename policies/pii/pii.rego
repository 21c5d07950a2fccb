# Personal data and secrets.
#
# - redact PII of the classes listed per surface in `data.pii.redact`;
# - deny any request carrying a secret on the surfaces of `data.pii.deny_secrets_on`, and
#   redact secrets on `data.pii.redact_secrets_on`;
# - never write a detected secret to the audit log (mask the text that holds it);
# - mask all content in the audit log for the teams of `data.pii.sensitive_teams`.
package sluice.pii

import rego.v1

redact contains finding.class if {
	some finding in input.findings.pii
	finding.class in object.get(data.pii.redact, input.surface, [])
}

redact contains finding.class if {
	input.surface in data.pii.redact_secrets_on
	some finding in input.findings.secrets
}

secret_classes contains finding.class if some finding in input.findings.secrets

deny contains {"msg": msg, "rule": "pii.secret-in-request"} if {
	input.surface in data.pii.deny_secrets_on
	count(secret_classes) > 0
	msg := sprintf(
		"the request contains secrets (%s); credentials must never be sent to models or tools",
		[concat(", ", sort(secret_classes))],
	)
}

# The audit log never stores a detected secret.
mask contains {"pointer": pointer, "replacement": "[secret removed]"} if {
	some pointer in secret_pointers
}

secret_pointers contains finding.pointer if {
	some finding in input.findings.secrets
	startswith(finding.pointer, "/")
}

mask contains {"pointer": pointer, "replacement": "[masked: sensitive team]"} if {
	input.principal.team in data.pii.sensitive_teams
	some pointer in content_pointers
	not pointer in secret_pointers
}

content_pointers contains sprintf("/content/messages/%d/content", [i]) if {
	some i, _ in input.content.messages
}

content_pointers contains sprintf("/content/texts/%d", [i]) if {
	some i, _ in input.content.texts
}

content_pointers contains sprintf("/content/documents/%d/text", [i]) if {
	some i, _ in input.content.documents
}

content_pointers contains "/content/tool/arguments" if input.content.tool.arguments
