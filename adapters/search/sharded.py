"""The embedded search backend: tantivy shards, one set per generation, scattered and merged.

Product -> shard by a stable hash. A search goes to every shard of the generation; each returns
its top `offset + limit` (in the merge order), its exact total and exact facet counts, and
`merge` combines them (sum of totals, sum of counts, merge of sorted lists). Scores do not
depend on the layout (domain/text_scoring.py), so neither does the merged page.

The shards themselves are reached through `ShardCalls`: the Ray actors in production
(actors/index_shard_client.py, where every Ray call of the embedded backend is made), or
in-process shards (`LocalShards`) for tests and tools without a cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import shutil
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Protocol, TypeAlias

import pyarrow as pa

from adapters.postgres.search_registry import GenerationRegistry
from adapters.search import NoLiveIndex
from adapters.search.tantivy_shard import (
    PIVOTS_FILE,
    STATS_FILE,
    TantivyShard,
    TermCounts,
    analyzer,
    read_generation_file,
    scored_tokens,
    write_generation_file,
)
from domain.hashing import bucket_of
from domain.search import IndexQuery, IndexResult, SearchDocument, merge
from domain.search_documents import rows_of
from domain.text_scoring import DEFAULT_AVG_LENGTH, TermStats, pivots

LIVE_CACHE_S = 0.5  # how long a replica trusts its idea of the live generation
Documents: TypeAlias = pa.RecordBatch | Sequence[SearchDocument]


class ShardCalls(Protocol):
    """What one shard (k) of one generation does, wherever it runs. `shard_dir` is the
    directory a shard opens when it first starts."""

    async def apply(self, generation: str, k: int, shard_dir: Path, docs: Documents,
                    deletes: Sequence[int], commit: bool) -> int: ...

    async def commit(self, generation: str, k: int, shard_dir: Path) -> None: ...

    async def search(self, generation: str, k: int, shard_dir: Path,
                     query: IndexQuery) -> IndexResult: ...

    async def get(self, generation: str, k: int, shard_dir: Path,
                  product_ids: Sequence[int]) -> dict[int, SearchDocument]: ...

    async def count(self, generation: str, k: int, shard_dir: Path) -> int: ...

    async def suggest(self, generation: str, k: int, shard_dir: Path, words: Sequence[str],
                      last: str, limit: int) -> list[tuple[str, int]]: ...

    async def term_counts(self, generation: str, k: int, shard_dir: Path) -> TermCounts: ...

    async def reload_stats(self, generation: str, k: int, shard_dir: Path) -> None: ...

    async def stop(self, generation: str, shards: int) -> None:
        """Stops the generation's shards (its files are deleted after)."""
        ...

    def close(self) -> None: ...


def shard_of(product_id: int, shards: int) -> int:
    return bucket_of(product_id, shards)


@functools.lru_cache(maxsize=256)
def _shard_dir(root: Path, generation: str, k: int) -> Path:
    """A shard's directory (made once: every search asks for it, and the same object then
    finds local_reads' paths of it at once)."""
    return root / generation / f"shard-{k}"


class ShardedIndex:
    """`SearchIndex` over tantivy shards. `shards`: the count new generations get (each keeps
    the count it was made with); `root`: the directory holding one directory per generation."""

    backend = "tantivy"

    def __init__(self, shards: int, root: Path, registry: GenerationRegistry,
                 calls: ShardCalls) -> None:
        self.shards = shards
        self.root = root
        self.registry = registry
        self.calls = calls
        self._counts: dict[str, int] = {}
        self._live: tuple[float, str | None] = (0.0, None)

    def _dir(self, generation: str, k: int) -> Path:
        return _shard_dir(self.root, generation, k)

    async def _n(self, generation: str) -> int:
        """Shards of `generation`: the configured count may have changed since it was built
        (the next full rebuild makes a generation with the new count)."""
        n = self._counts.get(generation)
        if n is None:
            n = await self.registry.shards(generation) or self.shards
            self._counts[generation] = n
        return n

    async def _gen(self, generation: str | None) -> str:
        if generation is not None:
            return generation
        at, live = self._live
        if live is None or time.monotonic() - at > LIVE_CACHE_S:
            live = await self.registry.live()
            self._live = (time.monotonic(), live)
        if live is None:
            raise NoLiveIndex("no live search index generation")
        return live

    # -- writes ------------------------------------------------------------------------
    async def write(self, docs: Documents, deletes: Sequence[int],
                    generation: str | None = None, commit: bool = True) -> int:
        """Documents (a pyarrow batch travels to each shard as a slice of itself) and
        deletes, routed to their shards; one `apply` per shard touched."""
        gen = await self._gen(generation)
        shards = await self._n(gen)
        by_shard: dict[int, Documents] = {}
        if isinstance(docs, pa.RecordBatch):
            rows: dict[int, list[int]] = defaultdict(list)
            for i, pid in enumerate(docs.column("product_id").to_pylist()):
                rows[shard_of(int(pid), shards)].append(i)
            by_shard = {k: docs.take(pa.array(ix)) for k, ix in rows.items()}
        else:
            lists: dict[int, list[SearchDocument]] = defaultdict(list)
            for d in docs:
                lists[shard_of(int(d["product_id"]), shards)].append(d)
            by_shard = dict(lists)
        del_shard: dict[int, list[int]] = defaultdict(list)
        for pid in deletes:
            del_shard[shard_of(int(pid), shards)].append(int(pid))
        ks = sorted(set(by_shard) | set(del_shard))
        written = await asyncio.gather(*(
            self.calls.apply(gen, k, self._dir(gen, k), by_shard.get(k, ()),
                             del_shard.get(k, []), commit) for k in ks))
        return sum(written)

    async def upsert(self, docs: Sequence[SearchDocument], generation: str | None = None) -> int:
        return await self.write(docs, (), generation)

    async def delete(self, product_ids: Sequence[int], generation: str | None = None) -> None:
        await self.write((), product_ids, generation)

    async def refresh(self, generation: str | None = None) -> None:
        gen = await self._gen(generation)
        await asyncio.gather(*(self.calls.commit(gen, k, self._dir(gen, k))
                               for k in range(await self._n(gen))))

    # -- reads -------------------------------------------------------------------------
    async def search(self, query: IndexQuery) -> IndexResult:
        return await self.search_generation(None, query)

    async def search_generation(self, generation: str | None, query: IndexQuery) -> IndexResult:
        gen = await self._gen(generation)
        per_shard = dataclasses.replace(query, offset=0, limit=query.offset + query.limit)
        parts = await asyncio.gather(*(self.calls.search(gen, k, self._dir(gen, k), per_shard)
                                       for k in range(await self._n(gen))))
        return merge(parts, query)

    async def get(self, product_ids: Sequence[int],
                  generation: str | None = None) -> dict[int, SearchDocument]:
        gen = await self._gen(generation)
        shards = await self._n(gen)
        by_shard: dict[int, list[int]] = defaultdict(list)
        for pid in product_ids:
            by_shard[shard_of(int(pid), shards)].append(int(pid))
        out: dict[int, SearchDocument] = {}
        for part in await asyncio.gather(*(self.calls.get(gen, k, self._dir(gen, k), ids)
                                           for k, ids in by_shard.items())):
            out.update(part)
        return out

    async def count(self, generation: str | None = None) -> int:
        gen = await self._gen(generation)
        return sum(await asyncio.gather(*(self.calls.count(gen, k, self._dir(gen, k))
                                          for k in range(await self._n(gen)))))

    async def suggest(self, words: Sequence[str], last: str, limit: int) -> list[str]:
        gen = await self._gen(None)
        parts = await asyncio.gather(*(
            self.calls.suggest(gen, k, self._dir(gen, k), words, last, limit)
            for k in range(await self._n(gen))))
        out: dict[str, str] = {}  # casefolded -> as written, most popular first
        for title, _ in sorted((tw for part in parts for tw in part), key=lambda tw: -tw[1]):
            out.setdefault(title.casefold(), title)
        return list(out.values())[:limit]

    # -- generations -------------------------------------------------------------------
    async def create_generation(self, name: str, sample: Sequence[SearchDocument] = (),
                                vectors: bool = False) -> None:
        """A new, empty generation. `sample`: documents (a deterministic sample of the
        catalog) whose analysed lengths set the BM25 length pivots every document of the
        generation is written with; none: the defaults. `vectors` is recorded (the index
        builder makes documents' dense title vectors; shards store what they are given)."""
        avg = await asyncio.to_thread(_pivots_of, sample) if sample else dict(DEFAULT_AVG_LENGTH)
        await asyncio.to_thread(write_generation_file, self.root / name, PIVOTS_FILE,
                                {"avg_length": avg, "vectors": vectors})
        await self.registry.create(name, self.shards)
        self._counts[name] = self.shards
        await asyncio.gather(*(self.calls.count(name, k, self._dir(name, k))
                               for k in range(self.shards)))

    async def finish_generation(self, name: str) -> None:
        """Counts the generation's term statistics over all its shards (once it is built and
        refreshed), stores them beside the shards and has every shard score with them."""
        n = await self._n(name)
        parts = await asyncio.gather(*(self.calls.term_counts(name, k, self._dir(name, k))
                                       for k in range(n)))
        made = await asyncio.to_thread(read_generation_file, self.root / name, PIVOTS_FILE)
        stats = TermStats.combine((made or {}).get("avg_length") or DEFAULT_AVG_LENGTH, parts)
        await asyncio.to_thread(write_generation_file, self.root / name, STATS_FILE,
                                stats.to_json())
        await asyncio.gather(*(self.calls.reload_stats(name, k, self._dir(name, k))
                               for k in range(n)))

    async def live_generation(self) -> str | None:
        return await self.registry.live()

    async def swap(self, name: str) -> str | None:
        previous = await self.registry.swap(name)
        self._live = (time.monotonic(), name)
        return previous

    async def drop_generation(self, name: str) -> None:
        await self.calls.stop(name, await self._n(name))
        await asyncio.to_thread(shutil.rmtree, self.root / name, True)
        await self.registry.mark(name, "DROPPED")

    async def close(self) -> None:
        self.calls.close()


def _pivots_of(sample: Sequence[Mapping[str, object]]) -> dict[str, float]:
    az = analyzer()
    return pivots(scored_tokens(d, az) for d in sample)


class LocalShards:
    """`ShardCalls` on tantivy shards in this process (tests and tools without a cluster)."""

    def __init__(self) -> None:
        self._open: dict[tuple[str, int], TantivyShard] = {}

    def _shard(self, generation: str, k: int, shard_dir: Path) -> TantivyShard:
        key = (generation, k)
        if key not in self._open:
            self._open[key] = TantivyShard(shard_dir)
        return self._open[key]

    async def apply(self, generation: str, k: int, shard_dir: Path, docs: Documents,
                    deletes: Sequence[int], commit: bool) -> int:
        return self._shard(generation, k, shard_dir).apply(
            rows_of(docs) if isinstance(docs, pa.RecordBatch) else docs, deletes, commit)

    async def commit(self, generation: str, k: int, shard_dir: Path) -> None:
        self._shard(generation, k, shard_dir).commit()

    async def search(self, generation: str, k: int, shard_dir: Path,
                     query: IndexQuery) -> IndexResult:
        return self._shard(generation, k, shard_dir).search(query)

    async def get(self, generation: str, k: int, shard_dir: Path,
                  product_ids: Sequence[int]) -> dict[int, SearchDocument]:
        return self._shard(generation, k, shard_dir).get(product_ids)

    async def count(self, generation: str, k: int, shard_dir: Path) -> int:
        return self._shard(generation, k, shard_dir).num_docs()

    async def suggest(self, generation: str, k: int, shard_dir: Path, words: Sequence[str],
                      last: str, limit: int) -> list[tuple[str, int]]:
        return self._shard(generation, k, shard_dir).suggest(words, last, limit)

    async def term_counts(self, generation: str, k: int, shard_dir: Path) -> TermCounts:
        return self._shard(generation, k, shard_dir).term_counts()

    async def reload_stats(self, generation: str, k: int, shard_dir: Path) -> None:
        self._shard(generation, k, shard_dir).reload_stats()

    async def stop(self, generation: str, shards: int) -> None:
        for k in range(shards):
            shard = self._open.pop((generation, k), None)
            if shard is not None:
                shard.close()

    def close(self) -> None:
        self._open.clear()
