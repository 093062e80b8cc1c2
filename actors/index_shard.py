"""IndexShard: a Ray actor holding one tantivy shard of one index generation.

Threaded (searches run while a write commits; tantivy releases the GIL while it works). The
index lives on disk under the data dir and is reopened when Ray restarts the actor. A write
call (`apply`) upserts, deletes and commits in one call, so a caller that gets an answer knows
the write is durable; a caller that gets an error retries the whole call (upserts are
idempotent by product version).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import ray

from adapters.search.tantivy_shard import TantivyShard
from domain.search import IndexQuery, IndexResult
from domain.search_documents import rows_of


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0, max_concurrency=8)  # type: ignore[call-overload]
class IndexShard:
    def __init__(self, path: str) -> None:
        self.path = path
        self.shard = TantivyShard(Path(path))

    def apply(self, docs: pa.RecordBatch | Sequence[dict[str, Any]] | None = None,
              deletes: Sequence[int] = (), commit: bool = True) -> int:
        rows = rows_of(docs) if isinstance(docs, pa.RecordBatch) else list(docs or ())
        written = self.shard.upsert(rows) if rows else 0
        if deletes:
            self.shard.delete(deletes)
        if commit:
            self.shard.commit()
        return written

    def commit(self) -> None:
        self.shard.commit()

    def search(self, query: IndexQuery) -> IndexResult:
        return self.shard.search(query)

    def get(self, product_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        return self.shard.get(product_ids)

    def reads(self, calls: Sequence[tuple[str, Any]]) -> list[tuple[bool, Any]]:
        """Several callers' searches and gets in one Ray call (the caller coalesces them):
        each gets (True, its result) or (False, its exception)."""
        out: list[tuple[bool, Any]] = []
        for method, arg in calls:
            try:
                out.append((True, self.search(arg) if method == "search" else self.get(arg)))
            except Exception as exc:  # one caller's bad query fails that caller only
                out.append((False, exc))
        return out

    def count(self) -> int:
        return self.shard.num_docs()

    def term_counts(self) -> tuple[int, dict[str, dict[str, int]]]:
        return self.shard.term_counts()

    def reload_stats(self) -> None:
        self.shard.reload_stats()

    def suggest(self, words: Sequence[str], last: str, limit: int) -> list[tuple[str, int]]:
        return self.shard.suggest(words, last, limit)

    def close(self) -> None:
        self.shard.close()
