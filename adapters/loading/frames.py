"""The tables a catalog load writes, as pyarrow Tables with fixed schemas.

Categories are given as paths (names from the root down to the leaf); products point at a
path through `category_key`, an index into the `categories` table of the same frames. The
writer turns paths into `categories` rows and keys into category ids. A big catalog comes as a
sequence of frames (chunks); sellers and warehouses appear in the chunk that introduces them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

IdSource = Callable[[int], np.ndarray]  # n -> n unique int64 ids (LeasedSnowflake.next_block)

SELLERS = pa.schema([("seller_id", pa.int64()), ("name", pa.string()), ("rating", pa.float64())])
CATEGORIES = pa.schema([("key", pa.int32()), ("path", pa.list_(pa.string()))])
PRODUCTS = pa.schema([
    ("product_id", pa.int64()), ("seller_id", pa.int64()), ("external_id", pa.string()),
    ("title", pa.string()), ("description", pa.string()), ("category_key", pa.int32()),
    ("brand", pa.string()), ("status", pa.string()),
    ("created_at", pa.timestamp("us", tz="UTC")),
])
VARIANTS = pa.schema([
    ("variant_id", pa.int64()), ("product_id", pa.int64()), ("sku", pa.string()),
    ("attributes", pa.string()), ("price_cents", pa.int64()),
    ("compare_price_cents", pa.int64()), ("price_synthetic", pa.bool_()),
    ("weight_grams", pa.int32()), ("status", pa.string()), ("position", pa.int16()),
])
IMAGES = pa.schema([
    ("product_id", pa.int64()), ("variant_id", pa.int64()), ("url", pa.string()),
    ("position", pa.int16()), ("alt_text", pa.string()),
])
REVIEWS = pa.schema([
    ("product_id", pa.int64()), ("avg_rating", pa.float64()), ("review_count", pa.int32()),
    *[(f"dist_{k}", pa.int32()) for k in range(1, 6)],
])
WAREHOUSES = pa.schema([("warehouse_id", pa.string()), ("name", pa.string()),
                        ("region", pa.string())])
STOCK = pa.schema([("variant_id", pa.int64()), ("warehouse_id", pa.string()),
                   ("available", pa.int32()), ("reserved", pa.int32())])

WAREHOUSE_ROWS = [
    ("WH_01", "Newark fulfillment center", "us-east"),
    ("WH_02", "Atlanta fulfillment center", "us-south"),
    ("WH_03", "Dallas fulfillment center", "us-central"),
    ("WH_04", "Reno fulfillment center", "us-west"),
    ("WH_05", "Rotterdam fulfillment center", "eu-west"),
    ("WH_06", "Leipzig fulfillment center", "eu-central"),
]
WAREHOUSE_IDS = pa.array([w[0] for w in WAREHOUSE_ROWS], pa.string())


def table(schema: pa.Schema, **columns: Any) -> pa.Table:
    """A table of `schema` from numpy arrays, pyarrow arrays or lists, cast to the field types."""
    arrays = []
    for field in schema:
        col = columns[field.name]
        arr = col if isinstance(col, pa.Array | pa.ChunkedArray) else pa.array(col)
        arrays.append(arr.cast(field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def column(t: pa.Table, name: str, type_: pa.DataType) -> pa.Array:
    """A source column cast to `type_` (all nulls when the source lacks it)."""
    if name not in t.column_names:
        return pa.nulls(t.num_rows, type_)
    return t[name].combine_chunks().cast(type_)


def warehouses() -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(WAREHOUSES.names, row, strict=True)) for row in WAREHOUSE_ROWS],
        schema=WAREHOUSES,
    )


def categories(paths: Sequence[Sequence[str]]) -> pa.Table:
    return table(CATEGORIES, key=np.arange(len(paths), dtype=np.int32),
                 path=pa.array([list(p) for p in paths], pa.list_(pa.string())))


@dataclasses.dataclass(frozen=True)
class CatalogFrames:
    sellers: pa.Table
    categories: pa.Table
    products: pa.Table
    variants: pa.Table
    images: pa.Table
    reviews: pa.Table
    warehouses: pa.Table
    stock: pa.Table

    def __post_init__(self) -> None:
        for name, schema in _SCHEMAS.items():
            got = getattr(self, name).schema
            if not got.equals(schema):
                raise TypeError(f"CatalogFrames.{name}: expected schema {schema}, got {got}")

    def category_paths(self) -> list[tuple[str, ...]]:
        """Paths by key (key i is row i)."""
        keys = self.categories["key"].to_numpy()
        if not np.array_equal(keys, np.arange(len(keys))):
            raise ValueError("category keys must be 0..n-1 in order")
        return [tuple(p) for p in self.categories["path"].to_pylist()]


_SCHEMAS = {
    "sellers": SELLERS, "categories": CATEGORIES, "products": PRODUCTS,
    "variants": VARIANTS, "images": IMAGES, "reviews": REVIEWS,
    "warehouses": WAREHOUSES, "stock": STOCK,
}
