-- One accepted quote per reservation: a checkout retried with another quote under the same
-- idempotency key must not attach a second price (or a second coupon use) to one cart.
DROP INDEX accepted_quotes_reservation_idx;
CREATE UNIQUE INDEX accepted_quotes_reservation_key ON accepted_quotes (reservation_id);
