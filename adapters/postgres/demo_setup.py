"""What the demo launcher (tooling/demo.py) writes and reads besides the catalog loader."""

from __future__ import annotations

from adapters.postgres import Conn
from domain.sellers import hash_api_key


async def set_seller_key(conn: Conn, seller_id: int, name: str, api_key: str,
                         rating: float) -> None:
    """Seller `seller_id` exists and signs in with `api_key` (the key it had is replaced)."""
    await conn.execute(
        """INSERT INTO sellers (seller_id, name, api_key_hash, rating)
           VALUES ($1, $2, $3, $4)
           ON CONFLICT (seller_id) DO UPDATE SET api_key_hash = EXCLUDED.api_key_hash""",
        seller_id, name, hash_api_key(api_key), rating)


async def first_leaf_category(conn: Conn) -> int | None:
    """The lowest id of a category without children (for an example request)."""
    leaf: int | None = await conn.fetchval(
        """SELECT c.category_id FROM categories c WHERE NOT EXISTS
           (SELECT 1 FROM categories k WHERE k.parent_id = c.category_id)
           ORDER BY c.category_id LIMIT 1""")
    return leaf
