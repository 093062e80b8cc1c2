-- Inventory hash slots (domain/inventory_slots.py): every variant hashes to one of 16,384
-- slots; which partition owns a slot is this map, changed only by a handoff (the owner hands
-- slots over in its own loop, after its last batch on them is committed). A reservation
-- lives in one slot. Filled by the first inventory client (AISLE_INVENTORY_PARTITIONS).
CREATE TABLE inventory_slots (
    slot       INTEGER PRIMARY KEY CHECK (slot >= 0 AND slot < 16384),
    partition  INTEGER NOT NULL CHECK (partition >= 0),
    moved_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX inventory_slots_partition_idx ON inventory_slots (partition);

-- every handoff, for operators (scripts/inventory_partitions --history)
CREATE TABLE inventory_slot_moves (
    move_id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source     INTEGER NOT NULL,
    target     INTEGER NOT NULL,
    slots      INTEGER NOT NULL,
    moved_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

ALTER TABLE reservations ADD COLUMN slot INTEGER;
CREATE INDEX reservations_open_slot_idx ON reservations (slot) WHERE status = 'OPEN';
-- a cart id names its slots (4 hex digits each, up to 100): ids grow
ALTER TABLE reservations ALTER COLUMN reservation_id TYPE VARCHAR(512),
                         ALTER COLUMN cart_id TYPE VARCHAR(512);
ALTER TABLE inventory_movements ALTER COLUMN reservation_id TYPE VARCHAR(512);
ALTER TABLE inventory_ops ALTER COLUMN op_key TYPE VARCHAR(700);
ALTER TABLE accepted_quotes ALTER COLUMN reservation_id TYPE VARCHAR(512);

-- Reservations made before slots were grouped by partition and may span slots: the open ones
-- are released now, as their TTL would have (the ledger records an EXPIRE per line).
WITH legacy AS (
    UPDATE reservations SET status = 'EXPIRED', updated_at = now()
    WHERE status = 'OPEN' AND slot IS NULL
    RETURNING reservation_id, lines
), line AS (
    SELECT l.reservation_id, (x ->> 0)::bigint AS v, x ->> 1 AS w, (x ->> 2)::int AS q
    FROM legacy l, jsonb_array_elements(l.lines) AS x
), per_row AS (
    SELECT v, w, sum(q)::int AS q FROM line GROUP BY v, w
), released AS (
    UPDATE stock s SET available = s.available + p.q, reserved = s.reserved - p.q,
                       version = s.version + 1, updated_at = now()
    FROM per_row p WHERE s.variant_id = p.v AND s.warehouse_id = p.w
    RETURNING s.variant_id, s.warehouse_id, s.available, s.reserved, s.sold
)
INSERT INTO inventory_movements (variant_id, warehouse_id, kind, quantity, reservation_id,
                                 reason, available_after, reserved_after, sold_after)
SELECT line.v, line.w, 'EXPIRE', line.q, line.reservation_id, 'released by migration 0016',
       r.available, r.reserved, r.sold
FROM line JOIN released r ON r.variant_id = line.v AND r.warehouse_id = line.w;
