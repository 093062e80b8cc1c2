"""The synthetic generator, review spreads, text helpers and dataset resolution."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.loading._reviews import star_distribution
from adapters.loading._text import attributes_json, clean_line
from adapters.loading.datasets import ESCI_FILE, resolve
from adapters.loading.synthetic import synthetic_chunks
from domain.errors import ConfigError
from tests.unit.test_loaders_mapping import Ids, esci_table


def test_synthetic_chunks_cover_n_products_with_sane_shapes() -> None:
    chunks = list(synthetic_chunks(2_500, seed=5, ids=Ids(), chunk=1_000))
    assert [c.products.num_rows for c in chunks] == [1_000, 1_000, 500]
    assert chunks[0].sellers.num_rows == 50 and chunks[1].sellers.num_rows == 0
    assert chunks[0].warehouses.num_rows == 6 and chunks[1].warehouses.num_rows == 0
    paths = chunks[0].category_paths()
    assert len(paths) == 160 and len({p[0] for p in paths}) == 8
    assert all(len(p) == 3 for p in paths)
    products = pa.concat_tables(c.products for c in chunks)
    variants = pa.concat_tables(c.variants for c in chunks)
    per_product = collections.Counter(variants["product_id"].to_pylist())
    assert set(per_product.values()) <= set(range(1, 7)) and len(per_product) == 2_500
    skus = variants["sku"].to_pylist()
    assert len(set(skus)) == len(skus) and skus[0] == "SYN-P000000001-1"
    assert len(set(products["external_id"].to_pylist())) == 2_500
    assert all(json.loads(a) for a in variants["attributes"].to_pylist())


def test_synthetic_distributions_look_like_a_shop() -> None:
    (f,) = synthetic_chunks(5_000, seed=9, ids=Ids())
    brands = collections.Counter(f.products["brand"].to_pylist())
    top = brands.most_common(1)[0][1]
    assert top > 5 * np.median(list(brands.values()))  # Zipf: a few brands dominate
    reviews = f.reviews.to_pylist()
    zero = sum(r["review_count"] == 0 for r in reviews) / len(reviews)
    assert 0.05 < zero < 0.25
    rated = [r["avg_rating"] for r in reviews if r["review_count"] > 0]
    assert 3.8 < float(np.mean(rated)) < 4.7
    stock = f.stock["available"].to_numpy()
    assert 0.03 < float(np.mean(stock == 0)) < 0.15
    assert set(f.stock["warehouse_id"].to_pylist()) == {f"WH_0{i}" for i in range(1, 7)}
    prices = f.variants["price_cents"].to_numpy()
    assert prices.min() >= 99 and 1_000 < np.median(prices) < 10_000


def test_synthetic_same_seed_same_catalog() -> None:
    a = list(synthetic_chunks(1_500, seed=11, ids=Ids(), chunk=1_000))
    b = list(synthetic_chunks(1_500, seed=11, ids=Ids(), chunk=1_000))
    c = list(synthetic_chunks(1_500, seed=12, ids=Ids(), chunk=1_000))
    for x, y in zip(a, b, strict=True):
        for name in ("sellers", "products", "variants", "images", "reviews", "stock"):
            assert getattr(x, name).equals(getattr(y, name)), name
    assert not a[0].products["title"].equals(c[0].products["title"])


@given(avg=st.floats(1.0, 5.0), count=st.integers(0, 10**6))
def test_star_distribution_sums_to_count_with_the_closest_mean(avg: float, count: int) -> None:
    dist = star_distribution(np.array([avg]), np.array([count]))[0]
    assert dist.sum() == count and (dist >= 0).all()
    assert int(dist @ np.arange(1, 6)) == round(avg * count)


def test_text_helpers() -> None:
    assert clean_line(pa.array([" a\u2028b\tc ", "", None, "x" * 10]), 5).to_pylist() == [
        "a b c", None, None, "xxxxx"]
    out = attributes_json(color=pa.array(['say "hi"', None]), size=pa.array([None, None]))
    assert [json.loads(s) for s in out.to_pylist()] == [{"color": 'say "hi"'}, {}]


def test_datasets_resolve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve("esci").name == "esci" and ESCI_FILE.is_file()
    syn = resolve("synthetic:1_000")
    assert (syn.name, syn.sku_prefix) == ("synthetic:1000", "SYN1000")
    for bad in ("synthetic:0", "synthetic:x", "nope", str(tmp_path / "missing.parquet")):
        with pytest.raises(ConfigError):
            resolve(bad)
    subset = tmp_path / "subset.parquet"
    pq.write_table(esci_table(), subset)
    found = resolve(str(subset))
    assert found.name == str(subset) and found.sku_prefix.startswith("ESCI.")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "other.parquet")
    with pytest.raises(ConfigError, match="not an esci or icecat"):
        resolve(str(tmp_path / "other.parquet"))
    monkeypatch.setenv("AISLE_SHARED_DATA", str(tmp_path))
    (tmp_path / "icecat").mkdir()
    pq.write_table(pa.table({"id": ["1"], "title": ["t"], "img_500x500": ["u"]}),
                   tmp_path / "icecat" / "products.parquet")
    assert resolve("icecat").sku_prefix == "ICECAT"
