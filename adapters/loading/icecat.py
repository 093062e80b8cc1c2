"""Icecat (Chorus electronics) products -> catalog frames.

id -> external_id; title, brand; short_description -> description; price_cents (filled when
missing, flagged synthetic); color -> variant attribute; a two-level category tree from keyword
rules (`_icecat_rules`); reviews synthesized (the data has none); img_500x500 and img_thumb ->
images; date_released -> created_at; n_weight (grams) from the attributes -> weight_grams.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from adapters.loading._assemble import MappedCatalog, PathIndex, assemble, dedupe
from adapters.loading._icecat_rules import FALLBACK, SUBCATEGORIES, TOP_RULES, VAGUE_TYPES
from adapters.loading._keyed import Keyed, key_hashes
from adapters.loading._text import clean_line, clean_text
from adapters.loading.frames import CatalogFrames, IdSource, column

SIGNATURE = frozenset({"id", "title", "img_500x500"})
_NO_REVIEWS = 0.25  # share of products without reviews
_S_COUNT, _S_AVG, _S_NONE = 101, 102, 103


def _first_match(text: pa.Array, patterns: list[str]) -> np.ndarray:
    """Index of the first pattern matching each row (-1: none)."""
    out = np.full(len(text), -1, np.int64)
    for i, pattern in enumerate(patterns):
        hit = pc.fill_null(pc.match_substring_regex(text, pattern), False)
        hit_np = hit.to_numpy(zero_copy_only=False)
        out[(out < 0) & hit_np] = i
    return out


def _categories(title: pa.Array, ptype: pa.Array) -> tuple[list[tuple[str, ...]], np.ndarray]:
    text = pc.utf8_lower(pc.binary_join_element_wise(title, pc.fill_null(ptype, ""), " "))
    rule = _first_match(text, [pattern for _, pattern in TOP_RULES])
    tops = np.array([top for top, _ in TOP_RULES] + [FALLBACK], dtype=object)[rule]
    types = ptype.to_pylist()
    index = PathIndex()
    keys = np.zeros(len(text), np.int32)
    for top in dict.fromkeys(tops.tolist()):
        rows = np.flatnonzero(tops == top)
        subs = SUBCATEGORIES.get(top, [])
        sub = _first_match(text.take(pa.array(rows)), [p for _, p in subs])
        for row, s in zip(rows.tolist(), sub.tolist(), strict=True):
            keys[row] = index.key(_path(top, subs[s][0] if s >= 0 else None, types[row]))
    return index.paths, keys


def _path(top: str, sub: str | None, ptype: str | None) -> tuple[str, ...]:
    if sub is None and ptype and ptype.strip().lower() not in VAGUE_TYPES \
            and any(c.isalpha() for c in ptype):
        sub = ptype.strip()[:200]
        sub = sub[0].upper() + sub[1:]
    return (top, sub) if sub and sub != top else (top,)


def _reviews(kr: Keyed) -> tuple[np.ndarray, np.ndarray]:
    """Heavy-tailed counts (a share at zero) and averages skewed high."""
    count = np.floor(np.exp(2.5 + 1.5 * kr.normal(_S_COUNT))).astype(np.int64)
    count = np.where(kr.uniform(_S_NONE) < _NO_REVIEWS, 0, np.clip(count, 1, 20_000))
    avg = np.clip(4.3 + 0.45 * kr.normal(_S_AVG) - 0.6 / np.sqrt(np.maximum(count, 1)), 1, 5)
    return np.round(avg, 1), count


def _weight(attrs: pa.Array) -> np.ndarray:
    found = pc.extract_regex(pc.fill_null(attrs, ""), r'"n_weight": (?P<w>[0-9]+(?:\.[0-9]+)?)')
    grams = pc.cast(pc.struct_field(found, "w"), pa.float64()).to_numpy(zero_copy_only=False)
    grams = np.nan_to_num(grams, nan=-1.0)
    return np.where((grams > 0) & (grams < 10_000_000), np.rint(grams), -1).astype(np.int64)


def map_icecat(source: pa.Table, *, seed: int, ids: IdSource,
               sku_prefix: str = "ICECAT") -> CatalogFrames:
    t = source.take(pa.array(dedupe(clean_line(column(source, "id", pa.string()), 128))))
    t = t.filter(pc.is_valid(clean_line(column(t, "title", pa.string()), 500)))
    external_id = clean_line(column(t, "id", pa.string()), 128)
    title = clean_line(column(t, "title", pa.string()), 500)
    ptype = clean_line(column(t, "product_type", pa.string()), 200)
    paths, keys = _categories(title, ptype)
    cents = pc.fill_null(column(t, "price_cents", pa.int64()), -1).to_numpy()
    kr = Keyed(key_hashes(external_id.to_pylist(), seed, t.num_rows))
    rating, count = _reviews(kr)
    released = pc.strptime(column(t, "date_released", pa.string()),
                           format="%Y-%m-%dT%H:%M:%SZ", unit="us", error_is_null=True)
    return assemble(MappedCatalog(
        external_id=external_id, title=title,
        description=clean_text(column(t, "short_description", pa.string()), 20_000),
        brand=clean_line(column(t, "brand", pa.string()), 200),
        category_paths=paths, category_key=keys,
        price_cents=np.where(cents > 0, cents, -1),
        price_groups=[keys, np.array([p[0] for p in paths], dtype=object)[keys]],
        rating=rating, rating_count=count,
        color=pc.replace_substring(clean_line(column(t, "color", pa.string()), 200), ",", "/"),
        size_scheme=np.full(t.num_rows, -1, np.int64),
        image_urls=[column(t, "img_500x500", pa.string()), column(t, "img_thumb", pa.string())],
        weight_grams=_weight(column(t, "attributes_json", pa.string())),
        created_at=released,
    ), seed=seed, ids=ids, sku_prefix=sku_prefix)
