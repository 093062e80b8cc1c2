-- Search index generations record the document format they were built with: a builder that
-- finds the live generation in an older format builds a new one (format 2: impact-scored text
-- with per-generation term statistics and a tie key, so scores do not depend on shards).
-- Artifacts (the query-understanding vocabulary) belong to one generation each and are
-- loaded with it: a Gateway never pairs a generation with another one's vocabulary.

ALTER TABLE search_generations ADD COLUMN format INTEGER NOT NULL DEFAULT 1;

DELETE FROM search_artifacts WHERE generation IS NULL;
ALTER TABLE search_artifacts DROP CONSTRAINT search_artifacts_pkey;
ALTER TABLE search_artifacts ALTER COLUMN generation SET NOT NULL;
ALTER TABLE search_artifacts ADD PRIMARY KEY (generation, name);
