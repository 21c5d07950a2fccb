-- Tokens and cost per day by team, agent and model (response-side rows carry the
-- upstream's settled usage; request-side rows carry the estimate and are left out).
SELECT
    date_trunc('day', time)      AS day,
    coalesce(team, '(no team)')  AS team,
    coalesce(agent, '(no agent)') AS agent,
    resource_id                  AS model,
    count(*)                     AS calls,
    sum(input_tokens)            AS input_tokens,
    sum(output_tokens)           AS output_tokens,
    sum(coalesce(cached_tokens, 0)) AS cached_tokens,
    round(sum(cost_usd), 6)      AS cost_usd
FROM decisions
WHERE surface = 'response' OR (surface = 'prompt' AND NOT allow)
GROUP BY ALL
ORDER BY day, cost_usd DESC, team, agent, model;
