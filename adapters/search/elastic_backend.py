"""Elasticsearch behind the same surface the builders and the search service use with the
embedded shards: generations recorded in the registry (so a rebuild's generation takes writes
while it is built), one `write` for upserts + deletes + refresh."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from adapters.postgres.search_registry import GenerationRegistry
from adapters.search.elastic import DEFAULT_PREFIX, ElasticIndex
from domain.search import IndexQuery, IndexResult, SearchDocument
from domain.search_documents import rows_of


class ElasticBackend:
    backend = "elasticsearch"

    def __init__(self, url: str, registry: GenerationRegistry, *,
                 prefix: str = DEFAULT_PREFIX) -> None:
        self.es = ElasticIndex(url, prefix=prefix)
        self.registry = registry

    async def write(self, docs: pa.RecordBatch | Sequence[SearchDocument],
                    deletes: Sequence[int], generation: str | None = None,
                    commit: bool = True) -> int:
        rows = rows_of(docs) if isinstance(docs, pa.RecordBatch) else docs
        written = await self.es.upsert(rows, generation) if rows else 0
        if deletes:
            await self.es.delete(deletes, generation)
        if commit:
            await self.es.refresh(generation)
        return written

    async def upsert(self, docs: Sequence[SearchDocument], generation: str | None = None) -> int:
        return await self.es.upsert(docs, generation)

    async def delete(self, product_ids: Sequence[int], generation: str | None = None) -> None:
        await self.es.delete(product_ids, generation)

    async def refresh(self, generation: str | None = None) -> None:
        await self.es.refresh(generation)

    async def search(self, query: IndexQuery) -> IndexResult:
        return await self.es.search(query)

    async def search_generation(self, generation: str | None, query: IndexQuery) -> IndexResult:
        index = self.es.prefix if generation is None else self.es.index_name(generation)
        return await self.es.search_index(index, query)

    async def get(self, product_ids: Sequence[int],
                  generation: str | None = None) -> dict[int, SearchDocument]:
        return await self.es.get(product_ids, generation)

    async def count(self, generation: str | None = None) -> int:
        return await self.es.count(generation)

    async def suggest(self, words: Sequence[str], last: str, limit: int) -> list[str]:
        return await self.es.suggest(words, last, limit)

    async def create_generation(self, name: str, sample: Sequence[SearchDocument] = (),
                                vectors: bool = False) -> None:
        """`sample` is not needed: Elasticsearch scores with the statistics of the whole
        index, gathered per search (dfs_query_then_fetch)."""
        await self.es.create_generation(name)  # first: a registry row means writes can go
        await self.registry.create(name, 1)

    async def finish_generation(self, name: str) -> None:
        await self.es.refresh(name)

    async def live_generation(self) -> str | None:
        return await self.es.live_generation()

    async def swap(self, name: str) -> str | None:
        await self.registry.swap(name)  # refuses a FAILED or RETIRED generation
        return await self.es.swap(name)  # the alias is what searches read

    async def drop_generation(self, name: str) -> None:
        await self.es.drop_generation(name)
        await self.registry.mark(name, "DROPPED")

    async def close(self) -> None:
        await self.es.close()
