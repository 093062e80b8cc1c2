-- A stage change made by a rollback: production is a stack of promotions, and a rollback
-- undoes the newest one still standing (a second rollback goes further back, it does not
-- bring back the model the first one took down).
ALTER TABLE ranker_stage_changes ADD COLUMN rollback BOOLEAN NOT NULL DEFAULT false;
