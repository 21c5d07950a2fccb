# Budgets and rate limits.
#
# Reads the budget and rate-limit state Sluice meters for every scope of the principal
# (`input.limits`):
# - a cost budget (kind `cost_usd`) reaching 100 % with this request's estimated cost denies,
#   naming the scope;
# - from `data.budget.warn_at_pct` on it warns and routes chat requests to a cheaper model
#   (`data.budget.downgrade`), when the team may use that model;
# - request, token and concurrency limits are not denied here: Sluice's meter refuses calls
#   over them with 429 and retry-after, which SDKs retry;
# - teams listed in `data.budget.throttle` get a tighter rate limit obligation.
package sluice.budget

import rego.v1

import data.sluice.models

# Cost budgets, with this request's estimated cost added.
budgets contains {
	"scope": l.scope,
	"id": l.id,
	"window": l.window,
	"limit": l.limit,
	"projected": projected,
	"pct": (projected * 100) / l.limit,
} if {
	some l in input.limits
	l.kind == "cost_usd"
	l.limit > 0
	projected := l.used + object.get(input, ["usage", "cost_usd"], 0)
}

deny contains {"msg": msg, "rule": "budget.exhausted"} if {
	input.surface == "prompt"
	some b in budgets
	b.pct >= 100
	msg := sprintf(
		"budget exhausted: %s %q has used $%s of its $%s %s budget (this request included)",
		[b.scope, b.id, dollars(b.projected), dollars(b.limit), period(b.window)],
	)
}

low_budgets contains b if {
	input.surface == "prompt"
	some b in budgets
	b.pct >= data.budget.warn_at_pct
	b.pct < 100
}

warn contains {"msg": msg, "rule": "budget.low"} if {
	some b in low_budgets
	msg := sprintf(
		"%s %q has used %d%% of its $%s %s budget%s",
		[b.scope, b.id, round(b.pct), dollars(b.limit), period(b.window), downgrade_note],
	)
}

# Routes a chat request to a cheaper model while a budget runs low.
route := {"model": cheaper} if {
	input.action == "llm.chat"
	count(low_budgets) > 0
	cheaper := cheaper_model
}

downgrade_note := sprintf("; routing %q to %q", [input.resource.id, route.model]) if route
else := ""

# The cheaper model for the requested one, if the team may use it.
cheaper_model := target if {
	target := downgrade_target(input.resource.id)
	target != input.resource.id
	models.allowed(target)
}

downgrade_target(model) := data.budget.downgrade[model]

# Otherwise the longest matching `prefix*` key.
downgrade_target(model) := keep_suffix(matches[n], substring(model, n, -1)) if {
	not data.budget.downgrade[model]
	matches := {count(prefix): to |
		some pattern, to in data.budget.downgrade
		endswith(pattern, "*")
		prefix := trim_suffix(pattern, "*")
		startswith(model, prefix)
	}
	count(matches) > 0
	n := max(object.keys(matches))
}

keep_suffix(to, suffix) := concat("", [trim_suffix(to, "*"), suffix]) if endswith(to, "*")
else := to

# An amount with two decimals. (Not `sprintf("%.2f")`: regorus prints whole numbers that
# way without decimals, e.g. "1000" where OPA prints "1000.00".)
dollars(amount) := sprintf("%d.%02d", [floor(cents / 100), cents % 100]) if cents := round(amount * 100)

period(window) := "monthly" if window == "month"
else := "daily" if window == "day"
else := "hourly" if window == "hour"
else := sprintf("per-%s", [window])

throttle := data.budget.throttle[input.principal.team]
