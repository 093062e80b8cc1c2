-- Search: index generations (which one is live), outbox consumer positions, and artifacts built
-- with a generation (the query-understanding vocabulary).

CREATE TABLE search_generations (
    name          TEXT PRIMARY KEY,
    backend       TEXT NOT NULL,             -- tantivy | elasticsearch
    shards        INTEGER NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('BUILDING', 'LIVE', 'PREVIOUS', 'RETIRED', 'FAILED')),
    documents     BIGINT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    swapped_at    TIMESTAMPTZ
);
CREATE UNIQUE INDEX search_generations_live_idx ON search_generations (backend)
    WHERE status = 'LIVE';

-- A consumer reads events in (txid, event_id) order, only from transactions older than every
-- running one (so none can appear later below its position), and records the last one done.
CREATE TABLE outbox_consumers (
    name          TEXT PRIMARY KEY,
    last_txid     XID8 NOT NULL,
    last_event_id BIGINT NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX outbox_txid_idx ON outbox (txid, event_id);

CREATE TABLE search_artifacts (
    name          TEXT PRIMARY KEY,          -- e.g. vocabulary
    generation    TEXT,
    blob          BYTEA NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
