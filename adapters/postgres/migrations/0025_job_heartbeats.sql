-- A running job's sign of life, renewed by the Gateway replica running it: a job whose replica
-- died is told as failed (it stayed `running` for ever) once its heartbeat is old.
ALTER TABLE jobs ADD COLUMN alive_at TIMESTAMPTZ NOT NULL DEFAULT now();
