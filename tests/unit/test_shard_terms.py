"""A shard's "any of these values" queries (adapters/search/tantivy_shard.py `_any_of`): term
queries for a few values, tantivy's term set query for many. Both must match exactly what the
term set query matches, on the integer and keyword fields the shard filters on, and a
search's filters, boosts, semantic candidates and fetches by id must answer the same either
way."""

from __future__ import annotations

import pytest
import tantivy
from tantivy import Query

import adapters.search.tantivy_shard as ts
from adapters.search.tantivy_shard import TantivyShard
from domain.search import SIGNALS, Filters, IndexQuery, Near, SignalRequest, TextQuery

BIG = 2**60  # product ids as large as the database's


def doc(i: int) -> dict[str, object]:
    return {"product_id": BIG + i, "version": 1, "external_id": f"E{i}",
            "title": f"desk lamp {'oak' if i % 3 else 'steel'}", "description": "",
            "brand": f"Brand {i % 7}", "brand_key": f"brand-{i % 7}",
            "category_ids": [i % 11, 100 + i % 5], "category_path": ["Things"],
            "price": float(i % 40), "rating_avg": 4.0, "rating_count": i,
            "in_stock": i % 2 == 0, "attributes": {}, "created_at": i, "variant_ids": [i]}


@pytest.fixture(scope="module")
def shard() -> TantivyShard:
    s = TantivyShard(None)
    s.apply([doc(i) for i in range(600)])
    return s


def matches(shard: TantivyShard, q: Query) -> set[int]:
    searcher = shard.index.searcher()
    hits = searcher.search(q, limit=10_000, count=False).hits
    return {int(p) for p in searcher.fast_field_values("product_id", [a for _, a in hits])}


@pytest.mark.parametrize(("field", "values"), [
    ("product_id", []), ("product_id", [BIG + 5]), ("product_id", [BIG + i for i in range(20)]),
    ("product_id", [BIG + i for i in range(0, 600, 2)] + [7]),  # more than TERMS_AS_CLAUSES
    ("brand_key", ["brand-3"]), ("brand_key", ["brand-1", "brand-4", "nobody"]),
    ("category_ids", [4]), ("category_ids", [4, 102, 999]),
])
def test_any_of_matches_what_a_term_set_matches(shard: TantivyShard, field: str,
                                                values: list[int] | list[str]) -> None:
    expected = matches(shard, Query.term_set_query(shard.schema, field, list(values)))
    got = matches(shard, ts._any_of(shard.schema, field, values))
    assert got == expected
    if field == "product_id":  # 7 is no product's id
        assert expected == set(values) - {7}
    if field != "product_id" and len(values) > 1:  # each value adds its own documents
        assert len(expected) > len(matches(shard, ts._any_of(shard.schema, field, values[:1])))


def test_any_of_builds_term_queries_only_for_a_few_values(shard: TantivyShard,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[int] = []
    real = Query.term_set_query

    def counting(schema: tantivy.Schema, field: str, values: list[int]) -> Query:
        made.append(len(values))
        return real(schema, field, values)

    monkeypatch.setattr(ts.Query, "term_set_query", counting)
    ts._any_of(shard.schema, "product_id", [BIG + i for i in range(ts.TERMS_AS_CLAUSES)])
    assert made == []
    ts._any_of(shard.schema, "product_id", [BIG + i for i in range(ts.TERMS_AS_CLAUSES + 1)])
    assert made == [ts.TERMS_AS_CLAUSES + 1]


@pytest.mark.parametrize("limit", [ts.TERMS_AS_CLAUSES, 0])
def test_searches_answer_the_same_whichever_query_matches_the_values(
        shard: TantivyShard, monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """Every use of the values' query (filters, the category boost, the chosen semantic
    candidates, fetches by id, the version check) answers as with the term set query alone
    (limit 0). Compared with limit 0 both ways, so the expected answers are also written
    out where they are known."""
    text = TextQuery((("oak",), ("lamp",)), require_all=False, boost_category_ids=(3, 5))
    queries = [
        IndexQuery(text, Filters(brands=("brand-1", "brand-2")), limit=50),
        IndexQuery(text, Filters(category_ids=(4, 101)), limit=50),
        IndexQuery(text, Filters(exclude_ids=tuple(BIG + i for i in range(0, 40, 3))), limit=50),
        IndexQuery(text, Filters(in_stock=True), limit=50, near=Near(
            bytes(ts.DIMENSION), 5, ids=tuple(BIG + i for i in (0, 3, 9, 300, 301)),
            filters=Filters(brands=("brand-0", "brand-3")))),
        IndexQuery(text, Filters(), sort="price_asc", limit=30, near=Near(
            bytes(ts.DIMENSION), 2, ids=(BIG + 3, BIG + 6))),
    ]
    some = [BIG + i for i in range(0, 600, 7)] + [BIG + 7, 12]  # a duplicate, an unknown
    monkeypatch.setattr(ts, "TERMS_AS_CLAUSES", 0)
    before = [shard.search(q) for q in queries]
    fetched, versions = shard.get(some), shard._stored_versions(some)
    monkeypatch.setattr(ts, "TERMS_AS_CLAUSES", limit)
    after = [shard.search(q) for q in queries]
    assert shard.get(some) == fetched and shard._stored_versions(some) == versions
    assert set(fetched) == set(versions) == set(some) - {12} and len(fetched) == 86
    assert before[0].hits and {h.doc["brand"] for h in before[0].hits} == {"Brand 1", "Brand 2"}
    for b, a in zip(before, after, strict=True):
        assert [(h.product_id, h.score) for h in a.hits] == [
            (h.product_id, h.score) for h in b.hits]
        assert (a.total, a.near_only, a.facets) == (b.total, b.near_only, b.facets)
    assert all(b.hits for b in before)
    assert before[3].near_only > 0  # candidates joined that pass none of the words' filters


@pytest.mark.parametrize("scan", [ts.SIGNAL_SCAN, 5])
def test_ranking_signals_read_the_same_brands_and_categories(
        shard: TantivyShard, monkeypatch: pytest.MonkeyPatch, scan: int) -> None:
    """The brand and category signals (one bitmask search: each slot a constant score) are
    1 exactly for the hits with that brand or category, whichever query matches the values;
    with a small SIGNAL_SCAN the signal searches are confined to the page's products (the
    values' query of their ids)."""
    monkeypatch.setattr(ts, "SIGNAL_SCAN", scan)
    text = TextQuery((("lamp",),), require_all=False)
    ask = SignalRequest(brands=("brand-2", "brand-5"), categories=(3, 104))
    q = IndexQuery(text, Filters(), limit=150, facets=False, signals=ask)
    got = {}
    for limit in (0, ts.TERMS_AS_CLAUSES):
        monkeypatch.setattr(ts, "TERMS_AS_CLAUSES", limit)
        got[limit] = shard.search(q)
    a, b = got[0], got[ts.TERMS_AS_CLAUSES]
    assert [h.product_id for h in a.hits] == [h.product_id for h in b.hits]
    assert a.signals == b.signals and len(a.signals) == 150
    brand, category = SIGNALS.index("brand_match"), SIGNALS.index("category_match")
    for h in b.hits:
        i = h.product_id - BIG
        assert b.signals[h.product_id][brand] == float(i % 7 in (2, 5)), i
        assert b.signals[h.product_id][category] == float(i % 11 == 3 or i % 5 == 4), i
