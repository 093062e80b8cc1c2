"""What a product page is made of, read from PostgreSQL: the product with its seller, reviews
summary, active variants and images (metadata), and the inputs of its prices (the pricing
engine's, via pricing_repo.load_pricing, plus the names shown and when the price may change
next). Each is one read on one connection; the caches in serve/pdp.py sit in front of it."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from adapters.postgres import Conn
from adapters.postgres.pricing_repo import PricingInputs, load_pricing

_PRODUCT = """
SELECT p.product_id, p.seller_id, p.external_id, p.title, p.description, p.category_id,
       p.brand, p.status::text AS status, p.version,
       extract(epoch FROM p.created_at)::float8 AS created_at,
       s.name AS seller_name, s.rating::float8 AS seller_rating, s.status AS seller_status,
       r.avg_rating::float8 AS rating_avg, r.review_count,
       r.dist_1, r.dist_2, r.dist_3, r.dist_4, r.dist_5,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'variant_id', v.variant_id::text, 'sku', v.sku, 'attributes', v.attributes)
                ORDER BY v.position, v.variant_id), '[]'::jsonb)
        FROM product_variants v
        WHERE v.product_id = p.product_id AND v.status = 'ACTIVE') AS variants,
       (SELECT coalesce(jsonb_agg(jsonb_build_array(i.variant_id::text, i.url)
                ORDER BY i.position, i.image_id), '[]'::jsonb)
        FROM product_images i WHERE i.product_id = p.product_id) AS images,
       (SELECT coalesce(sum(st.sold), 0)
        FROM product_variants v JOIN stock st ON st.variant_id = v.variant_id
        WHERE v.product_id = p.product_id AND v.status = 'ACTIVE')::bigint AS sold
FROM products p
JOIN sellers s ON s.seller_id = p.seller_id
LEFT JOIN reviews_summary r ON r.product_id = p.product_id
WHERE p.product_id = $1
"""

_NEXT_DEAL = """
SELECT min(starts_at) FROM deals
WHERE starts_at > $1 AND (
       (scope = 'product' AND scope_value = ANY($2::text[]))
    OR (scope = 'category' AND scope_value = ANY($3::text[]))
    OR (scope = 'brand' AND lower(scope_value) = ANY($4::text[]))
    OR (scope = 'seller' AND scope_value = ANY($5::text[])))
"""


async def load_product(conn: Conn, product_id: int) -> dict[str, Any] | None:
    """The product row with its seller, reviews summary, active variants (in display order)
    and images (`[variant_id or None, url]` in display order), whatever its status; None if
    there is no such product."""
    row = await conn.fetchrow(_PRODUCT, product_id)
    return dict(row) if row is not None else None


@dataclasses.dataclass(frozen=True)
class PriceInputs:
    pricing: PricingInputs  # sellable variants only (product, variant and seller ACTIVE)
    seller_names: dict[int, str]  # every offer's seller
    deal_names: dict[int, str]
    next_deal_start: datetime | None  # the next deal in scope to start: prices change then


async def load_prices(conn: Conn, product_id: int, now: datetime) -> PriceInputs:
    variant_ids: Sequence[int] = [r["variant_id"] for r in await conn.fetch(
        "SELECT variant_id FROM product_variants WHERE product_id = $1 AND status = 'ACTIVE'",
        product_id)]
    pricing = await load_pricing(conn, variant_ids, now)
    sellers = sorted({o.seller_id for vp in pricing.variants.values() for o in vp.offers})
    names = {r["seller_id"]: r["name"] for r in await conn.fetch(
        "SELECT seller_id, name FROM sellers WHERE seller_id = ANY($1::bigint[])", sellers)}
    deals = {r["deal_id"]: r["name"] for r in await conn.fetch(
        "SELECT deal_id, name FROM deals WHERE deal_id = ANY($1::bigint[])",
        [d.deal_id for d in pricing.deals])} if pricing.deals else {}
    items = [vp.item for vp in pricing.variants.values()]
    next_start = await conn.fetchval(
        _NEXT_DEAL, now,
        sorted({str(i.product_id) for i in items}),
        sorted({str(c) for i in items for c in i.category_ids}),
        sorted({i.brand.lower() for i in items if i.brand}),
        [str(s) for s in sellers]) if items else None
    return PriceInputs(pricing, names, deals, next_start)


async def top_products(conn: Conn, limit: int) -> list[int]:
    """The ACTIVE products most likely to be viewed: most units sold, then most reviewed."""
    rows = await conn.fetch(
        """SELECT p.product_id FROM products p
           LEFT JOIN reviews_summary r ON r.product_id = p.product_id
           LEFT JOIN LATERAL (
               SELECT sum(st.sold) AS sold FROM product_variants v
               JOIN stock st ON st.variant_id = v.variant_id
               WHERE v.product_id = p.product_id) s ON true
           WHERE p.status = 'ACTIVE'
           ORDER BY coalesce(s.sold, 0) DESC, coalesce(r.review_count, 0) DESC, p.product_id
           LIMIT $1""", limit)
    return [int(r["product_id"]) for r in rows]
