-- Inventory partitions: sold units, the movements ledger, reservations and the record of every
-- decided operation (idempotency). Written only by InventoryPartition actors, one
-- transaction per group commit.

ALTER TABLE stock ADD COLUMN sold INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0);
-- what stock started from (loaders, or 0 for rows made by ADJUST): the conservation invariant
-- is available + reserved + sold = initial + sum(ADJUST deltas)
ALTER TABLE stock ADD COLUMN initial INTEGER;
UPDATE stock SET initial = available + reserved;
ALTER TABLE stock ALTER COLUMN initial SET NOT NULL;
-- bulk loaders insert without it: what they insert is the initial stock
CREATE FUNCTION stock_fill_initial() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.initial := COALESCE(NEW.initial, NEW.available + NEW.reserved + NEW.sold);
    RETURN NEW;
END $$;
CREATE TRIGGER stock_fill_initial BEFORE INSERT ON stock
    FOR EACH ROW EXECUTE FUNCTION stock_fill_initial();

CREATE TABLE inventory_movements (
    movement_id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    variant_id      BIGINT NOT NULL,
    warehouse_id    VARCHAR(32) NOT NULL,
    kind            VARCHAR(16) NOT NULL CHECK (kind IN ('RESERVE', 'RELEASE', 'DEDUCT', 'ADJUST', 'EXPIRE')),
    quantity        INTEGER NOT NULL,          -- units moved (ADJUST: signed change of available)
    reservation_id  VARCHAR(64),
    reason          VARCHAR(200),
    available_after INTEGER NOT NULL,
    reserved_after  INTEGER NOT NULL,
    sold_after      INTEGER NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX inventory_movements_variant_idx ON inventory_movements (variant_id, warehouse_id);

CREATE TABLE reservations (
    reservation_id  VARCHAR(64) PRIMARY KEY,
    cart_id         VARCHAR(64),              -- reservations of one cart across partitions
    partition       INTEGER NOT NULL,
    status          VARCHAR(16) NOT NULL CHECK (status IN ('OPEN', 'COMMITTED', 'RELEASED', 'EXPIRED')),
    lines           JSONB NOT NULL,           -- [[variant_id, warehouse_id, quantity], ...]
    expires_at      TIMESTAMPTZ NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX reservations_open_idx ON reservations (partition) WHERE status = 'OPEN';
CREATE INDEX reservations_cart_idx ON reservations (cart_id) WHERE cart_id IS NOT NULL;

-- Every decided operation by its key: a retry with the same key gets the same outcome.
CREATE TABLE inventory_ops (
    op_key          VARCHAR(200) PRIMARY KEY,
    partition       INTEGER NOT NULL,
    outcome         JSONB NOT NULL,
    created_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);
