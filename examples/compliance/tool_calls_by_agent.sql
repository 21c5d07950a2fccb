-- Tool calls by agent, tool and decision.
SELECT
    coalesce(agent, key_id)          AS agent,
    resource_id                      AS tool,
    CASE WHEN allow THEN 'allowed' ELSE 'denied' END AS decision,
    count(*)                         AS calls
FROM decisions
WHERE surface = 'tool' AND action LIKE 'mcp.tools.call%'
GROUP BY ALL
ORDER BY agent, tool, decision;
