# Model allow-lists per team.
#
# Every key that calls a model must belong to a team, and the team may only use the models
# listed for it in `data.models.teams` (globs), or `data.models.default` when the team is not
# listed. Applies to `llm.chat` and `llm.embed` on the prompt surface.
package sluice.models

import rego.v1

llm_actions := {"llm.chat", "llm.embed"}

applies if {
	input.surface == "prompt"
	input.action in llm_actions
}

# The principal's team; undefined when the key has none.
team := input.principal.team if input.principal.team != ""

# Whether the team has its own list or falls back to the default one.
listed if team in object.keys(data.models.teams)

# The model globs the principal's team may use.
patterns := data.models.teams[team] if listed
else := data.models.default

# allowed(model) holds when the principal's team may use `model`.
# Exact names and `prefix*` entries (nearly every entry) are matched with string functions;
# only an entry with a `*` elsewhere goes to glob.match, which compiles its pattern on every
# call and was a fifth of a decision's time.
allowed(model) if model in patterns

allowed(model) if {
	some pattern in patterns
	endswith(pattern, "*")
	prefix := trim_suffix(pattern, "*")
	not contains(prefix, "*")
	startswith(model, prefix)
}

allowed(model) if {
	some pattern in patterns
	contains(trim_suffix(pattern, "*"), "*")
	glob.match(pattern, null, model)
}

deny contains {"msg": msg, "rule": "models.key-without-team"} if {
	applies
	not team
	msg := sprintf(
		"key %q has no team: every key must belong to a team to use models",
		[input.principal.key_id],
	)
}

deny contains {"msg": msg, "rule": "models.not-allowed"} if {
	applies
	team
	model := input.resource.id
	not allowed(model)
	msg := sprintf(
		"model %q is not allowed for team %q (%s: %s)",
		[model, team, list_name, concat(", ", patterns)],
	)
}

list_name := "its allow-list" if listed
else := "team not listed, default allow-list"
