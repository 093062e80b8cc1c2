-- Learned ranker models, shared by every replica: each version with its artifact, checksum,
-- metrics and stage. At most one is in production; stage changes are recorded (who, when,
-- forced past the offline gate or not, why).

CREATE TABLE ranker_models (
    version      TEXT PRIMARY KEY,               -- lgbm_<n>
    kind         TEXT NOT NULL,                  -- lightgbm
    feature_set  TEXT NOT NULL,                  -- ranking.learned_features version
    features     TEXT[] NOT NULL,                -- the artifact's input columns, in order
    artifact     BYTEA NOT NULL,
    checksum     TEXT NOT NULL,                  -- sha256 of artifact
    metrics      JSONB NOT NULL DEFAULT '{}',    -- CV nDCG@10 per dataset, per query, baseline
    stage        TEXT NOT NULL DEFAULT 'candidate'
                 CHECK (stage IN ('candidate', 'production', 'archived')),
    created_by   TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    note         TEXT
);
CREATE UNIQUE INDEX ranker_models_one_production ON ranker_models (stage)
    WHERE stage = 'production';
CREATE SEQUENCE ranker_model_numbers;

CREATE TABLE ranker_stage_changes (
    change_id    BIGSERIAL PRIMARY KEY,
    version      TEXT NOT NULL REFERENCES ranker_models (version),
    from_stage   TEXT NOT NULL,
    to_stage     TEXT NOT NULL,
    changed_by   TEXT NOT NULL,
    changed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    forced       BOOLEAN NOT NULL DEFAULT false,
    reason       TEXT
);
CREATE INDEX ranker_stage_changes_by_time ON ranker_stage_changes (changed_at, change_id);
