"""Reads what search documents are made of: current product rows joined with their active
variants (cheapest price, attributes), stock (available, sold), reviews, seller and first image.
Products that are not ACTIVE or have no active variant are reported as gone (to delete)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from adapters.postgres import Conn
from domain.search import SearchDocument

_SELECT = """
SELECT p.product_id, p.version, p.external_id, p.seller_id, p.title, p.description, p.brand,
       p.category_id, c.path AS category_path,
       extract(epoch FROM p.created_at)::bigint AS created_at,
       v.price_cents, v.price_was_cents, v.variant_attributes, v.variant_ids,
       coalesce(s.available, 0) AS available, coalesce(s.sold, 0) AS sold,
       r.avg_rating::float8 AS rating_avg, r.review_count AS rating_count,
       sl.rating::float8 AS seller_rating, img.url AS thumbnail_url
FROM products p
JOIN sellers sl ON sl.seller_id = p.seller_id
LEFT JOIN categories c ON c.category_id = p.category_id
JOIN LATERAL (
    SELECT min(pv.price_cents) AS price_cents,
           (array_agg(pv.compare_price_cents ORDER BY pv.price_cents, pv.variant_id))[1]
               AS price_was_cents,
           jsonb_agg(pv.attributes) AS variant_attributes,
           array_agg(pv.variant_id ORDER BY pv.position, pv.variant_id) AS variant_ids
    FROM product_variants pv WHERE pv.product_id = p.product_id AND pv.status = 'ACTIVE'
    HAVING count(*) > 0
) v ON true
LEFT JOIN LATERAL (
    SELECT sum(st.available) AS available, sum(st.sold) AS sold
    FROM product_variants pv JOIN stock st ON st.variant_id = pv.variant_id
    WHERE pv.product_id = p.product_id AND pv.status = 'ACTIVE'
) s ON true
LEFT JOIN reviews_summary r ON r.product_id = p.product_id
LEFT JOIN LATERAL (
    SELECT url FROM product_images i WHERE i.product_id = p.product_id
    ORDER BY i.position, i.image_id LIMIT 1
) img ON true
WHERE p.status = 'ACTIVE' AND sl.status = 'ACTIVE'
"""

_BY_IDS = _SELECT + " AND p.product_id = ANY($1::bigint[])"
_SCAN = _SELECT + """ AND p.product_id > $1 AND p.product_id <= $3
ORDER BY p.product_id LIMIT $2"""


_SAMPLE = """
SELECT p.title, p.description, p.brand, c.path AS category_path
FROM products p LEFT JOIN categories c ON c.category_id = p.category_id
WHERE p.status = 'ACTIVE'
ORDER BY md5(coalesce(p.external_id, '') || p.title), p.external_id, p.title
LIMIT $1
"""


async def text_sample(conn: Conn, limit: int) -> list[SearchDocument]:
    """The texts of up to `limit` active products, chosen by a hash of what they are
    (external id and title), not of when they were loaded: the same catalog gives the same
    sample, which sets an index generation's length pivots (domain.text_scoring)."""
    rows = await conn.fetch(_SAMPLE, limit)
    return [SearchDocument(title=r["title"], description=r["description"] or "",
                           brand=r["brand"], category_path=list(r["category_path"] or ()))
            for r in rows]


async def database_now(conn: Conn) -> datetime:
    """PostgreSQL's clock (the one deal boundaries are looked for with)."""
    now: datetime = await conn.fetchval("SELECT clock_timestamp()")
    return now


async def category_parents(conn: Conn) -> dict[int, int | None]:
    rows = await conn.fetch("SELECT category_id, parent_id FROM categories")
    return {int(r["category_id"]): r["parent_id"] for r in rows}


async def rows_for(conn: Conn,
                   product_ids: Sequence[int]) -> tuple[list[dict[str, Any]], list[int]]:
    """(rows of searchable products, ids of the others: deleted, inactive, unknown)."""
    rows = [dict(r) for r in await conn.fetch(_BY_IDS, list(product_ids))]
    found = {r["product_id"] for r in rows}
    return rows, [p for p in product_ids if p not in found]


async def scan(conn: Conn, after: int, limit: int,
               upto: int = 2**63 - 1) -> list[dict[str, Any]]:
    """Searchable products with after < product_id <= upto, in id order (keyset pages)."""
    return [dict(r) for r in await conn.fetch(_SCAN, after, limit, upto)]


async def product_of_variants(conn: Conn, variant_ids: Sequence[int]) -> list[int]:
    rows = await conn.fetch(
        "SELECT DISTINCT product_id FROM product_variants WHERE variant_id = ANY($1::bigint[])",
        list(variant_ids))
    return [int(r["product_id"]) for r in rows]


_IN_SCOPE = """
WITH s AS (
    SELECT x->>'scope' AS scope, x->>'value' AS value FROM jsonb_array_elements($1::jsonb) x
), ids AS (  -- ids as numbers, so the indexes serve (a superset: "007" matches 7 too);
    -- the CASE keeps a value that is not a number away from the cast, whatever the plan
    SELECT scope, n FROM (
        SELECT scope, CASE WHEN value ~ '^[0-9]{1,19}$' THEN value::numeric END AS n
        FROM s WHERE scope <> 'brand'
    ) t WHERE n <= 9223372036854775807
), cats AS (
    WITH RECURSIVE down (category_id) AS (
        SELECT category_id FROM categories
        WHERE category_id IN (SELECT n::int FROM ids
                              WHERE scope = 'category' AND n <= 2147483647)
        UNION
        SELECT c.category_id FROM categories c JOIN down ON c.parent_id = down.category_id
    )
    SELECT category_id FROM down
)
SELECT product_id FROM products
WHERE product_id IN (SELECT n::bigint FROM ids WHERE scope = 'product')
UNION SELECT product_id FROM products WHERE category_id IN (SELECT category_id FROM cats)
UNION SELECT product_id FROM products
      WHERE lower(brand) IN (SELECT lower(value) FROM s WHERE scope = 'brand')
UNION SELECT product_id FROM products
      WHERE seller_id IN (SELECT n::bigint FROM ids WHERE scope = 'seller')
UNION SELECT v.product_id FROM offers o JOIN product_variants v ON v.variant_id = o.variant_id
      WHERE o.seller_id IN (SELECT n::bigint FROM ids WHERE scope = 'seller')
"""


async def products_in_scopes(conn: Conn, scopes: Sequence[dict[str, str]]) -> list[int]:
    """Products a deal of any of these scopes ({"scope", "value"}) may price: the product;
    a category's, with its subcategories; a brand's; a seller's own and those it offers."""
    if not scopes:
        return []
    rows = await conn.fetch(_IN_SCOPE, list(scopes))  # jsonb: the codec encodes
    return sorted(int(r["product_id"]) for r in rows)


async def deal_scopes_between(conn: Conn, after: datetime,
                              upto: datetime) -> list[dict[str, str]]:
    """Scopes of the deals that started or ended in (after, upto]."""
    rows = await conn.fetch(
        """SELECT DISTINCT scope, scope_value FROM deals
           WHERE (starts_at > $1 AND starts_at <= $2) OR (ends_at > $1 AND ends_at <= $2)""",
        after, upto)
    return [{"scope": r["scope"], "value": r["scope_value"]} for r in rows]


async def id_ranges(conn: Conn, parts: int) -> list[tuple[int, int]]:
    """`parts` ranges (after, upto] of active product ids, about equal in size (one round
    trip): what a full build's parallel workers scan."""
    cuts = await conn.fetch(
        """WITH n AS (SELECT count(*) AS n FROM products WHERE status = 'ACTIVE')
           SELECT (SELECT product_id FROM products WHERE status = 'ACTIVE'
                   ORDER BY product_id OFFSET n.n * i / $1 LIMIT 1) AS cut
           FROM n, generate_series(1, $1 - 1) AS i ORDER BY i""", parts)
    bounds = [0]
    for r in cuts:
        if r["cut"] is not None and r["cut"] > bounds[-1]:
            bounds.append(int(r["cut"]))
    return list(zip(bounds, [*bounds[1:], 2**63 - 1], strict=True))


async def count_active(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM products WHERE status = 'ACTIVE'"))


async def random_products(conn: Conn, n: int) -> list[tuple[int, str]]:
    """(product id, title) of `n` active products picked at random: a new generation's
    canaries (each must be found by its own title)."""
    rows = await conn.fetch(
        """SELECT product_id, title FROM products WHERE status = 'ACTIVE'
           ORDER BY random() LIMIT $1""", n)
    return [(int(r["product_id"]), r["title"]) for r in rows]
