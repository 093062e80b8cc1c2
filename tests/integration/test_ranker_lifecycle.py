"""The ranker lifecycle against a real PostgreSQL: models registered, promoted, rolled back;
every Gateway's search service (two here, as two replicas) follows production within about a
second, without a restart; a model whose artifact does not match its checksum is never used.
The index is the embedded one on its shard actors."""

from __future__ import annotations

import asyncio
import dataclasses
import random
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import asyncpg
import numpy as np
import pyarrow as pa
import pytest

from actors.search_index import sharded_index
from adapters.postgres import create_pool
from adapters.postgres.ranker_registry import RankerRegistry
from adapters.postgres.search_registry import GenerationRegistry
from adapters.search import SearchIndex
from adapters.text_embedding import TextEmbedder, to_bytes
from domain.errors import Conflict
from domain.search import IndexQuery, IndexResult, SearchDocument
from ranking.gate import FORMULA, DatasetMetrics, ModelMetrics, gate
from ranking.learned_features import LEARNED_FEATURES, LEARNED_FEATURES_VERSION
from ranking.lgbm import GAIN_LEVELS, LgbmRanker, TrainingSet, train
from serve.ranker import ModelStore
from serve.search import SearchParams, SearchService


def doc(pid: int, words: int) -> SearchDocument:
    # titles of one length, more "lamp" words in each (16, 8, 4, 2, 1: BM25 apart by more than
    # the index's 6 % impact levels): the formula ranks pid 1 first
    return SearchDocument(
        product_id=pid, version=1, external_id=f"E{pid}", seller_id=1,
        title=" ".join(["lamp"] * words + [f"filler{i}" for i in range(16 - words)]),
        description="", brand="Acme",
        brand_key="acme", category_ids=[1], category_path=["Home"], price=10.0,
        price_was=None, currency="USD", rating_avg=4.0, rating_count=10, in_stock=True,
        badges=[], attributes={}, created_at=1_700_000_000, sales_velocity=0.0,
        seller_rating=4.0, thumbnail_url=None, variant_ids=[], tie_key=pid)


def reversing_model() -> LgbmRanker:
    """A model that prefers the WEAKEST text match (text_rank high is good): the opposite of
    the index's order, so a ranking it makes is unmistakable. The gain grows with the rank in
    steps, so that every place among five candidates scores differently."""
    rnd = random.Random(5)
    rank_col = LEARNED_FEATURES.index("text_rank")
    rows = []
    for q in range(30):
        for r in range(20):
            x = [rnd.random() for _ in LEARNED_FEATURES]
            x[rank_col] = r / 19
            rows.append({"query": f"q{q}", "external_id": f"{q}-{r}", "rank": r,
                         "gain": GAIN_LEVELS[min(r // 4, len(GAIN_LEVELS) - 1)],
                         **dict(zip(LEARNED_FEATURES, x, strict=True))})
    table = pa.Table.from_pylist(rows).replace_schema_metadata(
        {"feature_version": LEARNED_FEATURES_VERSION})
    return train(TrainingSet.from_table(table), rounds=30)


PASSING = ModelMetrics({"esci": DatasetMetrics(0.9, 0.5, FORMULA, {"q": (0.9, 0.5)})}, "x", 5)


@pytest.fixture
async def world(ray_cluster: None, fresh_dsn: str,
                tmp_path: Path) -> AsyncIterator[tuple[asyncpg.Pool, list[SearchService]]]:
    pool = await create_pool(fresh_dsn, max_size=4)
    index = sharded_index(2, tmp_path, fresh_dsn, GenerationRegistry(pool, "tantivy"))
    docs = [doc(pid, words) for pid, words in ((1, 16), (2, 8), (3, 4), (4, 2), (5, 1))]
    await index.create_generation("g1", docs)
    await index.upsert(docs, "g1")
    await index.refresh("g1")
    await index.finish_generation("g1")
    await index.swap("g1")
    replicas = [SearchService(index, pool, None, None) for _ in range(2)]
    yield pool, replicas
    await index.drop_generation("g1")
    await index.close()
    await pool.close()


async def order_of(service: SearchService) -> tuple[list[str], dict[str, object]]:
    found = await service.search(SearchParams(q="lamp", page_size=5))
    return [r["product_id"] for r in found["results"]], found["ranker"]


async def until(check: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():  # type: ignore[operator]
        assert time.monotonic() < deadline, "no replica followed production in time"
        await asyncio.sleep(0.1)


async def test_promotion_and_rollback_reach_every_replica_without_a_restart(
        world: tuple[asyncpg.Pool, list[SearchService]]) -> None:
    pool, replicas = world
    formula = ["1", "2", "3", "4", "5"]
    for r in replicas:
        ids, ranker = await order_of(r)
        assert ids == formula and ranker["kind"] == "formula"
    registry = RankerRegistry(pool)
    model = reversing_model()
    added = await registry.add("lightgbm", LEARNED_FEATURES_VERSION, LEARNED_FEATURES,
                               model.to_bytes(), PASSING.to_json(), "test")
    assert added.stage == "candidate"
    assert gate(ModelMetrics.from_json(added.metrics), FORMULA).ok
    assert await registry.promote(added.version, "test") is None
    started = time.monotonic()

    async def all_learned() -> bool:
        answers = [await order_of(r) for r in replicas]
        return all(a[1]["version"] == added.version for a in answers)

    await until(all_learned)
    assert time.monotonic() - started < 3.0
    for r in replicas:
        ids, ranker = await order_of(r)
        assert ids == formula[::-1], ids  # the model's order, on every replica
        assert ranker == {"requested": "default", "kind": "learned",
                          "version": added.version, "fallback": False, "experiment": None}
    explicit = await replicas[0].search(SearchParams(q="lamp", page_size=5, ranker="formula"))
    assert [r["product_id"] for r in explicit["results"]] == formula  # asked for by name
    assert explicit["ranker"]["kind"] == "formula"
    rolled, now = await registry.rollback("test", "bad idea")
    assert (rolled, now) == (added.version, None)

    async def all_formula() -> bool:
        kinds = [(await order_of(r))[1]["kind"] for r in replicas]
        return all(k == "formula" for k in kinds)

    await until(all_formula)
    assert [c.to_stage for c in await registry.history(added.version)] == [
        "production", "archived"]


async def test_an_explicit_version_ranks_and_a_corrupt_artifact_is_refused(
        world: tuple[asyncpg.Pool, list[SearchService]]) -> None:
    pool, replicas = world
    registry = RankerRegistry(pool)
    model = reversing_model()
    added = await registry.add("lightgbm", LEARNED_FEATURES_VERSION, LEARNED_FEATURES,
                               model.to_bytes(), {}, "test")
    found = await replicas[0].search(SearchParams(q="lamp", page_size=5,
                                                  ranker=added.version))
    assert [r["product_id"] for r in found["results"]] == ["5", "4", "3", "2", "1"]
    await pool.execute("UPDATE ranker_models SET artifact = $2 WHERE version = $1",
                       added.version, b"tampered")
    with pytest.raises(ValueError, match="checksum"):
        await ModelStore(registry).get(added.version)
    fresh = SearchService(replicas[0].index, pool, None, None)
    found = await fresh.search(SearchParams(q="lamp", page_size=5, ranker=added.version))
    assert found["ranker"]["fallback"] is True  # the formula ordered it instead
    assert [r["product_id"] for r in found["results"]] == ["1", "2", "3", "4", "5"]
    assert np.isfinite(model.score(np.zeros((1, len(LEARNED_FEATURES))))).all()


async def test_rollbacks_undo_promotions_newest_first(
        world: tuple[asyncpg.Pool, list[SearchService]]) -> None:
    """A promoted over B: rollback brings B back; a second rollback goes to what was before
    B (the formula), not to A again. The production model cannot be archived."""
    pool, _ = world
    registry = RankerRegistry(pool)
    a, b = [await registry.add("lightgbm", LEARNED_FEATURES_VERSION, LEARNED_FEATURES,
                               reversing_model().to_bytes(), PASSING.to_json(), "test",
                               note=name) for name in ("a", "b")]
    assert await registry.promote(b.version, "test") is None
    assert await registry.promote(a.version, "test", forced=True) == b.version
    with pytest.raises(Conflict, match="in production"):
        await registry.archive(a.version, "test")
    assert await registry.rollback("test") == (a.version, b.version)
    assert await registry.rollback("test") == (b.version, None)
    assert await registry.production() is None
    with pytest.raises(Conflict, match="no learned model"):
        await registry.rollback("test")
    assert [(c.from_stage, c.to_stage) for c in await registry.history(a.version)] == [
        ("candidate", "production"), ("production", "archived")]


class FirstSteps:
    """The real index, counting the semantic candidates' first steps asked of it."""

    def __init__(self, index: SearchIndex) -> None:
        self.index = index
        self.asked = 0

    def __getattr__(self, name: str) -> object:
        return getattr(self.index, name)

    async def search_generation(self, generation: str, query: IndexQuery) -> IndexResult:
        if query.near is not None and query.near.ids is None:
            self.asked += 1
        return await self.index.search_generation(generation, query)


async def test_semantic_candidates_join_a_learned_search_unless_turned_off(
        ray_cluster: None, fresh_dsn: str, tmp_path: Path) -> None:
    """A learned ranker's search is joined by the products whose titles are closest to the
    query's dense vector (here every product: fewer than the 20 joined); an operator's
    AISLE_SEMANTIC_CANDIDATES=OFF (`semantic_candidates=False`) leaves the words' matches.
    A replica keeps the closest products of a search for a few seconds."""
    pool = await create_pool(fresh_dsn, max_size=4)
    index = sharded_index(2, tmp_path, fresh_dsn, GenerationRegistry(pool, "tantivy"))
    titles = ["desk lamp", "reading lamp", "table light led bulb", "bedside light",
              "night light for kids"]
    vectors = TextEmbedder().embed(titles)
    docs = [SearchDocument(**(doc(pid, 1) | {"title": t, "title_vec": to_bytes(v)}))  # type: ignore[typeddict-item]
            for pid, t, v in zip(range(1, 6), titles, vectors, strict=True)]
    try:
        await index.create_generation("g1", docs, vectors=True)
        await index.upsert(docs, "g1")
        await index.refresh("g1")
        await index.finish_generation("g1")
        await index.swap("g1")
        added = await RankerRegistry(pool).add(
            "lightgbm", LEARNED_FEATURES_VERSION, LEARNED_FEATURES,
            reversing_model().to_bytes(), PASSING.to_json(), "test")
        asked = SearchParams(q="lamp", ranker=added.version)
        on = await SearchService(index, pool, None, None).search(asked)
        off = await SearchService(index, pool, None, None, semantic_candidates=False).search(
            asked)
        assert on["ranker"]["kind"] == off["ranker"]["kind"] == "learned"
        assert sorted(r["product_id"] for r in off["results"]) == ["1", "2"]
        assert off["total"] == 2
        assert sorted(r["product_id"] for r in on["results"]) == ["1", "2", "3", "4", "5"]
        assert on["total"] == 5
        # the formula's search is the words' either way
        formula = await SearchService(index, pool, None, None).search(
            SearchParams(q="lamp", ranker="formula"))
        assert formula["total"] == 2
        # the closest products (Near's first step) are kept per replica for a few seconds:
        # the same search again and its other pages do not ask the index for them again
        counted = FirstSteps(index)
        kept = SearchService(cast(SearchIndex, counted), pool, None, None, near_kept_s=60)
        assert (await kept.search(asked))["results"] == on["results"]
        assert (await kept.search(asked))["results"] == on["results"]
        paged = await kept.search(dataclasses.replace(asked, page=2, page_size=2))
        assert paged["total"] == 5
        assert counted.asked == 1
        await kept.search(dataclasses.replace(asked, price_max=50.0))  # other filters: asked
        assert counted.asked == 2
        each = SearchService(cast(SearchIndex, counted), pool, None, None, near_kept_s=0)
        assert (await each.search(asked))["results"] == on["results"]
        await each.search(asked)
        assert counted.asked == 4
    finally:
        await index.drop_generation("g1")
        await index.close()
        await pool.close()
