"""A quote accepted by a reservation: recorded once (the quote id is the key), its coupon
redeemed in the same transaction (the quote id is the redemption's reference, so a retried
checkout counts the coupon once)."""

from __future__ import annotations

from adapters.postgres import Conn
from adapters.postgres.pricing_repo.coupons import redeem_coupon
from domain.errors import Conflict
from domain.pricing import VerifiedQuote
from domain.pricing.coupons import normalize_code


async def accept_quote(conn: Conn, q: VerifiedQuote, reservation_id: str) -> None:
    """Records that `reservation_id` is bought at quote `q`. Repeating it for the same pair
    is a no-op; Conflict `quote_used` if the quote went to another reservation,
    `reservation_quoted` if the reservation was bought with another quote; CouponRejected or
    CouponNotFound if the coupon cannot be redeemed (nothing is recorded then)."""
    async with conn.transaction(isolation="read_committed"):  # as redeem_coupon's
        done = await conn.fetchval(
            """INSERT INTO accepted_quotes (quote_id, reservation_id, customer_id,
                                            coupon_code, total_cents, payload)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb)
               ON CONFLICT DO NOTHING RETURNING reservation_id""",
            q.quote_id, reservation_id, q.customer_id, q.coupon, q.total_cents,
            q.signed)  # the connection's codec writes it as JSON
        if done is None:  # accepted before: the same reservation, or a conflict
            first = await conn.fetchval(
                "SELECT reservation_id FROM accepted_quotes WHERE quote_id = $1", q.quote_id)
            if first == reservation_id:
                return  # a retried checkout: done already
            if first is not None:  # this reservation is ours alone: released after
                raise Conflict("this quote was used for another reservation",
                               "quote_used", {"quote_token": "already used"})
            raise Conflict("this reservation was bought with another quote",
                           "reservation_quoted", {"quote_token": "another quote's cart"})
        if q.coupon:
            assert q.customer_id is not None  # a coupon is quoted for a customer
            await redeem_coupon(conn, q.coupon, q.customer_id, q.quote_id)


async def void_quote(conn: Conn, reservation_id: str) -> None:
    """Forgets the quote accepted for `reservation_id` (a checkout that did not finish, whose
    cart changed since), and gives its coupon's use back; one transaction, the coupon's row
    locked first as redemptions lock it."""
    async with conn.transaction(isolation="read_committed"):
        row = await conn.fetchrow(
            "SELECT quote_id, coupon_code FROM accepted_quotes WHERE reservation_id = $1",
            reservation_id)
        if row is None:
            return
        code = normalize_code(row["coupon_code"]) if row["coupon_code"] else None
        if code:
            await conn.execute("SELECT 1 FROM coupons WHERE code = $1 FOR UPDATE", code)
            given_back = await conn.fetchval(
                "DELETE FROM coupon_redemptions WHERE code = $1 AND reference = $2 "
                "RETURNING true", code, row["quote_id"])
            if given_back:
                await conn.execute("UPDATE coupons SET times_used = times_used - 1 "
                                   "WHERE code = $1", code)
        await conn.execute("DELETE FROM accepted_quotes WHERE reservation_id = $1",
                           reservation_id)
