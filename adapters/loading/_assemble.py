"""Frames from a mapped real catalog (one row per product), shared by the esci and icecat
mappers. What the source lacks is filled in deterministically from each product's key."""

from __future__ import annotations

import dataclasses

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from adapters.loading import _pricing, _sizes
from adapters.loading._keyed import Keyed, key_hashes
from adapters.loading._reviews import reviews_table
from adapters.loading._sellers import assign_sellers, make_sellers, seller_count
from adapters.loading._text import attributes_json, clean_line
from adapters.loading._variants import VariantSpec, expand, stock_table, variants_table
from adapters.loading.frames import (
    IMAGES,
    PRODUCTS,
    CatalogFrames,
    IdSource,
    categories,
    table,
    warehouses,
)

REFERENCE_TIME = np.datetime64("2026-11-01T00:00:00", "us")  # synthetic dates end here
_THREE_YEARS_US = 3 * 365 * 86_400 * 1_000_000

# independent draw streams per product key
_S_PRICE, _S_COMPARE, _S_MARKUP, _S_SIZES, _S_START, _S_SELLER, _S_PICK, _S_DATE = range(8)


@dataclasses.dataclass
class MappedCatalog:
    """Per-product columns a mapper extracted (all of one length)."""

    external_id: pa.Array
    title: pa.Array
    description: pa.Array
    brand: pa.Array
    category_paths: list[tuple[str, ...]]
    category_key: np.ndarray
    price_cents: np.ndarray  # -1: unknown
    price_groups: list[np.ndarray]  # fill unknown prices around a group median (specific first)
    rating: np.ndarray  # NaN: none
    rating_count: np.ndarray  # 0: none
    color: pa.Array
    size_scheme: np.ndarray  # index into _sizes.NAMES, -1: one variant
    image_urls: list[pa.Array]  # image columns in display order (nulls skipped)
    weight_grams: np.ndarray  # -1: unknown
    created_at: pa.Array  # timestamps; nulls get a synthetic date


class PathIndex:
    """Distinct category paths in first-seen order; a path's key is its index."""

    def __init__(self) -> None:
        self.paths: list[tuple[str, ...]] = []
        self._keys: dict[tuple[str, ...], int] = {}

    def key(self, path: tuple[str, ...]) -> int:
        if path not in self._keys:
            self._keys[path] = len(self.paths)
            self.paths.append(path)
        return self._keys[path]


def dedupe(keys: pa.Array) -> np.ndarray:
    """Row indices keeping the first row of each non-null key."""
    enc = pc.dictionary_encode(keys, null_encoding="encode")
    _, first = np.unique(enc.indices.to_numpy(zero_copy_only=False), return_index=True)
    first = np.sort(first)
    return first[pc.is_valid(keys).to_numpy(zero_copy_only=False)[first]]


def synthetic_dates(u: np.ndarray) -> np.ndarray:
    return REFERENCE_TIME - (u * _THREE_YEARS_US).astype("timedelta64[us]")


def assemble(m: MappedCatalog, *, seed: int, ids: IdSource, sku_prefix: str) -> CatalogFrames:
    n = len(m.external_id)
    kr = Keyed(key_hashes(m.external_id.to_pylist(), seed, n))
    rng = np.random.default_rng([seed, n])
    sellers = make_sellers(seller_count(n), ids, rng)
    brand_hash = key_hashes(pc.utf8_lower(m.brand).to_pylist(), seed, n)
    who = assign_sellers(brand_hash, pc.is_valid(m.brand).to_numpy(zero_copy_only=False),
                         kr.uniform(_S_SELLER), kr.uniform(_S_PICK), len(sellers))
    product_ids = ids(n)
    created = pc.fill_null(m.created_at.cast(pa.timestamp("us", tz="UTC")),
                           pa.array(synthetic_dates(kr.uniform(_S_DATE))).cast(
                               pa.timestamp("us", tz="UTC")))
    products = table(
        PRODUCTS, product_id=product_ids,
        seller_id=sellers["seller_id"].to_numpy()[who], external_id=m.external_id,
        title=m.title, description=m.description, category_key=m.category_key,
        brand=m.brand, status=pa.array(["ACTIVE"] * n), created_at=created,
    )
    variants = variants_table(_variant_spec(m, kr), product_ids,
                              pc.binary_join_element_wise(sku_prefix, m.external_id, "-"), ids)
    reviews = reviews_table(product_ids, m.rating, m.rating_count)
    return CatalogFrames(
        sellers=sellers, categories=categories(m.category_paths), products=products,
        variants=variants, images=_images(product_ids, m.title, m.image_urls),
        reviews=reviews, warehouses=warehouses(),
        stock=stock_table(variants["variant_id"].to_numpy(), rng),
    )


def _variant_spec(m: MappedCatalog, kr: Keyed) -> VariantSpec:
    known = m.price_cents >= 0
    price = _pricing.fill_prices(m.price_cents, known, m.price_groups, kr.normal(_S_PRICE))
    compare = _pricing.compare_prices(price, kr.uniform(_S_COMPARE), kr.uniform(_S_MARKUP))
    counts = _sizes.size_counts(m.size_scheme, kr.uniform(_S_SIZES))
    parent, position = expand(counts)
    size = _sizes.size_values(m.size_scheme, kr.uniform(_S_START), parent, position, counts)
    color = pc.take(m.color, pa.array(parent))
    return VariantSpec(
        parent=parent, position=position, attributes=attributes_json(color=color, size=size),
        price_cents=price[parent], compare_price_cents=compare[parent],
        price_synthetic=~known[parent], weight_grams=m.weight_grams[parent],
    )


def _images(product_ids: np.ndarray, titles: pa.Array, urls: list[pa.Array]) -> pa.Table:
    parts: list[pa.Table] = []
    position = np.zeros(len(product_ids), np.int64)
    alt = clean_line(titles, 300)
    for col in urls:
        url = clean_line(col, 500)
        valid = pc.is_valid(url).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(valid)
        parts.append(table(
            IMAGES, product_id=product_ids[rows], variant_id=pa.nulls(len(rows), pa.int64()),
            url=pc.take(url, pa.array(rows)), position=position[rows],
            alt_text=pc.fill_null(pc.take(alt, pa.array(rows)), ""),
        ))
        position += valid
    return pa.concat_tables(parts) if parts else IMAGES.empty_table()
