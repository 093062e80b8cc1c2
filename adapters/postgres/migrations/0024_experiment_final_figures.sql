-- A stopped experiment's (and a guardrail-stopped arm's) counters as they were when it
-- stopped: replicas that learn of the stop within a second still count a few searches in
-- Redis, and Redis forgets counters after 30 days; the figures shown are these.
ALTER TABLE experiments ADD COLUMN final_stats JSONB;  -- {arm: {requests, zero_results, ...}}
ALTER TABLE experiment_arm_stops ADD COLUMN stats JSONB;
