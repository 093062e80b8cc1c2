"""IndexShard: a Ray actor holding one tantivy shard of one index generation (a thin shell
around adapters.search.tantivy_shard.TantivyShard; callers go through
actors/index_shard_client.py).

Threaded (searches run while a write commits; tantivy releases the GIL while it works). The
index lives on disk under the data dir and is reopened when Ray restarts the actor. `apply`
upserts, deletes and commits in one call, so a caller that gets an answer knows the write is
durable; a caller that gets an error retries the whole call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
import ray

from adapters.search.tantivy_shard import TantivyShard, TermCounts
from domain.search import IndexQuery, IndexResult, SearchDocument
from domain.search_documents import rows_of


@dataclasses.dataclass(frozen=True, slots=True)
class SearchRead:
    query: IndexQuery


@dataclasses.dataclass(frozen=True, slots=True)
class GetRead:
    product_ids: Sequence[int]


ShardRead = SearchRead | GetRead
ReadReply = IndexResult | dict[int, SearchDocument] | Exception  # the read's answer, or why not


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0, max_concurrency=8)  # type: ignore[call-overload]
class IndexShard:
    def __init__(self, path: str) -> None:
        self.path = path
        self.shard = TantivyShard(Path(path))

    def apply(self, docs: pa.RecordBatch | Sequence[SearchDocument],
              deletes: Sequence[int] = (), commit: bool = True) -> int:
        return self.shard.apply(rows_of(docs) if isinstance(docs, pa.RecordBatch) else docs,
                                deletes, commit)

    def commit(self) -> None:
        self.shard.commit()

    def reads(self, calls: Sequence[ShardRead]) -> list[ReadReply]:
        """Several callers' searches and gets in one Ray call (the client coalesces them):
        each gets its result, or the exception its read raised (one caller's bad query fails
        that caller only)."""
        out: list[ReadReply] = []
        for call in calls:
            try:
                out.append(self.shard.search(call.query) if isinstance(call, SearchRead)
                           else self.shard.get(call.product_ids))
            except Exception as exc:
                out.append(exc)
        return out

    def count(self) -> int:
        return self.shard.num_docs()

    def suggest(self, words: Sequence[str], last: str, limit: int) -> list[tuple[str, int]]:
        return self.shard.suggest(words, last, limit)

    def term_counts(self) -> TermCounts:
        return self.shard.term_counts()

    def reload_stats(self) -> None:
        self.shard.reload_stats()

    def close(self) -> None:
        self.shard.close()
