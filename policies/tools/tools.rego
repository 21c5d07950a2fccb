# Tool calls need an agent identity; any agent may list tools.
#
# Which tool an agent may call is decided in Cedar (../tools.cedar): the tool surface
# defaults to deny, so a call goes through only when a Cedar policy permits it. These rules
# cover what Cedar cannot express: "the key acts for some agent" (a Cedar policy can test
# membership in one named agent, not in any).
package sluice.tools

import rego.v1

has_agent if input.principal.agent != ""

deny contains {"msg": msg, "rule": "tools.agent-required"} if {
	input.action == "mcp.tools.call"
	not has_agent
	msg := sprintf(
		"key %q has no agent identity: tool calls are only allowed for agents",
		[input.principal.key_id],
	)
}

# Listing a server's tools reveals nothing but descriptions; any agent may do it (keys with
# the `developer` role may too, see ../tools.cedar).
allow if {
	input.surface == "tool"
	input.action == "mcp.tools.list"
	has_agent
}

# A tool's result, and a prompt an MCP server hands out, go back to the agent that asked
# (the call itself was authorised), and so do a question the server asks the user
# (elicitation) in the session and the user's answer; the injection, PII and secret
# policies still deny or redact them, ../elicitation refuses questions the specification
# forbids, and ../sessions flags the session when they carry an injection.
allow if {
	input.surface == "tool"
	input.action in {"mcp.tools.result", "mcp.prompts.get", "mcp.elicitation", "mcp.elicitation.answer"}
}

# Whether a tool is read-only is decided by ../entities.json (Cedar tag `access`). For a tool
# that file does not list, Cedar takes the tags from `input.resource.attributes`, so a
# request or an MCP server claiming `access` there could make its own tool look read-only.
deny contains {"msg": msg, "rule": "tools.access-claimed-by-request"} if {
	input.surface == "tool"
	"access" in object.keys(object.get(input.resource, "attributes", {}))
	msg := sprintf(
		"tool %q: the access level of a tool comes from the policy's entity data, not from the request",
		[input.resource.id],
	)
}
