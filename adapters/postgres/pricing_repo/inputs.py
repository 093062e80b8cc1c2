"""The inputs of a quote read in one go: variants with their offers and rules, active deals."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

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

    @property
    def rules(self) -> list[DynamicRule]:
        return [v.rule for v in self.variants.values() if v.rule is not None]


_VARIANTS = """
SELECT v.variant_id, v.product_id, v.price_cents, v.compare_price_cents, p.seller_id,
       p.category_id, p.brand, s.rating,
       COALESCE((SELECT sum(st.available) FROM stock st
                 JOIN warehouses w ON w.warehouse_id = st.warehouse_id
                 WHERE st.variant_id = v.variant_id AND w.seller_id IS NULL),
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
SELECT o.variant_id, o.seller_id, o.price_cents, o.warehouse_id, s.rating,
       CASE WHEN o.warehouse_id IS NULL THEN o.available
            ELSE COALESCE((SELECT st.available FROM stock st WHERE st.variant_id = o.variant_id
                           AND st.warehouse_id = o.warehouse_id), 0) END AS available
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
SELECT deal_id, scope, scope_value, kind, amount, starts_at, ends_at, seller_id FROM deals
WHERE starts_at <= $1 AND ends_at > $1 AND (
       (scope = 'product' AND scope_value = ANY($2::text[]))
    OR (scope = 'category' AND scope_value = ANY($3::text[]))
    OR (scope = 'brand' AND lower(scope_value) = ANY($4::text[]))
    OR (scope = 'seller' AND scope_value = ANY($5::text[])))
"""


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
    offers: dict[int, dict[int, Offer]] = {r["variant_id"]: {r["seller_id"]: offer(r)}
                                           for r in rows}
    for o in await conn.fetch(_OFFERS, ids):
        offers[o["variant_id"]][o["seller_id"]] = offer(o)
    rules = {r["variant_id"]: dynamic_rule(r) for r in await conn.fetch(_RULES, ids)}
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


async def offer_warehouses(conn: Conn, pairs: Sequence[tuple[int, int]]
                           ) -> dict[tuple[int, int], str]:
    """(variant, seller) -> the warehouse holding that seller's units of it, for those of the
    pairs that are other sellers' offers with stock of their own."""
    if not pairs:
        return {}
    rows = await conn.fetch(
        """SELECT o.variant_id, o.seller_id, o.warehouse_id
           FROM offers o JOIN unnest($1::bigint[], $2::bigint[]) AS k(v, s)
             ON o.variant_id = k.v AND o.seller_id = k.s
           WHERE o.warehouse_id IS NOT NULL""",
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
