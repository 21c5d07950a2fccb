package sluice.tools_test

import rego.v1

import data.sluice.tools

call(principal) := {
	"surface": "tool",
	"action": "mcp.tools.call",
	"principal": principal,
	"resource": {"kind": "tool", "id": "github.get_issue", "server": "github"},
	"content": {"tool": {"name": "get_issue", "server": "github", "arguments": {"owner": "acme", "repo": "api", "number": 7}}},
}

list(principal) := {
	"surface": "tool",
	"action": "mcp.tools.list",
	"principal": principal,
	"resource": {"kind": "mcp_server", "id": "github"},
}

agent_key := {"key_id": "k-invoice", "team": "payments", "agent": "invoice-agent"}

human_key := {"key_id": "k-alice", "team": "payments", "user": "alice", "roles": ["developer"]}

test_agent_may_attempt_tool_call if {
	count(tools.deny) == 0 with input as call(agent_key)
}

test_tool_call_without_agent_denied if {
	denies := tools.deny with input as call(human_key)
	denies == {{
		"msg": "key \"k-alice\" has no agent identity: tool calls are only allowed for agents",
		"rule": "tools.agent-required",
	}}
}

test_empty_agent_is_no_agent if {
	count(tools.deny) == 1 with input as call(object.union(agent_key, {"agent": ""}))
}

test_agent_may_list_tools if {
	tools.allow with input as list(agent_key)
	count(tools.deny) == 0 with input as list(agent_key)
}

test_listing_without_agent_not_allowed_here if {
	not tools.allow with input as list(human_key)
	count(tools.deny) == 0 with input as list(human_key)
}

test_rego_never_allows_tool_calls if {
	not tools.allow with input as call(agent_key)
}

test_access_attribute_in_request_denied if {
	inp := object.union(call(agent_key), {"resource": {"attributes": {"access": "read", "readOnlyHint": true}}})
	denies := tools.deny with input as inp
	denies == {{
		"msg": "tool \"github.get_issue\": the access level of a tool comes from the policy's entity data, not from the request",
		"rule": "tools.access-claimed-by-request",
	}}
}

test_other_resource_attributes_are_fine if {
	inp := object.union(call(agent_key), {"resource": {"attributes": {"readOnlyHint": true}}})
	count(tools.deny) == 0 with input as inp
}

test_tool_results_and_server_prompts_go_back_to_the_agent if {
	result := object.union(call(agent_key), {"action": "mcp.tools.result"})
	tools.allow with input as result
	prompt := object.union(call(agent_key), {"action": "mcp.prompts.get"})
	tools.allow with input as prompt
}

test_a_servers_question_to_the_user_goes_through_unless_a_policy_refuses_it if {
	question := object.union(list(agent_key), {"action": "mcp.elicitation"})
	tools.allow with input as question
	count(tools.deny) == 0 with input as question
	answer := object.union(list(agent_key), {"action": "mcp.elicitation.answer"})
	tools.allow with input as answer
}
