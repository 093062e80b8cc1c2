-- One change at a time per shopper cart (an add, a removal, a coupon, a checkout): a lease on
-- its row, taken by the change and given back when it ends (or run out: a replica that died
-- mid-change holds it no longer than its term). Nothing is held open meanwhile.
ALTER TABLE shopper_carts ADD COLUMN busy_token TEXT, ADD COLUMN busy_until TIMESTAMPTZ;
-- A hold a checkout committed (sold): kept in the cart past its expiry, never removed, until
-- a checkout finishes the order.
ALTER TABLE shopper_cart_holds ADD COLUMN committed_at TIMESTAMPTZ;
