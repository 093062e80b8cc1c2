"""A Gateway searches the embedded index's shards from its own process (read-only, on the
shard actors' files) while the actors keep the writes (adapters/search/local_reads.py):
the same answers as the actors give, every acknowledged write seen by the next search, new
term statistics picked up, a shard whose files are not here or are gone answered by the
actors (503 when they cannot), at most two generations kept open. Real actors, real files."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from actors import database_tag
from actors.index_shard_client import IndexShardClient
from actors.search_index import sharded_index
from adapters.postgres import create_pool
from adapters.postgres.search_registry import GenerationRegistry
from adapters.search import SearchUnavailable
from adapters.search.local_reads import KEPT_GENERATIONS, LocalReads
from adapters.search.sharded import ShardedIndex
from domain.search import Filters, IndexQuery, TextQuery
from tests.integration.conftest import live_generation
from tests.integration.test_search_scoring import QUERIES, make_docs

DOCS = make_docs(150, seed=5)
SHARDS = 2


@dataclasses.dataclass
class Pair:
    actors: ShardedIndex  # writes, and reads through the shard actors
    local: ShardedIndex  # reads on read-only shards in this process

    @property
    def reads(self) -> LocalReads:
        assert isinstance(self.local.calls, LocalReads)
        return self.local.calls


@pytest.fixture
async def pair(ray_cluster: None, fresh_dsn: str, tmp_path: Path) -> AsyncIterator[Pair]:
    pool: asyncpg.Pool = await create_pool(fresh_dsn, max_size=2)
    actors = sharded_index(SHARDS, tmp_path, fresh_dsn, GenerationRegistry(pool, "tantivy"))
    await live_generation(actors, DOCS)
    local = sharded_index(SHARDS, tmp_path, fresh_dsn, GenerationRegistry(pool, "tantivy"),
                          local_reads=True)
    yield Pair(actors, local)
    for gen in ("g1", "g2", "g3"):
        with contextlib.suppress(Exception):  # some tests drop or never make one
            await actors.drop_generation(gen)
    await local.close()
    await actors.close()
    await pool.close()


def query(text: TextQuery, **kw: object) -> IndexQuery:
    return IndexQuery(text, Filters(), limit=30, facets=True, **kw)  # type: ignore[arg-type]


async def answer(idx: ShardedIndex, q: IndexQuery) -> tuple[list[tuple[int, float]], int]:
    res = await idx.search(q)
    return [(h.product_id, h.score) for h in res.hits], res.total


async def test_local_reads_answer_as_the_actors_do(pair: Pair) -> None:
    for text in QUERIES:
        for sort in ("relevance", "price_asc", "newest"):
            q = query(text, sort=sort)
            want = await pair.actors.search(q)
            got = await pair.local.search(q)
            assert [(h.product_id, h.score) for h in got.hits] == \
                [(h.product_id, h.score) for h in want.hits]
            assert got.total == want.total and got.facets == want.facets
    ids = [int(d["product_id"]) for d in DOCS[:7]]
    assert await pair.local.get(ids) == await pair.actors.get(ids)
    assert await pair.local.count() == len(DOCS)  # counts ask the actors (/health's check)
    assert await pair.local.suggest([], "la", 5) == await pair.actors.suggest([], "la", 5)
    assert pair.reads.local > 0 and pair.reads.remote == 0  # none of them went to an actor


async def test_small_shards_are_read_in_the_callers_thread(pair: Pair, fresh_dsn: str) -> None:
    """Open, small and unchanged on disk: searched in the event loop's thread (no hand-off to
    a read thread). Opening a shard, reloading it after a commit, a shard above
    inline_max_docs, or inline_max_docs=0: on a read thread. The answers are alike. (A CI
    run failed on this test's old exact count after a write: which other shards' inline
    tries meet the reload's lock is timing, so only bounds are asserted there.)"""
    q = query(QUERIES[0])
    first = await answer(pair.local, q)
    assert pair.reads.inlined == 0  # opening the shards: on the read threads
    assert await answer(pair.local, q) == first
    assert pair.reads.inlined == SHARDS
    await pair.actors.upsert([DOCS[0] | {"version": 2}])  # type: ignore[list-item]
    assert await answer(pair.local, q) == first  # the written shard reloads on a thread
    # (the other shard too, when its inline try finds the reload holding the lock: the event
    # loop never waits for it)
    assert SHARDS <= pair.reads.inlined <= 2 * SHARDS - 1
    reloaded = pair.reads.inlined
    assert await answer(pair.local, q) == first  # unchanged since: all in the caller's thread
    assert pair.reads.inlined == reloaded + SHARDS
    smallest = min(o.docs for o in pair.reads._open.values())
    pool: asyncpg.Pool = await create_pool(fresh_dsn, max_size=2)
    for limit in (0, smallest - 1, smallest):
        reads = LocalReads(IndexShardClient(database_tag(fresh_dsn)), inline_max_docs=limit)
        index = ShardedIndex(SHARDS, pair.local.root, GenerationRegistry(pool, "tantivy"),
                             reads)
        try:
            for _ in range(2):
                assert await answer(index, q) == first
            assert reads.local == 2 * SHARDS
            # the second search's reads of shards of at most `limit` documents
            small = sum(o.docs <= limit for o in reads._open.values())
            assert reads.inlined == (0 if limit < smallest else small)
            assert limit < smallest or small >= 1
        finally:
            await index.close()
    await pool.close()


async def test_an_acknowledged_write_is_seen_by_the_next_local_search(pair: Pair) -> None:
    zebra = TextQuery((("zebra",),), require_all=False)
    assert (await answer(pair.local, query(zebra)))[1] == 0  # opens the shards here
    for i in range(5):  # each write acknowledged by the actors, then searched here at once
        doc = DOCS[i] | {"title": f"zebra lamp number {i}", "version": 2}
        await pair.actors.upsert([doc])  # type: ignore[list-item]
        hits, total = await answer(pair.local, query(zebra))
        assert total == i + 1 and int(doc["product_id"]) in [pid for pid, _ in hits]
    await pair.actors.delete([int(DOCS[0]["product_id"])])
    assert (await answer(pair.local, query(zebra)))[1] == 4
    assert await answer(pair.local, query(zebra)) == await answer(pair.actors, query(zebra))
    assert pair.reads.remote == 0


async def test_new_term_statistics_are_picked_up(pair: Pair, tmp_path: Path) -> None:
    q = query(TextQuery((("walnut",),), require_all=False))
    await answer(pair.local, q)  # opened with g1's statistics
    extra = make_docs(60, seed=9)
    moved = [d | {"product_id": 900_000 + i, "title": d["title"] + " walnut"}
             for i, d in enumerate(extra)]
    await pair.actors.upsert(moved)  # type: ignore[arg-type]
    await pair.actors.finish_generation("g1")  # walnut is much less rare now: new idf
    assert await answer(pair.local, q) == await answer(pair.actors, q)


async def test_shards_not_here_or_gone_are_asked_of_the_actors(
        pair: Pair, fresh_dsn: str, tmp_path: Path) -> None:
    q = query(TextQuery((("lamp",),), require_all=False))
    want = await answer(pair.actors, q)
    # a Gateway on another node: the same actors, none of their files under its root
    elsewhere = sharded_index(SHARDS, tmp_path / "other-node", fresh_dsn,
                              pair.actors.registry, local_reads=True)
    assert isinstance(elsewhere.calls, LocalReads)
    assert await answer(elsewhere, q) == want
    assert elsewhere.calls.local == 0 and elsewhere.calls.remote == SHARDS
    await elsewhere.close()
    # the generation dropped (files and actors): 503, not an answer from files read before
    await answer(pair.local, q)
    await pair.actors.drop_generation("g1")
    for _ in range(2):  # and stays so (no new, empty shard actor is started for it)
        with pytest.raises(SearchUnavailable):
            await pair.local.search_generation("g1", q)
    assert not (tmp_path / pair.actors.root.name / "g1").exists()
    assert not pair.actors._dir("g1", 0).exists()


async def test_at_most_two_generations_stay_open(pair: Pair) -> None:
    q = query(TextQuery((("lamp",),), require_all=False))
    await pair.local.search_generation("g1", q)
    for gen in ("g2", "g3"):
        await pair.actors.create_generation(gen, DOCS[:40])
        await pair.actors.upsert(DOCS[:30], gen)  # type: ignore[arg-type]
        await pair.actors.finish_generation(gen)
        assert (await pair.local.search_generation(gen, q)).total == \
            (await pair.actors.search_generation(gen, q)).total
    assert {gen for gen, _ in pair.reads._open} == {"g2", "g3"}
    assert KEPT_GENERATIONS == 2
    assert (await pair.local.search_generation("g1", q)).total > 0  # opened again
    assert {gen for gen, _ in pair.reads._open} == {"g3", "g1"}
