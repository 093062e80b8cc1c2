"""The embedded search backend: tantivy shards held by `IndexShard` actors, one set per
generation. Product -> shard by a stable hash. A search goes to every shard of the live
generation; each returns its top `offset + limit`, its exact total and exact facet counts, and
this merges them (sum of totals, sum of counts, merge of sorted lists).

Reads are coalesced per shard (adapters.coalesce, as the inventory client's operations): at
most READS_IN_FLIGHT Ray calls to a shard at a time, and searches and gets that arrive
meanwhile go together in the next call (`IndexShard.reads`)."""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import ray

from actors import NAMESPACE, database_tag, named
from actors.index_shard import IndexShard
from adapters.coalesce import Coalescer
from adapters.postgres.search_registry import GenerationRegistry
from adapters.search import NoLiveIndex
from adapters.search.tantivy_shard import (
    PIVOTS_FILE,
    STATS_FILE,
    analyzer,
    read_generation_file,
    scored_tokens,
    write_generation_file,
)
from domain.inventory import partition_of
from domain.search import Facets, Hit, IndexQuery, IndexResult, relevance_key, sort_key
from domain.text_scoring import DEFAULT_AVG_LENGTH, TermStats, pivots

LIVE_CACHE_S = 0.5  # how long a replica trusts its idea of the live generation
CALL_TIMEOUT_S = 10.0
READS_IN_FLIGHT = 2  # per shard
MAX_READS_PER_CALL = 8  # run one after another in the shard: keep a slow one's company small


def shard_of(product_id: int, shards: int) -> int:
    return partition_of(product_id, shards)




class ShardedIndex:
    backend = "tantivy"

    def __init__(self, shards: int, data_dir: Path, dsn: str,
                 registry: GenerationRegistry) -> None:
        self.shards = shards  # for new generations; each keeps the count it was made with
        self._counts: dict[str, int] = {}
        self.db = database_tag(dsn)
        self.root = Path(data_dir).resolve() / "index" / self.db
        self.registry = registry
        self._actors: dict[tuple[str, int], Any] = {}
        self._reads: Coalescer[tuple[str, int], tuple[str, Any], tuple[bool, Any]] = Coalescer(
            self._reads_call, READS_IN_FLIGHT, MAX_READS_PER_CALL)
        self._live: tuple[float, str | None] = (0.0, None)

    # -- actors ------------------------------------------------------------------------
    def _actor(self, generation: str, k: int) -> Any:
        key = (generation, k)
        if key not in self._actors:
            self._actors[key] = named(IndexShard, f"index-{self.db}-{generation}-{k}").remote(
                str(self.root / generation / f"shard-{k}"))
        return self._actors[key]

    async def _call(self, generation: str, k: int, method: str, *args: Any) -> Any:
        ref = getattr(self._actor(generation, k), method).remote(*args)
        return await asyncio.wait_for(ref, CALL_TIMEOUT_S)

    async def _read(self, generation: str, k: int, method: str, arg: Any) -> Any:
        """`method(arg)` on shard k ("search" or "get"), coalesced with other reads."""
        ok, value = await asyncio.wait_for(self._reads.submit((generation, k), (method, arg)),
                                           CALL_TIMEOUT_S)
        if not ok:
            raise value
        return value

    async def _reads_call(self, key: tuple[str, int],
                          calls: list[tuple[str, Any]]) -> list[tuple[bool, Any]]:
        return await asyncio.wait_for(
            self._actor(*key).reads.remote(calls), CALL_TIMEOUT_S)

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
    async def write(self, docs: pa.RecordBatch | Sequence[dict[str, Any]],
                    deletes: Sequence[int], generation: str | None = None,
                    commit: bool = True) -> int:
        """Documents (a pyarrow batch travels to each shard as a slice of itself) and
        deletes, routed to their shards; one `apply` call per shard touched."""
        gen = await self._gen(generation)
        shards = await self._n(gen)
        by_shard: dict[int, Any] = {}
        if isinstance(docs, pa.RecordBatch):
            rows: dict[int, list[int]] = defaultdict(list)
            for i, pid in enumerate(docs.column("product_id").to_pylist()):
                rows[shard_of(int(pid), shards)].append(i)
            by_shard = {k: docs.take(pa.array(ix)) for k, ix in rows.items()}
        else:
            lists: dict[int, list[dict[str, Any]]] = defaultdict(list)
            for d in docs:
                lists[shard_of(int(d["product_id"]), shards)].append(d)
            by_shard = dict(lists)
        del_shard: dict[int, list[int]] = defaultdict(list)
        for pid in deletes:
            del_shard[shard_of(int(pid), shards)].append(int(pid))
        ks = sorted(set(by_shard) | set(del_shard))
        written = await asyncio.gather(*(
            self._call(gen, k, "apply", by_shard.get(k), del_shard.get(k, []), commit)
            for k in ks))
        return sum(written)

    async def upsert(self, docs: Sequence[dict[str, Any]], generation: str | None = None) -> int:
        return await self.write(docs, (), generation)

    async def delete(self, product_ids: Sequence[int], generation: str | None = None) -> None:
        await self.write((), product_ids, generation)

    async def refresh(self, generation: str | None = None) -> None:
        gen = await self._gen(generation)
        await asyncio.gather(*(self._call(gen, k, "commit") for k in range(await self._n(gen))))

    # -- reads -------------------------------------------------------------------------
    async def search(self, query: IndexQuery) -> IndexResult:
        return await self.search_generation(None, query)

    async def search_generation(self, generation: str | None, query: IndexQuery) -> IndexResult:
        gen = await self._gen(generation)
        n = query.offset + query.limit
        per_shard = dataclasses.replace(query, offset=0, limit=n)
        parts: list[IndexResult] = await asyncio.gather(
            *(self._read(gen, k, "search", per_shard) for k in range(await self._n(gen))))
        return merge(parts, query)

    async def get(self, product_ids: Sequence[int],
                  generation: str | None = None) -> dict[int, dict[str, Any]]:
        gen = await self._gen(generation)
        shards = await self._n(gen)
        by_shard: dict[int, list[int]] = defaultdict(list)
        for pid in product_ids:
            by_shard[shard_of(int(pid), shards)].append(int(pid))
        out: dict[int, dict[str, Any]] = {}
        for part in await asyncio.gather(
                *(self._read(gen, k, "get", ids) for k, ids in by_shard.items())):
            out.update(part)
        return out

    async def count(self, generation: str | None = None) -> int:
        gen = await self._gen(generation)
        return sum(await asyncio.gather(
            *(self._call(gen, k, "count") for k in range(await self._n(gen)))))

    async def suggest(self, words: Sequence[str], last: str, limit: int) -> list[str]:
        gen = await self._gen(None)
        parts = await asyncio.gather(
            *(self._call(gen, k, "suggest", list(words), last, limit)
              for k in range(await self._n(gen))))
        out: dict[str, str] = {}  # casefolded -> as written, most popular first
        for title, _ in sorted((tw for part in parts for tw in part), key=lambda tw: -tw[1]):
            out.setdefault(title.casefold(), title)
        return list(out.values())[:limit]

    # -- generations -------------------------------------------------------------------
    async def create_generation(self, name: str,
                                sample: Sequence[Mapping[str, Any]] = ()) -> None:
        """A new, empty generation. `sample`: documents (a deterministic sample of the
        catalog) whose analysed lengths set the BM25 length pivots every document of the
        generation is written with; none: the defaults."""
        avg = await asyncio.to_thread(_pivots_of, sample) if sample else dict(DEFAULT_AVG_LENGTH)
        await asyncio.to_thread(write_generation_file, self.root / name, PIVOTS_FILE, avg)
        await self.registry.create(name, self.shards)
        self._counts[name] = self.shards
        await asyncio.gather(*(self._call(name, k, "count") for k in range(self.shards)))

    async def finish_generation(self, name: str) -> None:
        """Counts the generation's term statistics over all its shards (once it is built and
        refreshed), stores them beside the shards and has every shard score with them."""
        n = await self._n(name)
        parts = await asyncio.gather(*(self._call(name, k, "term_counts") for k in range(n)))
        avg = await asyncio.to_thread(read_generation_file, self.root / name, PIVOTS_FILE)
        stats = TermStats.combine(avg or DEFAULT_AVG_LENGTH, parts)
        await asyncio.to_thread(write_generation_file, self.root / name, STATS_FILE,
                                stats.to_json())
        await asyncio.gather(*(self._call(name, k, "reload_stats") for k in range(n)))

    async def live_generation(self) -> str | None:
        return await self.registry.live()

    async def swap(self, name: str) -> str | None:
        previous = await self.registry.swap(name)
        self._live = (time.monotonic(), name)
        return previous

    async def drop_generation(self, name: str) -> None:
        for k in range(await self._n(name)):
            try:
                actor = ray.get_actor(f"index-{self.db}-{name}-{k}", namespace=NAMESPACE)
            except ValueError:
                continue
            ray.kill(actor, no_restart=True)
            self._actors.pop((name, k), None)
        await asyncio.to_thread(shutil.rmtree, self.root / name, True)
        await self.registry.mark(name, "RETIRED")

    async def close(self) -> None:
        self._actors.clear()


def _pivots_of(sample: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    az = analyzer()
    return pivots(scored_tokens(d, az) for d in sample)


def merge(parts: Sequence[IndexResult], query: IndexQuery) -> IndexResult:
    """Shard results -> one page. Each part is sorted; ties break on the tie key, then the
    product id (domain.search.relevance_key and sort_key)."""
    hits: list[Hit] = [h for p in parts for h in p.hits]
    if query.sort == "relevance":
        hits.sort(key=lambda h: relevance_key(h.score, h.doc))
    else:
        hits.sort(key=lambda h: sort_key(h.doc, query.sort))
    facets = Facets()
    for p in parts:
        facets.add(p.facets)
    return IndexResult(hits[query.offset:query.offset + query.limit],
                       sum(p.total for p in parts), facets)
