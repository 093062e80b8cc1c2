"""Search index backends behind one interface (`SearchIndex`).

- embedded (default): tantivy indexes, one per shard, each held by an `IndexShard` Ray actor
  (`actors/index_shard.py`), scattered and merged by `ShardedIndex` (`adapters/search/sharded.py`).
- Elasticsearch when `ES_URL` is set (`adapters/search/elastic.py`).

Generations: an index is built as a named generation; one generation is live (what searches
read). A full rebuild writes a new generation beside the live one, checks it, and swaps
atomically; the previous one is kept for rollback.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from domain.errors import Unavailable
from domain.search import IndexQuery, IndexResult


class NoLiveIndex(Unavailable):
    """No generation is live yet (the first build is running): HTTP 503, retry shortly."""

    code = "search_unavailable"


class SearchIndex(Protocol):
    async def upsert(self, docs: Sequence[dict[str, Any]], generation: str | None = None) -> int:
        """Writes whole documents. A document whose `version` is lower than the stored one's
        is ignored (an old event never overwrites a newer document); an equal version
        replaces it (stock and price change without a product version). Returns how many
        were written. Visible to searches after `refresh()`."""
        ...

    async def delete(self, product_ids: Sequence[int], generation: str | None = None) -> None:
        ...

    async def refresh(self, generation: str | None = None) -> None:
        """Makes every write so far visible to searches."""
        ...

    async def search(self, query: IndexQuery) -> IndexResult:
        """Searches the live generation."""
        ...

    async def get(self, product_ids: Sequence[int],
                  generation: str | None = None) -> dict[int, dict[str, Any]]:
        ...

    async def count(self, generation: str | None = None) -> int:
        ...

    # -- generations --------------------------------------------------------------------
    async def create_generation(self, name: str,
                                sample: Sequence[dict[str, Any]] = ()) -> None:
        """A new, empty generation; `sample` (documents of a deterministic sample of the
        catalog) lets a backend fix what its scoring needs before documents arrive."""
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
