package sluice.models_test

import rego.v1

import data.sluice.models

mock_models := {
	"default": ["gpt-4o-mini", "claude-haiku-*"],
	"teams": {
		"payments": ["gpt-4o", "claude-sonnet-*"],
		"research": ["*"],
	},
}

chat(team, model) := {
	"surface": "prompt",
	"action": "llm.chat",
	"principal": {"key_id": "k-1", "team": team},
	"resource": {"kind": "model", "id": model, "provider": "openai"},
}

no_team(model) := {
	"surface": "prompt",
	"action": "llm.chat",
	"principal": {"key_id": "k-orphan"},
	"resource": {"kind": "model", "id": model},
}

test_listed_team_may_use_listed_model if {
	count(models.deny) == 0 with input as chat("payments", "gpt-4o") with data.models as mock_models
}

test_glob_matches_model_family if {
	count(models.deny) == 0 with input as chat("payments", "claude-sonnet-4-5") with data.models as mock_models
}

test_star_allows_any_model if {
	count(models.deny) == 0 with input as chat("research", "meta-llama/Llama-3.1-8B") with data.models as mock_models
}

test_listed_team_denied_unlisted_model if {
	denies := models.deny with input as chat("payments", "gpt-4o-mini") with data.models as mock_models
	denies == {{
		"msg": "model \"gpt-4o-mini\" is not allowed for team \"payments\" (its allow-list: gpt-4o, claude-sonnet-*)",
		"rule": "models.not-allowed",
	}}
}

test_glob_does_not_match_other_family if {
	denies := models.deny with input as chat("payments", "claude-opus-4-1") with data.models as mock_models
	{d.rule | some d in denies} == {"models.not-allowed"}
}

test_unknown_team_gets_default_list if {
	count(models.deny) == 0 with input as chat("marketing", "claude-haiku-4-5") with data.models as mock_models
}

test_unknown_team_denied_outside_default_list if {
	denies := models.deny with input as chat("marketing", "gpt-4o") with data.models as mock_models
	denies == {{
		"msg": "model \"gpt-4o\" is not allowed for team \"marketing\" (team not listed, default allow-list: gpt-4o-mini, claude-haiku-*)",
		"rule": "models.not-allowed",
	}}
}

test_key_without_team_denied if {
	denies := models.deny with input as no_team("gpt-4o-mini") with data.models as mock_models
	denies == {{
		"msg": "key \"k-orphan\" has no team: every key must belong to a team to use models",
		"rule": "models.key-without-team",
	}}
}

test_empty_team_is_no_team if {
	denies := models.deny with input as chat("", "gpt-4o-mini") with data.models as mock_models
	{d.rule | some d in denies} == {"models.key-without-team"}
}

test_embeddings_are_checked_too if {
	inp := object.union(chat("payments", "text-embedding-3-large"), {"action": "llm.embed"})
	denies := models.deny with input as inp with data.models as mock_models
	{d.rule | some d in denies} == {"models.not-allowed"}
}

test_other_surfaces_are_not_checked if {
	inp := object.union(chat("payments", "o3"), {"surface": "response"})
	count(models.deny) == 0 with input as inp with data.models as mock_models
}

test_other_actions_are_not_checked if {
	inp := {
		"surface": "tool",
		"action": "mcp.tools.call",
		"principal": {"key_id": "k-orphan"},
		"resource": {"kind": "tool", "id": "github.get_issue"},
	}
	count(models.deny) == 0 with input as inp with data.models as mock_models
}

# The shipped data: HR personal data stays on self-hosted models.
test_shipped_data_hr_only_self_hosted if {
	count(models.deny) == 0 with input as chat("hr", "llama-3.1-70b-instruct")
	denies := models.deny with input as chat("hr", "gpt-4o")
	{d.rule | some d in denies} == {"models.not-allowed"}
}

test_shipped_data_default_allows_small_models if {
	count(models.deny) == 0 with input as chat("marketing", "gpt-4o-mini")
	count(models.deny) == 1 with input as chat("marketing", "gpt-4o")
}

test_allowed_helper if {
	models.allowed("gpt-4o") with input as chat("payments", "x") with data.models as mock_models
	not models.allowed("gpt-4o-mini") with input as chat("payments", "x") with data.models as mock_models
}

test_star_inside_an_entry_still_matches if {
	models.allowed("gpt-4o-mini") with input as chat("ops", "x") with data.models as {"default": ["gpt-*-mini"], "teams": {}}
	not models.allowed("gpt-4o") with input as chat("ops", "x") with data.models as {"default": ["gpt-*-mini"], "teams": {}}
}

test_star_alone_matches_everything if {
	models.allowed("any-model") with input as chat("ops", "x") with data.models as {"default": ["*"], "teams": {}}
}
