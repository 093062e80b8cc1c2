"""Coupons in PostgreSQL: a coupon with its usage so far, and redemption exactly once."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from adapters.postgres import Conn
from adapters.postgres.pricing_repo._rows import coupon
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.pricing import Coupon, CouponUsage, check_coupon_usable, normalize_code


class CouponNotFound(NotFound):
    code = "coupon_not_found"


@dataclasses.dataclass(frozen=True)
class Redemption:
    code: str
    customer_id: str
    reference: str
    times_used: int  # the coupon's count after this redemption
    replayed: bool  # True: this reference had redeemed already; nothing more was counted


async def load_coupon(conn: Conn, code: str,
                      customer_id: str | None) -> tuple[Coupon, CouponUsage] | None:
    """The coupon and its usage so far (by everyone, and by this customer), or None."""
    row = await conn.fetchrow(
        """SELECT c.*, (SELECT count(*) FROM coupon_redemptions r
                        WHERE r.code = c.code AND r.customer_id = $2) AS by_customer
           FROM coupons c WHERE c.code = $1""", normalize_code(code), customer_id or "")
    if row is None:
        return None
    return coupon(row), CouponUsage(row["times_used"], row["by_customer"])


async def redeem_coupon(conn: Conn, code: str, customer_id: str, reference: str,
                        now: datetime | None = None) -> Redemption:
    """Counts one use of the coupon by `customer_id` for `reference` (the quote or order),
    exactly once: a retry with the same reference returns the first redemption (replayed=True)
    and counts nothing. Expiry and both limits are checked under the coupon's row lock, which
    every redemption of the code takes first (READ COMMITTED: each later statement sees what
    the previous holders committed), so concurrent redemptions never pass a limit.
    NotFound (coupon_not_found), CouponRejected (expired, limit_reached,
    customer_limit_reached), Conflict (coupon_reference_conflict: the reference was used by
    another customer). `now` defaults to the database's clock."""
    code = normalize_code(code)
    problems = {name: "1 to 128 characters" for name, value in
                (("customer_id", customer_id), ("reference", reference))
                if not 0 < len(value) <= 128}
    if problems:
        raise ValidationFailed(problems)
    async with conn.transaction(isolation="read_committed"):
        row = await conn.fetchrow(
            "SELECT *, now() AS db_now FROM coupons WHERE code = $1 FOR UPDATE", code)
        if row is None:
            raise CouponNotFound(f"no coupon {code}")
        prior = await conn.fetchval(
            "SELECT customer_id FROM coupon_redemptions WHERE code = $1 AND reference = $2",
            code, reference)
        if prior is not None:
            if prior != customer_id:
                raise Conflict(f"reference {reference} redeemed {code} for another customer",
                               code="coupon_reference_conflict")
            return Redemption(code, customer_id, reference, row["times_used"], True)
        by_customer = await conn.fetchval(
            "SELECT count(*) FROM coupon_redemptions WHERE code = $1 AND customer_id = $2",
            code, customer_id)
        check_coupon_usable(coupon(row), CouponUsage(row["times_used"], by_customer),
                            now or row["db_now"])
        times_used = await conn.fetchval(
            "UPDATE coupons SET times_used = times_used + 1 WHERE code = $1 RETURNING times_used",
            code)
        await conn.execute(
            "INSERT INTO coupon_redemptions (code, reference, customer_id) VALUES ($1, $2, $3)",
            code, reference, customer_id)
    return Redemption(code, customer_id, reference, times_used, False)
