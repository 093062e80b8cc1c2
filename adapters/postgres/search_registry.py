"""Which search index generations exist, which one is live, and which ones take writes.

One row per generation in `search_generations`. A swap is one transaction: the live one
becomes PREVIOUS (kept for rollback), the new one LIVE, older PREVIOUS ones RETIRED.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

import asyncpg

# The format of the documents a generation holds; a live generation in an older one is built
# again by the index builder. 2: impact-scored text, per-generation term statistics, tie key;
# 3: dense title vectors (catalogs up to AISLE_TEXT_VECTORS_MAX_PRODUCTS).
INDEX_FORMAT = 3


@dataclasses.dataclass(frozen=True)
class Generation:
    name: str
    status: str  # BUILDING | LIVE | PREVIOUS | RETIRED | FAILED
    shards: int
    documents: int | None
    format: int
    created_at: datetime
    swapped_at: datetime | None

    def to_json(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["created_at"] = self.created_at.isoformat()
        out["swapped_at"] = self.swapped_at.isoformat() if self.swapped_at else None
        return out


class GenerationRegistry:
    def __init__(self, pool: asyncpg.Pool, backend: str) -> None:
        self.pool = pool
        self.backend = backend

    async def live(self) -> str | None:
        return await self.pool.fetchval(
            "SELECT name FROM search_generations WHERE backend = $1 AND status = 'LIVE'",
            self.backend)

    async def shards(self, name: str) -> int | None:
        """How many shards generation `name` was made with (fixed at creation)."""
        return await self.pool.fetchval(
            "SELECT shards FROM search_generations WHERE backend = $1 AND name = $2",
            self.backend, name)

    async def writable(self) -> list[str]:
        """The live generation, any being built (a rebuild must not miss changes) and the
        previous one if it has the current format (kept current: a rollback to it never
        serves stale documents)."""
        rows = await self.pool.fetch(
            """SELECT name FROM search_generations
               WHERE backend = $1 AND (status IN ('LIVE', 'BUILDING')
                                       OR (status = 'PREVIOUS' AND format = $2))
               ORDER BY created_at""", self.backend, INDEX_FORMAT)
        return [r["name"] for r in rows]

    async def previous(self) -> str | None:
        """The generation a rollback makes live again: the previous one, in the current
        format (an older format's is not kept current and cannot be read)."""
        return await self.pool.fetchval(
            """SELECT name FROM search_generations
               WHERE backend = $1 AND status = 'PREVIOUS' AND format = $2""",
            self.backend, INDEX_FORMAT)

    async def create(self, name: str, shards: int) -> None:
        await self.pool.execute(
            """INSERT INTO search_generations (name, backend, shards, status, format)
               VALUES ($1, $2, $3, 'BUILDING', $4)""", name, self.backend, shards, INDEX_FORMAT)

    async def live_info(self) -> tuple[str, int] | None:
        """(name, format) of the live generation."""
        row = await self.pool.fetchrow(
            """SELECT name, format FROM search_generations
               WHERE backend = $1 AND status = 'LIVE'""", self.backend)
        return (str(row["name"]), int(row["format"])) if row is not None else None

    async def live_format(self) -> int | None:
        """The document format the live generation was built with (None: no live one)."""
        return await self.pool.fetchval(
            "SELECT format FROM search_generations WHERE backend = $1 AND status = 'LIVE'",
            self.backend)

    async def swap(self, name: str, documents: int | None = None) -> str | None:
        """Makes `name` live; returns the generation it replaced (now PREVIOUS)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE search_generations IN EXCLUSIVE MODE")
            status = await conn.fetchval(
                "SELECT status FROM search_generations WHERE name = $1 AND backend = $2",
                name, self.backend)
            if status not in ("BUILDING", "PREVIOUS", "LIVE"):
                raise ValueError(f"generation {name!r} cannot go live (status {status})")
            if status == "LIVE":
                return None
            await conn.execute(
                """UPDATE search_generations SET status = 'RETIRED', retired_at = now()
                   WHERE backend = $1 AND status = 'PREVIOUS' AND name <> $2""",
                self.backend, name)
            previous: str | None = await conn.fetchval(
                """UPDATE search_generations SET status = 'PREVIOUS'
                   WHERE backend = $1 AND status = 'LIVE' RETURNING name""", self.backend)
            await conn.execute(
                """UPDATE search_generations SET status = 'LIVE', swapped_at = now(),
                          documents = coalesce($2, documents) WHERE name = $1""",
                name, documents)
            return previous

    async def counted(self, name: str, documents: int) -> None:
        """The documents a generation was built with (shown in the index status)."""
        await self.pool.execute("UPDATE search_generations SET documents = $2 WHERE name = $1 "
                                "AND backend = $3", name, documents, self.backend)

    async def retired_before(self, seconds: float) -> list[str]:
        """Generations retired more than `seconds` ago (not dropped yet)."""
        rows = await self.pool.fetch(
            """SELECT name FROM search_generations
               WHERE backend = $1 AND status = 'RETIRED'
                 AND coalesce(retired_at, swapped_at, created_at)
                     < now() - make_interval(secs => $2)""", self.backend, seconds)
        return [r["name"] for r in rows]

    async def mark(self, name: str, status: str) -> None:
        await self.pool.execute(
            "UPDATE search_generations SET status = $2 WHERE name = $1", name, status)

    async def all(self) -> list[Generation]:
        rows = await self.pool.fetch(
            """SELECT name, status, shards, documents, format, created_at, swapped_at
               FROM search_generations WHERE backend = $1 ORDER BY created_at""", self.backend)
        return [Generation(**dict(r)) for r in rows]
