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

import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

import asyncpg

from adapters.postgres.pricing_repo import (
    CouponNotFound,
    accept_quote,
    line_sources,
    load_coupon,
    load_pricing,
)
from domain.errors import Conflict, Unavailable, ValidationFailed
from domain.inventory_api import CartItem, CartJson, Inventory
from domain.pricing import (
    CouponRejected,
    Line,
    QuoteSummary,
    SignedQuote,
    VerifiedQuote,
    holding,
    priced_buy_box,
    quote,
    read_quote,
    sign_quote,
)


class QuoteJson(SignedQuote):
    """A quote as POST /api/v1/quotes answers it: the signed quote and its token."""

    quote_token: str
    expires_at: str  # ISO 8601


class QuotedCartJson(CartJson):
    """A reservation bought at a quote."""

    quote: QuoteSummary


class QuoteService:
    def __init__(self, pool: asyncpg.Pool, inventory: Inventory, secret: bytes | None,
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
                   customer_id: str | None,
                   held: Mapping[int, int] | None = None,
                   sellers: Mapping[int, int | None] | None = None) -> QuoteJson:
        """Each line at its buy-box winner, or, for a variant in `sellers`, at that seller's
        offer (None: the listing seller's; a shopper's cart holds one seller's units).
        `held`: units the caller holds already (of that seller, else of the listing seller):
        they count as available to it."""
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
            offers = vp.offers
            chosen = sellers is not None and variant in sellers
            holder = (sellers or {}).get(variant) or vp.item.seller_id
            if held and held.get(variant):
                offers = holding(offers, holder, held[variant])
            winner = (next((o for o in offers if o.seller_id == holder), None) if chosen
                      else priced_buy_box(vp.item, offers, inputs.deals, vp.rule, now).winner)
            if chosen and winner is None:
                raise Conflict("the seller of this line withdrew its offer: remove the line",
                               "offer_withdrawn",
                               {f"items.{i}.variant_id": "offer withdrawn"})
            if winner is None or winner.available < quantity:
                problems[f"items.{i}.quantity"] = (
                    f"only {winner.available if winner else 0} available")
                continue
            lines.append(Line(vp.item.sold_by(winner), quantity))
        if problems:  # the message names the variants (a cart's lines have no index)
            raise ValidationFailed(problems, "items cannot be quoted: " + "; ".join(
                f"variant {items[int(k.split('.')[1])][0]}: {why}"
                for k, why in problems.items()))
        q = quote(lines, inputs.deals, inputs.rules, found[0] if found else None,
                  found[1] if found else None, now)
        signed: SignedQuote = {**q.to_payload(), "quote_id": "q" + secrets.token_hex(12),
                               "customer_id": customer_id}
        token = sign_quote(signed, self.secret, now, self.ttl_s)
        return {**signed, "quote_token": token,
                "expires_at": datetime.fromtimestamp(int(now.timestamp()) + self.ttl_s,
                                                     UTC).isoformat()}

    async def reserve(self, token: str, items: Sequence[CartItem], key: str | None,
                      ttl_s: float, customer_id: str | None = None) -> QuotedCartJson:
        """Reserves the quoted cart at the quoted price (see the module docstring). The
        inventory key includes the quote id: one checkout key retried with another quote is
        another reservation, never the first one's. A quote with a coupon needs the caller
        (checkout, trusted) to name the customer, who must be the one quoted."""
        q = read_quote(token, self.secret, datetime.now(UTC))
        if sorted(q.lines) != sorted((v, n) for v, n, _ in items):
            raise ValidationFailed({"quote_token": "quotes other items or quantities than "
                                                   "the reservation's"}, "quote mismatch")
        if q.coupon and (customer_id is None or customer_id != q.customer_id):
            raise ValidationFailed({"customer_id": "must be the customer the coupon was "
                                                   "quoted for"}, "customer mismatch")
        items = await self._from_sellers(q, items)
        cart = await self.inventory.reserve(items, key=f"{key or 'quote'}:{q.quote_id}",
                                            ttl_s=ttl_s)
        try:
            async with self.pool.acquire() as conn:
                await accept_quote(conn, q, cart["reservation_id"])
        except (CouponRejected, CouponNotFound, Conflict) as exc:
            # a definite "no" (rolled back): the stock goes back at once; a retry gets the
            # same answer. Anything else may have committed: the TTL frees it if nobody
            # retries, and a retry completes it.
            if getattr(exc, "code", "") != "reservation_quoted":  # that cart is someone's
                await self.inventory.release(cart["reservation_id"])
            raise
        return {**cart, "quote": q.summary()}

    async def _from_sellers(self, q: VerifiedQuote,
                            items: Sequence[CartItem]) -> list[CartItem]:
        """The items with each line the quote bought from another seller's offer taken from
        that offer's warehouse (the winning offer's stock is what is reserved); a line of the
        listing seller's never from a warehouse a seller owns. 409 `offer_withdrawn` when
        the offer a line was quoted at no longer holds stock of its own."""
        pairs = [(int(line["variant_id"]), int(line["seller_id"])) for line in q.signed["lines"]]
        async with self.pool.acquire() as conn:
            listing, stocked, owned = await line_sources(
                conn, pairs, [w for _, _, w in items if w is not None])
        seller_of = dict(pairs)
        out: list[CartItem] = []
        for i, (v, n, w) in enumerate(items):
            seller = seller_of.get(v)
            if seller is not None and seller != listing.get(v):
                want = stocked.get((v, seller))
                if want is None:
                    raise Conflict("the offer this line was quoted at is withdrawn (or holds "
                                   "no stock of its own): quote again", "offer_withdrawn",
                                   {f"items.{i}.variant_id": "offer withdrawn"})
                if w not in (None, want):
                    raise ValidationFailed({f"items.{i}.warehouse_id": f"the quote buys it "
                                            f"from another seller's stock ({want})"})
                w = want
            elif w is not None and w in owned:
                raise ValidationFailed({f"items.{i}.warehouse_id": "holds another seller's "
                                        "units, not the listing seller's"})
            out.append((v, n, w))
        return out
