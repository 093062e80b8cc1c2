-- Quotes accepted at reservation time: the price a shopper pays is the one quoted (signed
-- token), recorded once per quote with the reservation it bought; the coupon redemption that
-- goes with it uses the quote id as its reference (counted exactly once).
CREATE TABLE accepted_quotes (
    quote_id        VARCHAR(64) PRIMARY KEY,
    reservation_id  VARCHAR(128) NOT NULL,
    customer_id     VARCHAR(128),
    coupon_code     VARCHAR(64),
    total_cents     BIGINT NOT NULL CHECK (total_cents >= 0),
    payload         JSONB NOT NULL,
    accepted_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX accepted_quotes_reservation_idx ON accepted_quotes (reservation_id);
