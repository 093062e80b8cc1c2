"""Writes catalog frames into PostgreSQL with bulk COPY (CSV made by pyarrow).

The caller owns the transaction: a load is one transaction, so a failure leaves nothing.
Categories arrive as paths and are upserted level by level (ON CONFLICT DO NOTHING on
(parent_id, name)), then read back, so catalogs loaded into one database share one tree.
"""

from __future__ import annotations

import collections

import asyncpg
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv

from adapters.loading.frames import CatalogFrames

COPY_TIMEOUT_S = 3600.0
# frames attribute -> (table, columns); products' category_key becomes category_id
TABLES: dict[str, tuple[str, list[str]]] = {
    "sellers": ("sellers", ["seller_id", "name", "rating"]),
    "products": ("products", ["product_id", "seller_id", "external_id", "title", "description",
                              "category_id", "brand", "status", "created_at"]),
    "variants": ("product_variants", ["variant_id", "product_id", "sku", "attributes",
                                      "price_cents", "compare_price_cents", "price_synthetic",
                                      "weight_grams", "status", "position"]),
    "images": ("product_images", ["product_id", "variant_id", "url", "position", "alt_text"]),
    "reviews": ("reviews_summary", ["product_id", "avg_rating", "review_count", "dist_1",
                                    "dist_2", "dist_3", "dist_4", "dist_5"]),
    "stock": ("stock", ["variant_id", "warehouse_id", "available", "reserved"]),
}
_INSERT_LEVEL = """
INSERT INTO categories (parent_id, name, path, depth)
SELECT u.parent_id, u.name, COALESCE(p.path, '{}'::text[]) || u.name, COALESCE(p.depth + 1, 0)
FROM unnest($1::int[], $2::text[]) AS u(parent_id, name)
LEFT JOIN categories p ON p.category_id = u.parent_id
ON CONFLICT (parent_id, name) DO NOTHING"""
_READ_LEVEL = """
SELECT c.category_id, c.parent_id, c.name
FROM unnest($1::int[], $2::text[]) AS u(parent_id, name)
JOIN categories c ON c.parent_id IS NOT DISTINCT FROM u.parent_id AND c.name = u.name"""
_WAREHOUSES = """
INSERT INTO warehouses (warehouse_id, name, region)
SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
ON CONFLICT (warehouse_id) DO NOTHING"""


def to_csv(t: pa.Table) -> pa.Buffer:
    """CSV as PostgreSQL's COPY reads it: nulls unquoted-empty, strings always quoted."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(t, sink, pa_csv.WriteOptions(include_header=False, batch_size=16_384))
    return sink.getvalue()


class CatalogWriter:
    """Writes frames on one connection; counts rows; remembers category ids by path."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn
        self.category_ids: dict[tuple[str, ...], int] = {}
        self.counts: collections.Counter[str] = collections.Counter()

    async def write(self, frames: CatalogFrames) -> None:
        if frames.warehouses.num_rows:
            w = frames.warehouses
            await self.conn.execute(_WAREHOUSES, *(w[c].to_pylist() for c in w.column_names),
                                    timeout=COPY_TIMEOUT_S)  # may wait for a concurrent load
        await self.put("sellers", frames.sellers)
        paths = frames.category_paths()
        await self.ensure_categories(paths)
        key_to_id = np.array([self.category_ids[p] for p in paths] or [0], np.int32)
        products = frames.products
        ids = key_to_id[products["category_key"].to_numpy()]
        products = products.set_column(products.schema.get_field_index("category_key"),
                                       "category_id", pa.array(ids, pa.int32()))
        await self.put("products", products)
        for name in ("variants", "images", "reviews", "stock"):
            await self.put(name, getattr(frames, name))

    async def put(self, name: str, t: pa.Table) -> None:
        """Bulk-write the rows of one frames table (bench baselines override this)."""
        if t.num_rows == 0:
            return
        table_name, columns = TABLES[name]
        csv = memoryview(to_csv(t.select(columns)))
        await self.conn.copy_to_table(  # asyncpg takes buffer-protocol sources; stubs lag
            table_name, source=csv, columns=columns,  # type: ignore[arg-type]
            format="csv", timeout=COPY_TIMEOUT_S,
        )
        self.counts[name] += t.num_rows

    async def ensure_categories(self, paths: list[tuple[str, ...]]) -> None:
        """Ids for every path and its ancestors, inserting the missing nodes root first."""
        missing = {p[:d] for p in paths for d in range(1, len(p) + 1)} - self.category_ids.keys()
        for depth in sorted({len(p) for p in missing}):
            level = sorted(p for p in missing if len(p) == depth)
            parents = [self.category_ids[p[:-1]] if depth > 1 else None for p in level]
            names = [p[-1] for p in level]
            status = await self.conn.execute(_INSERT_LEVEL, parents, names,
                                             timeout=COPY_TIMEOUT_S)
            self.counts["categories_new"] += int(status.split()[-1])
            rows = await self.conn.fetch(_READ_LEVEL, parents, names)
            found = {(r["parent_id"], r["name"]): r["category_id"] for r in rows}
            for path, parent in zip(level, parents, strict=True):
                self.category_ids[path] = found[(parent, path[-1])]
        self.counts["categories"] = len(self.category_ids)
