"""The search policy (domain/search_plan.py) against the in-memory index (no Ray, no servers):
what it asks the index, when it relaxes, re-ranks, widens, and when it reuses cached facets."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from adapters.search import SearchIndex
from adapters.search.memory import MemoryIndex
from domain.errors import ValidationFailed
from domain.query import CatalogVocabulary, QueryUnderstanding
from domain.search import Filters, Hit, IndexQuery, IndexResult, SearchDocument, split_list
from domain.search_plan import (
    MAX_WINDOW,
    RERANK_DEPTH,
    CachedFacets,
    PlannedSearch,
    SearchParams,
    Words,
    facet_groups,
    facet_identity,
    facet_query,
    may_rerank,
    plan_search,
    with_group_counts,
)


def doc(pid: int, title: str, brand: str, price: float = 10.0) -> SearchDocument:
    return SearchDocument(
        product_id=pid, version=1, external_id=f"E{pid}", seller_id=1, title=title,
        description="", brand=brand, brand_key=brand.casefold(), category_ids=[1],
        category_path=["Home"], price=price, price_was=None, currency="USD", rating_avg=4.0,
        rating_count=pid, in_stock=True, badges=[], attributes={}, created_at=pid,
        sales_velocity=0.0, seller_rating=4.0, thumbnail_url=None, variant_ids=[pid],
        tie_key=pid)


DOCS = ([doc(i, f"oak desk lamp {i}", "Globex", 10.0 + i) for i in range(1, 31)]
        + [doc(100, "acme desk lamp", "Acme", 5.0)]
        + [doc(200 + i, f"walnut chair {i}", "Initech") for i in range(5)])


class Steps:
    """The plan's world: the in-memory index, a dict of cached facets (keyed as the service
    keys them, without the generation), and a ranker that reverses the candidates."""

    def __init__(self, index: SearchIndex, cached: dict[str, CachedFacets] | None = None
                 ) -> None:
        self.index = index
        self.cached = cached if cached is not None else {}
        self.reranked: list[list[int]] = []

    async def search(self, query: IndexQuery) -> IndexResult:
        return await self.index.search(query)

    async def cached_facets(self, identity: str) -> CachedFacets | None:
        return self.cached.get(identity)

    async def rerank(self, hits: list[Hit], ranker: str, words: Words) -> list[Hit]:
        self.reranked.append([h.product_id for h in hits])
        return hits[::-1]


async def memory_index(docs: list[SearchDocument]) -> MemoryIndex:
    idx = MemoryIndex()
    await idx.create_generation("g1")
    await idx.upsert(docs, "g1")
    await idx.swap("g1")
    return idx


def understanding(docs: list[SearchDocument]) -> QueryUnderstanding:
    v = CatalogVocabulary()
    for d in docs:
        v.add(d["title"], d["brand"])
    return QueryUnderstanding(v.freeze())


@pytest.fixture
async def index() -> MemoryIndex:
    return await memory_index(DOCS)


@pytest.fixture(scope="module")
def qu() -> QueryUnderstanding:
    return understanding(DOCS)


async def plan(index: MemoryIndex, qu: QueryUnderstanding | None, steps: Steps | None = None,
               explicit: Filters = Filters(), **params: Any) -> tuple[PlannedSearch, Steps]:
    steps = steps or Steps(index)
    return await plan_search(SearchParams(**params), explicit, qu, steps), steps


async def test_relevance_reranks_the_top_candidates_then_cuts_the_page(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    got, steps = await plan(index, qu, q="desk lamp", page_size=5)
    (first,) = index.searches
    # slim, the page's documents fetched once the ranker chose it
    assert (first.offset, first.limit, first.slim, first.full_docs) == (0, RERANK_DEPTH, True, 0)
    assert first.facets and first.text.require_all is False
    index.searches.clear()
    await plan(index, qu, q="desk lamp", page_size=5, sort="price_asc")
    (by_price,) = index.searches  # the index's order: each shard's first 5 come whole
    assert (by_price.limit, by_price.full_docs) == (5, 5)
    assert len(steps.reranked) == 1 and len(steps.reranked[0]) == 31
    assert [h.product_id for h in got.hits] == steps.reranked[0][::-1][:5]
    assert got.total == 31 and got.keep_facets and got.cached is None


async def test_the_baseline_and_index_order_are_not_reranked(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    plain, steps = await plan(index, qu, q="desk lamp", ranker="bm25_title", page=2,
                              page_size=5)
    assert steps.reranked == [] and index.searches[-1].text.fields == "title"
    assert (index.searches[-1].offset, index.searches[-1].limit) == (5, 5)
    assert len(plain.hits) == 5
    _, steps = await plan(index, qu, q="desk lamp", ranker="text")
    assert steps.reranked == []


async def test_pages_past_the_rerank_depth_come_from_the_index_order(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    _, steps = await plan(index, qu, q="desk lamp", page=RERANK_DEPTH // 10 + 1, page_size=10)
    assert steps.reranked == []
    assert index.searches[-1].offset == RERANK_DEPTH


@pytest.mark.parametrize("params", [
    {"q": "desk lamp"}, {"q": "desk lamp", "sort": "price_asc"}, {"q": "desk lamp",
                                                                    "ranker": "bm25_title"},
    {"q": "desk lamp", "ranker": "text"}, {"q": ""}, {"q": "  "},
    {"q": "desk lamp", "page": RERANK_DEPTH // 10 + 1, "page_size": 10},
    {"q": "desk lamp", "page": RERANK_DEPTH // 10, "page_size": 10}, {"q": "under $20"}])
async def test_work_for_re_ranking_is_skipped_only_where_no_re_ranking_happens(
        index: MemoryIndex, qu: QueryUnderstanding, params: dict[str, Any]) -> None:
    _, steps = await plan(index, qu, **params)
    if steps.reranked:  # the dense vector is made whenever a re-ranking may follow
        assert may_rerank(SearchParams(**params))
    if not may_rerank(SearchParams(**params)):
        assert steps.reranked == []


async def test_a_page_too_deep_is_refused(index: MemoryIndex, qu: QueryUnderstanding) -> None:
    with pytest.raises(ValidationFailed) as err:
        await plan(index, qu, q="lamp", page=MAX_WINDOW // 50 + 1, page_size=50)
    assert "page" in err.value.fields


async def test_cached_facets_are_reused_while_the_matches_are_as_many(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    """Same words and filters, another sort and page: the cached counts, and the index is
    asked without facets; counted over another number of matches: counted again."""
    globex = Filters(brands=("globex",))
    first, steps = await plan(index, qu, explicit=globex, q="desk lamp", brands=("globex",))
    assert first.total == 30
    assert first.cached is None and first.keep_facets and first.result.facets.brands
    key = facet_identity(index.searches[0], globex)
    marked = CachedFacets(first.result.total, {"brands": [{"name": "cached", "count": 1}]},
                          first.result.word_matches)
    steps.cached[key] = marked
    index.searches.clear()
    again, _ = await plan(index, qu, steps, explicit=globex,
                          q="desk lamp", brands=("globex",), sort="price_asc", page=2,
                          page_size=3)
    assert again.cached == marked
    assert [q.facets for q in index.searches] == [False]
    steps.cached[key] = dataclasses.replace(marked, total=first.result.total + 1)
    index.searches.clear()
    fresh, _ = await plan(index, qu, steps, explicit=globex,
                          q="desk lamp", brands=("globex",))
    assert fresh.cached is None and fresh.keep_facets
    assert [q.facets for q in index.searches] == [False, True]


async def test_no_match_relaxes_to_one_edit(index: MemoryIndex) -> None:
    got, _ = await plan(index, None, q="lampz")  # no query model: words as typed
    assert got.relaxed is None and got.total == 0  # the memory index has no fuzzy matching
    assert [q.text.fuzzy for q in index.searches] == [False, True]


async def test_inferred_filters_are_dropped_when_nothing_passes_them(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    """"acme chair": the brand read from the words passes no chair; every word is searched
    again with the URL's filters only."""
    got, _ = await plan(index, qu, q="acme chair")
    assert index.searches[0].filters.brands == ("acme",)
    assert got.relaxed == "inferred_filters_dropped"
    assert index.searches[-1].filters == Filters() and got.filters == Filters()
    assert got.total > 0 and got.counted_query == index.searches[-1]
    assert "brands" not in got.words.applied


async def test_a_relaxed_search_again_is_counted_from_the_kept_counts(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    """The relaxed answer's counts are kept under the relaxed query's key, and the words as
    read under theirs with their number of matches alone: the same search again asks the
    index for no facet count; once the words match something, they are counted again."""
    steps = Steps(index)
    got, _ = await plan(index, qu, steps, q="acme chair")
    # the words as read, one edit (the memory index has no fuzzy matching), the URL's filters
    assert [q.facets for q in index.searches] == [True, True, True]
    asked, fuzzy, relaxed = index.searches
    shown: dict[str, object] = {"brands": [{"name": "Initech", "count": 5}]}
    kept = got.counts_to_keep(shown)
    key = {q: facet_identity(q, Filters()) for q in (asked, fuzzy, relaxed)}
    assert kept == [(key[fuzzy], CachedFacets(0, None, 0)), (key[asked], CachedFacets(0, None, 0)),
                    (key[relaxed], CachedFacets(got.total, shown, got.total))]
    steps.cached.update(kept)
    index.searches.clear()
    again, _ = await plan(index, qu, steps, q="acme chair", sort="price_asc")
    assert [q.facets for q in index.searches] == [False, False, False]
    assert again.relaxed == "inferred_filters_dropped" and again.total == got.total
    assert again.cached == kept[-1][1] and again.counts_to_keep(shown) == []
    # an Acme chair arrives: the words' key counted 0 matches, now 1: counted, not relaxed
    await index.upsert([doc(300, "acme office chair", "Acme", 99.0)], "g1")
    index.searches.clear()
    fresh, _ = await plan(index, qu, steps, q="acme chair")
    assert fresh.relaxed is None and fresh.counted_matches == (1, 1) and fresh.cached is None
    assert [q.facets for q in index.searches[:2]] == [False, True]  # then widened: no facets
    assert fresh.result.facets.brands == {"Acme": 1}
    # and it goes again: relaxed as before, the words' numbers kept anew over the answer's
    await index.delete([300], "g1")
    index.searches.clear()
    gone, _ = await plan(index, qu, steps, q="acme chair")
    assert gone.relaxed == "inferred_filters_dropped" and gone.cached == kept[-1][1]
    assert [q.facets for q in index.searches] == [False, False, False]


async def test_numbers_kept_alone_are_counted_when_the_words_answer(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    """The words' query kept only its numbers of matches (it was relaxed before); matched as
    many now, and answering itself: its counts are made, not shown empty."""
    steps = Steps(index)
    got, _ = await plan(index, qu, q="desk lamp")
    (asked,) = index.searches
    steps.cached[facet_identity(asked, Filters())] = CachedFacets(
        got.result.total, None, got.result.word_matches)
    index.searches.clear()
    again, _ = await plan(index, qu, steps, q="desk lamp")
    assert [q.facets for q in index.searches] == [False, True]
    assert again.cached is None and again.result.facets == got.result.facets


async def test_kept_counts_need_as_many_word_matches_and_the_same_shoppers_filters(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    """As many matches but fewer of them matching the words (semantic candidates joined make
    up the rest): counted again. A brand the shopper set and the same brand read from the
    words count differently (the shopper's group offers the other brands): not one key."""
    steps = Steps(index)
    globex = Filters(brands=("globex",))
    got, _ = await plan(index, qu, steps, explicit=globex, q="desk lamp", brands=("globex",))
    (asked,) = index.searches
    key = facet_identity(asked, globex)
    steps.cached[key] = CachedFacets(got.result.total, {"brands": []},
                                     got.result.word_matches - 1)
    index.searches.clear()
    again, _ = await plan(index, qu, steps, explicit=globex, q="desk lamp", brands=("globex",))
    assert again.cached is None and [q.facets for q in index.searches] == [False, True]
    assert facet_identity(asked, Filters()) != key


async def test_few_matches_of_inferred_filters_are_widened(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    """"acme lamp": one Acme lamp passes the brand read from the words; the best matches of
    every word without it follow."""
    got, steps = await plan(index, qu, q="acme lamp", page_size=10)
    assert got.widened is not None and got.widened.inferred_filter_matches == 1
    assert got.hits[0].product_id == 100
    assert len(got.hits) == 10 and got.total == 31
    assert len(steps.reranked) == 2  # the filtered matches, then the others


MANY = ([doc(i, f"brass desk lamp {i}", "Globex") for i in range(1, 260)]
        + [doc(1000, "acme desk lamp", "Acme")])


@pytest.fixture
async def many() -> MemoryIndex:
    return await memory_index(MANY)


@pytest.fixture(scope="module")
def many_qu() -> QueryUnderstanding:
    return understanding(MANY)


async def every_page(index: MemoryIndex, qu: QueryUnderstanding, q: str,
                     page_size: int) -> tuple[list[int], set[int], list[PlannedSearch]]:
    """Every page of a search until one comes back empty: the ids in page order, their
    totals, and the plans."""
    ids: list[int] = []
    plans = []
    for page in range(1, MAX_WINDOW // page_size + 1):
        got, _ = await plan(index, qu, q=q, page=page, page_size=page_size)
        plans.append(got)
        if not got.hits:
            break
        ids += [h.product_id for h in got.hits]
    return ids, {p.total for p in plans}, plans


@pytest.mark.parametrize("page_size", [20, 24, 30, 7])
async def test_pages_of_any_size_share_one_order(
        many: MemoryIndex, many_qu: QueryUnderstanding, page_size: int) -> None:
    """Paging through a re-ranked search shows each match once, whether or not the page size
    divides the re-ranked depth (a page across it once re-ranked more candidates than the
    page before, repeating some and skipping others)."""
    ids, totals, _ = await every_page(many, many_qu, "desk lamp", page_size)
    assert totals == {len(MANY)}
    assert len(ids) == len(set(ids)) == len(MANY)
    single, _ = await plan(many, many_qu, q="desk lamp", page_size=100)
    assert ids[:100] == [h.product_id for h in single.hits]


@pytest.mark.parametrize("page_size", [20, 24, 7])
async def test_a_widened_search_has_one_list_and_one_total_on_every_page(
        many: MemoryIndex, many_qu: QueryUnderstanding, page_size: int) -> None:
    """"acme lamp": one product passes the brand read from the words; every page says the
    same total, the pages together show exactly that many products, once each, the Acme
    lamp first, and a page past the end is empty (it once said 1 and showed nothing)."""
    ids, totals, plans = await every_page(many, many_qu, "acme lamp", page_size)
    assert totals == {RERANK_DEPTH}
    assert all(p.widened is not None and p.widened.inferred_filter_matches == 1
               for p in plans)
    assert ids[0] == 1000 and len(ids) == len(set(ids)) == RERANK_DEPTH
    assert not plans[-1].hits and plans[-1].widened is not None


async def test_a_page_that_fills_with_the_inferred_filters_matches_is_not_widened(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    """Widening is decided by the matches, not by the page: "globex lamp" passes 30, so no
    page of it widens (the last one once did), and its pages end at 30."""
    for page in (1, 2, 3, 4):
        got, _ = await plan(index, qu, q="globex lamp", page=page, page_size=10)
        assert got.widened is None and got.total == 30
        assert len(got.hits) == (10 if page <= 3 else 0)


@pytest.mark.parametrize("q", ["😀", "%", "((((", "- | -"])
async def test_words_with_nothing_to_search_match_nothing(
        index: MemoryIndex, qu: QueryUnderstanding, q: str) -> None:
    """A query of symbols only is not a blank search box: nothing matches it (it answered the
    whole catalog); a blank one still browses, and words read as filters still filter."""
    got, _ = await plan(index, qu, q=q)
    assert got.total == 0 and got.hits == [] and index.searches == []
    blank, _ = await plan(index, qu, q="   ")
    assert blank.total == len(DOCS)
    cheap, _ = await plan(index, qu, q="under $20")
    assert 0 < cheap.total < len(DOCS)
    # the same field set by the URL too: the URL's filter, the words read as nothing more
    within, _ = await plan(index, qu, explicit=Filters(price_max=30.0), q="under $20",
                           price_max=30.0)
    assert within.total == len([d for d in DOCS if d["price"] <= 30.0])


async def test_a_filtered_groups_facets_count_the_other_filters_matches(
        index: MemoryIndex, qu: QueryUnderstanding) -> None:
    """brand=acme on "desk lamp": the brand facet offers Globex too (30), counted over the
    matches of the other filters (price here), while the other groups count the filtered
    matches; categories are not widened (they drill down)."""
    explicit = Filters(brands=("acme",), price_max=30.0)
    got, _ = await plan(index, qu, explicit=explicit, q="desk lamp", brands=("acme",),
                        price_max=30.0)
    assert got.total == 1 and got.counted_query is not None
    assert set(got.result.facets.brands.values()) == {1}
    groups = facet_groups(got.filters, got.words.applied)
    assert groups == [("brands", ""), ("price", "")]
    counts = [(g, (await index.search(facet_query(got.counted_query, got.filters, g))).facets)
              for g in groups]
    shown = with_group_counts(got.result.facets, counts)
    brands = dict(shown.brands)
    assert len(brands) == 2 and sorted(brands.values()) == [1, 20]  # Globex lamps <= $30: 20
    assert sum(shown.price_ranges.values()) == 1  # Acme lamps at any price: the one
    assert shown.categories == got.result.facets.categories
    explicit = {"source": "explicit"}
    assert facet_groups(Filters(category_ids=(1,)), {"category_ids": explicit}) == []
    # filters read from the words are not the shopper's ticks; unknown attributes are not
    # counted by the index
    assert facet_groups(Filters(brands=("acme",)), {"brands": {"source": "inferred"}}) == []
    assert facet_groups(
        Filters(attributes=(("material", ("wood",)), ("color", ("red",)))),
        {"attributes": {"material": explicit, "color": explicit}}) == [("attribute", "color")]


def test_list_filters_split_on_commas_not_escaped_ones() -> None:
    assert split_list("HP, Lenovo,,") == ("HP", "Lenovo")
    assert split_list(r"Smith\, Jones & Co,HP") == ("Smith, Jones & Co", "HP")
    assert split_list(r"AC\\DC,x\\") == ("AC\\DC", "x\\")
    assert split_list("trailing\\") == ("trailing\\",)
    assert split_list("") == () and split_list(" , ") == ()
