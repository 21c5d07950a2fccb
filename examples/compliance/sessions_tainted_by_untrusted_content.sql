-- Sessions that read untrusted content flagged as a prompt injection (a policy set the
-- `untrusted_content_read` flag: a tool result, a retrieved document, a memory read, another
-- agent's answer), what flagged them, and the tool calls refused in them from then on.
WITH flagged AS (
    SELECT
        json_extract_string(input, '$.session.id') AS session_id,
        min(time)                                  AS flagged_at,
        arg_min(action, time)                      AS flagged_by,
        arg_min(resource_id, time)                 AS flagged_source
    FROM decisions
    WHERE list_contains(json_extract_string(obligations, '$.flags[*]'), 'untrusted_content_read')
    GROUP BY 1
)
SELECT
    f.session_id,
    f.flagged_at,
    f.flagged_by,
    f.flagged_source,
    d.time                                      AS refused_at,
    coalesce(d.agent, d.key_id)                 AS agent,
    d.resource_id                               AS tool,
    json_extract_string(d.reasons, '$[0].rule') AS rule
FROM flagged f
JOIN decisions d
  ON json_extract_string(d.input, '$.session.id') = f.session_id
 AND d.time >= f.flagged_at
 AND d.action LIKE 'mcp.tools.call%'
 AND NOT d.allow
ORDER BY f.session_id, d.time;
