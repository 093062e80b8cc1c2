"""The search backend for a configuration: Elasticsearch when an ES URL is set, else the
embedded tantivy shards."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import asyncpg

from adapters.postgres.search_registry import GenerationRegistry


class _Config(Protocol):
    @property
    def dsn(self) -> str: ...
    @property
    def data_dir(self) -> str: ...
    @property
    def shards(self) -> int: ...
    @property
    def es_url(self) -> str | None: ...


def elastic_index(url: str, registry: GenerationRegistry, *, prefix: str | None = None) -> Any:
    from adapters.search.elastic import DEFAULT_PREFIX
    from adapters.search.elastic_backend import ElasticBackend
    return ElasticBackend(url, registry, prefix=prefix or DEFAULT_PREFIX)


async def open_index(cfg: _Config, pool: asyncpg.Pool) -> Any:
    if cfg.es_url:
        return elastic_index(cfg.es_url, GenerationRegistry(pool, "elasticsearch"))
    from adapters.search.sharded import ShardedIndex
    return ShardedIndex(cfg.shards, Path(cfg.data_dir), cfg.dsn,
                        GenerationRegistry(pool, "tantivy"))
