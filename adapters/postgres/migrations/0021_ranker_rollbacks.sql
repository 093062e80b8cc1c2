-- A stage change made by a rollback: production is a stack of promotions, and a rollback
-- undoes the newest one still standing (a second rollback goes further back, it does not
-- bring back the model the first one took down).
ALTER TABLE ranker_stage_changes ADD COLUMN rollback BOOLEAN NOT NULL DEFAULT false;
-- history from before: rollbacks logged their changes with the reason "rollback" when
-- given none (one given by hand is not known as one)
UPDATE ranker_stage_changes SET rollback = true
WHERE reason = 'rollback' AND 'production' IN (from_stage, to_stage);
