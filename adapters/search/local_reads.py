"""Searches on the shards' files from this process; writes through the shard actors.

A search used to be a Ray call to every `IndexShard` actor of the generation: each call costs
both sides serialisation and a hop, more than the tantivy search itself (docs/benchmarks.md,
"aisle against one plain process"). tantivy allows one writer per index directory and any
number of readers, in other processes too, so a Gateway opens each shard of the live
generation read-only (`TantivyShard(read_only=True)`) and searches it in a thread of its own
(tantivy releases the GIL while it searches); the actors keep every write.

Freshness is the actors': before each read the shard's `meta.json` (which tantivy replaces
atomically when a commit lands, before the writer's `commit` returns) is looked at (one
`stat`), and a changed one reloads the searcher; the generation's term statistics file the
same way. So a read that starts after an acknowledged write sees it, as on the actor.

A shard whose files are not on this node (a Gateway on another node of a multi-node cluster:
the embedded index is single-node, docs/operations.md), or a local read that fails for any
reason: that read goes to the actor, as it did before, which answers or says why not
(`ShardUnavailable`). A shard read here whose files have gone since (its generation was
dropped) answers `SearchUnavailable` (503), and so does its generation from then on. Only
the shards of the last `KEPT_GENERATIONS` generations read here stay open.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar, cast

from adapters.search import SearchUnavailable
from adapters.search.sharded import Documents, ShardCalls
from adapters.search.tantivy_shard import STATS_FILE, TantivyShard, TermCounts
from domain.search import IndexQuery, IndexResult, SearchDocument

log = logging.getLogger("aisle.search")

KEPT_GENERATIONS = 2  # generations whose shards stay open here (the live one, and a swap's)
READ_THREADS = 4  # searches running here at once (tantivy releases the GIL while it searches)
# Reads of a shard of at most this many documents run in the calling (event-loop) thread: a
# few milliseconds of CPU at most. A read thread holding the GIL made the event loop wait for
# it after every system call (Python's GIL convoy), which under load cost the Gateway a fifth
# of its CPU per cold search and a quarter of its cold searches/s (docs/benchmarks.md, session
# 20). Bigger shards, and any read with file work first (opening a shard, reloading it after
# a commit), go to the read threads. The limit is per shard: a search's shards are then read
# one after another in the loop.
INLINE_MAX_DOCS = 100_000
T = TypeVar("T")
_Signature = tuple[int, int, int]  # a file's inode, modification time (ns) and size


class _NotInline(Exception):
    """This read cannot run in the caller's thread now; a read thread makes it."""


@functools.lru_cache(maxsize=256)
def _watched(shard_dir: Path) -> tuple[str, str]:
    """The files whose changes a read of the shard checks (made once: every read asks)."""
    return str(shard_dir / "meta.json"), str(shard_dir.parent / STATS_FILE)


def _signature(path: str) -> _Signature | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns, st.st_size


@dataclasses.dataclass(slots=True)
class _Open:
    shard: TantivyShard
    meta: _Signature
    stats: _Signature | None
    used: float
    docs: int  # documents in the shard when it was last opened or reloaded


class LocalReads:
    """`ShardCalls`: searches, gets and suggestions on read-only shards in this
    process when their files are here; everything else, and any read that cannot be made
    here, through `writes` (the shard actors' client)."""

    def __init__(self, writes: ShardCalls, inline_max_docs: int = INLINE_MAX_DOCS) -> None:
        self.writes = writes
        self.inline_max_docs = inline_max_docs
        self._open: dict[tuple[str, int], _Open] = {}
        self._gone: set[str] = set()  # generations whose files went while read here
        self._lock = threading.Lock()
        # its own threads: a slow search never takes the ones the event loop's other work
        # (query embeddings, file reads) runs on
        self._threads = ThreadPoolExecutor(READ_THREADS, thread_name_prefix="shard-read")
        self.local = 0  # reads answered here
        self.remote = 0  # reads the actors answered (files not here, or a local read failed)
        self.inlined = 0  # reads settled in the caller's thread (small shards open here)

    def _shard(self, generation: str, k: int, shard_dir: Path,
               inline: bool = False) -> TantivyShard | None:
        """The read-only shard, reloaded if a commit or new statistics landed since it was
        last read; None if its files are not here (or no longer). `inline` (a read in the
        caller's thread): _NotInline instead of any file work (opening, reloading), for a
        shard above `inline_max_docs`, or while another thread holds the lock."""
        key = (generation, k)
        meta_file, stats_file = _watched(shard_dir)
        meta, stats = _signature(meta_file), _signature(stats_file)
        if not self._lock.acquire(blocking=not inline):
            raise _NotInline
        try:
            opened = self._open.get(key)
            if generation in self._gone:
                raise SearchUnavailable(f"index generation {generation} is gone")
            if meta is None:
                if opened is not None:  # read here before: the generation was dropped since
                    self._gone.add(generation)  # (never asked of a new, empty actor)
                    self._forget(generation)
                    raise SearchUnavailable(f"index shard {generation}/{k} is gone")
                return None
            if inline and (opened is None or opened.docs > self.inline_max_docs
                           or opened.meta != meta or opened.stats != stats):
                raise _NotInline
            if opened is None:
                self._evict(generation)
                shard = TantivyShard(shard_dir, read_only=True)
                opened = _Open(shard, meta, stats, 0.0, shard.num_docs())
                self._open[key] = opened
            else:
                if opened.meta != meta:
                    opened.shard.reload()
                    opened.meta = meta
                    opened.docs = opened.shard.num_docs()
                if opened.stats != stats:
                    opened.shard.reload_stats()
                    opened.stats = stats
            opened.used = time.monotonic()
            return opened.shard
        finally:
            self._lock.release()

    def _evict(self, opening: str) -> None:
        """Keeps the shards of at most KEPT_GENERATIONS generations (with `opening`)."""
        last_use: dict[str, float] = {}
        for (gen, _), o in self._open.items():
            last_use[gen] = max(last_use.get(gen, 0.0), o.used)
        last_use.pop(opening, None)
        for gen in sorted(last_use, key=last_use.__getitem__)[
                :max(0, len(last_use) - KEPT_GENERATIONS + 1)]:
            self._forget(gen)

    def _forget(self, generation: str) -> None:
        for key in [key for key in self._open if key[0] == generation]:
            del self._open[key]

    def _here(self, generation: str, k: int, shard_dir: Path, read: Callable[[TantivyShard], T],
              inline: bool = False) -> tuple[bool, T | None] | None:
        """(read here, its value); (False, None): the actor is to answer; None (`inline`
        only): not in the caller's thread, on a read thread instead (`_shard`)."""
        try:
            shard = self._shard(generation, k, shard_dir, inline)
            if shard is None:
                return False, None
            return True, read(shard)
        except _NotInline:
            return None
        except SearchUnavailable:
            raise
        except Exception:  # the actor answers this one (and says why if it cannot)
            log.debug("local read of shard %s/%d failed; asking its actor", generation, k,
                      exc_info=True)
            with self._lock:
                self._open.pop((generation, k), None)
            return False, None

    async def _on(self, generation: str, k: int, shard_dir: Path,
                  read: Callable[[TantivyShard], T], remote: Callable[[], Awaitable[T]]) -> T:
        here = (self._here(generation, k, shard_dir, read, inline=True)
                if self.inline_max_docs > 0 else None)
        if here is not None:
            self.inlined += 1
        else:
            here = await asyncio.get_running_loop().run_in_executor(
                self._threads, self._here, generation, k, shard_dir, read)
        done, value = here or (False, None)
        if done:
            self.local += 1
            return cast(T, value)
        self.remote += 1
        return await remote()

    # -- reads, here when the files are --------------------------------------------------
    async def search(self, generation: str, k: int, shard_dir: Path,
                     query: IndexQuery) -> IndexResult:
        return await self._on(generation, k, shard_dir, lambda s: s.search(query),
                              lambda: self.writes.search(generation, k, shard_dir, query))

    async def get(self, generation: str, k: int, shard_dir: Path,
                  product_ids: Sequence[int]) -> dict[int, SearchDocument]:
        return await self._on(generation, k, shard_dir, lambda s: s.get(product_ids),
                              lambda: self.writes.get(generation, k, shard_dir, product_ids))


    async def suggest(self, generation: str, k: int, shard_dir: Path, words: Sequence[str],
                      last: str, limit: int) -> list[tuple[str, int]]:
        return await self._on(
            generation, k, shard_dir, lambda s: s.suggest(words, last, limit),
            lambda: self.writes.suggest(generation, k, shard_dir, words, last, limit))

    # -- everything else on the actors ---------------------------------------------------
    async def count(self, generation: str, k: int, shard_dir: Path) -> int:
        """Asked of the actor: /health's check that every shard's writer is there (a dead
        one is started again by the call)."""
        return await self.writes.count(generation, k, shard_dir)

    async def apply(self, generation: str, k: int, shard_dir: Path, docs: Documents,
                    deletes: Sequence[int], commit: bool) -> int:
        return await self.writes.apply(generation, k, shard_dir, docs, deletes, commit)

    async def commit(self, generation: str, k: int, shard_dir: Path) -> None:
        await self.writes.commit(generation, k, shard_dir)

    async def term_counts(self, generation: str, k: int, shard_dir: Path) -> TermCounts:
        return await self.writes.term_counts(generation, k, shard_dir)

    async def reload_stats(self, generation: str, k: int, shard_dir: Path) -> None:
        await self.writes.reload_stats(generation, k, shard_dir)

    async def stop(self, generation: str, shards: int) -> None:
        with self._lock:
            self._forget(generation)
        await self.writes.stop(generation, shards)

    def close(self) -> None:
        with self._lock:
            self._open.clear()
        self._threads.shutdown(wait=False)
        self.writes.close()
