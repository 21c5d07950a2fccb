-- Sluice's audit database (DuckDB). One row per decision: every surface, request and
-- response side, allow and deny. Applied by Sluice at startup; `sluice_schema` records the
-- version so later versions can migrate a file in place.
--
-- The stored input is masked: policies' `mask` pointers are erased or replaced, message and
-- document text is dropped unless a policy keeps it, and detected PII or secrets are only
-- ever summarised by class and count.

CREATE TABLE IF NOT EXISTS sluice_schema (
    version    INTEGER NOT NULL,
    applied_at TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS decisions (
    decision_id        VARCHAR NOT NULL,   -- the decision's id
    request_id         VARCHAR,            -- the call's id: a request and its response share it
    time               TIMESTAMP NOT NULL, -- UTC
    surface            VARCHAR NOT NULL,   -- prompt, response, retrieval, tool, memory, a2a
    action             VARCHAR NOT NULL,   -- llm.chat, mcp.tools.call, ...
    key_id             VARCHAR,
    user_id            VARCHAR,
    team               VARCHAR,
    agent              VARCHAR,
    resource_kind      VARCHAR,
    resource_id        VARCHAR,            -- model alias, tool, agent, ...
    provider           VARCHAR,
    deployment         VARCHAR,
    allow              BOOLEAN NOT NULL,
    reasons            JSON,               -- [{backend, effect, file, rule, message}]
    obligations        JSON,               -- what the decision asked for
    findings           JSON,               -- {pii: {class: count}, secrets: {...}, injection_score, signals}
    pii_count          INTEGER,
    secret_count       INTEGER,
    injection_score    DOUBLE,
    input_tokens       BIGINT,             -- prompt rows: the estimate; response rows: the upstream's count
    output_tokens      BIGINT,
    cached_tokens      BIGINT,
    reasoning_tokens   BIGINT,
    cost_usd           DOUBLE,
    upstream_status    INTEGER,
    decide_us          DOUBLE,             -- policy evaluation
    upstream_ms        DOUBLE,             -- time to the upstream's answer
    total_ms           DOUBLE,             -- the whole call up to this decision
    revision           VARCHAR,            -- policy revision that decided
    error_source       VARCHAR,            -- client, upstream, internal, or NULL
    input              JSON                -- the masked decision input
);
