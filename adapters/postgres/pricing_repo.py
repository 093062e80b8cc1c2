"""Pricing data in PostgreSQL: the inputs of a quote, coupon redemption, price changes.

The rules themselves are in domain/pricing.py; this module reads their inputs and writes
their effects. Every function takes a connection (own or from a pool) and is atomic by itself
(one statement, or one transaction, which nests as a savepoint inside a caller's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from adapters.postgres import Conn
from domain.errors import Conflict, NotFound, ValidationFailed
from domain.inventory import UnknownVariant
from domain.pricing import (
    Coupon,
    CouponUsage,
    Deal,
    DynamicRule,
    Item,
    Offer,
    check_coupon_usable,
    dynamic_price,
    listing_price,
    normalize_code,
)


class CouponNotFound(NotFound):
    code = "coupon_not_found"


@dataclasses.dataclass(frozen=True)
class VariantPricing:
    item: Item  # as sold by the product's own seller, at the list price
    compare_price_cents: int | None
    offers: tuple[Offer, ...]  # every seller's; the product seller's stock is its stock rows'
    rule: DynamicRule | None


@dataclasses.dataclass(frozen=True)
class PricingInputs:
    variants: dict[int, VariantPricing]  # sellable ones only: others are simply absent
    deals: tuple[Deal, ...]  # active at `now` and in scope of at least one of them

    @property
    def rules(self) -> list[DynamicRule]:
        return [v.rule for v in self.variants.values() if v.rule is not None]


@dataclasses.dataclass(frozen=True)
class Redemption:
    code: str
    customer_id: str
    reference: str
    times_used: int  # the coupon's count after this redemption
    replayed: bool  # True: this reference had redeemed already; nothing more was counted


@dataclasses.dataclass(frozen=True)
class PriceChange:
    variant_id: int
    product_id: int
    old_cents: int
    new_cents: int
    reason: str
    change_id: int


_VARIANTS = """
SELECT v.variant_id, v.product_id, v.price_cents, v.compare_price_cents, p.seller_id,
       p.category_id, p.brand, s.rating,
       COALESCE((SELECT sum(st.available) FROM stock st WHERE st.variant_id = v.variant_id),
                0)::bigint AS available
FROM product_variants v
JOIN products p ON p.product_id = v.product_id
JOIN sellers s ON s.seller_id = p.seller_id
WHERE v.variant_id = ANY($1::bigint[])
  AND v.status = 'ACTIVE' AND p.status = 'ACTIVE' AND s.status = 'ACTIVE'
"""

_ANCESTORS = """
WITH RECURSIVE up (start_id, category_id, parent_id) AS (
    SELECT category_id, category_id, parent_id FROM categories WHERE category_id = ANY($1::int[])
    UNION ALL
    SELECT up.start_id, c.category_id, c.parent_id
    FROM up JOIN categories c ON c.category_id = up.parent_id
)
SELECT start_id, array_agg(category_id) AS ids FROM up GROUP BY start_id
"""

_OFFERS = """
SELECT o.variant_id, o.seller_id, o.price_cents, o.available, s.rating
FROM offers o JOIN sellers s ON s.seller_id = o.seller_id
WHERE o.variant_id = ANY($1::bigint[]) AND s.status = 'ACTIVE'
"""

_RULES = """
SELECT r.*, p.seller_id
FROM dynamic_price_rules r
JOIN product_variants v ON v.variant_id = r.variant_id
JOIN products p ON p.product_id = v.product_id
WHERE r.variant_id = ANY($1::bigint[]) AND r.enabled
"""

_DEALS = """
SELECT deal_id, scope, scope_value, kind, amount, starts_at, ends_at FROM deals
WHERE starts_at <= $1 AND ends_at > $1 AND (
       (scope = 'product' AND scope_value = ANY($2::text[]))
    OR (scope = 'category' AND scope_value = ANY($3::text[]))
    OR (scope = 'brand' AND lower(scope_value) = ANY($4::text[]))
    OR (scope = 'seller' AND scope_value = ANY($5::text[])))
"""

_RULE_FIELDS = ("floor_cents", "ceiling_cents", "low_stock", "high_stock", "hot_velocity",
                "cold_velocity", "step_up_bp", "step_down_bp", "window_s")


def _rating(value: Any) -> float | None:
    return None if value is None else float(value)


def _rule(row: asyncpg.Record) -> DynamicRule:
    return DynamicRule(row["variant_id"], row["seller_id"], *(row[f] for f in _RULE_FIELDS))


def _coupon(row: asyncpg.Record) -> Coupon:
    return Coupon(row["code"], row["scope"], row["scope_value"], row["kind"], row["amount"],
                  row["min_spend_cents"], row["per_customer_limit"], row["global_limit"],
                  row["expires_at"])


async def load_pricing(conn: Conn, variant_ids: Sequence[int], now: datetime) -> PricingInputs:
    """Everything `quote` and `unit_price` need for these variants: list price, product facts
    (category with its ancestors, brand, seller), every offer, the rule, and the deals active
    at `now` that touch any of them. An `offers` row of the product's own seller replaces the
    offer made from the variant row."""
    ids = sorted(set(variant_ids))
    rows = await conn.fetch(_VARIANTS, ids)
    ids = [r["variant_id"] for r in rows]
    cats = sorted({r["category_id"] for r in rows if r["category_id"] is not None})
    ancestors = {r["start_id"]: frozenset(r["ids"]) for r in await conn.fetch(_ANCESTORS, cats)}
    offers: dict[int, dict[int, Offer]] = {
        r["variant_id"]: {r["seller_id"]: Offer(r["seller_id"], r["variant_id"], r["price_cents"],
                                                r["available"], _rating(r["rating"]))}
        for r in rows}
    for o in await conn.fetch(_OFFERS, ids):
        offers[o["variant_id"]][o["seller_id"]] = Offer(
            o["seller_id"], o["variant_id"], o["price_cents"], o["available"],
            _rating(o["rating"]))
    rules = {r["variant_id"]: _rule(r) for r in await conn.fetch(_RULES, ids)}
    variants: dict[int, VariantPricing] = {}
    for r in rows:
        v = r["variant_id"]
        item = Item(v, r["product_id"], r["seller_id"], r["price_cents"],
                    ancestors.get(r["category_id"], frozenset()), r["brand"])
        variants[v] = VariantPricing(item, r["compare_price_cents"],
                                     tuple(offers[v].values()), rules.get(v))
    items = [vp.item for vp in variants.values()]
    deal_rows = await conn.fetch(
        _DEALS, now,
        sorted({str(i.product_id) for i in items}),
        sorted({str(c) for i in items for c in i.category_ids}),
        sorted({i.brand.lower() for i in items if i.brand}),
        sorted({str(o.seller_id) for vp in variants.values() for o in vp.offers}))
    deals = tuple(Deal(**dict(d)) for d in deal_rows)
    return PricingInputs(variants, deals)


async def listing_prices(conn: Conn, variant_ids: Sequence[int],
                         now: datetime) -> dict[int, tuple[int, int | None]]:
    """What listings show per product (search results and documents): the pricing engine's
    lowest buy-box price over the product's sellable variants among these, with the price
    before it (`domain.pricing.listing_price`), in cents."""
    return (await listing_prices_until(conn, variant_ids, now))[0]


async def listing_prices_until(conn: Conn, variant_ids: Sequence[int], now: datetime
                               ) -> tuple[dict[int, tuple[int, int | None]], datetime | None]:
    """`listing_prices`, and when the first deal they were priced with ends (None: no deal
    touched them): the moment they may stop being true without any write."""
    if not variant_ids:
        return {}, None
    inputs = await load_pricing(conn, variant_ids, now)
    by_product: dict[int, list[Any]] = {}
    for vp in inputs.variants.values():
        by_product.setdefault(vp.item.product_id, []).append(
            (vp.item, vp.compare_price_cents, vp.offers, vp.rule))
    out = {}
    for pid, variants in by_product.items():
        shown = listing_price(variants, inputs.deals, now)
        if shown is not None:
            out[pid] = shown
    return out, min((d.ends_at for d in inputs.deals), default=None)


async def load_coupon(conn: Conn, code: str,
                      customer_id: str | None) -> tuple[Coupon, CouponUsage] | None:
    """The coupon and its usage so far (by everyone, and by this customer), or None."""
    row = await conn.fetchrow(
        """SELECT c.*, (SELECT count(*) FROM coupon_redemptions r
                        WHERE r.code = c.code AND r.customer_id = $2) AS by_customer
           FROM coupons c WHERE c.code = $1""", normalize_code(code), customer_id or "")
    if row is None:
        return None
    return _coupon(row), CouponUsage(row["times_used"], row["by_customer"])


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
        check_coupon_usable(_coupon(row), CouponUsage(row["times_used"], by_customer),
                            now or row["db_now"])
        times_used = await conn.fetchval(
            "UPDATE coupons SET times_used = times_used + 1 WHERE code = $1 RETURNING times_used",
            code)
        await conn.execute(
            "INSERT INTO coupon_redemptions (code, reference, customer_id) VALUES ($1, $2, $3)",
            code, reference, customer_id)
    return Redemption(code, customer_id, reference, times_used, False)


_PRICE_CHANGE = """
WITH v AS (
    UPDATE product_variants SET price_cents = $3
    WHERE variant_id = $1 AND price_cents = $2
    RETURNING variant_id, product_id
), h AS (
    INSERT INTO price_history (variant_id, old_cents, new_cents, reason)
    SELECT variant_id, $2, $3, $4 FROM v
    RETURNING change_id
), e AS (
    INSERT INTO outbox (event_type, aggregate_id, payload)
    SELECT 'price.changed', v.product_id, jsonb_build_object(
        'product_id', v.product_id::text, 'variant_id', v.variant_id::text,
        'old_cents', $2::bigint, 'new_cents', $3::bigint, 'reason', $4::text)
    FROM v
    RETURNING event_id
)
SELECT v.product_id, h.change_id, pg_notify('aisle_outbox', e.event_id::text) AS notified
FROM v, h, e
"""


async def record_price_change(conn: Conn, variant_id: int, old_cents: int, new_cents: int,
                              reason: str) -> PriceChange | None:
    """Sets the variant's list price from `old_cents` to `new_cents`, with its price_history
    row and a `price.changed` outbox event (aggregate: the product), in one statement. None
    when the prices are equal (nothing to change). Conflict (price_changed) when the price is
    no longer `old_cents`; NotFound for an unknown variant."""
    if old_cents < 0 or new_cents < 0 or not 0 < len(reason) <= 64:
        raise ValidationFailed({"new_cents": "prices must not be negative; reason 1 to 64 chars"})
    if old_cents == new_cents:
        return None
    row = await conn.fetchrow(_PRICE_CHANGE, variant_id, old_cents, new_cents, reason)
    if row is None:
        current = await conn.fetchval(
            "SELECT price_cents FROM product_variants WHERE variant_id = $1", variant_id)
        if current is None:
            raise UnknownVariant(f"variant {variant_id} not found")
        raise Conflict(f"variant {variant_id} costs {current} cents now, not {old_cents}",
                       code="price_changed", current_cents=current)
    return PriceChange(variant_id, row["product_id"], old_cents, new_cents, reason,
                       row["change_id"])


_REPRICING = """
SELECT r.*, p.seller_id, v.price_cents,
       COALESCE((SELECT sum(s.available) FROM stock s WHERE s.variant_id = r.variant_id),
                0)::int AS stock,
       COALESCE((SELECT sum(m.quantity) FROM inventory_movements m
                 WHERE m.variant_id = r.variant_id AND m.kind = 'DEDUCT'
                   AND m.created_at > $1::timestamptz - make_interval(secs => r.window_s)),
                0)::int AS velocity
FROM dynamic_price_rules r
JOIN product_variants v ON v.variant_id = r.variant_id
JOIN products p ON p.product_id = v.product_id
WHERE r.enabled AND p.status = 'ACTIVE' AND v.status = 'ACTIVE' AND r.variant_id > $2
ORDER BY r.variant_id LIMIT $3
"""


async def reprice(conn: Conn, now: datetime, after_variant: int = 0,
                  limit: int = 500) -> tuple[list[PriceChange], int | None]:
    """One page of the dynamic-pricing pass (what the repricing actor runs on a schedule):
    each enabled rule's next price from stock and units sold (DEDUCTs) in its window, recorded
    with reason 'dynamic' when it moves. Returns the changes and the variant to continue after
    (None when this was the last page). A price changed meanwhile by its seller is left alone."""
    rows = await conn.fetch(_REPRICING, now, after_variant, limit)
    changes: list[PriceChange] = []
    for r in rows:
        new = dynamic_price(_rule(r), r["price_cents"], r["stock"], r["velocity"])
        try:
            change = await record_price_change(conn, r["variant_id"], r["price_cents"], new,
                                               "dynamic")
        except Conflict:
            continue
        if change is not None:
            changes.append(change)
    return changes, (rows[-1]["variant_id"] if len(rows) == limit else None)
