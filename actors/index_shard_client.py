"""The Ray side of the embedded search backend: every call to `IndexShard` actors is made here
(`IndexShardClient`, the `ShardCalls` of adapters.search.sharded.ShardedIndex).

Actors are named per database, generation and shard (`index-<db>-<generation>-<k>`, detached)
and found again by any process. Reads are coalesced per shard (adapters.coalesce, as the
inventory client's operations): at most READS_IN_FLIGHT Ray calls to a shard at a time, and
searches and gets that arrive meanwhile go together in the next call (`IndexShard.reads`).
Every call has a timeout (longer for an actor's first answer: starting its worker process
and opening the shard take seconds on a busy machine). A shard actor that died for good
(killed, its node lost) is replaced on the next call: a new actor under the same name reopens
the shard from its files; the call is made again once. A shard that cannot be reached
answers `ShardUnavailable` (503).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import ray
from ray.actor import ActorHandle
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors import NAMESPACE, named
from actors.index_shard import GetRead, IndexShard, ReadReply, SearchRead, ShardRead
from adapters.coalesce import Coalescer
from adapters.search import SearchUnavailable
from adapters.search.sharded import Documents
from adapters.search.tantivy_shard import TermCounts
from domain.search import IndexQuery, IndexResult, SearchDocument

log = logging.getLogger("aisle.search")

CALL_TIMEOUT_S = 10.0
START_TIMEOUT_S = 60.0  # an actor's first answer (its process started, its shard opened)
READS_IN_FLIGHT = 2  # per shard
MAX_READS_PER_CALL = 8  # run one after another in the shard: keep a slow one's company small
T = TypeVar("T")
_Key = tuple[str, int, Path]  # generation, shard, its directory


class ShardUnavailable(SearchUnavailable):
    """A shard of the index did not answer (HTTP 503, retry shortly)."""


class IndexShardClient:
    def __init__(self, db: str) -> None:
        self.db = db
        self._actors: dict[tuple[str, int], ActorHandle] = {}
        self._answered: set[ActorHandle | None] = set()  # answered once: CALL_TIMEOUT_S
        self._stopped: set[str] = set()  # generations stopped here: never started again
        self.replaced = 0  # shard actors started again after they died
        self._reads: Coalescer[_Key, ShardRead, ReadReply] = Coalescer(
            self._reads_call, READS_IN_FLIGHT, MAX_READS_PER_CALL)

    def _name(self, generation: str, k: int) -> str:
        return f"index-{self.db}-{generation}-{k}"

    def _actor(self, generation: str, k: int, shard_dir: Path) -> ActorHandle:
        key = (generation, k)
        if key not in self._actors:
            self._actors[key] = named(IndexShard, self._name(generation, k)).remote(
                str(shard_dir))
        return self._actors[key]

    def _timeout(self, generation: str, k: int) -> float:
        actor = self._actors.get((generation, k))
        return CALL_TIMEOUT_S if actor is not None and actor in self._answered else START_TIMEOUT_S

    async def _wait(self, ref: Awaitable[T], seconds: float = CALL_TIMEOUT_S) -> T:
        return await asyncio.wait_for(ref, seconds)

    async def _on(self, generation: str, k: int, shard_dir: Path,
                  call: Callable[[ActorHandle], Awaitable[T]]) -> T:
        """`call` on the shard's actor; once more on a new actor if that one died for good
        (and the shard's files are there to reopen); ShardUnavailable if it cannot answer."""
        for attempt in (1, 2):
            timeout = self._timeout(generation, k)
            actor = self._actor(generation, k, shard_dir)
            try:
                answer = await self._wait(call(actor), timeout)
                self._answered.add(actor)
                return answer
            except ActorDiedError as exc:
                if (attempt == 2 or generation in self._stopped
                        or not await asyncio.to_thread(shard_dir.exists)):
                    raise ShardUnavailable(f"index shard {generation}/{k} is gone") from exc
                self._forget(generation, k, actor, shard_dir)
            except (RayActorError, ActorUnavailableError, TimeoutError) as exc:
                raise ShardUnavailable(f"index shard {generation}/{k} unavailable") from exc
        raise AssertionError("unreachable")

    def _forget(self, generation: str, k: int, dead: ActorHandle, shard_dir: Path) -> None:
        """A dead actor's handle is dropped: its name is free, the next call starts a new
        actor under it (unless another call did so already)."""
        self._answered.discard(dead)
        if self._actors.get((generation, k)) is dead:
            del self._actors[(generation, k)]
            self.replaced += 1
            log.warning("index shard %s/%d died; starting it again from %s",
                        generation, k, shard_dir)

    # -- writes --------------------------------------------------------------------------
    async def apply(self, generation: str, k: int, shard_dir: Path, docs: Documents,
                    deletes: Sequence[int], commit: bool) -> int:
        written: int = await self._on(generation, k, shard_dir,
                                      lambda a: a.apply.remote(docs, list(deletes), commit))
        return written

    async def commit(self, generation: str, k: int, shard_dir: Path) -> None:
        await self._on(generation, k, shard_dir, lambda a: a.commit.remote())

    # -- reads ---------------------------------------------------------------------------
    async def _read(self, key: _Key, call: ShardRead) -> Any:
        reply = await self._wait(self._reads.submit(key, call), self._timeout(key[0], key[1]))
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def _reads_call(self, key: _Key, calls: list[ShardRead]) -> list[ReadReply]:
        replies: list[ReadReply] = await self._on(*key, lambda a: a.reads.remote(calls))
        return replies

    async def search(self, generation: str, k: int, shard_dir: Path,
                     query: IndexQuery) -> IndexResult:
        result: IndexResult = await self._read((generation, k, shard_dir), SearchRead(query))
        return result

    async def get(self, generation: str, k: int, shard_dir: Path,
                  product_ids: Sequence[int]) -> dict[int, SearchDocument]:
        docs: dict[int, SearchDocument] = await self._read((generation, k, shard_dir),
                                                            GetRead(list(product_ids)))
        return docs

    async def count(self, generation: str, k: int, shard_dir: Path) -> int:
        n: int = await self._on(generation, k, shard_dir, lambda a: a.count.remote())
        return n

    async def suggest(self, generation: str, k: int, shard_dir: Path, words: Sequence[str],
                      last: str, limit: int) -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = await self._on(
            generation, k, shard_dir, lambda a: a.suggest.remote(list(words), last, limit))
        return found

    async def term_counts(self, generation: str, k: int, shard_dir: Path) -> TermCounts:
        counts: TermCounts = await self._on(generation, k, shard_dir,
                                            lambda a: a.term_counts.remote())
        return counts

    async def reload_stats(self, generation: str, k: int, shard_dir: Path) -> None:
        await self._on(generation, k, shard_dir, lambda a: a.reload_stats.remote())

    # -- lifecycle -----------------------------------------------------------------------
    async def stop(self, generation: str, shards: int) -> None:
        self._stopped.add(generation)
        for k in range(shards):
            self._answered.discard(self._actors.pop((generation, k), None))
            try:
                actor = ray.get_actor(self._name(generation, k), namespace=NAMESPACE)
            except ValueError:
                continue
            ray.kill(actor, no_restart=True)

    def close(self) -> None:
        self._actors.clear()
        self._answered.clear()
