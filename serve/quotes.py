"""Price quotes and what a reservation does with one.

`POST /api/v1/quotes` prices a cart exactly (list -> deal -> dynamic -> coupon, domain.pricing)
at the buy-box offer of each variant, and signs the result: a token valid for a few minutes.
A reservation that carries the token gets that price: the token's lines must be the
reservation's, the stock is reserved, then the quote is recorded and its coupon redeemed in one
transaction (the quote id is the redemption's reference, so a retried checkout counts the
coupon once). A coupon that ran out meanwhile releases the reservation again (a saga's
compensation) and the shopper is told so.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any

import asyncpg

from actors.inventory_client import InventoryClient
from adapters.postgres.pricing_repo import (
    CouponNotFound,
    load_coupon,
    load_pricing,
    redeem_coupon,
)
from domain.errors import Conflict, Unavailable, ValidationFailed
from domain.pricing import CouponRejected, Line, buy_box, quote, sign_quote, verify_quote


class QuoteService:
    def __init__(self, pool: asyncpg.Pool, inventory: InventoryClient, secret: bytes | None,
                 ttl_s: int) -> None:
        self.pool = pool
        self.inventory = inventory
        self._secret = secret  # None: no key configured, quotes are unavailable (503)
        self.ttl_s = ttl_s

    @property
    def secret(self) -> bytes:
        if self._secret is None:
            raise Unavailable("price quotes need AISLE_QUOTE_SECRET (or AISLE_INTERNAL_TOKEN)")
        return self._secret

    async def make(self, items: list[tuple[int, int]], coupon: str | None,
                   customer_id: str | None) -> dict[str, Any]:
        if coupon is not None and customer_id is None:
            raise ValidationFailed({"customer_id": "required with a coupon (per-customer "
                                                   "limits)"}, "customer_id missing")
        now = datetime.now(UTC)
        async with self.pool.acquire() as conn:
            inputs = await load_pricing(conn, [v for v, _ in items], now)
            found = await load_coupon(conn, coupon, customer_id) if coupon else None
        if coupon is not None and found is None:
            raise ValidationFailed({"coupon": "no such coupon"}, "unknown coupon")
        lines, problems = [], {}
        for i, (variant, quantity) in enumerate(items):
            vp = inputs.variants.get(variant)
            if vp is None:
                problems[f"items.{i}.variant_id"] = "no such variant for sale"
                continue
            winner = buy_box(vp.offers).winner
            if winner is None or winner.available < quantity:
                problems[f"items.{i}.quantity"] = (
                    f"only {winner.available if winner else 0} available")
                continue
            lines.append(Line(vp.item.sold_by(winner), quantity))
        if problems:
            raise ValidationFailed(problems, "items cannot be quoted")
        q = quote(lines, inputs.deals, inputs.rules, found[0] if found else None,
                  found[1] if found else None, now)
        payload = {**q.to_payload(), "quote_id": "q" + secrets.token_hex(12),
                   "customer_id": customer_id}
        token = sign_quote(payload, self.secret, now, self.ttl_s)
        return {**payload, "quote_token": token,
                "expires_at": datetime.fromtimestamp(int(now.timestamp()) + self.ttl_s,
                                                     UTC).isoformat()}

    async def reserve(self, token: str, items: list[tuple[int, int, str | None]],
                      key: str | None, ttl_s: float,
                      customer_id: str | None = None) -> dict[str, Any]:
        """Reserves the quoted cart at the quoted price (see the module docstring). The
        inventory key includes the quote id: one checkout key retried with another quote is
        another reservation, never the first one's. A quote with a coupon needs the caller
        (checkout, trusted) to name the customer, who must be the one quoted."""
        q = verify_quote(token, self.secret, datetime.now(UTC))
        quoted = sorted((int(line["variant_id"]), int(line["quantity"])) for line in q["lines"])
        if quoted != sorted((v, n) for v, n, _ in items):
            raise ValidationFailed({"quote_token": "quotes other items or quantities than "
                                                   "the reservation's"}, "quote mismatch")
        if q["coupon"] and (customer_id is None or customer_id != q["customer_id"]):
            raise ValidationFailed({"customer_id": "must be the customer the coupon was "
                                                   "quoted for"}, "customer mismatch")
        cart = await self.inventory.reserve(
            items, key=f"{key or 'quote'}:{q['quote_id']}", ttl_s=ttl_s)
        try:
            async with self.pool.acquire() as conn:
                await self._accept(conn, q, cart["reservation_id"])
        except (CouponRejected, CouponNotFound, Conflict) as exc:
            # a definite "no" (rolled back): the stock goes back at once; a retry gets the
            # same answer. Anything else may have committed: the TTL frees it if nobody
            # retries, and a retry completes it.
            if getattr(exc, "code", "") != "reservation_quoted":  # that cart is someone's
                await self.inventory.release(cart["reservation_id"])
            raise
        return {**cart, "quote": {"quote_id": q["quote_id"], "currency": q["currency"],
                                  "total_cents": q["total_cents"],
                                  "discount_cents": q["discount_cents"],
                                  "coupon": q["coupon"]}}

    async def _accept(self, conn: Any, q: dict[str, Any], reservation_id: str) -> None:
        async with conn.transaction(isolation="read_committed"):  # as redeem_coupon's
            done = await conn.fetchval(
                """INSERT INTO accepted_quotes (quote_id, reservation_id, customer_id,
                                                coupon_code, total_cents, payload)
                   VALUES ($1, $2, $3, $4, $5, $6::jsonb)
                   ON CONFLICT DO NOTHING RETURNING reservation_id""",
                q["quote_id"], reservation_id, q["customer_id"], q["coupon"],
                q["total_cents"], json.dumps(q))
            if done is None:  # accepted before: the same reservation, or a conflict
                first = await conn.fetchval(
                    "SELECT reservation_id FROM accepted_quotes WHERE quote_id = $1",
                    q["quote_id"])
                if first == reservation_id:
                    return  # a retried checkout: done already
                if first is not None:  # this reservation is ours alone: released after
                    raise Conflict("this quote was used for another reservation",
                                   "quote_used", {"quote_token": "already used"})
                raise Conflict("this reservation was bought with another quote",
                               "reservation_quoted", {"quote_token": "another quote's cart"})
            if q["coupon"]:
                await redeem_coupon(conn, q["coupon"], q["customer_id"], q["quote_id"])
