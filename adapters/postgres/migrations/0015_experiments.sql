-- Ranker experiments (A/B splits and interleavings, with an optional shadow ranker), the arms
-- their guardrails stopped, and shoppers' events on search results (clicks, add-to-carts)
-- attributed to the experiment arm that showed the result.
CREATE TABLE experiments (
    name          TEXT        PRIMARY KEY,
    kind          TEXT        NOT NULL CHECK (kind IN ('ab', 'interleave')),
    arms          JSONB       NOT NULL,
    guardrails    JSONB       NOT NULL,
    shadow        TEXT,
    shadow_sample DOUBLE PRECISION NOT NULL DEFAULT 0,
    status        TEXT        NOT NULL DEFAULT 'running'
                              CHECK (status IN ('running', 'stopped')),
    created_by    TEXT        NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    stopped_by    TEXT,
    stopped_at    TIMESTAMPTZ,
    stop_reason   TEXT
);
-- one experiment splits traffic at a time
CREATE UNIQUE INDEX experiments_one_running ON experiments ((true)) WHERE status = 'running';

CREATE TABLE experiment_arm_stops (
    experiment TEXT        NOT NULL REFERENCES experiments (name),
    arm        TEXT        NOT NULL,
    reason     TEXT        NOT NULL,
    stopped_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (experiment, arm)
);

CREATE TABLE search_events (
    event_id   BIGSERIAL   PRIMARY KEY,
    kind       TEXT        NOT NULL CHECK (kind IN ('click', 'add_to_cart')),
    search_id  TEXT        NOT NULL,
    product_id BIGINT      NOT NULL,
    position   INTEGER,
    session_id TEXT,
    experiment TEXT,
    arm        TEXT,
    team       TEXT,
    at         TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX search_events_experiment ON search_events (experiment, arm) WHERE experiment IS NOT NULL;
CREATE INDEX search_events_at ON search_events (at);
