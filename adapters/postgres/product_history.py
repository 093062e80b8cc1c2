"""A product's versions: earlier ones from `product_versions` (each write snapshots the
version it replaces, in its transaction), the current one from the live rows, in the same
shape (domain.catalog.ProductSnapshot)."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from adapters.postgres import Conn
from domain.catalog import ProductSnapshot
from domain.errors import Forbidden, NotFound

# the live rows as a snapshot (what catalog_repo's snapshot of a replaced version holds)
_CURRENT = """
SELECT p.version, p.updated_at AS at, jsonb_build_object(
    'product', to_jsonb(p),
    'variants', COALESCE((SELECT jsonb_agg(to_jsonb(v) ORDER BY v.position)
                          FROM product_variants v WHERE v.product_id = p.product_id), '[]'),
    'images', COALESCE((SELECT jsonb_agg(to_jsonb(i) ORDER BY i.position)
                        FROM product_images i WHERE i.product_id = p.product_id), '[]')
) AS snapshot
FROM products p WHERE p.product_id = $1
"""


@dataclasses.dataclass(frozen=True)
class Version:
    version: int
    at: datetime  # when it was written (the current one: its last write)
    snapshot: ProductSnapshot


# an older version's snapshot is made when the next one replaces it: it was written when it
# replaced the version before it (its snapshot's time), or with the product (version 1)
_OLDER = """SELECT v.version, v.snapshot,
                   COALESCE((SELECT max(w.created_at) FROM product_versions w
                             WHERE w.product_id = v.product_id AND w.version < v.version),
                            p.created_at) AS at
            FROM product_versions v JOIN products p ON p.product_id = v.product_id
            WHERE v.product_id = $1"""


async def _owned(conn: Conn, seller_id: int, product_id: int) -> int:
    """The current version of a product of this seller's (404 / 403 otherwise)."""
    row = await conn.fetchrow(
        "SELECT seller_id, version, status FROM products WHERE product_id = $1", product_id)
    if row is None or row["status"] == "DELETED":
        raise NotFound(f"product {product_id} not found")
    if row["seller_id"] != seller_id:
        raise Forbidden(f"product {product_id} belongs to another seller")
    return int(row["version"])


async def versions(conn: Conn, seller_id: int, product_id: int) -> list[Version]:
    """Every version, newest first."""
    await _owned(conn, seller_id, product_id)
    current = await conn.fetchrow(_CURRENT, product_id)
    assert current is not None
    older = await conn.fetch(
        _OLDER + " AND v.version < $2 ORDER BY v.version DESC", product_id, current["version"])
    return [Version(int(r["version"]), r["at"], ProductSnapshot.of(r["snapshot"]))
            for r in [current, *older]]


async def version(conn: Conn, seller_id: int, product_id: int, n: int) -> tuple[Version, int]:
    """Version n, and the current version's number."""
    latest = await _owned(conn, seller_id, product_id)
    if n == latest:
        row = await conn.fetchrow(_CURRENT, product_id)
    else:
        row = await conn.fetchrow(_OLDER + " AND v.version = $2", product_id, n)
    if row is None:
        raise NotFound(f"product {product_id} has no version {n} (it is at {latest})",
                       current_version=latest)
    return Version(int(row["version"]), row["at"], ProductSnapshot.of(
        row["snapshot"])), latest
