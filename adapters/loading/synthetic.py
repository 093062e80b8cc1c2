"""`synthetic:N`: a generated catalog of N products with realistic shapes, in chunks.

Leaves of an 8 × 5 × 4 category tree; ~2,000 brands with Zipf popularity inside each root;
titles from brand + words of the root; log-normal prices per leaf; reviews skewed high with
heavy-tailed counts (some products have none); 1-6 variants (sizes for apparel and shoes,
colors otherwise); stock in 1-3 warehouses with a share out of stock. Everything is numpy /
pyarrow over whole chunks: no Python loop per product. Same seed, same catalog.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np
import pyarrow as pa

from adapters.loading._sellers import make_sellers, seller_count
from adapters.loading._synthetic_chunk import build_chunk
from adapters.loading._vocab import BRAND_HEADS, BRAND_TAILS, ROOTS
from adapters.loading.frames import CatalogFrames, IdSource

CHUNK = 100_000
_BRANDS_PER_ROOT = 400  # each root draws its brands from its own (overlapping) pool
_ZIPF_S = 1.07


@dataclasses.dataclass(frozen=True)
class Setup:
    """What every chunk shares: tree, brands and their popularity, sellers."""

    paths: list[tuple[str, str, str]]
    leaf_root: np.ndarray
    leaf_p: np.ndarray  # popularity of each leaf
    leaf_median_usd: np.ndarray
    brands: pa.Array
    brand_pool: np.ndarray  # (roots, _BRANDS_PER_ROOT) brand indices, most popular first
    zipf_p: np.ndarray
    sellers: pa.Table
    brand_seller: np.ndarray  # home seller of each brand


def setup(n: int, seed: int, ids: IdSource) -> Setup:
    rng = np.random.default_rng([seed, 0])
    paths = [(r.name, sub, leaf) for r in ROOTS for sub, leaves in r.subs.items()
             for leaf in leaves]
    leaf_root = np.array([i for i, r in enumerate(ROOTS) for leaves in r.subs.values()
                          for _ in leaves])
    medians = np.array([r.median_usd for r in ROOTS])[leaf_root]
    heads = np.array(BRAND_HEADS, dtype=object)
    tails = np.array(BRAND_TAILS, dtype=object)
    names = (heads[:, None] + tails[None, :]).ravel()
    brands = pa.array(names[rng.permutation(len(names))].tolist(), pa.string())
    ranks = np.arange(1, _BRANDS_PER_ROOT + 1, dtype=np.float64)
    zipf = ranks ** -_ZIPF_S
    sellers = make_sellers(seller_count(n), ids, rng)
    return Setup(
        paths=paths, leaf_root=leaf_root, leaf_p=rng.dirichlet(np.full(len(paths), 2.0)),
        leaf_median_usd=medians * rng.lognormal(0.0, 0.5, len(paths)), brands=brands,
        brand_pool=np.stack([rng.choice(len(brands), _BRANDS_PER_ROOT, replace=False)
                             for _ in ROOTS]),
        zipf_p=zipf / zipf.sum(), sellers=sellers,
        brand_seller=rng.integers(0, len(sellers), len(brands)),
    )


def synthetic_chunks(n: int, *, seed: int, ids: IdSource, sku_prefix: str = "SYN",
                     chunk: int = CHUNK) -> Iterator[CatalogFrames]:
    """Frames of `chunk` products at a time; the first also carries sellers and warehouses."""
    if n < 1:
        raise ValueError("synthetic catalogs need at least one product")
    shared = setup(n, seed, ids)
    for start in range(0, n, chunk):
        yield build_chunk(shared, start, min(chunk, n - start), seed=seed, ids=ids,
                          sku_prefix=sku_prefix)

