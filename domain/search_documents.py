"""Search documents from catalog rows (pure): denormalized catalog + effective price + stock
status + ratings, as a pyarrow RecordBatch (the unit builders hand to the index).

Badges (documented rules): "Deal" when the compare-at price is above the price; "Top Rated"
at 4.5+ stars over 20+ reviews; "Best Seller" at 1+ unit sold per day on average.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

import pyarrow as pa

from domain.search import SearchDocument, normalize_key, tie_key

DAY_S = 86_400.0
MAX_ATTRIBUTES = 32  # names kept per product
MAX_VALUES = 32  # values kept per attribute

SCHEMA = pa.schema([
    ("product_id", pa.int64()), ("version", pa.int64()), ("external_id", pa.string()),
    ("seller_id", pa.int64()), ("title", pa.string()), ("description", pa.string()),
    ("brand", pa.string()), ("brand_key", pa.string()),
    ("category_ids", pa.list_(pa.int64())), ("category_path", pa.list_(pa.string())),
    ("price", pa.float64()), ("price_was", pa.float64()), ("currency", pa.string()),
    ("rating_avg", pa.float64()), ("rating_count", pa.int64()), ("in_stock", pa.bool_()),
    ("badges", pa.list_(pa.string())),
    ("attributes", pa.map_(pa.string(), pa.list_(pa.string()))),
    ("created_at", pa.int64()), ("sales_velocity", pa.float64()),
    ("seller_rating", pa.float64()), ("thumbnail_url", pa.string()),
    ("variant_ids", pa.list_(pa.int64())), ("tie_key", pa.int64()),
    ("title_vec", pa.binary()),  # made by the index builder when the generation wants it
])


def ancestors(category_id: int | None, parents: Mapping[int, int | None]) -> list[int]:
    """The category and its ancestors, leaf first (stops on a cycle or an unknown id)."""
    out: list[int] = []
    c = category_id
    while c is not None and c in parents and c not in out:
        out.append(c)
        c = parents[c]
    return out


def attributes_of(variant_attributes: Iterable[Mapping[str, Any] | None]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for attrs in variant_attributes:
        for name, value in (attrs or {}).items():
            key = normalize_key(str(name))
            if not key or (key not in out and len(out) >= MAX_ATTRIBUTES):
                continue
            values = out.setdefault(key, [])
            for v in value if isinstance(value, list) else [value]:
                nv = normalize_key(str(v))
                if nv and nv not in values and len(values) < MAX_VALUES:
                    values.append(nv)
    return {k: v for k, v in out.items() if v}


def badges(price: float, price_was: float | None, rating_avg: float, rating_count: int,
           velocity: float) -> list[str]:
    out = []
    if velocity >= 1.0:
        out.append("Best Seller")
    if price_was is not None and price_was > price:
        out.append("Deal")
    if rating_avg >= 4.5 and rating_count >= 20:
        out.append("Top Rated")
    return out


def document(row: Mapping[str, Any], parents: Mapping[int, int | None],
             now_s: float) -> SearchDocument:
    """One search document from one joined catalog row (see adapters/postgres/search_docs.py)."""
    price = row["price_cents"] / 100.0
    was = row.get("price_was_cents")
    price_was = was / 100.0 if was is not None and was > price * 100 else None
    created = int(row["created_at"])
    age_days = max(1.0, (now_s - created) / DAY_S)
    velocity = float(row.get("sold") or 0) / age_days
    rating_avg = float(row.get("rating_avg") or 0.0)
    rating_count = int(row.get("rating_count") or 0)
    brand = row.get("brand") or None
    seller_rating = row.get("seller_rating")
    return {
        "product_id": int(row["product_id"]), "version": int(row["version"]),
        "external_id": row["external_id"], "seller_id": int(row["seller_id"]),
        "title": row["title"], "description": row.get("description") or "",
        "brand": brand, "brand_key": normalize_key(brand) if brand else None,
        "category_ids": ancestors(row.get("category_id"), parents),
        "category_path": list(row.get("category_path") or ()),
        "price": price, "price_was": price_was, "currency": "USD",
        "rating_avg": rating_avg, "rating_count": rating_count,
        "in_stock": int(row.get("available") or 0) > 0,
        "badges": badges(price, price_was, rating_avg, rating_count, velocity),
        "attributes": attributes_of(row.get("variant_attributes") or ()),
        "created_at": created, "sales_velocity": velocity,
        "seller_rating": float(seller_rating) if seller_rating is not None else math.nan,
        "thumbnail_url": row.get("thumbnail_url"),
        "variant_ids": [int(v) for v in row.get("variant_ids") or ()],
        "tie_key": tie_key(row["external_id"], int(row["product_id"])),
        "title_vec": None,
    }


def record_batch(docs: Sequence[SearchDocument]) -> pa.RecordBatch:
    cols = {f.name: [d.get(f.name) for d in docs] for f in SCHEMA}
    cols["attributes"] = [list(d["attributes"].items()) for d in docs]
    return pa.RecordBatch.from_pydict(cols, schema=SCHEMA)


def rows_of(batch: pa.RecordBatch) -> list[SearchDocument]:
    """Documents back from a batch (maps come back as lists of pairs)."""
    out = batch.to_pylist()
    for d in out:
        d["attributes"] = dict(d["attributes"] or [])
    return cast(list[SearchDocument], out)
