-- Long internal jobs (index rebuilds, cache prewarms) run in the background, apart from the
-- request that started them: this is their record, which any Gateway replica answers from.
CREATE TABLE jobs (
    job_id      TEXT        PRIMARY KEY,
    kind        TEXT        NOT NULL,
    status      TEXT        NOT NULL DEFAULT 'running'
                            CHECK (status IN ('running', 'succeeded', 'failed')),
    params      JSONB       NOT NULL DEFAULT '{}',
    result      JSONB,
    error       TEXT,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at TIMESTAMPTZ
);
CREATE INDEX jobs_created ON jobs (created_at DESC);
