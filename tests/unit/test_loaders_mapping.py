"""esci and icecat mappers on small in-memory tables (no database)."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from adapters.loading.esci import map_esci
from adapters.loading.frames import CatalogFrames
from adapters.loading.icecat import map_icecat


class Ids:
    """A deterministic stand-in for LeasedSnowflake.next_block."""

    def __init__(self) -> None:
        self.next = 1

    def __call__(self, n: int) -> np.ndarray:
        out = np.arange(self.next, self.next + n, dtype=np.int64)
        self.next += n
        return out


ESCI_ROWS = [
    # asin, title, brand, color, price, category_path, rating, count, is_book, desc, bullets
    ("B0TSHIRT01", "Cotton Crew T-Shirt", "Hanes", "Navy", None,
     "Clothing, Shoes & Jewelry > Men > Clothing > Shirts > T-Shirts", 4.6, 1234, False,
     "Soft tee.", "100% cotton\nTagless"),
    ("B0SNEAKER1", "Women's Running Sneaker", "Asics", "White", 79.95,
     "Clothing, Shoes & Jewelry > Women > Shoes > Athletic > Running", 4.4, 87, False, "", ""),
    ("B0EARBUDS1", "Wireless Earbuds\x07 Pro", "Treblab", "Black/Silver", 29.97,
     "Electronics > Headphones, Earbuds & Accessories > Headphones & Earbuds", 4.2, 724, False,
     "", "Bluetooth 5.0"),
    ("B0EARBUDS2", "Budget Earbuds", None, None, None,
     "Electronics > Headphones, Earbuds & Accessories > Headphones & Earbuds", None, None, False,
     "Cheap and cheerful.", ""),
    ("B0NOVEL001", "A Long Novel", "Penguin", None, 12.5, "", 4.8, 3, True, "", ""),
    ("B0MYSTERY1", "Mystery Gadget", "Acme", "Red", None, "", 3.3, 10, False, "", ""),
    ("B0TSHIRT01", "Duplicate asin is dropped", "Hanes", "Red", 5.0, "", 1.0, 1, False, "", ""),
]
ESCI_NAMES = ["asin", "title", "brand", "color", "price_usd", "category_path", "rating",
              "rating_count", "is_book", "description", "bullet_points"]


def esci_table(rows: list[tuple[object, ...]] = ESCI_ROWS) -> pa.Table:
    cols = list(zip(*rows, strict=True))
    table = pa.table({name: list(col) for name, col in zip(ESCI_NAMES, cols, strict=True)})
    image = [f"https://m.media-amazon.com/images/I/{r[0]}.jpg" for r in rows]
    return table.append_column("image", pa.array(image))


def by_external(frames: CatalogFrames) -> dict[str, dict[str, object]]:
    return {p["external_id"]: p for p in frames.products.to_pylist()}


def variants_of(frames: CatalogFrames, product_id: int) -> list[dict[str, object]]:
    return [v for v in frames.variants.to_pylist() if v["product_id"] == product_id]


def test_esci_maps_fields_and_keeps_external_ids() -> None:
    f = map_esci(esci_table(), seed=1, ids=Ids())
    products = by_external(f)
    assert set(products) == {r[0] for r in ESCI_ROWS}  # the duplicate asin kept once
    tee = products["B0TSHIRT01"]
    assert tee["title"] == "Cotton Crew T-Shirt" and tee["brand"] == "Hanes"
    assert tee["description"] == "Soft tee.\n\n• 100% cotton\n• Tagless"
    assert products["B0EARBUDS1"]["title"] == "Wireless Earbuds Pro"  # control char removed
    assert products["B0EARBUDS2"]["brand"] is None
    assert f.images.num_rows == len(products)
    assert f.warehouses.num_rows == 6 and f.sellers.num_rows >= 50


def test_esci_category_paths_become_a_tree() -> None:
    f = map_esci(esci_table(), seed=1, ids=Ids())
    paths = f.category_paths()
    path_of = {p["external_id"]: paths[p["category_key"]] for p in f.products.to_pylist()}
    assert path_of["B0TSHIRT01"] == ("Clothing, Shoes & Jewelry", "Men", "Clothing", "Shirts",
                                     "T-Shirts")
    assert path_of["B0EARBUDS1"] == path_of["B0EARBUDS2"]  # one key per distinct path
    assert path_of["B0NOVEL001"] == ("Books",)
    assert path_of["B0MYSTERY1"] == ("Uncategorized",)
    assert len(paths) == len(set(paths))


def test_esci_reviews_sum_to_count_and_match_the_rating() -> None:
    f = map_esci(esci_table(), seed=1, ids=Ids())
    ext = {p["product_id"]: p["external_id"] for p in f.products.to_pylist()}
    for r in f.reviews.to_pylist():
        dist = [r[f"dist_{k}"] for k in range(1, 6)]
        assert sum(dist) == r["review_count"]
        if r["review_count"]:
            mean = sum(k * n for k, n in zip(range(1, 6), dist, strict=True)) / r["review_count"]
            assert abs(mean - r["avg_rating"]) <= 0.5 / r["review_count"] + 1e-9
    counts = {ext[r["product_id"]]: r["review_count"] for r in f.reviews.to_pylist()}
    assert counts["B0TSHIRT01"] == 1234 and counts["B0EARBUDS2"] == 0


def test_esci_missing_prices_are_filled_deterministically_and_flagged() -> None:
    first = map_esci(esci_table(), seed=7, ids=Ids())
    again = map_esci(esci_table(), seed=7, ids=Ids())
    other = map_esci(esci_table(), seed=8, ids=Ids())
    products = by_external(first)
    earbuds = variants_of(first, int(products["B0EARBUDS1"]["product_id"]))
    assert [(v["price_cents"], v["price_synthetic"]) for v in earbuds] == [(2997, False)]
    filled = variants_of(first, int(products["B0EARBUDS2"]["product_id"]))
    assert filled[0]["price_synthetic"] is True and int(filled[0]["price_cents"]) > 0
    assert str(filled[0]["price_cents"]).endswith("99")
    assert first.variants.equals(again.variants)  # same seed, same output
    assert not first.variants["price_cents"].equals(other.variants["price_cents"])
    for v in first.variants.to_pylist():
        assert v["compare_price_cents"] is None or v["compare_price_cents"] > v["price_cents"]


def test_esci_sizes_only_for_apparel_and_shoes() -> None:
    f = map_esci(esci_table(), seed=1, ids=Ids())
    products = by_external(f)

    def attrs(asin: str) -> list[dict[str, str]]:
        pid = int(products[asin]["product_id"])
        return [json.loads(str(v["attributes"])) for v in variants_of(f, pid)]

    tee = attrs("B0TSHIRT01")
    assert 3 <= len(tee) <= 5 and {a["color"] for a in tee} == {"Navy"}
    assert {a["size"] for a in tee} <= {"XS", "S", "M", "L", "XL", "XXL"}
    shoes = attrs("B0SNEAKER1")
    assert 4 <= len(shoes) <= 6 and all(float(a["size"]) <= 11 for a in shoes)
    assert attrs("B0EARBUDS1") == [{"color": "Black/Silver"}]
    assert attrs("B0EARBUDS2") == [{}]
    skus = f.variants["sku"].to_pylist()
    assert len(skus) == len(set(skus))
    assert sorted(s for s in skus if "TSHIRT" in s)[0] == "ESCI-B0TSHIRT01-1"


ICECAT_ROWS = [
    # id, title, brand, price_cents, short_description, date_released, color, product_type
    ("3920564", "Xerox 006R90321 toner cartridge Original Black 6 pc(s)", "Xerox", 4995,
     "Toner (6 Per Box)", "2009-12-10T00:00:00Z", None, "Original"),
    ("2101957", "HP Pavilion dv7-1211ea Notebook Silver 43.2 cm (17\")", "HP", None,
     "Intel Core 2 Duo", "not a date", "Silver", "Notebook"),
    ("1", "Castorland Pure Love 500 pcs Jigsaw puzzle 500 pc(s)", "Castorland", 1299, None,
     "2019-03-01T00:00:00Z", "Multicolour", "Jigsaw puzzle"),
    ("2", "Frobnicator 3000", "Acme", 999, "", "2020-01-01T00:00:00Z", "Black,Grey", None),
]


def icecat_table() -> pa.Table:
    cols = list(zip(*ICECAT_ROWS, strict=True))
    names = ["id", "title", "brand", "price_cents", "short_description", "date_released",
             "color", "product_type"]
    t = pa.table({n: list(c) for n, c in zip(names, cols, strict=True)})
    for name in ("img_500x500", "img_thumb"):
        t = t.append_column(name, pa.array([f"http://images.icecat.biz/{name}/{r[0]}.jpg"
                                             for r in ICECAT_ROWS]))
    weights = ['{"n_weight": 250.0}', '{"t_x": "y", "n_weight": 3460.0}', "{}", "{}"]
    return t.append_column("attributes_json", pa.array(weights))


def test_icecat_derives_categories_and_maps_fields() -> None:
    f = map_icecat(icecat_table(), seed=3, ids=Ids())
    paths = f.category_paths()
    products = by_external(f)
    path_of = {k: paths[int(p["category_key"])] for k, p in products.items()}
    assert path_of["3920564"] == ("Printers & Supplies", "Toner")
    assert path_of["2101957"] == ("Laptops & Tablets", "Laptops")
    assert path_of["1"] == ("Toys & Games", "Jigsaw puzzle")
    assert path_of["2"] == ("Other Electronics",)
    assert products["3920564"]["created_at"].isoformat() == "2009-12-10T00:00:00+00:00"
    assert products["2101957"]["created_at"] is not None  # unparseable: synthesized
    assert f.images.num_rows == 2 * len(ICECAT_ROWS)
    v = {p: variants_of(f, int(products[p]["product_id"]))[0] for p in products}
    assert (v["3920564"]["price_cents"], v["3920564"]["price_synthetic"]) == (4995, False)
    assert v["2101957"]["price_synthetic"] is True and v["2101957"]["weight_grams"] == 3460
    assert json.loads(str(v["2"]["attributes"])) == {"color": "Black/Grey"}
    assert sum(f.reviews[f"dist_{k}"].to_numpy().sum() for k in range(1, 6)) == \
        f.reviews["review_count"].to_numpy().sum()


def test_icecat_same_seed_same_frames() -> None:
    a = map_icecat(icecat_table(), seed=3, ids=Ids())
    b = map_icecat(icecat_table(), seed=3, ids=Ids())
    for name in ("products", "variants", "images", "reviews", "stock", "sellers"):
        assert getattr(a, name).equals(getattr(b, name)), name


def test_frames_reject_a_wrong_schema() -> None:
    f = map_icecat(icecat_table(), seed=3, ids=Ids())
    with pytest.raises(TypeError, match="products"):
        CatalogFrames(**{**f.__dict__, "products": f.products.drop_columns(["brand"])})
