-- Idempotency keys of the internal inventory API, each bound to the request it first came
-- with (a fingerprint of route, path and body): the same key with another request answers
-- 422 idempotency_key_reused instead of the first request's outcome.
CREATE TABLE idempotency_keys (
    scope       TEXT        NOT NULL,  -- caller and route, e.g. "internal PATCH /api/v1/inventory"
    key         TEXT        NOT NULL,
    fingerprint TEXT        NOT NULL,  -- sha256 of the canonical request
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, key)
);
