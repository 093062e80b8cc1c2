"""Variant rows from per-product arrays, and stock rows per variant."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from adapters.loading._text import digits
from adapters.loading.frames import STOCK, VARIANTS, WAREHOUSE_IDS, IdSource, table

_STOCKED_IN = np.array([1, 2, 3])  # warehouses holding a variant ...
_STOCKED_IN_P = np.array([0.5, 0.35, 0.15])  # ... with these probabilities
_OUT_OF_STOCK = 0.08  # share of stock rows at 0


def expand(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For counts per parent: (parent index, position 0..count-1) per child row."""
    counts = np.asarray(counts, dtype=np.int64)
    parent = np.repeat(np.arange(len(counts)), counts)
    starts = np.cumsum(counts) - counts
    return parent, np.arange(len(parent)) - starts[parent]


def nullable(values: np.ndarray, null: np.ndarray, type_: pa.DataType) -> pa.Array:
    return pa.array(values, type=type_, mask=np.asarray(null, dtype=bool))


@dataclasses.dataclass(frozen=True)
class VariantSpec:
    """Per-variant columns (parent = product row index, as from `expand`)."""

    parent: np.ndarray
    position: np.ndarray
    attributes: pa.Array  # JSON text
    price_cents: np.ndarray
    compare_price_cents: np.ndarray  # -1: none
    price_synthetic: np.ndarray
    weight_grams: np.ndarray  # -1: unknown
    inactive: np.ndarray | None = None


def variants_table(spec: VariantSpec, product_ids: np.ndarray, sku_stems: pa.Array,
                   ids: IdSource) -> pa.Table:
    """Rows of product_variants; SKU = `<stem>-<position+1>` (stem per product)."""
    n = len(spec.parent)
    parent = pa.array(spec.parent)
    sku = pc.binary_join_element_wise(pc.take(sku_stems, parent), digits(spec.position + 1), "-")
    inactive = np.zeros(n, bool) if spec.inactive is None else spec.inactive
    return table(
        VARIANTS, variant_id=ids(n), product_id=product_ids[spec.parent], sku=sku,
        attributes=spec.attributes, price_cents=spec.price_cents,
        compare_price_cents=nullable(spec.compare_price_cents, spec.compare_price_cents < 0,
                                     pa.int64()),
        price_synthetic=spec.price_synthetic,
        weight_grams=nullable(spec.weight_grams, spec.weight_grams < 0, pa.int32()),
        status=np.where(inactive, "INACTIVE", "ACTIVE"), position=spec.position,
    )


def stock_table(variant_ids: np.ndarray, rng: np.random.Generator) -> pa.Table:
    """Each variant in 1-3 distinct warehouses; heavy-tailed quantities, some at zero."""
    n = len(variant_ids)
    per_variant = rng.choice(_STOCKED_IN, size=n, p=_STOCKED_IN_P)
    parent, slot = expand(per_variant)
    first = rng.integers(0, len(WAREHOUSE_IDS), n)
    warehouse = (first[parent] + slot) % len(WAREHOUSE_IDS)
    available = np.minimum(np.floor(rng.lognormal(3.2, 1.1, len(parent))), 5_000)
    available[rng.random(len(parent)) < _OUT_OF_STOCK] = 0
    return table(STOCK, variant_id=variant_ids[parent],
                 warehouse_id=WAREHOUSE_IDS.take(pa.array(warehouse)),
                 available=available.astype(np.int32), reserved=np.zeros(len(parent), np.int32))
