"""ESCI (Amazon Shopping Queries) products -> catalog frames.

asin -> external_id; "A > B > C" -> category path (empty: "Books" for books, else
"Uncategorized"); description + bullet points -> description; rating/rating_count ->
reviews summary; missing prices filled around the top category's median (price_synthetic);
image -> one product image; color -> variant attribute; apparel and shoes get size variants.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from adapters.loading import _sizes
from adapters.loading._assemble import MappedCatalog, PathIndex, assemble, dedupe
from adapters.loading._text import clean_line, clean_text
from adapters.loading.frames import CatalogFrames, IdSource, column

SIGNATURE = frozenset({"asin", "title", "category_path"})
_APPAREL_ROOT = "Clothing, Shoes & Jewelry"


def category_path(raw: str) -> tuple[str, ...]:
    names = [part.strip()[:200].strip() for part in raw.split(">")]
    return tuple(n for n in names if n)


def size_scheme(path: tuple[str, ...]) -> str | None:
    """Which sizes a product under `path` comes in (None: not sized)."""
    if len(path) < 2 or path[0] != _APPAREL_ROOT:
        return None
    who, rest = path[1], set(path[2:])
    young = {"Boys": "kids", "Girls": "kids", "Baby": "baby"}.get(who)
    if "Shoes" in rest:
        return {"Women": "shoes_women", "Men": "shoes_men"}.get(
            who, "shoes_kids" if young else None)
    if rest & {"Clothing", "Costumes & Cosplay Apparel"} or who == "Sport Specific Clothing":
        return young or "apparel"
    return None


def _categories(t: pa.Table) -> tuple[list[tuple[str, ...]], np.ndarray]:
    raw = pc.fill_null(clean_line(column(t, "category_path", pa.string()), 2000), "")
    books = pc.fill_null(column(t, "is_book", pa.bool_()), False)
    fallback = pc.if_else(books, "Books", "Uncategorized")
    enc = pc.dictionary_encode(pc.if_else(pc.equal(raw, ""), fallback, raw))
    index = PathIndex()
    remap = [index.key(category_path(v) or ("Uncategorized",))
             for v in enc.dictionary.to_pylist()]
    keys = np.asarray(remap, np.int32)[enc.indices.to_numpy(zero_copy_only=False)]
    return index.paths, keys


def _price_groups(paths: list[tuple[str, ...]], keys: np.ndarray) -> list[np.ndarray]:
    """Second-level category, then top category (as key numbers)."""
    levels = []
    for depth in (2, 1):
        prefixes = {p[:depth] for p in paths}
        number = {p: i for i, p in enumerate(sorted(prefixes))}
        levels.append(np.array([number[p[:depth]] for p in paths], np.int64)[keys])
    return levels


def _description(t: pa.Table) -> pa.Array:
    desc = clean_text(column(t, "description", pa.string()), 20_000)
    bullets = clean_text(column(t, "bullet_points", pa.string()), 20_000)
    bullets = pc.if_else(pc.equal(bullets, ""), "",
                         pc.binary_join_element_wise(
                             "• ", pc.replace_substring(bullets, "\n", "\n• "), ""))
    both = pc.binary_join_element_wise(desc, bullets, "\n\n")
    joined = pc.if_else(pc.equal(desc, ""), bullets, pc.if_else(pc.equal(bullets, ""), desc, both))
    return pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(joined, 0, 20_000))


def map_esci(source: pa.Table, *, seed: int, ids: IdSource,
             sku_prefix: str = "ESCI") -> CatalogFrames:
    t = source.take(pa.array(dedupe(clean_line(column(source, "asin", pa.string()), 128))))
    t = t.filter(pc.is_valid(clean_line(column(t, "title", pa.string()), 500)))
    paths, keys = _categories(t)
    price = column(t, "price_usd", pa.float64()).to_numpy(zero_copy_only=False)
    cents = np.where(np.nan_to_num(price, nan=0.0) > 0, np.rint(price * 100), -1).astype(np.int64)
    count = np.nan_to_num(column(t, "rating_count", pa.float64()).to_numpy(
        zero_copy_only=False), nan=0.0)
    rating = column(t, "rating", pa.float64()).to_numpy(zero_copy_only=False)
    count = np.where(np.isnan(rating), 0, count).astype(np.int64)
    return assemble(MappedCatalog(
        external_id=clean_line(column(t, "asin", pa.string()), 128),
        title=clean_line(column(t, "title", pa.string()), 500),
        description=_description(t),
        brand=clean_line(column(t, "brand", pa.string()), 200),
        category_paths=paths, category_key=keys,
        price_cents=cents, price_groups=_price_groups(paths, keys),
        rating=rating, rating_count=count,
        color=clean_line(column(t, "color", pa.string()), 200),
        size_scheme=np.array([_sizes.scheme_index(size_scheme(p)) for p in paths],
                             np.int64)[keys] if len(paths) else np.zeros(0, np.int64),
        image_urls=[clean_line(column(t, "image", pa.string()), 500)],
        weight_grams=np.full(t.num_rows, -1, np.int64),
        created_at=pa.nulls(t.num_rows, pa.timestamp("us", tz="UTC")),
    ), seed=seed, ids=ids, sku_prefix=sku_prefix)
