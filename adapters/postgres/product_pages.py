"""What a product page is made of, read from PostgreSQL: the product with its seller, reviews
summary, active variants and images (metadata: one statement), and the inputs of its prices
(the pricing engine's, with the names shown and when the price may change next:
pricing_repo.load_product_pricing, three statements). The caches in serve/pdp.py sit in front
of them."""

from __future__ import annotations

from typing import Any

from adapters.postgres import Conn

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

async def load_product(conn: Conn, product_id: int) -> dict[str, Any] | None:
    """The product row with its seller, reviews summary, active variants (in display order)
    and images (`[variant_id or None, url]` in display order), whatever its status; None if
    there is no such product."""
    row = await conn.fetchrow(_PRODUCT, product_id)
    return dict(row) if row is not None else None


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
