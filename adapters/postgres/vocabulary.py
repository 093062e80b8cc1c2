"""The query-understanding vocabulary, built from the catalog in PostgreSQL (streamed with a
server-side cursor, so a large catalog is never held in memory at once). Products come in the
order of their external ids: where the vocabulary keeps what it saw first (a brand's display
form, among equally frequent values), the same catalog gives the same vocabulary on every
load (product ids differ from load to load)."""

from __future__ import annotations

import asyncpg

from domain.query import CatalogVocabulary
from domain.search_documents import ancestors, attributes_of

_ROWS = """
SELECT p.title, p.brand, p.category_id, c.path AS category_names,
       (SELECT jsonb_agg(v.attributes) FROM product_variants v
        WHERE v.product_id = p.product_id AND v.status = 'ACTIVE') AS attrs
FROM products p LEFT JOIN categories c ON c.category_id = p.category_id
WHERE p.status = 'ACTIVE'
ORDER BY p.external_id, p.title, p.product_id
"""


async def build_vocabulary(pool: asyncpg.Pool) -> CatalogVocabulary:
    vocab = CatalogVocabulary()
    async with pool.acquire() as conn, conn.transaction():
        parents = {int(r["category_id"]): r["parent_id"]
                   for r in await conn.fetch("SELECT category_id, parent_id FROM categories")}
        async for r in conn.cursor(_ROWS, prefetch=5_000):
            attrs = attributes_of(r["attrs"] or ())
            vocab.add(title=r["title"], brand=r["brand"], category_id=r["category_id"],
                      category_ids=ancestors(r["category_id"], parents),
                      category_names=r["category_names"] or (), attributes=attrs)
    vocab.freeze()
    return vocab
