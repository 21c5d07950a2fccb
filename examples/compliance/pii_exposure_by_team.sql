-- Detected personal data and secrets by team and surface: how often content carried them
-- and how often it was let through (after redaction) or stopped. Only classes and counts
-- are stored, never the values.
SELECT
    coalesce(team, '(no team)')                         AS team,
    surface,
    sum(pii_count)                                      AS pii_findings,
    sum(secret_count)                                   AS secret_findings,
    count(*) FILTER (WHERE pii_count + secret_count > 0) AS decisions_with_findings,
    count(*) FILTER (WHERE pii_count + secret_count > 0 AND allow) AS allowed_with_findings
FROM decisions
GROUP BY ALL
HAVING sum(pii_count + secret_count) > 0
ORDER BY pii_findings + secret_findings DESC, team, surface;
