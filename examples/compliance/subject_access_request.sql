-- Everything recorded about one person (a GDPR subject-access request). Set the subject
-- first: SET VARIABLE subject = 'alice';
SELECT
    time,
    decision_id,
    request_id,
    surface,
    action,
    key_id,
    team,
    agent,
    resource_id,
    allow,
    reasons,
    input
FROM decisions
WHERE user_id = getvariable('subject')
ORDER BY time;
