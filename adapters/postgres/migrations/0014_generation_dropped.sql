-- A retired generation whose files, shard actors or Elasticsearch index were removed is
-- DROPPED: the builder removes every RETIRED one after a swap (one PREVIOUS is kept, current,
-- for rollback).
ALTER TABLE search_generations DROP CONSTRAINT search_generations_status_check;
ALTER TABLE search_generations ADD CONSTRAINT search_generations_status_check
    CHECK (status IN ('BUILDING', 'LIVE', 'PREVIOUS', 'RETIRED', 'FAILED', 'DROPPED'));
-- When a generation was retired: Gateways may still read it for a few seconds after the
-- swap that retired it (until they load the new live one's query model), so it is dropped
-- only a while later.
ALTER TABLE search_generations ADD COLUMN retired_at TIMESTAMPTZ;
