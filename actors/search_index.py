"""The search backend for a configuration: Elasticsearch when an ES URL is set, else the
embedded tantivy shards on `IndexShard` actors. Both are a `SearchIndex`
(adapters/search/__init__.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import asyncpg

from actors import database_tag
from actors.index_shard_client import IndexShardClient
from adapters.postgres.search_registry import GenerationRegistry
from adapters.search import SearchIndex
from adapters.search.local_reads import INLINE_MAX_DOCS, LocalReads
from adapters.search.sharded import ShardedIndex


class IndexConfig(Protocol):
    @property
    def dsn(self) -> str: ...
    @property
    def data_dir(self) -> str: ...
    @property
    def shards(self) -> int: ...
    @property
    def es_url(self) -> str | None: ...


def open_index(cfg: IndexConfig, pool: asyncpg.Pool, local_reads: bool = False,
               inline_max_docs: int = INLINE_MAX_DOCS) -> SearchIndex:
    """`local_reads`: the embedded index's searches on read-only shards in this process
    (adapters/search/local_reads.py), for the Gateways; the index builder writes. Reads of
    shards of up to `inline_max_docs` documents run in the caller's thread."""
    if cfg.es_url:
        from adapters.search.elastic_backend import ElasticBackend
        return ElasticBackend(cfg.es_url, GenerationRegistry(pool, "elasticsearch"))
    return sharded_index(cfg.shards, cfg.data_dir, cfg.dsn, GenerationRegistry(pool, "tantivy"),
                         local_reads, inline_max_docs)


def sharded_index(shards: int, data_dir: str | Path, dsn: str, registry: GenerationRegistry,
                  local_reads: bool = False,
                  inline_max_docs: int = INLINE_MAX_DOCS) -> ShardedIndex:
    """The embedded backend of the database `dsn`: its generations under
    `<data_dir>/index/<database tag>/`, its shards the `IndexShard` actors of that database
    (with `local_reads`, searched from this process where their files are)."""
    db = database_tag(dsn)
    actors = IndexShardClient(db)
    return ShardedIndex(shards, Path(data_dir).resolve() / "index" / db, registry,
                        LocalReads(actors, inline_max_docs) if local_reads else actors)
