-- Shoppers' carts (the public cart API behind the storefront). A cart is found only by the
-- hash of its token (a cookie, or the X-Cart-Token header): one shopper cannot name another's.
-- Each add to cart is a hold: an inventory reservation of its own (15 minutes), released when
-- the line is removed, committed at checkout.
CREATE TABLE shopper_carts (
    cart_id      VARCHAR(32) PRIMARY KEY,
    token_hash   BYTEA NOT NULL UNIQUE,
    coupon_code  VARCHAR(64),
    status       VARCHAR(16) NOT NULL DEFAULT 'OPEN' CHECK (status IN ('OPEN', 'CHECKED_OUT')),
    order_json   JSONB,                    -- what the checkout answered (a retry answers it again)
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE shopper_cart_holds (
    reservation_id VARCHAR(512) PRIMARY KEY,
    cart_id        VARCHAR(32) NOT NULL REFERENCES shopper_carts (cart_id) ON DELETE CASCADE,
    variant_id     BIGINT NOT NULL,
    quantity       INTEGER NOT NULL CHECK (quantity BETWEEN 1 AND 1000),
    expires_at     TIMESTAMPTZ NOT NULL,
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX shopper_cart_holds_cart_idx ON shopper_cart_holds (cart_id, variant_id);
