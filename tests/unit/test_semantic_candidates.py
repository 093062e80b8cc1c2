"""Semantic candidates (domain.search.Near, adapters/search/tantivy_shard.py, the plan): the
products closest to the query's dense vector join a learned ranker's matches. Checked on
in-memory tantivy shards with made-up vectors: which products are chosen (the same however
the catalog is sharded), that they are counted, faceted and paged like matches, and that
they are never an answer on their own."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapters.search.tantivy_shard import TantivyShard
from adapters.text_embedding import DIMENSION, to_bytes
from domain import search_plan
from domain.query import CatalogVocabulary, QueryUnderstanding
from domain.search import (
    NEAR_BOOST,
    Filters,
    Hit,
    IndexQuery,
    IndexResult,
    Near,
    TextQuery,
    merge,
    tie_key,
)
from domain.search_plan import (
    RERANK_DEPTH,
    CachedFacets,
    SearchParams,
    Words,
    facet_identity,
    in_words_order,
    plan_search,
)

RNG = np.random.default_rng(7)
QUERY = RNG.standard_normal(DIMENSION)
QUERY /= np.linalg.norm(QUERY)


def vector_at(cosine: float) -> bytes:
    """A unit vector at about this cosine from QUERY (int8, as the index stores them)."""
    other = RNG.standard_normal(DIMENSION)
    other -= other @ QUERY * QUERY
    other /= np.linalg.norm(other)
    return to_bytes(cosine * QUERY + np.sqrt(1 - cosine * cosine) * other)


def doc(pid: int, title: str, brand: str, cosine: float | None,
        price: float = 10.0) -> dict[str, object]:
    return {"product_id": pid, "version": 1, "external_id": f"E{pid}", "title": title,
            "description": "", "brand": brand, "brand_key": brand.casefold(),
            "category_ids": [1], "category_path": ["Sport"], "price": price,
            "rating_avg": 4.0, "rating_count": pid, "in_stock": True, "attributes": {},
            "created_at": pid, "variant_ids": [pid],
            "title_vec": vector_at(cosine) if cosine is not None else None}


# 30 running shoes (the words match), 12 sneakers that do not hold the words but sit close to
# the query (two of them Globex's), 2 sneakers without a vector, and far-off chairs
DOCS = ([doc(i, f"running shoe {i}", "Acme", 0.3 + i / 200, 20.0 + i) for i in range(1, 31)]
        + [doc(100 + i, f"trainer sneaker {i}", "Globex" if i < 2 else "Initech", 0.9 - i / 100)
           for i in range(12)]
        + [doc(200 + i, f"trainer sneaker plain {i}", "Initech", None) for i in range(2)]
        + [doc(300 + i, f"oak chair {i}", "Hooli", -0.2) for i in range(20)])
SNEAKERS = {100 + i for i in range(12)}
RUNNING = TextQuery((("running",), ("shoe",)), require_all=False)


class Shards:
    """`shards` in-memory shards, searched and merged as adapters/search/sharded.py does."""

    def __init__(self, shards: int, docs: list[dict[str, object]] = DOCS) -> None:
        self.shards = [TantivyShard(None) for _ in range(shards)]
        for k, s in enumerate(self.shards):
            s.apply([d for d in docs if int(str(d["product_id"])) % shards == k])

    async def search(self, query: IndexQuery) -> IndexResult:
        each = dataclasses.replace(query, offset=0, limit=query.offset + query.limit)
        return merge([s.search(each) for s in self.shards], query)


def nearest(shards: Shards, k: int, filters: Filters = Filters()) -> list[Hit]:
    first = IndexQuery(RUNNING, filters, limit=0, facets=False, near=Near(to_bytes(QUERY), k))
    each = dataclasses.replace(first, limit=0)
    return merge([s.search(each) for s in shards.shards], first).near


def cosine(d: dict[str, object]) -> float:
    q = np.frombuffer(to_bytes(QUERY), dtype=np.int8).astype(np.int64)
    v = np.frombuffer(d["title_vec"], dtype=np.int8).astype(np.int64)  # type: ignore[arg-type]
    return float(v @ q) / 127 / 127


def expected(docs: list[dict[str, object]], k: int) -> list[int]:
    """The k documents with a vector closest to QUERY, in the merge order (worked out here)."""
    usable = [d for d in docs if d["title_vec"] is not None]
    usable.sort(key=lambda d: (-cosine(d), tie_key(str(d["external_id"]),
                                                  int(str(d["product_id"])))))
    return [int(str(d["product_id"])) for d in usable[:k]]


@pytest.mark.parametrize("shards", [1, 3])
def test_the_closest_products_passing_the_filters_whatever_the_shards(shards: int) -> None:
    index = Shards(shards)
    got = nearest(index, 20)
    assert [h.product_id for h in got] == expected(DOCS, 20)
    assert set(SNEAKERS) <= {h.product_id for h in got}  # the words do not matter here
    assert not {200, 201} & {h.product_id for h in got}  # no vector: never close
    assert [h.score for h in got] == sorted((h.score for h in got), reverse=True)
    globex = nearest(index, 5, Filters(brands=("globex",)))
    assert [h.product_id for h in globex] == expected(
        [d for d in DOCS if d["brand"] == "Globex"], 5) == [100, 101]


def test_a_filters_matches_kept_per_searcher_choose_as_a_fresh_read() -> None:
    """A filter's matches are kept per searcher (Near's first step reads them once): asked
    again, under another filter, or after another filter, the same products as worked out
    here (a filter that the closest pass, one that only far ones pass, one between)."""
    index = Shards(1)
    cases: list[tuple[Filters, Callable[[dict[str, Any]], bool]]] = [
        (Filters(brands=("initech",)), lambda d: d["brand"] == "Initech"),
        (Filters(brands=("hooli", "globex")), lambda d: d["brand"] in ("Hooli", "Globex")),
        (Filters(price_min=15.0, price_max=40.0), lambda d: 15.0 <= d["price"] <= 40.0),
        (Filters(brands=("acme",), price_max=35.0),
         lambda d: d["brand"] == "Acme" and d["price"] <= 35.0)]
    for _ in range(2):
        for filters, keep in cases:
            for k in (1, 3, 8, 40):
                want = expected([d for d in DOCS if keep(d)], k)
                assert [h.product_id for h in nearest(index, k, filters)] == want, (filters, k)
                assert len(want) == min(k, sum(1 for d in DOCS if keep(d) and d["title_vec"]))
    assert nearest(index, 3) == nearest(index, 3, Filters())  # no filter: no mask


def test_a_writers_kept_filter_matches_follow_its_commits() -> None:
    """A product whose price comes under a filter's bound (or leaves it) is chosen (or not)
    from the next commit on: a filter's kept matches are the searcher's they were read on."""
    index = Shards(1)
    cheap = Filters(price_max=25.0)
    before = [h.product_id for h in nearest(index, 3, cheap)]
    assert 300 not in before  # the chairs are far off
    index.shards[0].apply([doc(300, "oak chair 0", "Hooli", 0.99, price=20.0) | {"version": 2}])
    assert [h.product_id for h in nearest(index, 3, cheap)] == [300, *before[:2]]
    index.shards[0].apply([doc(300, "oak chair 0", "Hooli", 0.99, price=90.0) | {"version": 3}])
    assert [h.product_id for h in nearest(index, 3, cheap)] == before


async def test_chosen_products_are_matches_counted_faceted_and_sorted() -> None:
    index = Shards(2)
    ids = (100, 101, 105, 2)  # three sneakers and one running shoe
    words = IndexQuery(RUNNING, limit=100)
    joined = dataclasses.replace(words, near=Near(to_bytes(QUERY), 4, ids))
    plain, got = await index.search(words), await index.search(joined)
    assert plain.total == plain.word_matches == 30
    assert got.total == 33 and got.near_only == 3 and got.word_matches == 30
    for fewer in (dataclasses.replace(joined, limit=2), dataclasses.replace(joined,
                                                                            sort="price_asc")):
        assert (await index.search(fewer)).near_only == 3  # not all in the hits: searched
    assert got.facets.brands == {"Acme": 30, "Globex": 2, "Initech": 1}
    # first in the relevance order, their scores raised by NEAR_BOOST (the shoe by its own too)
    assert {h.product_id for h in got.hits[:4]} == set(ids)
    assert all(h.score >= NEAR_BOOST for h in got.hits[:4])
    assert all(h.score < NEAR_BOOST for h in got.hits[4:])
    by_price = await index.search(dataclasses.replace(joined, sort="price_asc"))
    assert {100, 101, 105} <= {h.product_id for h in by_price.hits} and by_price.total == 33
    # a filter read from the words decides the words' matches only; the shopper's, all
    globex = Filters(brands=("globex",))
    inferred = await index.search(dataclasses.replace(joined, filters=globex))
    assert inferred.total == 4 and inferred.near_only == 4 and inferred.word_matches == 0
    shoppers = await index.search(dataclasses.replace(joined, filters=globex, near=Near(
        to_bytes(QUERY), 4, ids, filters=globex)))
    assert {h.product_id for h in shoppers.hits} == {100, 101} and shoppers.near_only == 2


def test_candidates_go_back_to_the_words_order() -> None:
    hits = [Hit(7, NEAR_BOOST + 2.0, {"product_id": 7}), Hit(8, NEAR_BOOST, {"product_id": 8}),
            Hit(1, 5.0, {"product_id": 1}), Hit(2, 1.0, {"product_id": 2})]
    back = in_words_order(hits)
    assert [(h.product_id, h.score) for h in back] == [(1, 5.0), (7, 2.0), (2, 1.0), (8, 0.0)]
    plain = hits[2:]
    assert in_words_order(plain) is plain


class Steps:
    def __init__(self, index: Shards) -> None:
        self.index = index
        self.asked: list[IndexQuery] = []
        self.reranked: list[list[Hit]] = []
        self.cached: dict[str, CachedFacets] = {}  # as the service keeps them

    async def search(self, query: IndexQuery) -> IndexResult:
        self.asked.append(query)
        return await self.index.search(query)

    async def cached_facets(self, identity: str) -> CachedFacets | None:
        return self.cached.get(identity)

    async def rerank(self, hits: list[Hit], ranker: str, words: Words) -> list[Hit]:
        self.reranked.append(hits)
        return hits[::-1]  # the semantic candidates (last in the words' order) come first


def understanding() -> QueryUnderstanding:
    v = CatalogVocabulary()
    for d in DOCS:
        v.add(str(d["title"]), str(d["brand"]))
    return QueryUnderstanding(v.freeze())


def params(**kw: object) -> SearchParams:
    base = SearchParams(q="running shoe", signals=True, semantic=True,
                        vector=to_bytes(QUERY))
    return dataclasses.replace(base, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(("shards", "depth"), [(1, RERANK_DEPTH), (3, RERANK_DEPTH), (3, 10)])
async def test_every_page_shows_the_matches_and_the_semantic_candidates_once(
        shards: int, depth: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Also with 10 re-ranked: pages past them go on in the index's order, where the semantic
    candidates (first in it) are not seen again."""
    monkeypatch.setattr(search_plan, "RERANK_DEPTH", depth)
    index, qu = Shards(shards), understanding()
    first = await plan_search(params(page_size=7), Filters(), qu, Steps(index))
    assert first.total == 30 + 12  # 12 sneakers among the 20 closest join the 30 shoes
    seen: list[int] = []
    for page in range(1, 8):
        steps = Steps(index)
        got = await plan_search(params(page=page, page_size=7), Filters(), qu, steps)
        assert got.total == first.total, page
        seen += [h.product_id for h in got.hits]
        if steps.reranked and depth == RERANK_DEPTH:  # in the words' order, boost taken off
            pool = steps.reranked[0]
            assert all(h.score < NEAR_BOOST for h in pool)
            assert {h.product_id for h in pool[-12:]} == SNEAKERS
        elif steps.reranked:  # 10 candidates: the 20 joined come first in the index's order
            assert {h.product_id for h in steps.reranked[0]} < SNEAKERS | set(range(1, 31))
    assert len(seen) == len(set(seen)) == first.total
    assert set(seen) == set(range(1, 31)) | SNEAKERS
    # the same answer without semantic candidates: the words' matches only
    steps = Steps(index)
    words_only = await plan_search(params(semantic=False), Filters(), qu, steps)
    assert words_only.total == 30 and all(q.near is None for q in steps.asked)


async def test_semantic_candidates_alone_are_no_answer() -> None:
    """Words that match nothing are relaxed (one edit) as before; when nothing matches them
    either, the answer is empty, not the products closest to the query."""
    index, qu = Shards(2), understanding()
    steps = Steps(index)
    got = await plan_search(params(q="zzyzxq"), Filters(), qu, steps)
    assert got.total == 0 and got.hits == []
    assert any(q.near is not None and q.near.ids is None for q in steps.asked)  # it was asked
    fuzzy = await plan_search(params(q="shoez"), Filters(), None, Steps(index))
    assert fuzzy.relaxed == "fuzzy" and fuzzy.total == 30  # the shoes; no semantic ones


async def test_words_that_match_nothing_keep_their_own_number_of_matches() -> None:
    """Semantic candidates alone: the words' query counts them (its own total), the answer
    is empty. What is kept for the next search is that query's total, not the answer's 0:
    the same search again asks the index for no facet count (with the answer's 0 kept it
    would count every time: its query's matches are never 0)."""
    index, qu = Shards(2), understanding()
    steps = Steps(index)
    got = await plan_search(params(q="zzyzxq"), Filters(), qu, steps)
    assert got.total == 0 and got.relaxed is None
    joined, fuzzy = [q for q in steps.asked if q.near is None or q.near.ids is not None]
    assert joined.near is not None and fuzzy.text.fuzzy
    kept = got.counts_to_keep({})
    own = (await index.search(joined)).total
    assert own > 0 and kept == [(facet_identity(fuzzy, Filters()), CachedFacets(0, None, 0)),
                                (facet_identity(joined, Filters()), CachedFacets(own, {}, 0))]
    steps.cached.update(kept)
    steps.asked.clear()
    again = await plan_search(params(q="zzyzxq"), Filters(), qu, steps)
    assert again.total == 0 and again.cached == CachedFacets(own, {}, 0)
    assert [q.facets for q in steps.asked] == [False, False, False]  # near, words, one edit


async def test_the_facet_cache_tells_joined_products_apart() -> None:
    words = IndexQuery(RUNNING, limit=10)
    joined = dataclasses.replace(words, near=Near(to_bytes(QUERY), 3, (100, 101, 102)))
    other = dataclasses.replace(words, near=Near(to_bytes(QUERY), 3, (100, 101, 103)))
    assert len({facet_identity(q, Filters()) for q in (words, joined, other)}) == 3


async def test_a_price_read_from_the_words_holds_for_semantic_candidates_too() -> None:
    """"under $35": the shoes over $35 are close to the query too, but never join; a brand or
    color read from the words is what semantic candidates may pass over (near_filters)."""
    index, qu = Shards(2), understanding()
    steps = Steps(index)
    got = await plan_search(params(q="running shoe under $35", page_size=10), Filters(), qu,
                            steps)
    assert got.words.filters.price_max == 35 and got.widened is None
    shown: set[int] = set()
    for page in (1, 2, 3):
        more = await plan_search(params(q="running shoe under $35", page_size=10, page=page),
                                 Filters(), qu, Steps(index))
        shown |= {h.product_id for h in more.hits}
    assert got.total == 27 and shown == set(range(1, 16)) | SNEAKERS  # up to $35; $10 ones
    (first,) = [q for q in steps.asked if q.near is not None and q.near.ids is None]
    assert first.filters.price_max == 35 and first.near is not None
    assert first.near.filters == first.filters
    branded = Words(RUNNING, Filters(brands=("acme",), attributes=(("color", ("red",)),),
                                     price_max=35.0, in_stock=True), {}, RUNNING.groups)
    assert search_plan.near_filters(branded, Filters(in_stock=True)) == Filters(
        price_max=35.0, in_stock=True)
    mine = Filters(brands=("globex",), in_stock=True)
    assert search_plan.near_filters(dataclasses.replace(branded, filters=dataclasses.replace(
        branded.filters, brands=("globex",))), mine) == dataclasses.replace(
        mine, price_max=35.0)  # the URL's brand holds


async def test_a_widened_answer_counts_only_the_words_matches_as_the_filters(
        ) -> None:
    """"acme running shoe" on pages of 40: 30 matches pass the brand read from the words
    (fewer than a page: widened); the 12 sneakers joined are not among them."""
    index, qu = Shards(2), understanding()
    got = await plan_search(params(q="acme running shoe", page_size=40), Filters(), qu,
                            Steps(index))
    assert got.words.filters.brands == ("acme",) and got.widened is not None
    assert got.widened.inferred_filter_matches == 30 and got.total == 42
    assert got.widened.more_results == 12


def test_a_writers_vectors_follow_its_commits() -> None:
    """A shard searched where it is written keeps every document's vector per commit: a
    product written (or deleted) is among the closest (or gone) after the next commit."""
    index = Shards(1)
    shard = index.shards[0]
    before = [h.product_id for h in nearest(index, 3)]
    shard.apply([doc(900, "plimsoll", "Hooli", 0.99)])
    assert [h.product_id for h in nearest(index, 3)] == [900, *before[:2]]
    shard.apply([], deletes=[900])
    assert [h.product_id for h in nearest(index, 3)] == before


def test_a_read_only_shards_kept_filter_matches_follow_its_reloads(tmp_path: Path) -> None:
    """A Gateway's read-only copy of a shard keeps a filter's matches per reload: a product
    the writer moves under a price bound (or out of it) is chosen (or not) once the copy
    reloads (what LocalReads does when the shard's files change)."""
    writer = TantivyShard(tmp_path / "shard-0")
    writer.apply(DOCS)
    reader = Shards(0)
    reader.shards = [TantivyShard(tmp_path / "shard-0", read_only=True)]
    cheap = Filters(price_max=25.0)
    before = [h.product_id for h in nearest(reader, 3, cheap)]
    assert 300 not in before
    writer.apply([doc(300, "oak chair 0", "Hooli", 0.99, price=20.0) | {"version": 2}])
    assert [h.product_id for h in nearest(reader, 3, cheap)] == before  # not reloaded yet
    reader.shards[0].reload()
    assert [h.product_id for h in nearest(reader, 3, cheap)] == [300, *before[:2]]
    writer.apply([doc(300, "oak chair 0", "Hooli", 0.99, price=90.0) | {"version": 3}])
    reader.shards[0].reload()
    assert [h.product_id for h in nearest(reader, 3, cheap)] == before
    writer.close()


async def test_a_facets_count_is_what_choosing_its_value_shows() -> None:
    """The URL's filters apply to the semantic candidates the words chose, as to the
    matches: a brand's count is the total of the search filtered by it, and a narrow price
    filter brings in no products only because they are the query's nearest at that price
    (the chairs, far off); a price read from the words still chooses among its products."""
    index, qu = Shards(2), understanding()
    every = await plan_search(params(), Filters(), qu, Steps(index))
    assert every.result.facets.brands == {"Acme": 30, "Globex": 2, "Initech": 10}
    acme = await plan_search(params(), Filters(brands=("acme",)), qu, Steps(index))
    assert acme.total == 30
    steps = Steps(index)
    cheap = await plan_search(params(page_size=50), Filters(price_max=25.0), qu, steps)
    (first,) = [q for q in steps.asked if q.near is not None and q.near.ids is None]
    assert first.filters == Filters()  # chosen from every product, as for the facets
    # the 5 shoes up to $25 and the 12 sneakers; no chair (the nearest left at that price)
    assert {h.product_id for h in cheap.hits} == set(range(1, 6)) | SNEAKERS
    assert cheap.total == 17
    groups = await plan_search(params(), Filters(brands=("acme",)), qu, Steps(index))
    by_brand = search_plan.facet_query(groups.counted_query or IndexQuery(), groups.filters,
                                       ("brands", ""))
    assert by_brand.near is not None and by_brand.near.filters.brands == ()
    assert (await index.search(by_brand)).facets.brands == every.result.facets.brands


async def test_a_brand_only_semantic_candidates_hold_shows_them_when_chosen() -> None:
    """"running shoe": Globex and Initech are counted from the sneakers that joined; a
    shopper choosing either sees those, not an empty page. Words that match nothing are
    still no answer, whatever the filters."""
    index, qu = Shards(2), understanding()
    for brand, ids in (("globex", {100, 101}), ("initech", SNEAKERS - {100, 101})):
        got = await plan_search(params(page_size=20), Filters(brands=(brand,)), qu,
                                Steps(index))
        assert got.relaxed is None and got.total == len(ids), brand
        assert {h.product_id for h in got.hits} == ids
    none = await plan_search(params(q="zzyzxq"), Filters(brands=("globex",)), qu, Steps(index))
    assert none.total == 0 and none.hits == []
