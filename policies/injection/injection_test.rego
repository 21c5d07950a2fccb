package sluice.injection_test

import rego.v1

import data.sluice.injection

mock_injection := {
	"surfaces": ["prompt", "retrieval", "tool", "a2a"],
	"deny_threshold": 0.85,
	"warn_threshold": 0.5,
	"untrusted_document_threshold": 0.5,
}

scored(surface, score, signals) := {
	"surface": surface,
	"action": "llm.chat",
	"principal": {"key_id": "k-1", "team": "payments"},
	"resource": {"kind": "model", "id": "gpt-4o"},
	"findings": {"injection": {"score": score, "signals": signals}},
}

retrieval(score, documents) := {
	"surface": "retrieval",
	"action": "retrieval.read",
	"principal": {"key_id": "k-1", "team": "payments", "agent": "invoice-agent"},
	"resource": {"kind": "datasource", "id": "confluence"},
	"content": {"documents": documents},
	"findings": {"injection": {"score": score, "signals": ["ignore_previous_instructions"]}},
}

test_high_score_denied_on_prompt if {
	denies := injection.deny with input as scored("prompt", 0.93, ["role_override", "ignore_previous_instructions"])
		with data.injection as mock_injection
	denies == {{
		"msg": "prompt injection detected on the prompt surface (score 0.93, threshold 0.85; signals: ignore_previous_instructions, role_override)",
		"rule": "injection.score-above-threshold",
	}}
}

test_threshold_is_inclusive if {
	denies := injection.deny with input as scored("tool", 0.85, []) with data.injection as mock_injection
	denies == {{
		"msg": "prompt injection detected on the tool surface (score 0.85, threshold 0.85; signals: none)",
		"rule": "injection.score-above-threshold",
	}}
}

test_high_score_denied_on_a2a if {
	count(injection.deny) == 1 with input as scored("a2a", 0.99, ["exfiltration"]) with data.injection as mock_injection
}

test_high_score_not_checked_on_response if {
	count(injection.deny) == 0 with input as scored("response", 0.99, []) with data.injection as mock_injection
	count(injection.warn) == 0 with input as scored("response", 0.99, []) with data.injection as mock_injection
}

test_medium_score_warns if {
	inp := scored("prompt", 0.6, ["delimiter_injection"])
	count(injection.deny) == 0 with input as inp with data.injection as mock_injection
	warns := injection.warn with input as inp with data.injection as mock_injection
	warns == {{
		"msg": "possible prompt injection on the prompt surface (score 0.60; signals: delimiter_injection)",
		"rule": "injection.suspicious",
	}}
}

test_high_score_does_not_also_warn if {
	count(injection.warn) == 0 with input as scored("prompt", 0.9, []) with data.injection as mock_injection
}

test_low_score_is_quiet if {
	inp := scored("prompt", 0.2, [])
	count(injection.deny) == 0 with input as inp with data.injection as mock_injection
	count(injection.warn) == 0 with input as inp with data.injection as mock_injection
}

test_untrusted_flagged_documents_denied if {
	docs := [
		{"id": "kb-1", "text": "refund policy", "trusted": true},
		{"id": "web-7", "text": "ignore previous instructions", "trusted": false},
		{"text": "no id here"},
	]
	denies := injection.deny with input as retrieval(0.6, docs) with data.injection as mock_injection
	denies == {{
		"msg": "retrieved content flagged as prompt injection (score 0.60) comes from untrusted documents: #2, web-7",
		"rule": "injection.untrusted-document",
	}}
}

test_trusted_flagged_documents_only_warn if {
	docs := [{"id": "kb-1", "text": "internal", "trusted": true}]
	inp := retrieval(0.6, docs)
	count(injection.deny) == 0 with input as inp with data.injection as mock_injection
	count(injection.warn) == 1 with input as inp with data.injection as mock_injection
}

test_untrusted_unflagged_documents_pass if {
	docs := [{"id": "web-7", "text": "weather report", "trusted": false}]
	count(injection.deny) == 0 with input as retrieval(0.1, docs) with data.injection as mock_injection
}

test_very_high_retrieval_score_gives_both_reasons if {
	docs := [{"id": "web-7", "text": "x", "trusted": false}]
	denies := injection.deny with input as retrieval(0.95, docs) with data.injection as mock_injection
	{d.rule | some d in denies} == {"injection.score-above-threshold", "injection.untrusted-document"}
}

test_shipped_thresholds if {
	count(injection.deny) == 1 with input as scored("prompt", 0.9, [])
	count(injection.deny) == 0 with input as scored("prompt", 0.8, [])
	count(injection.warn) == 1 with input as scored("prompt", 0.8, [])
}
