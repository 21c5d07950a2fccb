# Prompt injection.
#
# The injection detector scores the content of every input. On the surfaces listed in
# `data.injection.surfaces`, a score at or above `deny_threshold` denies, a score at or above
# `warn_threshold` warns. Retrieved documents from untrusted sources get the stricter
# `untrusted_document_threshold`: a flagged retrieval that carries untrusted documents is
# denied, naming them.
package sluice.injection

import rego.v1

guarded if input.surface in data.injection.surfaces

score := input.findings.injection.score

signals := concat(", ", sort(input.findings.injection.signals)) if {
	count(input.findings.injection.signals) > 0
} else := "none"

deny contains {"msg": msg, "rule": "injection.score-above-threshold"} if {
	guarded
	score >= data.injection.deny_threshold
	msg := sprintf(
		"prompt injection detected on the %s surface (score %.2f, threshold %.2f; signals: %s)",
		[input.surface, score, data.injection.deny_threshold, signals],
	)
}

warn contains {"msg": msg, "rule": "injection.suspicious"} if {
	guarded
	score >= data.injection.warn_threshold
	score < data.injection.deny_threshold
	msg := sprintf(
		"possible prompt injection on the %s surface (score %.2f; signals: %s)",
		[input.surface, score, signals],
	)
}

# Ids (or sources) of the untrusted documents of a retrieval.
untrusted_documents contains name if {
	some i, doc in input.content.documents
	not doc.trusted
	name := document_name(doc, i)
}

document_name(doc, _) := doc.id

document_name(doc, i) := sprintf("#%d", [i]) if not doc.id

deny contains {"msg": msg, "rule": "injection.untrusted-document"} if {
	input.surface == "retrieval"
	score >= data.injection.untrusted_document_threshold
	count(untrusted_documents) > 0
	msg := sprintf(
		"retrieved content flagged as prompt injection (score %.2f) comes from untrusted documents: %s",
		[score, concat(", ", sort(untrusted_documents))],
	)
}
