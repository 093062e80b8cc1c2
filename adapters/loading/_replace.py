"""A forced reload first removes what the earlier load of the same dataset wrote.

A dataset's products are those with a variant under its SKU prefix. Their stock, images,
reviews, versions and variants go with them, and so do keyless (loader) sellers left with no
products.
Categories stay: the tree is shared between catalogs.
"""

from __future__ import annotations

import asyncpg

from adapters.loading.writer import COPY_TIMEOUT_S

_STEPS = [
    "CREATE TEMP TABLE _reload_products (product_id BIGINT PRIMARY KEY) ON COMMIT DROP",
    "CREATE TEMP TABLE _reload_sellers (seller_id BIGINT PRIMARY KEY) ON COMMIT DROP",
    """INSERT INTO _reload_products
       SELECT DISTINCT product_id FROM product_variants WHERE starts_with(sku, $1)""",
    """INSERT INTO _reload_sellers SELECT DISTINCT seller_id FROM products
       WHERE product_id IN (SELECT product_id FROM _reload_products)""",
    """DELETE FROM stock WHERE variant_id IN (SELECT variant_id FROM product_variants
       WHERE product_id IN (SELECT product_id FROM _reload_products))""",
    "DELETE FROM product_images WHERE product_id IN (SELECT product_id FROM _reload_products)",
    "DELETE FROM reviews_summary WHERE product_id IN (SELECT product_id FROM _reload_products)",
    "DELETE FROM product_versions WHERE product_id IN (SELECT product_id FROM _reload_products)",
    "DELETE FROM product_variants WHERE product_id IN (SELECT product_id FROM _reload_products)",
    "DELETE FROM products WHERE product_id IN (SELECT product_id FROM _reload_products)",
    """DELETE FROM sellers s WHERE seller_id IN (SELECT seller_id FROM _reload_sellers)
       AND s.api_key_hash IS NULL
       AND NOT EXISTS (SELECT 1 FROM products p WHERE p.seller_id = s.seller_id)""",
]


async def delete_dataset_rows(conn: asyncpg.Connection, sku_prefix: str) -> int:
    """Delete the rows of the dataset writing SKUs `<sku_prefix>-...`; returns products gone."""
    removed = 0
    for sql in _STEPS:
        args = (sku_prefix + "-",) if "$1" in sql else ()
        status = await conn.execute(sql, *args, timeout=COPY_TIMEOUT_S)
        if sql.startswith("DELETE FROM products"):
            removed = int(status.split()[-1])
    await conn.execute("DROP TABLE _reload_products, _reload_sellers")
    return removed
