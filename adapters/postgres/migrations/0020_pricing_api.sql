-- The pricing and promotions API (serve/routes/pricing.py): sellers' offers with their own
-- stock, sellers' deals, platform coupons with a start, and an audit of every change.

-- A warehouse a seller owns holds that seller's units of the variants it offers (its offers'
-- stock, reserved through the inventory partitions like any other). NULL: the platform's,
-- holding each variant's listing seller's units. A reservation that names no warehouse takes
-- only from unowned ones.
ALTER TABLE warehouses ADD COLUMN seller_id BIGINT REFERENCES sellers (seller_id);

-- An offer's condition, where its stock comes from, the warehouse holding it (NULL: a row
-- made before this migration, whose `available` column is its stock, not reservable), and a
-- version (If-Match).
ALTER TABLE offers
    ADD COLUMN condition VARCHAR(16) NOT NULL DEFAULT 'new'
        CHECK (condition IN ('new', 'refurbished', 'used')),
    ADD COLUMN stock_source VARCHAR(16) NOT NULL DEFAULT 'seller'
        CHECK (stock_source IN ('seller', 'platform')),
    ADD COLUMN warehouse_id VARCHAR(32) REFERENCES warehouses (warehouse_id),
    ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- A seller's deal discounts only what that seller sells (NULL: a platform deal, every seller's).
ALTER TABLE deals
    ADD COLUMN seller_id BIGINT REFERENCES sellers (seller_id),
    ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
CREATE INDEX deals_seller_idx ON deals (seller_id) WHERE seller_id IS NOT NULL;

ALTER TABLE coupons
    ADD COLUMN starts_at TIMESTAMPTZ,          -- NULL: usable at once
    ADD COLUMN version BIGINT NOT NULL DEFAULT 1,
    ADD CONSTRAINT coupons_window CHECK (starts_at IS NULL OR starts_at < expires_at);

ALTER TABLE dynamic_price_rules ADD COLUMN version BIGINT NOT NULL DEFAULT 1;

-- Who changed what, when, from what to what: one row per change, in its transaction.
CREATE TABLE pricing_audit (
    audit_id    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    entity      VARCHAR(16) NOT NULL CHECK (entity IN ('offer', 'deal', 'coupon', 'rule')),
    entity_key  VARCHAR(200) NOT NULL,   -- offer: variant/seller; deal: id; coupon: code ...
    action      VARCHAR(16) NOT NULL CHECK (action IN ('create', 'update', 'delete')),
    actor       VARCHAR(64) NOT NULL,    -- seller:<id> or platform
    seller_id   BIGINT,                  -- whose offer or deal (sellers read their own)
    before      JSONB,
    after       JSONB,
    at          TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX pricing_audit_entity_idx ON pricing_audit (entity, entity_key, audit_id);
CREATE INDEX pricing_audit_seller_idx ON pricing_audit (seller_id, audit_id)
    WHERE seller_id IS NOT NULL;

ALTER TABLE shopper_cart_holds ADD COLUMN seller_id BIGINT;  -- whose units (NULL: the listing seller's)
