"""The inputs of a quote read in one go: variants with their offers and rules, active deals."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from adapters.postgres import Conn
from adapters.postgres.pricing_repo._rows import dynamic_rule, offer
from domain.pricing import Deal, DynamicRule, Item, Offer


@dataclasses.dataclass(frozen=True)
class VariantPricing:
    item: Item  # as sold by the product's own seller, at the list price
    compare_price_cents: int | None
    # every seller's: the product seller's stock is its rows in the platform's (unowned)
    # warehouses, another seller's is its offer's warehouse's row
    offers: tuple[Offer, ...]
    rule: DynamicRule | None


@dataclasses.dataclass(frozen=True)
class PricingInputs:
    variants: dict[int, VariantPricing]  # sellable ones only: others are simply absent
    deals: tuple[Deal, ...]  # active at `now` and in scope of at least one of them
    seller_names: dict[int, str] = dataclasses.field(default_factory=dict)  # every offer's
    deal_names: dict[int, str] = dataclasses.field(default_factory=dict)  # the deals'
    next_deal_start: datetime | None = None  # the next deal in scope to start: prices change

    @property
    def rules(self) -> list[DynamicRule]:
        return [v.rule for v in self.variants.values() if v.rule is not None]


# the variants with their product's facts, the category's ancestors (itself included), the
# seller's name and rating, the platform's stock and the enabled rule (one row per variant)
_VARIANTS = """
SELECT v.variant_id, v.product_id, v.price_cents, v.compare_price_cents, p.seller_id,
       p.category_id, p.brand, s.rating, s.name AS seller_name,
       COALESCE((SELECT sum(st.available) FROM stock st
                 JOIN warehouses w ON w.warehouse_id = st.warehouse_id
                 WHERE st.variant_id = v.variant_id AND w.seller_id IS NULL),
                0)::bigint AS available,
       ARRAY(WITH RECURSIVE up (category_id, parent_id) AS (
                 SELECT c.category_id, c.parent_id FROM categories c
                 WHERE c.category_id = p.category_id
                 UNION ALL
                 SELECT c.category_id, c.parent_id FROM up
                 JOIN categories c ON c.category_id = up.parent_id)
             SELECT category_id FROM up) AS category_ids,
       r.enabled AS has_rule, r.floor_cents, r.ceiling_cents, r.low_stock, r.high_stock,
       r.hot_velocity, r.cold_velocity, r.step_up_bp, r.step_down_bp, r.window_s
FROM product_variants v
JOIN products p ON p.product_id = v.product_id
JOIN sellers s ON s.seller_id = p.seller_id
LEFT JOIN dynamic_price_rules r ON r.variant_id = v.variant_id AND r.enabled
WHERE {which}
  AND v.status = 'ACTIVE' AND p.status = 'ACTIVE' AND s.status = 'ACTIVE'
ORDER BY v.variant_id
"""
_OF_VARIANTS = _VARIANTS.format(which="v.variant_id = ANY($1::bigint[])")
_OF_PRODUCT = _VARIANTS.format(which="v.product_id = $1")

_OFFERS = """
SELECT o.variant_id, o.seller_id, o.price_cents, o.warehouse_id, s.rating,
       s.name AS seller_name,
       CASE WHEN o.warehouse_id IS NULL THEN o.available
            ELSE COALESCE((SELECT st.available FROM stock st WHERE st.variant_id = o.variant_id
                           AND st.warehouse_id = o.warehouse_id), 0) END AS available
FROM offers o JOIN sellers s ON s.seller_id = o.seller_id
WHERE o.variant_id = ANY($1::bigint[]) AND s.status = 'ACTIVE'
"""

# the deals active at $1 in scope (with their names), and when the next one in scope starts:
# one row at least (the next start; NULL deal columns when none is active)
_DEALS = """
WITH scoped AS (
    SELECT deal_id, name, scope, scope_value, kind, amount, starts_at, ends_at, seller_id
    FROM deals
    WHERE ends_at > $1 AND (
           (scope = 'product' AND scope_value = ANY($2::text[]))
        OR (scope = 'category' AND scope_value = ANY($3::text[]))
        OR (scope = 'brand' AND lower(scope_value) = ANY($4::text[]))
        OR (scope = 'seller' AND scope_value = ANY($5::text[])))
)
SELECT d.*, n.next_start
FROM (SELECT min(starts_at) AS next_start FROM scoped WHERE starts_at > $1) n
LEFT JOIN scoped d ON d.starts_at <= $1
ORDER BY d.deal_id
"""


async def load_pricing(conn: Conn, variant_ids: Sequence[int], now: datetime) -> PricingInputs:
    """Everything `quote` and `unit_price` need for these variants: list price, product facts
    (category with its ancestors, brand, seller), every offer, the rule, and the deals active
    at `now` that touch any of them; with the sellers' and deals' names and when the next
    deal in scope starts. An `offers` row of the product's own seller replaces the offer made
    from the variant row. Three statements (none when no variant is sellable)."""
    return await _pricing(conn, await conn.fetch(_OF_VARIANTS, sorted(set(variant_ids))), now)


async def load_product_pricing(conn: Conn, product_id: int, now: datetime) -> PricingInputs:
    """`load_pricing` of the product's active variants (a product page's prices)."""
    return await _pricing(conn, await conn.fetch(_OF_PRODUCT, product_id), now)


async def _pricing(conn: Conn, rows: Sequence[asyncpg.Record], now: datetime) -> PricingInputs:
    if not rows:  # nothing sellable: no offer, rule or deal can touch it
        return PricingInputs({}, ())
    ids = [r["variant_id"] for r in rows]
    offers: dict[int, dict[int, Offer]] = {r["variant_id"]: {r["seller_id"]: offer(r)}
                                           for r in rows}
    names = {r["seller_id"]: r["seller_name"] for r in rows}
    for o in await conn.fetch(_OFFERS, ids):
        offers[o["variant_id"]][o["seller_id"]] = offer(o)
        names[o["seller_id"]] = o["seller_name"]
    variants: dict[int, VariantPricing] = {}
    for r in rows:
        v = r["variant_id"]
        item = Item(v, r["product_id"], r["seller_id"], r["price_cents"],
                    frozenset(r["category_ids"]), r["brand"])
        variants[v] = VariantPricing(item, r["compare_price_cents"], tuple(offers[v].values()),
                                     dynamic_rule(r) if r["has_rule"] else None)
    items = [vp.item for vp in variants.values()]
    deal_rows = await conn.fetch(
        _DEALS, now,
        sorted({str(i.product_id) for i in items}),
        sorted({str(c) for i in items for c in i.category_ids}),
        sorted({i.brand.lower() for i in items if i.brand}),
        sorted({str(s) for s in names}))
    active = [d for d in deal_rows if d["deal_id"] is not None]
    deals = tuple(Deal(d["deal_id"], d["scope"], d["scope_value"], d["kind"], d["amount"],
                       d["starts_at"], d["ends_at"], d["seller_id"]) for d in active)
    return PricingInputs(variants, deals, names, {d["deal_id"]: d["name"] for d in active},
                         deal_rows[0]["next_start"])


async def offer_warehouses(conn: Conn, pairs: Sequence[tuple[int, int]]
                           ) -> dict[tuple[int, int], str]:
    """(variant, seller) -> the warehouse holding that seller's units of it, for those of the
    pairs that are other sellers' offers with stock of their own, by sellers not suspended
    (a suspended seller's offers are not for sale, as `load_pricing` leaves them out)."""
    if not pairs:
        return {}
    rows = await conn.fetch(
        """SELECT o.variant_id, o.seller_id, o.warehouse_id
           FROM offers o JOIN unnest($1::bigint[], $2::bigint[]) AS k(v, s)
             ON o.variant_id = k.v AND o.seller_id = k.s
           JOIN sellers s ON s.seller_id = o.seller_id
           WHERE o.warehouse_id IS NOT NULL AND s.status = 'ACTIVE'""",
        [v for v, _ in pairs], [s for _, s in pairs])
    return {(r["variant_id"], r["seller_id"]): r["warehouse_id"] for r in rows}


async def line_sources(conn: Conn, pairs: Sequence[tuple[int, int]], named: Sequence[str]
                       ) -> tuple[dict[int, int], dict[tuple[int, int], str], dict[str, int]]:
    """For quoted (variant, seller) lines: each variant's listing seller, the warehouse of
    each pair that is another seller's stocked offer, and which of the `named` warehouses a
    seller owns (warehouse -> seller)."""
    listing = {r["variant_id"]: r["seller_id"] for r in await conn.fetch(
        """SELECT v.variant_id, p.seller_id FROM product_variants v
           JOIN products p USING (product_id) WHERE v.variant_id = ANY($1::bigint[])""",
        sorted({v for v, _ in pairs}))}
    owned = {r["warehouse_id"]: r["seller_id"] for r in await conn.fetch(
        "SELECT warehouse_id, seller_id FROM warehouses WHERE warehouse_id = ANY($1::text[]) "
        "AND seller_id IS NOT NULL", sorted(set(named)))}
    return listing, await offer_warehouses(conn, pairs), owned
