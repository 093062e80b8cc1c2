"""Index shard actors that die for good (killed with no restart, as an operator or a lost node
would) are started again from their files by the next call: searches, suggestions and counts
answer as before, and a second index client (another Gateway replica) heals too. Used to
answer 500 for as long as observed, with the dead handles cached."""

from __future__ import annotations

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
from adapters.search.sharded import ShardedIndex
from domain.search import Filters, IndexQuery, TextQuery
from tests.integration.test_search_scoring import make_docs

DOCS = make_docs(120, seed=3)
SHARDS = 2


@pytest.fixture
async def indexes(ray_cluster: None, fresh_dsn: str,
                  tmp_path: Path) -> AsyncIterator[tuple[ShardedIndex, ShardedIndex]]:
    pool: asyncpg.Pool = await create_pool(fresh_dsn, max_size=2)
    one = sharded_index(SHARDS, tmp_path, fresh_dsn, GenerationRegistry(pool, "tantivy"))
    await one.create_generation("g1", DOCS[:40])
    await one.upsert(DOCS, "g1")  # type: ignore[arg-type]
    await one.refresh("g1")
    await one.finish_generation("g1")
    await one.swap("g1")
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
