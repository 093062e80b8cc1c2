"""Query understanding on a small synthetic catalog: no servers, no Ray."""

from __future__ import annotations

import pickle

import pytest

from domain.query import (
    CatalogVocabulary,
    ParsedQuery,
    QueryUnderstanding,
    Synonyms,
    default_synonyms_path,
    explicit_only,
    load_synonyms,
    merge,
    normalize,
    text_query,
    tokenize,
)
from domain.search import Filters

ELECTRONICS, AUDIO, HEADPHONES, TVS, PHONES, STORAGE = 1, 2, 3, 4, 5, 6
CLOTHING, DRESSES, SHIRTS, HOME, FURNITURE = 10, 11, 12, 20, 21
PATHS = {
    HEADPHONES: ([ELECTRONICS, AUDIO, HEADPHONES], ["Electronics", "Audio", "Headphones"]),
    TVS: ([ELECTRONICS, TVS], ["Electronics", "TVs"]),
    PHONES: ([ELECTRONICS, PHONES], ["Electronics", "Phones"]),
    STORAGE: ([ELECTRONICS, STORAGE], ["Electronics", "Storage"]),
    DRESSES: ([CLOTHING, DRESSES], ["Clothing", "Dresses"]),
    SHIRTS: ([CLOTHING, SHIRTS], ["Clothing", "Shirts"]),
    FURNITURE: ([HOME, FURNITURE], ["Home", "Furniture"]),
}
SYNONYMS = """
# test rules
headphones, headset, earphones
tv, television
cell phone, smartphone
sneakers => trainers, running shoes
"""


Row = tuple[str, str | None, int, dict[str, list[str] | str]]


def catalog() -> list[Row]:
    rows: list[Row] = []
    for i in range(120):
        brand = ("Sony", "Bose", "Bang & Olufsen", "Jabra")[i % 4]
        rows.append((f"{brand} WH-1000XM{i % 6} wireless noise cancelling headphones",
                     brand, HEADPHONES, {"color": ["black" if i % 2 else "silver"]}))
    rows.append(("Budget wired hedphones with mic", "Acme", HEADPHONES, {}))
    for i in range(30):
        brand = ("Samsung", "LG")[i % 2]
        rows.append((f"{brand} 4K UHD smart TV {50 + i} inch", brand, TVS, {}))
    for i in range(20):
        rows.append((f"Apple iPhone 13 {(128, 256)[i % 2]}GB", "Apple", PHONES, {}))
    for _ in range(10):
        rows.append(("Western Digital 2TB external hard drive", "Western Digital", STORAGE, {}))
    for i in range(30):
        color = ("red", "blue", "navy blue")[i % 3]
        rows.append((f"Summer floral maxi dress {color}", "Zara", DRESSES,
                     {"Color": [color], "size": [("s", "m", "l", "xl", "xxl")[i % 5]]}))
    for i in range(30):
        rows.append((f"Cotton crew neck t-shirt classic fit {i}", "Hanes", SHIRTS,
                     {"colour": "white", "size": ["m", "xl", "10"][i % 3 : i % 3 + 1]}))
    for i in range(20):
        rows.append((f"Oak coffee table {i}", "Woodline", FURNITURE, {}))
    rows.append(("Sable velvet armchair", "Classic", FURNITURE, {}))
    return rows


@pytest.fixture(scope="module")
def vocab() -> CatalogVocabulary:
    v = CatalogVocabulary()
    for title, brand, leaf, attrs in catalog():
        ids, names = PATHS[leaf]
        v.add(title, brand, leaf, ids, names, attrs)
    return v.freeze()


@pytest.fixture(scope="module")
def qu(vocab: CatalogVocabulary) -> QueryUnderstanding:
    return QueryUnderstanding(vocab, load_synonyms(SYNONYMS))


# -- normalization ---------------------------------------------------------------------------


def test_tokenize_keeps_inner_punctuation_and_order() -> None:
    assert tokenize("  USB-C  Charger, 4K!! Men’s  AT&T  3.5mm  $1,299.99  4+ ") == [
        "usb-c", "charger", "4k", "men's", "at&t", "3.5mm", "$1,299.99", "4+"]
    assert normalize("Ｓｏｎｙ™   Headphones...") == "sony headphones"  # NFKC, marks dropped
    assert tokenize("red,blue / black") == ["red", "blue", "black"]


# -- the seed example and filters -----------------------------------------------------------


def test_seed_example(qu: QueryUnderstanding) -> None:
    p = qu.parse("sony headphones under $200 with 4+ stars")
    assert p.keywords == ("headphones",)
    assert p.brands == ("sony",)
    assert (p.price_min, p.price_max, p.rating_min) == (None, 200.0, 4.0)
    assert p.groups[0][0] == "headphones" and "headset" in p.groups[0]
    assert p.did_you_mean is None
    assert p.normalized == "sony headphones under $200 with 4+ stars"


@pytest.mark.parametrize(
    ("q", "price_min", "price_max", "keywords"),
    [
        ("dress between $50 and $100", 50.0, 100.0, ("dress",)),
        ("between 50 and 100", 50.0, 100.0, ()),
        ("table over $20", 20.0, None, ("table",)),
        ("table $20-$40", 20.0, 40.0, ("table",)),
        ("table from $20 to $40", 20.0, 40.0, ("table",)),
        ("table $20 to $40", 20.0, 40.0, ("table",)),
        ("table under 30 dollars", None, 30.0, ("table",)),
        ("table less than $30", None, 30.0, ("table",)),
        ("table $25 and under", None, 25.0, ("table",)),
    ],
)
def test_price_phrases(
    qu: QueryUnderstanding, q: str, price_min: float | None, price_max: float | None,
    keywords: tuple[str, ...],
) -> None:
    p = qu.parse(q)
    assert (p.price_min, p.price_max) == (price_min, price_max)
    assert p.keywords == keywords


@pytest.mark.parametrize(
    "q", ["dress 4 stars and up", "dress at least 4 stars", "dress rated 4 or more",
          "dress with 4+ stars"])
def test_rating_phrases(qu: QueryUnderstanding, q: str) -> None:
    p = qu.parse(q)
    assert p.rating_min == 4.0
    assert p.keywords == ("dress",)


@pytest.mark.parametrize(
    ("q", "keywords"),
    [
        ("iphone 13", ("iphone", "13")),
        ("4k tv", ("4k", "tv")),
        ("2 pack table", ("2", "pack", "table")),
        ("tv over 50 inch", ("tv", "over", "50", "inch")),
        ("5 star table", ("5", "star", "table")),
    ],
)
def test_numbers_of_product_names_are_not_filters(
    qu: QueryUnderstanding, q: str, keywords: tuple[str, ...]
) -> None:
    p = qu.parse(q)
    assert p.keywords == keywords
    assert (p.price_min, p.price_max, p.rating_min) == (None, None, None)
    assert p.did_you_mean is None


# -- spelling -------------------------------------------------------------------------------


def test_misspelling_corrected_with_did_you_mean(qu: QueryUnderstanding) -> None:
    p = qu.parse("wireles hedphones under $50")
    assert p.keywords == ("wireless", "headphones")
    assert p.did_you_mean == "wireless headphones under $50"
    assert p.corrections == (("wireles", "wireless"), ("hedphones", "headphones"))
    # the catalog has the misspelling once: kept as an alternative
    assert p.groups[1][:2] == ("headphones", "hedphones")
    assert p.price_max == 50.0


def test_distance_two_for_long_words(qu: QueryUnderstanding) -> None:
    assert qu.correct("cancellng") == "cancelling"  # one edit
    assert qu.correct("canclelng") == "cancelling"  # transposition + deletion
    assert qu.correct("tabel") == "table"
    assert qu.correct("tble") == "table"


def test_known_rare_numbers_and_models_not_corrected(qu: QueryUnderstanding) -> None:
    assert qu.correct("sable") is None  # once in the catalog, "table" only 20x more frequent
    assert qu.correct("table") is None
    assert qu.correct("wh-1000xm9") is None
    assert qu.correct("xm9") is None
    assert qu.correct("1300") is None
    assert qu.correct("dollars") is None  # query syntax
    assert qu.correct("television") is None  # a synonym, not a typo
    p = qu.parse("sable armchair wh-1000xm9 iphone 14")
    assert p.did_you_mean is None
    assert p.keywords == ("sable", "armchair", "wh-1000xm9", "iphone", "14")


def test_gibberish_is_left_alone(qu: QueryUnderstanding) -> None:
    p = qu.parse("zxqv wvvkp")
    assert p.keywords == ("zxqv", "wvvkp")
    assert p.did_you_mean is None
    assert p.categories == ()


# -- synonyms -------------------------------------------------------------------------------


def test_synonyms_two_way_one_way_and_phrases(qu: QueryUnderstanding) -> None:
    assert qu.parse("earphones").groups == (("earphones", "headphones", "headset"),)
    assert qu.parse("television").groups == (("television", "tv"),)
    assert qu.parse("sneakers").groups == (("sneakers", "trainers", "running shoes"),)
    assert qu.parse("trainers").groups == (("trainers",),)  # one way only
    p = qu.parse("cell phone case")
    assert p.keywords == ("cell", "phone", "case")
    assert p.groups == (("cell phone", "smartphone"), ("case",))


def test_hyphenated_word_also_split(qu: QueryUnderstanding) -> None:
    assert qu.parse("t-shirt").groups == (("t-shirt", "t shirt"),)


def test_load_synonyms_format() -> None:
    syn = load_synonyms("# c\n\nA, B  # trailing\nx y => Z\n")
    assert syn.expand(("a",)) == ("b",) and syn.expand(("b",)) == ("a",)
    assert syn.expand(("x", "y")) == ("z",) and syn.expand(("z",)) == ()
    assert syn.max_len == 2
    with pytest.raises(ValueError, match="line 1"):
        load_synonyms("lonely")
    with pytest.raises(ValueError, match="line 2"):
        load_synonyms("a, b\na => b => c")


def test_repository_synonyms_file_parses() -> None:
    syn = load_synonyms(default_synonyms_path().read_text(encoding="utf-8"))
    assert "television" in syn.expand(("tv",))
    assert len(syn.table) >= 30


# -- brands, colors, sizes ------------------------------------------------------------------


def test_brand_alone_and_multi_word(qu: QueryUnderstanding) -> None:
    p = qu.parse("sony")
    assert p.brands == ("sony",) and p.keywords == () and p.groups == ()
    p = qu.parse("Bang & Olufsen headphones")
    assert p.brands == ("bang & olufsen",) and p.keywords == ("headphones",)
    p = qu.parse("western digital 2tb")
    assert p.brands == ("western digital",) and p.keywords == ("2tb",)
    p = qu.parse("sony or bose headphones")
    assert p.brands == ("sony", "bose") and p.keywords == ("headphones",)


def test_brand_that_is_mostly_a_word_is_not_a_filter(qu: QueryUnderstanding) -> None:
    p = qu.parse("classic t-shirt")  # brand "Classic" has 1 product; "classic" is in 31
    assert p.brands == ()
    assert p.keywords == ("classic", "t-shirt")


def test_color_only_when_the_catalog_has_it(qu: QueryUnderstanding) -> None:
    p = qu.parse("red dress")
    assert p.attributes == (("color", ("red",)),) and p.keywords == ("dress",)
    p = qu.parse("navy blue maxi dress")
    assert p.attributes == (("color", ("navy blue",)),) and p.keywords == ("maxi", "dress")
    p = qu.parse("purple dress")
    assert p.attributes == () and p.keywords == ("purple", "dress")
    p = qu.parse("red")  # nothing else to search for: stays a word
    assert p.attributes == () and p.keywords == ("red",)


def test_free_text_color_values_are_not_color_filters() -> None:
    v = CatalogVocabulary()
    for i in range(10):  # catalogs put anything in "color": flavours, fits, patterns
        v.add(f"Superfood powder tub {i}", "Acme", DRESSES, PATHS[DRESSES][0],
              PATHS[DRESSES][1], {"color": ["greens powder", "full", "black"][i % 3]})
    qu = QueryUnderstanding(v.freeze())
    assert qu.parse("greens powder tub").attributes == ()
    assert qu.parse("full tub").attributes == ()
    assert qu.parse("black tub").attributes == (("color", ("black",)),)


def test_size_only_when_unambiguous(qu: QueryUnderstanding) -> None:
    p = qu.parse("dress size m")
    assert p.attributes == (("size", ("m",)),) and p.keywords == ("dress",)
    p = qu.parse("xxl dress")
    assert p.attributes == (("size", ("xxl",)),) and p.keywords == ("dress",)
    p = qu.parse("xl dress")  # "xl" alone may be a model name
    assert p.attributes == () and p.keywords == ("xl", "dress")
    p = qu.parse("t-shirt size 10")
    assert p.attributes == (("size", ("10",)),) and p.keywords == ("t-shirt",)


# -- categories -----------------------------------------------------------------------------


def test_category_prediction(qu: QueryUnderstanding) -> None:
    cats = qu.parse("wireless headphones").categories
    assert cats and cats[0][0] == HEADPHONES and cats[0][1] >= 0.9
    assert AUDIO not in dict(cats) and ELECTRONICS not in dict(cats)  # ancestors dropped
    assert qu.parse("floral dress").categories[0][0] == DRESSES
    assert qu.parse("coffee table").categories[0][0] == FURNITURE
    assert qu.parse("the").categories == ()


# -- explicit filters -----------------------------------------------------------------------


def test_explicit_filters_win(qu: QueryUnderstanding) -> None:
    explicit = Filters(brands=("bose",), price_min=20.0, price_max=150.0,
                       attributes=(("color", ("black",)),), in_stock=True)
    p = qu.parse("sony red headphones under $200 4+ stars", explicit)
    assert "sony" in p.keywords and "red" in p.keywords  # words of overridden filters stay
    filters, applied = merge(p, explicit)
    assert filters.brands == ("bose",)
    assert (filters.price_min, filters.price_max, filters.rating_min) == (20.0, 150.0, 4.0)
    assert filters.attributes == (("color", ("black",)),)
    assert filters.in_stock is True
    assert applied == {
        "brands": {"value": ["bose"], "source": "explicit"},
        "price_min": {"value": 20.0, "source": "explicit"},
        "price_max": {"value": 150.0, "source": "explicit"},
        "rating_min": {"value": 4.0, "source": "inferred"},
        "in_stock": {"value": True, "source": "explicit"},
        "attributes": {"color": {"value": ["black"], "source": "explicit"}},
    }


def test_an_explicit_filter_the_words_name_reads_them_as_without_it(
        qu: QueryUnderstanding) -> None:
    """Choosing the value a search inferred (its facet) searches what was counted under it:
    the words naming it are not keywords again."""
    red = Filters(attributes=(("color", ("red",)),))
    inferred, chosen = qu.parse("red dress"), qu.parse("red dress", red)
    assert inferred.keywords == chosen.keywords == ("dress",)
    assert chosen.attributes == () and chosen.categories == inferred.categories
    # among several values chosen; one of several the words name; a brand and a size alike
    assert qu.parse("red dress", Filters(attributes=(("color", ("blue", "red")),))
                    ).keywords == ("dress",)
    assert qu.parse("red blue dress", red).keywords == ("dress",)
    sony = Filters(brands=("sony",))
    assert qu.parse("sony headphones", sony).keywords == qu.parse("sony headphones").keywords
    assert qu.parse("sony headphones", sony).keywords == ("headphones",)
    size = qu.parse("dress size m").attributes
    assert size and size[0][0] == "size"
    assert qu.parse("dress size m", Filters(attributes=size)).keywords == ("dress",)
    # another value chosen: the words stay keywords (test_explicit_filters_win)
    assert "red" in qu.parse("red dress", Filters(attributes=(("color", ("blue",)),))).keywords


def test_inferred_filters_fill_in(qu: QueryUnderstanding) -> None:
    p = qu.parse("red dress under $40")
    filters, applied = merge(p, Filters(attributes=(("size", ("m",)),)))
    assert filters.price_max == 40.0
    assert dict(filters.attributes) == {"size": ("m",), "color": ("red",)}
    assert applied["attributes"]["color"] == {"value": ["red"], "source": "inferred"}
    assert applied["price_max"] == {"value": 40.0, "source": "inferred"}
    tq = text_query(p)
    assert tq.groups == p.groups and tq.boost_category_ids == (DRESSES,)


# -- robustness and shipping ----------------------------------------------------------------


@pytest.mark.parametrize("q", ["", "   ", "!!! ??", "$", "+++"])
def test_empty_queries(qu: QueryUnderstanding, q: str) -> None:
    p = qu.parse(q)
    assert p.keywords == () and p.groups == () and p.did_you_mean is None
    assert p.brands == () and p.categories == ()


def test_very_long_query(qu: QueryUnderstanding) -> None:
    q = ("wireless hedphones under $100 " * 40)[:1000]
    p = qu.parse(q)
    assert len(p.normalized.split()) <= 32
    assert p.price_max == 100.0 and "headphones" in p.keywords
    assert isinstance(qu.parse("x" * 1000), ParsedQuery)


def test_vocabulary_pickles(vocab: CatalogVocabulary, qu: QueryUnderstanding) -> None:
    for copy in (pickle.loads(pickle.dumps(vocab)), CatalogVocabulary.from_bytes(vocab.to_bytes())):
        assert copy.df("headphones") == vocab.df("headphones") > 100
        again = QueryUnderstanding(copy, load_synonyms(SYNONYMS))
        q = "sony wireles hedphones under $200 with 4+ stars"
        assert again.parse(q) == qu.parse(q)


def test_vocabulary_freeze_caps_rare_words_and_categories() -> None:
    v = CatalogVocabulary()
    for i in range(300):
        v.add(f"gadget w{i}", None, 100 + i % 40, [1, 100 + i % 40], [], {})
    v.freeze(keep_all_below=100, min_count=2, top_categories=3)
    assert v.df("gadget") == 300 and "w1" not in v
    assert len(v.category_counts("gadget")) == 3
    assert v.category_counts("gadget")[0] == (1, 300)
    with pytest.raises(RuntimeError):
        v.add("late", None, None, [], [], {})


def test_synonyms_default_is_empty(vocab: CatalogVocabulary) -> None:
    p = QueryUnderstanding(vocab).parse("tv")
    assert p.groups == (("tv",),)
    assert Synonyms().expand(("tv",)) == ()


def test_inflections_of_known_words_are_not_typos() -> None:
    v = CatalogVocabulary()
    for title in ["oak dresser", "floral dress", "running shoes", "glass vase"] * 5:
        v.add(title, None, None, [], [], {})
    qu = QueryUnderstanding(v.freeze())
    assert qu.correct("dresses") is None  # not "dresser"
    assert qu.correct("shoe") is None
    assert qu.correct("vases") is None
    assert qu.correct("dreses") == "dress"  # a typo still is
    assert qu.correct("glas") == "glass"


def test_public_exports() -> None:
    import domain.query

    assert sorted(domain.query.__all__) == [
        "CatalogVocabulary", "ParsedQuery", "QueryUnderstanding", "Synonyms",
        "default_synonyms_path", "explicit_only", "load_synonyms", "merge", "normalize",
        "predict_categories",
        "text_query", "tokenize",
    ]


def test_explicit_only_lists_filters_like_merge() -> None:
    explicit = Filters(brands=("sony",), price_max=50.0, attributes=(("color", ("red",)),))
    filters, applied = explicit_only(explicit)
    assert filters == explicit
    assert applied == {"brands": {"value": ["sony"], "source": "explicit"},
                       "price_max": {"value": 50.0, "source": "explicit"},
                       "attributes": {"color": {"value": ["red"], "source": "explicit"}}}


def test_all_groups_keep_brand_and_color_words(qu: QueryUnderstanding) -> None:
    p = qu.parse("sony")
    assert p.keywords == () and p.brands == ("sony",)
    assert p.all_groups[0][0] == "sony"
    p = qu.parse("red dress under $50")
    assert [g[0] for g in p.all_groups] == ["red", "dress"]
