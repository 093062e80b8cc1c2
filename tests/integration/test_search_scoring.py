"""Relevance does not depend on how documents are spread over shards: the same documents in
1, 2 and 4 tantivy shards (real Ray actors, real files) give the same hits with the same
scores, in the same order, for every query; equal scores are ordered by the tie key.

The documents are made so that shards' own statistics would differ a lot: a rare word lives in
a handful of documents (its document frequency per shard is 0, 1 or 2), and title lengths vary.
With per-shard BM25 (tantivy's own) these layouts give different scores."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from actors.search_index import sharded_index
from adapters.postgres import create_pool
from adapters.postgres.search_registry import GenerationRegistry
from adapters.search.sharded import ShardedIndex
from domain.search import Filters, IndexQuery, TextQuery, tie_key

WORDS = ["lamp", "chair", "table", "kettle", "mug", "desk", "shelf", "sofa", "rug", "vase"]
FILLER = ["with", "solid", "oak", "frame", "and", "soft", "cover", "for", "home", "office"]


def make_docs(n: int = 240, seed: int = 11) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    docs = []
    for i in range(n):
        words = rnd.sample(WORDS, 2) + rnd.sample(FILLER, rnd.randint(0, 8))
        if i % 60 == 0:
            words.append("walnut")  # rare: 4 documents in all
        title = " ".join(words)
        docs.append({
            "product_id": 5_000 + i * 7919 % 10_007, "version": 1, "external_id": f"EXT-{i}",
            "seller_id": 1, "title": title, "description": " ".join(rnd.sample(FILLER, 5)),
            "brand": rnd.choice(["Acme", "Globex"]), "brand_key": None,
            "category_ids": [1], "category_path": ["Home"], "price": 10.0 + i,
            "price_was": None, "currency": "USD", "rating_avg": 4.0, "rating_count": 1,
            "in_stock": True, "badges": [], "attributes": {}, "created_at": 1_700_000_000,
            "sales_velocity": 0.0, "seller_rating": 4.0, "thumbnail_url": None,
            "variant_ids": [i],
        })
    # two documents alike in every scored word: they can only be told apart by the tie key
    twin = docs[0] | {"product_id": 999_999, "external_id": "EXT-twin"}
    return [*docs, twin]


DOCS = make_docs()
QUERIES = [
    TextQuery((("walnut",),), require_all=False),
    TextQuery((("lamp",), ("walnut",)), require_all=False),
    TextQuery((("lamp",), ("chair",)), require_all=True),
    TextQuery((("oak frame",), ("desk",)), require_all=False),  # a phrase
    TextQuery((("kettle", "mug"),), require_all=False),  # a word and its alternative
    TextQuery((("sofa",),), fields="title"),
    TextQuery((("tabel",),), fuzzy=True),
    TextQuery((("acme",), ("rug",)), require_all=False),  # brand and title
]


@pytest.fixture(scope="module")
async def layouts(ray_cluster: None, databases: Any,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[int, Any]]:
    dsn = await databases.create()
    pool: asyncpg.Pool = await create_pool(dsn, max_size=2)
    out: dict[int, ShardedIndex] = {}
    for shards in (1, 2, 4):
        idx = sharded_index(shards, Path(tmp_path_factory.mktemp(f"s{shards}")), dsn,
                           GenerationRegistry(pool, f"tantivy-{shards}"))
        name = f"g{shards}"
        await idx.create_generation(name, DOCS[:50])  # the sample sets the length pivots
        # written in a different order per layout: the order documents arrive must not matter
        docs = DOCS[::-1] if shards == 2 else DOCS
        assert await idx.upsert(docs, name) == len(DOCS)
        await idx.refresh(name)
        await idx.finish_generation(name)
        await idx.swap(name)
        out[shards] = idx
    yield out
    for idx in out.values():
        await idx.close()
    await pool.close()


def answer(res: Any) -> list[tuple[int, float]]:
    return [(h.product_id, round(h.score, 4)) for h in res.hits]


@pytest.mark.parametrize("text", QUERIES, ids=[str(i) for i in range(len(QUERIES))])
async def test_the_same_scores_in_1_2_and_4_shards(layouts: dict[int, Any],
                                                   text: TextQuery) -> None:
    got = {}
    for shards, idx in layouts.items():
        res = await idx.search(IndexQuery(text, Filters(), limit=len(DOCS), facets=False))
        got[shards] = (res.total, [(h.product_id, h.score) for h in res.hits])
    assert got[1][0] > 0
    assert got[1] == got[2] == got[4]


async def test_pages_cut_through_equal_scores_the_same_way(layouts: dict[int, Any]) -> None:
    """Small pages: each shard keeps its best few, and where that cut falls inside a run of
    equal scores it must keep the ones the tie key puts first, whatever the layout."""
    text = TextQuery((("lamp",),), require_all=False)
    for size in (1, 3, 7):
        pages = {}
        for shards, idx in layouts.items():
            pages[shards] = [answer(await idx.search(IndexQuery(
                text, Filters(), offset=o, limit=size, facets=False))) for o in range(0, 30, size)]
        assert pages[1] == pages[2] == pages[4]


async def test_equal_scores_are_ordered_by_the_tie_key(layouts: dict[int, Any]) -> None:
    res = await layouts[4].search(IndexQuery(TextQuery((("walnut",),)), limit=50, facets=False))
    twins = [h for h in res.hits if h.product_id in (DOCS[0]["product_id"], 999_999)]
    assert len(twins) == 2 and twins[0].score == twins[1].score
    keys = [tie_key(h.doc["external_id"], h.product_id) for h in twins]
    assert keys == sorted(keys)
    for a, b in zip(res.hits, res.hits[1:], strict=False):
        if a.score == b.score:
            assert a.doc["tie_key"] <= b.doc["tie_key"]


async def test_a_rare_word_outweighs_a_common_one(layouts: dict[int, Any]) -> None:
    """The statistics are the whole generation's: "walnut" (4 documents) is worth more than
    "lamp" (about a fifth of them) in every shard, even one that holds no walnut at all."""
    res = await layouts[4].search(IndexQuery(TextQuery((("lamp",), ("walnut",)),
                                                       require_all=False), limit=10,
                                             facets=False))
    top = res.hits[0].doc["title"].split()
    assert "walnut" in top
