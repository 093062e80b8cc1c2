-- Stock per variant per warehouse (the inventory partition actors own these rows at run time;
-- loaders fill them in bulk). The movements ledger and reservations come with the inventory work.

CREATE TABLE stock (
    variant_id    BIGINT NOT NULL REFERENCES product_variants (variant_id),
    warehouse_id  VARCHAR(32) NOT NULL REFERENCES warehouses (warehouse_id),
    available     INTEGER NOT NULL CHECK (available >= 0),
    reserved      INTEGER NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    version       BIGINT NOT NULL DEFAULT 1,
    updated_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (variant_id, warehouse_id)
);
