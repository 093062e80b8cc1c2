-- A cart held across several hash slots (several partitions' reservations) is committed,
-- released or expired whole: the first of those decisions is recorded here, before any of
-- its slots closes, and every slot closes as it says (a commit racing a release, or a
-- partition's expiry, can no longer leave it half sold and half given back).
CREATE TABLE cart_decisions (
    cart_id     TEXT PRIMARY KEY,
    outcome     TEXT NOT NULL CHECK (outcome IN ('COMMITTED', 'RELEASED', 'EXPIRED')),
    decided_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
