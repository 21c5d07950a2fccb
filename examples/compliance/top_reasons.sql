-- The reasons behind decisions, most frequent first, with the effect they had.
SELECT
    reason.backend AS backend,
    reason.rule    AS rule,
    reason.effect  AS effect,
    count(*)       AS decisions,
    any_value(reason.message) AS example_message
FROM decisions,
     unnest(from_json(reasons, '[{"backend":"VARCHAR","effect":"VARCHAR","file":"VARCHAR","rule":"VARCHAR","message":"VARCHAR"}]')) AS t(reason)
GROUP BY ALL
ORDER BY decisions DESC, rule
LIMIT 50;
