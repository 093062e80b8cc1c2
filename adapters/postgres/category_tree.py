"""The category tree kept in one process (the seed: in-process, 1 h), shared by search (filters
by id or name, facet names) and product pages (category paths).

Read whole every `ttl_s`, one reader at a time. A category added since is found anyway: ids
the tree lacks are looked up by themselves (and kept); a name it lacks reads the whole tree
again, at most once per `retry_s` (names are free text: a flood of unknown ones must not
become a flood of reads).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import asyncpg

from adapters.cache import SingleFlight
from domain.search import normalize_key

_COLUMNS = "SELECT category_id, parent_id, name, path FROM categories"


class CategoryTree:
    def __init__(self, pool: asyncpg.Pool, ttl_s: float = 3600, retry_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.pool = pool
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self.clock = clock
        self._rows: dict[int, dict[str, Any]] = {}  # id -> {category_id, parent_id, name, path}
        self._named: dict[str, list[int]] = {}  # normalized name or "a > b" path -> ids
        self._at = -float("inf")
        self._reads = SingleFlight()

    async def rows(self, ids: Iterable[int] = ()) -> dict[int, dict[str, Any]]:
        """The tree, with these ids in it if they exist."""
        if self.clock() - self._at >= self.ttl_s:
            await self._reads.do("all", self._read_all)
        missing = sorted({i for i in ids if i not in self._rows})
        if missing:
            self._add(await self.pool.fetch(
                _COLUMNS + " WHERE category_id = ANY($1::int[])", missing))
        return self._rows

    async def named(self, value: str) -> tuple[int, ...]:
        """Ids of the categories with this name or path (normalized); () for none."""
        await self.rows()
        key = normalize_key(value)
        if key not in self._named and self.clock() - self._at >= self.retry_s:
            await self._reads.do("all", self._read_all)  # one added since the last read
        return tuple(self._named.get(key, ()))

    async def path(self, category_id: int | None) -> list[str]:
        if category_id is None:
            return []
        row = (await self.rows([category_id])).get(category_id)
        return list(row["path"]) if row else []

    async def _read_all(self) -> None:
        rows = await self.pool.fetch(_COLUMNS)
        self._rows, self._named = {}, {}
        self._add(rows)
        self._at = self.clock()

    def _add(self, rows: Sequence[Any]) -> None:
        for r in sorted(rows, key=lambda r: r["category_id"]):
            c = int(r["category_id"])
            self._rows[c] = dict(r)
            for k in {normalize_key(r["name"]), normalize_key(" > ".join(r["path"]))}:
                ids = self._named.setdefault(k, [])
                if c not in ids:
                    ids.append(c)
