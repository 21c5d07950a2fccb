-- Denials per day, by the policy rule that denied and the caller's team.
-- (One denied decision with two deny reasons counts once for each rule.)
SELECT
    date_trunc('day', time)    AS day,
    coalesce(team, '(no team)') AS team,
    reason.rule                AS rule,
    count(*)                   AS denials
FROM decisions,
     unnest(from_json(reasons, '[{"backend":"VARCHAR","effect":"VARCHAR","file":"VARCHAR","rule":"VARCHAR","message":"VARCHAR"}]')) AS t(reason)
WHERE NOT allow
  AND reason.effect IN ('deny', 'error')
GROUP BY ALL
ORDER BY day, denials DESC, team, rule;
