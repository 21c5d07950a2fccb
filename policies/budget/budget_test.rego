package sluice.budget_test

import rego.v1

import data.sluice.budget

mock_budget := {
	"warn_at_pct": 80,
	"downgrade": {
		"gpt-4o": "gpt-4o-mini",
		"claude-sonnet-*": "claude-haiku-*",
		"claude-opus-*": "claude-sonnet-4-5",
	},
	"throttle": {"sandbox": {"requests_per_minute": 20}},
}

mock_models := {
	"default": ["gpt-4o-mini"],
	"teams": {"payments": ["gpt-4o", "gpt-4o-mini", "claude-*"]},
}

team_budget(used, limit) := {"scope": "team", "id": "payments", "kind": "cost_usd", "window": "month", "limit": limit, "used": used}

chat(model, cost, limits) := {
	"surface": "prompt",
	"action": "llm.chat",
	"principal": {"key_id": "k-1", "team": "payments"},
	"resource": {"kind": "model", "id": model},
	"usage": {"input_tokens": 1200, "cost_usd": cost},
	"limits": limits,
}

test_budget_with_room_is_quiet if {
	inp := chat("gpt-4o", 0.5, [team_budget(100.5, 1000.5)])
	count(budget.deny) == 0 with input as inp with data.budget as mock_budget with data.models as mock_models
	count(budget.warn) == 0 with input as inp with data.budget as mock_budget with data.models as mock_models
	not budget.route with input as inp with data.budget as mock_budget with data.models as mock_models
}

test_exhausted_budget_denied if {
	inp := chat("gpt-4o", 0.5, [team_budget(999.75, 1000.25)])
	denies := budget.deny with input as inp with data.budget as mock_budget with data.models as mock_models
	denies == {{
		"msg": "budget exhausted: team \"payments\" has used $1000.25 of its $1000.25 monthly budget (this request included)",
		"rule": "budget.exhausted",
	}}
}

test_this_request_cost_tips_budget_over if {
	inp := chat("gpt-4o", 2.5, [team_budget(998.5, 1000.5)])
	{d.rule | some d in budget.deny} == {"budget.exhausted"} with input as inp
		with data.budget as mock_budget
		with data.models as mock_models
}

test_budget_only_checked_on_prompt if {
	inp := object.union(chat("gpt-4o", 0.5, [team_budget(2000.5, 1000.5)]), {"surface": "response"})
	count(budget.deny) == 0 with input as inp with data.budget as mock_budget with data.models as mock_models
	count(budget.warn) == 0 with input as inp with data.budget as mock_budget with data.models as mock_models
}

test_low_budget_routes_to_cheaper_model if {
	inp := chat("gpt-4o", 0.5, [team_budget(850.5, 1000.5)])
	count(budget.deny) == 0 with input as inp with data.budget as mock_budget with data.models as mock_models
	budget.route == {"model": "gpt-4o-mini"} with input as inp with data.budget as mock_budget with data.models as mock_models
	warns := budget.warn with input as inp with data.budget as mock_budget with data.models as mock_models
	warns == {{
		"msg": "team \"payments\" has used 85% of its $1000.50 monthly budget; routing \"gpt-4o\" to \"gpt-4o-mini\"",
		"rule": "budget.low",
	}}
}

test_prefix_downgrade_keeps_version if {
	inp := chat("claude-sonnet-4-5", 0.5, [team_budget(900.5, 1000.5)])
	budget.route == {"model": "claude-haiku-4-5"} with input as inp with data.budget as mock_budget with data.models as mock_models
}

test_prefix_downgrade_to_fixed_model if {
	inp := chat("claude-opus-4-1", 0.5, [team_budget(900.5, 1000.5)])
	budget.route == {"model": "claude-sonnet-4-5"} with input as inp with data.budget as mock_budget with data.models as mock_models
}

test_longest_prefix_wins if {
	overlapping := {"warn_at_pct": 80, "downgrade": {"claude-*": "claude-haiku-4-5", "claude-sonnet-*": "claude-haiku-*"}}
	inp := chat("claude-sonnet-4-0", 0.5, [team_budget(900.5, 1000.5)])
	budget.route == {"model": "claude-haiku-4-0"} with input as inp with data.budget as overlapping with data.models as mock_models
	inp2 := chat("claude-opus-4-1", 0.5, [team_budget(900.5, 1000.5)])
	budget.route == {"model": "claude-haiku-4-5"} with input as inp2 with data.budget as overlapping with data.models as mock_models
}

test_no_route_to_model_the_team_may_not_use if {
	inp := object.union(
		chat("gpt-4o", 0.5, [team_budget(900.5, 1000.5)]),
		{"principal": {"team": "research"}},
	)
	research_models := {"default": [], "teams": {"research": ["gpt-4o"]}}
	not budget.route with input as inp with data.budget as mock_budget with data.models as research_models
	warns := budget.warn with input as inp with data.budget as mock_budget with data.models as research_models
	warns == {{"msg": "team \"payments\" has used 90% of its $1000.50 monthly budget", "rule": "budget.low"}}
}

test_no_route_without_cheaper_model if {
	inp := chat("gpt-4o-mini", 0.5, [team_budget(900.5, 1000.5)])
	not budget.route with input as inp with data.budget as mock_budget with data.models as mock_models
	count(budget.warn) == 1 with input as inp with data.budget as mock_budget with data.models as mock_models
}

test_no_route_for_embeddings if {
	inp := object.union(chat("gpt-4o", 0.5, [team_budget(900.5, 1000.5)]), {"action": "llm.embed"})
	not budget.route with input as inp with data.budget as mock_budget with data.models as mock_models
}

test_daily_key_budget_message if {
	limit := {"scope": "key", "id": "k-1", "kind": "cost_usd", "window": "day", "limit": 10.5, "used": 11.5}
	denies := budget.deny with input as chat("gpt-4o", 0.5, [limit])
		with data.budget as mock_budget
		with data.models as mock_models
	denies == {{
		"msg": "budget exhausted: key \"k-1\" has used $12.00 of its $10.50 daily budget (this request included)",
		"rule": "budget.exhausted",
	}}
}

test_period_names if {
	budget.period("month") == "monthly"
	budget.period("day") == "daily"
	budget.period("hour") == "hourly"
	budget.period("week") == "per-week"
}

test_zero_limit_ignored if {
	inp := chat("gpt-4o", 0.5, [team_budget(10, 0)])
	count(budget.deny) == 0 with input as inp with data.budget as mock_budget with data.models as mock_models
}

# Request, token and concurrency limits are enforced by Sluice's meter, which refuses with
# 429 and retry-after; the policy does not deny on them.
test_rate_limits_are_left_to_the_meter if {
	limits := [
		{"scope": "key", "id": "k-1", "kind": "requests", "window": "minute", "limit": 60, "used": 60},
		{"scope": "team", "id": "payments", "kind": "tokens", "window": "minute", "limit": 100, "used": 99},
	]
	count(budget.deny) == 0 with input as chat("gpt-4o", 0.5, limits)
		with data.budget as mock_budget
		with data.models as mock_models
}

test_team_throttle if {
	inp := object.union(chat("gpt-4o-mini", 0.01, []), {"principal": {"team": "sandbox"}})
	budget.throttle == {"requests_per_minute": 20} with input as inp with data.budget as mock_budget
	not budget.throttle with input as chat("gpt-4o-mini", 0.01, []) with data.budget as mock_budget
}

test_shipped_downgrades if {
	inp := chat("claude-sonnet-4-5", 0.5, [team_budget(900, 1000)])
	budget.route == {"model": "claude-haiku-4-5"} with input as inp
	budget.route == {"model": "gpt-4o-mini"} with input as chat("gpt-4o", 0.5, [team_budget(900, 1000)])
}

# Sluice sends amounts as JSON numbers; whole amounts still print with cents.
test_whole_amounts_print_with_cents if {
	denies := budget.deny with input as chat("gpt-4o", 0, [team_budget(1000, 1000)])
		with data.budget as mock_budget
		with data.models as mock_models
	denies == {{
		"msg": "budget exhausted: team \"payments\" has used $1000.00 of its $1000.00 monthly budget (this request included)",
		"rule": "budget.exhausted",
	}}
}
