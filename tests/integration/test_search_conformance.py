"""One conformance suite for every search backend: the embedded tantivy shards always, and
Elasticsearch whenever ES_URL is set. Every answer is compared with a brute-force evaluation
over the same documents (domain.search.matches / sort_key / brute_facets)."""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from actors.search_index import sharded_index
from adapters.postgres import create_pool
from adapters.postgres.search_registry import GenerationRegistry
from domain.search import (
    SORTS,
    Filters,
    IndexQuery,
    TextQuery,
    brute_facets,
    matches,
    sort_key,
)

BRANDS = ["Acme", "Globex", "Initech", "Umbrella", "Stark Industries"]
WORDS = ["lamp", "chair", "table", "kettle", "mug", "desk", "shelf", "sofa"]
COLORS = ["red", "black", "white", "blue"]
SIZES = ["s", "m", "l"]
N_DOCS = 300


def make_docs(seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    docs = []
    for i in range(N_DOCS):
        brand = rnd.choice(BRANDS)
        leaf = rnd.choice([11, 12, 21, 22])
        words = rnd.sample(WORDS, 2)
        docs.append({
            "product_id": 1_000 + i, "version": 1, "external_id": f"X{i}", "seller_id": 1 + i % 3,
            "title": f"{brand} {words[0]} {words[1]} {i}", "description": "plain",
            "brand": brand, "brand_key": brand.casefold(),
            "category_ids": [leaf, leaf // 10], "category_path": ["Home", "Things"],
            "price": float(rnd.choice([5, 9.99, 20, 49.5, 50, 75, 120, 250, 999, 1500])),
            "price_was": None, "currency": "USD",
            "rating_avg": rnd.choice([0.0, 1.5, 3.0, 3.9, 4.0, 4.6, 5.0]),
            "rating_count": rnd.choice([0, 3, 10]), "in_stock": rnd.random() < 0.7,
            "badges": [], "attributes": {"color": rnd.sample(COLORS, rnd.randint(1, 2)),
                                         "size": [rnd.choice(SIZES)]},
            "created_at": 1_700_000_000 + rnd.choice([0, 86_400, 2 * 86_400]) ,
            "sales_velocity": 0.0, "seller_rating": 4.0, "thumbnail_url": None,
            "variant_ids": [1_000 + i],
        })
    return docs


DOCS = make_docs()
FILTERS = [
    Filters(),
    Filters(brands=("acme", "globex")),
    Filters(category_ids=(1,)),
    Filters(category_ids=(21, 12)),
    Filters(price_min=20, price_max=250),
    Filters(price_max=9.99),
    Filters(rating_min=4),
    Filters(in_stock=True),
    Filters(in_stock=False, seller_id=2),
    Filters(attributes=(("color", ("red",)),)),
    Filters(attributes=(("color", ("red", "blue")), ("size", ("m",)))),
    Filters(brands=("initech",), price_min=50, rating_min=3, in_stock=True),
    Filters(exclude_ids=(1000, 1001, 1002)),
]


@pytest.fixture(scope="module")
async def index(request: pytest.FixtureRequest, ray_cluster: None, databases: Any,
                tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Any]:
    backend = request.param
    dsn = await databases.create()
    pool: asyncpg.Pool = await create_pool(dsn, max_size=2)
    if backend in ("tantivy", "tantivy-local"):  # searched through the actors, or locally
        idx: Any = sharded_index(3, Path(tmp_path_factory.mktemp("idx")), dsn,
                                GenerationRegistry(pool, "tantivy"),
                                local_reads=backend == "tantivy-local")
    else:
        from adapters.search.elastic_backend import ElasticBackend
        idx = ElasticBackend(os.environ["ES_URL"], GenerationRegistry(pool, "elasticsearch"),
                            prefix=f"aisle-conformance-{os.getpid()}")
    await idx.create_generation("c1")
    assert await idx.upsert(DOCS, "c1") == len(DOCS)
    await idx.refresh("c1")
    await idx.swap("c1")
    yield idx
    await idx.drop_generation("c1")
    await idx.close()
    await pool.close()


BACKENDS = ["tantivy", "tantivy-local"] + (["elasticsearch"] if os.environ.get("ES_URL") else [])
pytestmark = pytest.mark.parametrize("index", BACKENDS, indirect=True)


def expected(f: Filters, text: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    return [d for d in DOCS if matches(d, f)
            and all(w in d["title"].casefold().split() for w in text)]


async def all_ids(index: Any, q: IndexQuery) -> list[int]:
    res = await index.search(IndexQuery(q.text, q.filters, q.sort, 0, N_DOCS, False))
    return [h.product_id for h in res.hits]


@pytest.mark.parametrize("f", FILTERS, ids=[str(i) for i in range(len(FILTERS))])
async def test_filters_totals_and_facets_match_brute_force(index: Any, f: Filters) -> None:
    res = await index.search(IndexQuery(filters=f, limit=N_DOCS, facets=True))
    want = expected(f)
    assert res.total == len(want)
    assert sorted(h.product_id for h in res.hits) == sorted(d["product_id"] for d in want)
    brute = brute_facets(want)
    assert res.facets.brands == brute.brands
    assert res.facets.price_ranges == brute.price_ranges
    assert res.facets.ratings == brute.ratings
    assert res.facets.categories == brute.categories
    assert res.facets.attributes == brute.attributes


@pytest.mark.parametrize("sort", [s for s in SORTS if s != "relevance"])
async def test_each_sort_and_stable_pages(index: Any, sort: str) -> None:
    f = Filters(price_max=999)
    want = [d["product_id"] for d in sorted(expected(f), key=lambda d: sort_key(d, sort))]
    assert await all_ids(index, IndexQuery(filters=f, sort=sort)) == want
    paged: list[int] = []
    for page in range(0, len(want) // 7 + 1):
        res = await index.search(IndexQuery(filters=f, sort=sort, offset=page * 7, limit=7,
                                            facets=False))
        assert res.total == len(want)
        paged += [h.product_id for h in res.hits]
    assert paged == want


async def test_text_all_terms_any_term_and_title_only(index: Any) -> None:
    both = IndexQuery(TextQuery((("lamp",), ("kettle",))), Filters(), limit=N_DOCS)
    want = {d["product_id"] for d in expected(Filters(), ("lamp", "kettle"))}
    assert set(await all_ids(index, both)) == want and want
    anyq = IndexQuery(TextQuery((("lamp",), ("kettle",)), require_all=False), limit=N_DOCS)
    either = {d["product_id"] for d in DOCS
              if {"lamp", "kettle"} & set(d["title"].casefold().split())}
    assert set(await all_ids(index, anyq)) == either
    # alternatives: a group matches on any of them (synonyms, corrections)
    alt = IndexQuery(TextQuery((("lamp", "sofa"),)), limit=N_DOCS)
    assert set(await all_ids(index, alt)) == {
        d["product_id"] for d in DOCS if {"lamp", "sofa"} & set(d["title"].casefold().split())}
    # brand words match in "all" fields but the title-only mode reads titles alone
    title_only = IndexQuery(TextQuery((("plain",),), fields="title"), limit=N_DOCS)
    assert await all_ids(index, title_only) == []
    assert len(await all_ids(index, IndexQuery(TextQuery((("plain",),)), limit=N_DOCS))) \
        == N_DOCS
    # relevance: scores descend
    res = await index.search(IndexQuery(TextQuery((("lamp",),)), limit=50, facets=False))
    scores = [h.score for h in res.hits]
    assert scores == sorted(scores, reverse=True) and scores


async def test_fuzzy_matches_one_edit(index: Any) -> None:
    exact = IndexQuery(TextQuery((("kettel",),)), limit=N_DOCS, facets=False)
    assert (await index.search(exact)).total == 0
    fuzzy = IndexQuery(TextQuery((("kettel",),), fuzzy=True), limit=N_DOCS, facets=False)
    want = {d["product_id"] for d in expected(Filters(), ("kettle",))}
    assert set(await all_ids(index, fuzzy)) == want


async def test_deletes_and_stock_updates_are_seen(index: Any) -> None:
    gone, flip = DOCS[0], DOCS[1]
    await index.delete([gone["product_id"]], "c1")
    await index.upsert([flip | {"in_stock": not flip["in_stock"]}], "c1")
    await index.upsert([flip | {"version": 0, "title": "stale"}], "c1")
    await index.refresh("c1")
    try:
        assert gone["product_id"] not in await all_ids(index, IndexQuery())
        got = (await index.get([flip["product_id"]]))[flip["product_id"]]
        assert got["in_stock"] is (not flip["in_stock"]) and got["title"] == flip["title"]
        res = await index.search(IndexQuery(filters=Filters(in_stock=not flip["in_stock"]),
                                            limit=N_DOCS, facets=False))
        assert flip["product_id"] in {h.product_id for h in res.hits}
    finally:
        await index.upsert([gone, flip], "c1")
        await index.refresh("c1")


async def test_concurrent_reads_each_get_their_own_answer(index: Any) -> None:
    """Many searches and gets at once (the embedded backend sends them to a shard together):
    each answer is the one the same read gets alone."""
    queries = [IndexQuery(filters=f, limit=N_DOCS, facets=True) for f in FILTERS] * 4
    ids = [[d["product_id"] for d in DOCS[i::7]] for i in range(7)] * 3
    alone_q = [await index.search(q) for q in queries]
    alone_g = [await index.get(x) for x in ids]
    together = await asyncio.gather(*(index.search(q) for q in queries),
                                    *(index.get(x) for x in ids))
    got_q, got_g = together[:len(queries)], together[len(queries):]
    for a, b in zip(alone_q, got_q, strict=True):
        assert (a.total, [h.product_id for h in a.hits], a.facets) == (
            b.total, [h.product_id for h in b.hits], b.facets)
    assert got_g == alone_g and all(set(g) == set(x) for g, x in zip(got_g, ids, strict=True))
