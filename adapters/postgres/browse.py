"""Browsing the catalog straight from PostgreSQL: what search answers while its index cannot
(shards gone, a first build running). Category (with its subtree), brand, price, rating and
stock filters, the shop's sorts, pages and a total; list prices (the pricing engine's deals
and dynamic prices are not applied here), no facets, no text. Slower than the index, and
only for as long as the index is away."""

from __future__ import annotations

import dataclasses

import asyncpg

from domain.search import Filters

_ORDER = {
    "price_asc": "price_cents ASC, p.product_id",
    "price_desc": "price_cents DESC, p.product_id",
    "rating": "rating_avg DESC NULLS LAST, rating_count DESC, p.product_id",
    "newest": "p.created_at DESC, p.product_id",
    "relevance": "rating_count DESC, p.product_id",  # no text to be relevant to: popular first
}

_BROWSE = """
WITH RECURSIVE subtree AS (
    SELECT category_id FROM categories WHERE category_id = ANY($1::int[])
    UNION
    SELECT c.category_id FROM categories c JOIN subtree s ON c.parent_id = s.category_id
), listed AS (
    SELECT p.product_id, p.external_id, p.title, p.brand, p.created_at,
           min(v.price_cents) AS price_cents,
           max(v.compare_price_cents) AS was_cents,
           r.avg_rating AS rating_avg, coalesce(r.review_count, 0) AS rating_count,
           EXISTS (SELECT 1 FROM stock s JOIN product_variants sv USING (variant_id)
                   WHERE sv.product_id = p.product_id AND s.available > 0) AS in_stock,
           (SELECT i.url FROM product_images i WHERE i.product_id = p.product_id
            ORDER BY i.position, i.image_id LIMIT 1) AS thumbnail_url
    FROM products p
    JOIN product_variants v ON v.product_id = p.product_id AND v.status = 'ACTIVE'
    LEFT JOIN reviews_summary r ON r.product_id = p.product_id
    WHERE p.status = 'ACTIVE'
      AND (cardinality($1::int[]) = 0 OR p.category_id IN (SELECT category_id FROM subtree))
      AND (cardinality($2::text[]) = 0
           OR lower(regexp_replace(btrim(p.brand), '\\s+', ' ', 'g')) = ANY($2::text[]))
      AND ($6::bigint IS NULL OR p.seller_id = $6)
    GROUP BY p.product_id, r.avg_rating, r.review_count
)
SELECT *, count(*) OVER () AS total FROM listed p
WHERE ($3::bigint IS NULL OR price_cents >= $3) AND ($4::bigint IS NULL OR price_cents <= $4)
  AND ($5::float8 IS NULL OR rating_avg >= $5) AND ($7::bool IS NULL OR in_stock = $7)
ORDER BY {order}
OFFSET $8 LIMIT $9
"""


@dataclasses.dataclass(frozen=True)
class Browsed:
    product_id: int
    external_id: str
    title: str
    brand: str | None
    price_cents: int
    was_cents: int | None
    rating_avg: float
    rating_count: int
    in_stock: bool
    thumbnail_url: str | None


async def browse(pool: asyncpg.Pool, filters: Filters, sort: str, offset: int,
                 limit: int) -> tuple[int, list[Browsed]]:
    """(products matching, one page of them). Attribute filters are not supported here."""
    rows = await pool.fetch(
        _BROWSE.format(order=_ORDER.get(sort, _ORDER["relevance"])),
        list(filters.category_ids), list(filters.brands),
        None if filters.price_min is None else int(filters.price_min * 100),
        None if filters.price_max is None else int(filters.price_max * 100),
        filters.rating_min, filters.seller_id, filters.in_stock, offset, limit)
    total = int(rows[0]["total"]) if rows else 0
    return total, [Browsed(r["product_id"], r["external_id"], r["title"], r["brand"],
                           int(r["price_cents"]), r["was_cents"],
                           float(r["rating_avg"] or 0), int(r["rating_count"]),
                           bool(r["in_stock"]), r["thumbnail_url"]) for r in rows]
