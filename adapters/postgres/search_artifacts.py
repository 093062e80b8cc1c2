"""What a search index generation needs besides its documents, stored with it in PostgreSQL
(`search_artifacts`, one row per generation and artifact): the query-understanding vocabulary
today. An artifact is written before its generation goes live and read by name of that
generation, so a Gateway always pairs a generation with the artifacts built for it."""

from __future__ import annotations

import asyncpg

VOCABULARY = "vocabulary"


class SearchArtifacts:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def put(self, generation: str, name: str, blob: bytes) -> None:
        await self.pool.execute(
            """INSERT INTO search_artifacts (generation, name, blob) VALUES ($1, $2, $3)
               ON CONFLICT (generation, name) DO UPDATE SET blob = EXCLUDED.blob,
                   created_at = now()""", generation, name, blob)

    async def get(self, generation: str, name: str) -> bytes | None:
        blob: bytes | None = await self.pool.fetchval(
            "SELECT blob FROM search_artifacts WHERE generation = $1 AND name = $2",
            generation, name)
        return blob

    async def drop(self, generation: str) -> None:
        await self.pool.execute("DELETE FROM search_artifacts WHERE generation = $1",
                                generation)
