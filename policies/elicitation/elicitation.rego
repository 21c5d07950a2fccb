# Elicitation: a question an MCP server asks the user through the client (a form, or a URL
# to open), decided before the client shows it (`mcp.elicitation`, surface `tool`).
#
# Its documents are the message (`metadata.part: "message"`), each field of the form
# (`part: "field"`, `metadata.field` its name, the text its title and description) and the
# URL (`part: "url"`). The injection, PII and secret policies read them like any untrusted
# content; these rules add what the MCP specification asks of servers.
package sluice.elicitation

import rego.v1

asks(part) := [doc | some doc in input.content.documents; doc.metadata.part == part]

# "name: title and description" of each field, as the policies match it.
field_text(doc) := sprintf("%s: %s", [doc.metadata.field, doc.text])

sensitive contains doc.metadata.field if {
	some doc in asks("field")
	some pattern in data.elicitation.sensitive_fields
	regex.match(concat("", ["(?i)", pattern]), field_text(doc))
}

deny contains {"msg": msg, "rule": "elicitation.sensitive-information"} if {
	input.action == "mcp.elicitation"
	count(sensitive) > 0
	msg := sprintf(
		"MCP server %q asked the user for sensitive information (%s): servers must not elicit it",
		[input.resource.id, concat(", ", sort(sensitive))],
	)
}

deny contains {"msg": msg, "rule": "elicitation.url-scheme"} if {
	input.action == "mcp.elicitation"
	some doc in asks("url")
	scheme := lower(split(doc.metadata.url, ":")[0])
	not scheme in data.elicitation.url_schemes
	msg := sprintf(
		"MCP server %q asked the user to open a URL that is not %s: %s",
		[input.resource.id, concat(" or ", data.elicitation.url_schemes), doc.metadata.url],
	)
}
