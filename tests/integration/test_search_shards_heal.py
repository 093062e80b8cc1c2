"""Index shard actors that die for good (killed with no restart, as an operator or a lost node
would) are started again from their files by the next call: searches, suggestions and counts
answer as before, and a second index client (another Gateway replica) heals too. Used to
answer 500 for as long as observed, with the dead handles cached."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import ray

from actors import NAMESPACE
from actors.index_shard_client import IndexShardClient, ShardUnavailable
from actors.search_index import sharded_index
from adapters.postgres import create_pool
from adapters.postgres.search_registry import GenerationRegistry
from adapters.search import SearchUnavailable
from adapters.search.sharded import ShardedIndex
from domain.search import Filters, IndexQuery, TextQuery
from tests.integration.conftest import live_generation
from tests.integration.test_search_scoring import make_docs

DOCS = make_docs(120, seed=3)
SHARDS = 2


@pytest.fixture
async def indexes(ray_cluster: None, fresh_dsn: str,
                  tmp_path: Path) -> AsyncIterator[tuple[ShardedIndex, ShardedIndex]]:
    pool: asyncpg.Pool = await create_pool(fresh_dsn, max_size=2)
    one = sharded_index(SHARDS, tmp_path, fresh_dsn, GenerationRegistry(pool, "tantivy"))
    await live_generation(one, DOCS)
    two = sharded_index(SHARDS, tmp_path, fresh_dsn, GenerationRegistry(pool, "tantivy"))
    yield one, two
    await one.drop_generation("g1")
    await one.close()
    await pool.close()


async def answer(idx: ShardedIndex) -> list[tuple[int, float]]:
    res = await idx.search(IndexQuery(TextQuery((("lamp",),), require_all=False), Filters(),
                                      limit=50, facets=False))
    return [(h.product_id, h.score) for h in res.hits]


def kill_shards(client: Any) -> None:
    for k in range(SHARDS):
        ray.kill(ray.get_actor(client._name("g1", k), namespace=NAMESPACE), no_restart=True)


async def test_dead_shards_are_started_again_from_their_files(
        indexes: tuple[ShardedIndex, ShardedIndex]) -> None:
    one, two = indexes
    before = await answer(one)
    assert before and before == await answer(two)
    suggested = await one.suggest([], "la", 5)
    kill_shards(one.calls)
    assert await answer(one) == before
    assert await one.count() == len(DOCS)
    assert await one.suggest([], "la", 5) == suggested
    assert await answer(two) == before  # the other client's handles were dead too
    assert isinstance(one.calls, IndexShardClient) and one.calls.replaced == SHARDS
    assert isinstance(two.calls, IndexShardClient) and two.calls.replaced == SHARDS


async def test_a_shard_whose_files_are_gone_answers_503_not_500(
        indexes: tuple[ShardedIndex, ShardedIndex], tmp_path: Path) -> None:
    one, _ = indexes
    await answer(one)
    kill_shards(one.calls)
    import shutil
    shutil.rmtree(one._dir("g1", 0))
    with pytest.raises(ShardUnavailable) as caught:
        await answer(one)
    assert caught.value.code == "search_unavailable"


async def test_while_the_index_cannot_answer_a_browse_comes_from_postgresql(
        indexes: tuple[ShardedIndex, ShardedIndex], fresh_dsn: str) -> None:
    """Shards that cannot be started again: a browse (no words) is answered from PostgreSQL,
    `degraded: true`, with its filters, sort and total; a search with words is a quick 503."""
    import shutil

    from domain.search_plan import SearchParams
    from serve.search import SearchService
    from tests.integration.conftest import make_catalog

    one, _ = indexes
    pool = await create_pool(fresh_dsn, max_size=2)
    try:
        ids = [secrets.randbits(60) for _ in range(3)]
        await make_catalog(pool, {ids[0]: {"WH_01": 5}, ids[1]: {"WH_01": 0},
                                  ids[2]: {"WH_01": 2}})
        service = SearchService(one, pool, None, None)
        assert (await service.search(SearchParams(page_size=5)))["degraded"] is False
        kill_shards(one.calls)
        for k in range(SHARDS):
            shutil.rmtree(one._dir("g1", k))
        browsed = await service.search(SearchParams(sort="newest", page_size=2))
        assert browsed["degraded"] is True and browsed["total"] == 3
        assert len(browsed["results"]) == 2
        stocked = await service.search(SearchParams(in_stock=True, page_size=5))
        assert {r["product_id"] for r in stocked["results"]} == {str(ids[0]), str(ids[2])}
        assert all(r["price"]["amount"] == 1.0 for r in stocked["results"])
        with pytest.raises(SearchUnavailable):
            await service.search(SearchParams(q="lamp"))
    finally:
        await pool.close()


async def test_an_index_that_hangs_costs_two_timeouts_then_milliseconds(
        indexes: tuple[ShardedIndex, ShardedIndex], fresh_dsn: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The search index's breaker: a search the index does not answer in time is a 503
    (SearchUnavailable) after INDEX_TIMEOUT_S; after two in a row, for INDEX_RETRY_AFTER_S,
    searches and suggestions are 503 without asking the index (a browse comes from
    PostgreSQL); then the index is asked again."""
    import asyncio
    import time

    import serve.search as search_module
    from adapters.cache.breaker import Breaker
    from domain.search_plan import SearchParams
    from serve.search import SearchService

    one, _ = indexes
    pool = await create_pool(fresh_dsn, max_size=2)
    try:
        service = SearchService(one, pool, None, None)
        now = [0.0]
        service.index_breaker = Breaker(search_module.INDEX_RETRY_AFTER_S,
                                        clock=lambda: now[0])
        assert (await service.search(SearchParams(q="lamp", page_size=5)))["total"] > 0
        asked: list[int] = []
        real = one.search_generation
        hang = asyncio.Event()

        async def hanging(*args: Any) -> Any:
            asked.append(1)
            await hang.wait()
            return await real(*args)

        monkeypatch.setattr(search_module, "INDEX_TIMEOUT_S", 0.3)
        monkeypatch.setattr(one, "search_generation", hanging)
        started = time.monotonic()
        with pytest.raises(SearchUnavailable):
            await service.search(SearchParams(q="lamp"))
        assert 0.3 <= time.monotonic() - started < 2.0 and len(asked) == 1
        assert service.index_breaker.closed  # one slow query alone does not stop search
        with pytest.raises(SearchUnavailable):
            await service.search(SearchParams(q="lamp"))
        assert len(asked) == 2 and not service.index_breaker.closed  # two in a row do
        started = time.monotonic()
        for _ in range(5):
            with pytest.raises(SearchUnavailable):
                await service.search(SearchParams(q="lamp"))
        with pytest.raises(SearchUnavailable):
            await service.suggest("la", 5)
        assert time.monotonic() - started < 0.3 and len(asked) == 2  # the index not asked
        assert (await service.search(SearchParams(page_size=2)))["degraded"] is True
        hang.set()
        monkeypatch.setattr(one, "search_generation", real)
        now[0] += search_module.INDEX_RETRY_AFTER_S  # the second has passed
        assert (await service.search(SearchParams(q="lamp", page_size=5)))["total"] > 0
    finally:
        await pool.close()
