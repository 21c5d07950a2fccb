# Tool poisoning.
#
# The tool-poisoning detector flags tool descriptions and schemas that carry hidden
# instructions, invisible characters, sensitive paths, names shadowing other tools, or
# descriptions changed since first seen. A listing with any flagged tool is rejected whole
# (the model must never read a poisoned description), and so is a call of a flagged tool.
package sluice.tool_poisoning

import rego.v1

flags := input.findings.tool_poisoning

# "tool (signal, signal)" for each flagged tool, sorted.
flagged := [sprintf("%s (%s)", [tool, concat(", ", signals)]) |
	some tool in sort({f.tool | some f in flags})
	signals := sort({f.signal | some f in flags; f.tool == tool})
]

server := input.resource.id if input.resource.kind == "mcp_server"
else := object.get(input.resource, "server", "unknown")

deny contains {"msg": msg, "rule": "tool-poisoning.listing"} if {
	input.surface == "tool"
	input.action == "mcp.tools.list"
	count(flags) > 0
	msg := sprintf(
		"tool listing of server %q rejected, poisoned tool descriptions: %s",
		[server, concat("; ", flagged)],
	)
}

deny contains {"msg": msg, "rule": "tool-poisoning.call"} if {
	input.surface == "tool"
	input.action == "mcp.tools.call"
	count(flags) > 0
	msg := sprintf(
		"call of tool %q rejected, poisoned tool descriptions: %s",
		[input.resource.id, concat("; ", flagged)],
	)
}
