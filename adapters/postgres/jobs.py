"""The record of background jobs (migration 0013): started, then succeeded with a result or
failed with an error."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import asyncpg

JobStatus = Literal["running", "succeeded", "failed"]
HEARTBEAT_S = 10.0  # how often the replica running a job says so
ORPHAN_S = 60.0  # a running job silent this long is its dead replica's: failed


@dataclasses.dataclass(frozen=True)
class JobRecord:
    job_id: str
    kind: str
    status: JobStatus
    params: Mapping[str, object]
    result: Mapping[str, object] | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None

    def to_json(self) -> dict[str, object]:
        return {"job_id": self.job_id, "kind": self.kind, "status": self.status,
                "params": dict(self.params), "result": self.result, "error": self.error,
                "created_at": self.created_at.isoformat(),
                "finished_at": self.finished_at.isoformat() if self.finished_at else None}


class JobStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def start(self, kind: str, params: Mapping[str, object]) -> JobRecord:
        row = await self.pool.fetchrow(
            "INSERT INTO jobs (job_id, kind, params) VALUES ($1, $2, $3) RETURNING *",
            "j" + secrets.token_hex(10), kind, dict(params))
        assert row is not None
        return _record(row)

    async def succeed(self, job_id: str, result: Mapping[str, object]) -> None:
        await self.pool.execute(
            """UPDATE jobs SET status = 'succeeded', result = $2, finished_at = now()
               WHERE job_id = $1""", job_id, dict(result))

    async def fail(self, job_id: str, error: str) -> None:
        await self.pool.execute(
            """UPDATE jobs SET status = 'failed', error = $2, finished_at = now()
               WHERE job_id = $1""", job_id, error)

    async def alive(self, job_id: str) -> None:
        """The running job's sign of life (its replica runs it still)."""
        await self.pool.execute(
            "UPDATE jobs SET alive_at = now() WHERE job_id = $1 AND status = 'running'", job_id)

    async def _orphans(self) -> None:
        """Running jobs with no sign of life for ORPHAN_S: their replica died (or lost
        PostgreSQL for that long) mid-job; recorded as failed, saying so (a rebuild's build
        goes on in the index builder: the error says where to look)."""
        await self.pool.execute(
            """UPDATE jobs SET status = 'failed', finished_at = now(),
                      error = 'its Gateway replica stopped before it ended (no sign of life '
                              || 'since ' || to_char(alive_at AT TIME ZONE 'UTC',
                                                     'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                              || CASE WHEN kind = 'index.rebuild'
                                      -- the build runs in the index builder, not the replica
                                      THEN '): the index builder may still finish the build; '
                                           || 'GET /api/v1/internal/search/status shows it '
                                           || '(BUILDING, then LIVE), start it again if not'
                                      ELSE '): start it again' END
               WHERE status = 'running' AND alive_at < now() - make_interval(secs => $1)""",
            ORPHAN_S)

    async def recent(self, kind: str | None, limit: int) -> list[JobRecord]:
        """The newest jobs first (of one kind, when given)."""
        await self._orphans()
        rows = await self.pool.fetch(
            """SELECT * FROM jobs WHERE $1::text IS NULL OR kind = $1
               ORDER BY created_at DESC, job_id LIMIT $2""", kind, limit)
        return [_record(r) for r in rows]

    async def get(self, job_id: str) -> JobRecord | None:
        await self._orphans()
        row = await self.pool.fetchrow("SELECT * FROM jobs WHERE job_id = $1", job_id)
        return None if row is None else _record(row)


def _record(r: asyncpg.Record) -> JobRecord:
    return JobRecord(r["job_id"], r["kind"], r["status"], r["params"], r["result"], r["error"],
                     r["created_at"], r["finished_at"])
