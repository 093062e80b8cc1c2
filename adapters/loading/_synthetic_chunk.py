"""One chunk of the synthetic catalog (see `synthetic`), built column by column."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from adapters.loading import _pricing, _sizes
from adapters.loading._assemble import synthetic_dates
from adapters.loading._reviews import reviews_table
from adapters.loading._text import attributes_json, digits
from adapters.loading._variants import VariantSpec, expand, stock_table, variants_table
from adapters.loading._vocab import COLORS, ROOTS
from adapters.loading.frames import (
    IMAGES,
    PRODUCTS,
    SELLERS,
    CatalogFrames,
    IdSource,
    categories,
    table,
    warehouses,
)

if TYPE_CHECKING:
    from adapters.loading.synthetic import Setup

_VARIANTS_P = np.array([0.35, 0.2, 0.15, 0.12, 0.1, 0.08])  # 1..6 variants
_IMAGES_P = np.array([0.3, 0.35, 0.2, 0.15])  # 1..4 images
_NO_REVIEWS = 0.12
_OFF_BRAND_SELLER = 0.25
_UNKNOWN_WEIGHT = 0.1
_INACTIVE_VARIANT = 0.02
_IMAGE_HOST = "https://images.aisle.example/p/"


def _vocab(get: str) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """All roots' words of one kind, flattened, with each root's offset and count."""
    lists = [getattr(r, get) for r in ROOTS]
    lens = np.array([len(x) for x in lists])
    return pa.array([w for x in lists for w in x], pa.string()), np.cumsum(lens) - lens, lens


_ADJ, _FEAT, _SENT = _vocab("adjectives"), _vocab("features"), _vocab("sentences")
_COLORS = pa.array(COLORS, pa.string())


def _pick(words: tuple[pa.Array, np.ndarray, np.ndarray], root: np.ndarray,
          u: np.ndarray) -> pa.Array:
    flat, offset, count = words
    return flat.take(pa.array(offset[root] + np.floor(u * count[root]).astype(np.int64)))


def _join(*parts: pa.Array | str, sep: str = "") -> pa.Array:
    return pc.binary_join_element_wise(*parts, sep)


def _size_schemes(root: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Scheme index per product (-1: colors only); shoes are men's or women's runs."""
    apparel = np.array([r.sizes == "apparel" for r in ROOTS])[root]
    shoes = np.array([r.sizes == "shoes" for r in ROOTS])[root]
    men, women = _sizes.scheme_index("shoes_men"), _sizes.scheme_index("shoes_women")
    return np.where(apparel, _sizes.scheme_index("apparel"),
                    np.where(shoes, np.where(u < 0.5, men, women), -1))


def build_chunk(s: Setup, start: int, m: int, *, seed: int, ids: IdSource,
                sku_prefix: str) -> CatalogFrames:
    rng = np.random.default_rng([seed, 1, start])
    leaf = rng.choice(len(s.paths), size=m, p=s.leaf_p)
    root = s.leaf_root[leaf]
    brand = s.brand_pool[root, rng.choice(s.brand_pool.shape[1], size=m, p=s.zipf_p)]
    brands = s.brands.take(pa.array(brand))
    seller = np.where(rng.random(m) < _OFF_BRAND_SELLER,
                      rng.integers(0, len(s.sellers), m), s.brand_seller[brand])
    leaf_names = pa.array([p[2] for p in s.paths], pa.string()).take(pa.array(leaf))
    model = _join(pc.utf8_upper(pc.utf8_slice_codeunits(brands, 0, 2)),
                  digits(rng.integers(100, 1000, m)), sep="-")
    title = _join(brands, _pick(_ADJ, root, rng.random(m)), leaf_names, model, sep=" ")
    title = _join(title, _pick(_FEAT, root, rng.random(m)), sep=", ")
    first = np.floor(rng.random(m) * 3).astype(np.int64)
    description = _join(_join(title, "."), _pick(_SENT, root, first / 3),
                        _pick(_SENT, root, ((first + 1) % 3) / 3), sep=" ")
    external_id = _join("P", digits(np.arange(start, start + m) + 1, 9))
    product_ids = ids(m)
    products = table(
        PRODUCTS, product_id=product_ids, seller_id=s.sellers["seller_id"].to_numpy()[seller],
        external_id=external_id, title=title, description=description,
        category_key=leaf.astype(np.int32), brand=brands, status=pa.array(["ACTIVE"] * m),
        created_at=pa.array(synthetic_dates(rng.random(m))),
    )
    variants = variants_table(_variants(s, rng, leaf, root), product_ids,
                              _join(sku_prefix, external_id, sep="-"), ids)
    return CatalogFrames(
        sellers=s.sellers if start == 0 else SELLERS.empty_table(),
        categories=categories(s.paths), products=products, variants=variants,
        images=_images(rng, product_ids, external_id, title),
        reviews=_reviews(rng, product_ids),
        warehouses=warehouses() if start == 0 else warehouses().slice(0, 0),
        stock=stock_table(variants["variant_id"].to_numpy(), rng),
    )


def _variants(s: Setup, rng: np.random.Generator, leaf: np.ndarray,
              root: np.ndarray) -> VariantSpec:
    m = len(leaf)
    sigma = np.array([r.sigma for r in ROOTS])[root]
    price = _pricing.charm_cents(s.leaf_median_usd[leaf] * np.exp(sigma * rng.standard_normal(m)))
    compare = _pricing.compare_prices(price, rng.random(m), rng.random(m))
    scheme = _size_schemes(root, rng.random(m))
    counts = rng.choice(np.arange(1, 7), size=m, p=_VARIANTS_P)
    parent, position = expand(counts)
    size = _sizes.size_values(scheme, rng.random(m), parent, position, counts)
    color0 = rng.integers(0, len(COLORS), m)
    sized = scheme[parent] >= 0
    color = _COLORS.take(pa.array((color0[parent] + np.where(sized, 0, position)) % len(COLORS)))
    weight = np.rint(np.array([r.weight_g for r in ROOTS])[root] * rng.lognormal(0, 0.5, m))
    weight = np.where(rng.random(m) < _UNKNOWN_WEIGHT, -1, weight).astype(np.int64)
    return VariantSpec(
        parent=parent, position=position, attributes=attributes_json(color=color, size=size),
        price_cents=price[parent], compare_price_cents=compare[parent],
        price_synthetic=np.ones(len(parent), bool), weight_grams=weight[parent],
        inactive=rng.random(len(parent)) < _INACTIVE_VARIANT,
    )


def _images(rng: np.random.Generator, product_ids: np.ndarray, external_id: pa.Array,
            title: pa.Array) -> pa.Table:
    parent, position = expand(rng.choice(np.arange(1, 5), size=len(product_ids), p=_IMAGES_P))
    rows = pa.array(parent)
    url = _join(_IMAGE_HOST, external_id.take(rows), "/", digits(position + 1), ".jpg")
    return table(IMAGES, product_id=product_ids[parent],
                 variant_id=pa.nulls(len(parent), pa.int64()), url=url, position=position,
                 alt_text=pc.utf8_slice_codeunits(title.take(rows), 0, 300))


def _reviews(rng: np.random.Generator, product_ids: np.ndarray) -> pa.Table:
    m = len(product_ids)
    count = np.minimum(np.floor(np.exp(rng.normal(2.3, 1.6, m))) + 1, 50_000).astype(np.int64)
    count = np.where(rng.random(m) < _NO_REVIEWS, 0, count)
    avg = np.clip(5.0 - rng.gamma(2.0, 0.3, m), 1.0, 5.0)
    return reviews_table(product_ids, avg, count, avg_from_dist=True)
