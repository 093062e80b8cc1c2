"""Search index backends behind one interface (`SearchIndex`).

- embedded (default): tantivy indexes, one per shard, each held by an `IndexShard` Ray actor
  (`actors/index_shard.py`, reached through `actors/index_shard_client.py`), scattered and
  merged by `ShardedIndex` (`adapters/search/sharded.py`); `actors/search_index.open_index`
  picks the backend for a configuration.
- Elasticsearch when `ES_URL` is set (`adapters/search/elastic_backend.py` over
  `adapters/search/elastic.py`).
- in memory (`adapters/search/memory.py`): brute force, for unit tests of search logic.

Generations: an index is built as a named generation; one generation is live (what searches
read). A full rebuild writes a new generation beside the live one, checks it, and swaps
atomically; the previous one is kept for rollback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pyarrow as pa

from domain.errors import Unavailable
from domain.search import IndexQuery, IndexResult, SearchDocument


class SearchUnavailable(Unavailable):
    """The index cannot answer now: HTTP 503, retry shortly (a browse without words is
    answered from PostgreSQL meanwhile, `degraded: true`)."""

    code = "search_unavailable"


class NoLiveIndex(SearchUnavailable):
    """No generation is live yet (the first build is running)."""


class SearchIndex(Protocol):
    """What a search backend offers: the embedded tantivy shards (adapters/search/sharded.py
    on actors/index_shard_client.py), Elasticsearch (adapters/search/elastic_backend.py) and
    the in-memory fake of unit tests (adapters/search/memory.py). `generation=None` is the
    live generation."""

    @property
    def backend(self) -> str:
        """"tantivy", "elasticsearch" or "memory": names the backend's generations."""
        ...

    # -- writes -------------------------------------------------------------------------
    async def write(self, docs: pa.RecordBatch | Sequence[SearchDocument],
                    deletes: Sequence[int], generation: str | None = None,
                    commit: bool = True) -> int:
        """Upserts documents and deletes products in one call; with `commit`, visible to
        searches when it returns. A document whose `version` is lower than the stored one's
        is ignored (an old event never overwrites a newer document); an equal version
        replaces it (stock and price change without a product version). Returns how many
        documents were written."""
        ...

    async def upsert(self, docs: Sequence[SearchDocument], generation: str | None = None) -> int:
        """`write` without deletes, visible after `refresh()`."""
        ...

    async def delete(self, product_ids: Sequence[int], generation: str | None = None) -> None:
        ...

    async def refresh(self, generation: str | None = None) -> None:
        """Makes every write so far visible to searches."""
        ...

    # -- reads --------------------------------------------------------------------------
    async def search(self, query: IndexQuery) -> IndexResult:
        """Searches the live generation."""
        ...

    async def search_generation(self, generation: str | None, query: IndexQuery) -> IndexResult:
        ...

    async def get(self, product_ids: Sequence[int],
                  generation: str | None = None) -> dict[int, SearchDocument]:
        """Whole documents of the products found (the others are left out)."""
        ...

    async def count(self, generation: str | None = None) -> int:
        ...

    async def suggest(self, words: Sequence[str], last: str, limit: int) -> list[str]:
        """Typeahead: titles holding every word of `words` and a word starting with `last`,
        most reviewed first, each title once."""
        ...

    # -- generations --------------------------------------------------------------------
    async def create_generation(self, name: str, sample: Sequence[SearchDocument] = (),
                                vectors: bool = False) -> None:
        """A new, empty generation; `sample` (documents of a deterministic sample of the
        catalog) lets a backend fix what its scoring needs before documents arrive; with
        `vectors`, documents get dense title vectors (the embedded backend; Elasticsearch
        makes none, and the `dense` ranking signal is 0 there)."""
        ...

    async def finish_generation(self, name: str) -> None:
        """The generation is built and refreshed: fix its scoring statistics (the same for
        every shard) before it is checked and made live."""
        ...

    async def live_generation(self) -> str | None:
        ...

    async def swap(self, name: str) -> str | None:
        """Makes `name` live atomically; returns the generation it replaced."""
        ...

    async def drop_generation(self, name: str) -> None:
        ...

    async def close(self) -> None:
        ...
