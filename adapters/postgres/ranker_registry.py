"""The registry of learned ranker models (`ranker_models`, `ranker_stage_changes`): versions with
their artifacts, checksums, metrics and stages, shared by every replica. At most one version is
in production; every stage change is recorded with who made it, when, and whether the offline
gate was forced."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

import asyncpg

from adapters.postgres import Conn
from domain.errors import Conflict, NotFound


class RankerNotFound(NotFound):
    code = "ranker_not_found"


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    version: str
    kind: str
    feature_set: str
    features: tuple[str, ...]
    checksum: str
    metrics: dict[str, object]
    stage: str  # candidate | production | archived
    created_by: str
    created_at: datetime
    note: str | None = None


@dataclasses.dataclass(frozen=True)
class StageChange:
    version: str
    from_stage: str
    to_stage: str
    changed_by: str
    changed_at: datetime
    forced: bool
    reason: str | None


def checksum(artifact: bytes) -> str:
    return hashlib.sha256(artifact).hexdigest()


_COLUMNS = "version, kind, feature_set, features, checksum, metrics, stage, created_by, " \
           "created_at, note"


def _record(r: asyncpg.Record) -> ModelRecord:
    metrics = r["metrics"]
    return ModelRecord(r["version"], r["kind"], r["feature_set"], tuple(r["features"]),
                       r["checksum"], json.loads(metrics) if isinstance(metrics, str)
                       else dict(metrics), r["stage"], r["created_by"], r["created_at"],
                       r["note"])


def production_before(changes: Sequence[tuple[str, str, str, bool]]) -> str | None:
    """The version a rollback brings back. Production is a stack: every stage change in
    order, (version, from_stage, to_stage, made by a rollback), replayed (a promotion pushes
    its version, a rollback pops the version it took down); the version under the top
    (None: the formula)."""
    stack: list[str] = []
    for version, from_stage, to_stage, rollback in changes:
        if to_stage == "production" and (not rollback or not stack or stack[-1] != version):
            stack.append(version)
        elif from_stage == "production" and rollback and stack and stack[-1] == version:
            stack.pop()
    return stack[-2] if len(stack) >= 2 else None


class RankerRegistry:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def add(self, kind: str, feature_set: str, features: Sequence[str], artifact: bytes,
                  metrics: dict[str, object], created_by: str, note: str | None = None,
                  stage: str = "candidate") -> ModelRecord:
        """A new version (`lgbm_<n>`), a candidate unless told otherwise."""
        row = await self.pool.fetchrow(
            f"""INSERT INTO ranker_models (version, kind, feature_set, features, artifact,
                                           checksum, metrics, stage, created_by, note)
                VALUES ('lgbm_' || nextval('ranker_model_numbers'), $1, $2, $3, $4, $5,
                        $6::jsonb, $7, $8, $9)
                RETURNING {_COLUMNS}""",
            kind, feature_set, list(features), artifact, checksum(artifact),
            json.dumps(metrics), stage, created_by, note)
        assert row is not None
        return _record(row)

    async def get(self, version: str) -> ModelRecord:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM ranker_models WHERE version = $1", version)
        if row is None:
            raise RankerNotFound(f"no ranker model {version!r}")
        return _record(row)

    async def artifact(self, version: str) -> tuple[ModelRecord, bytes]:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS}, artifact FROM ranker_models WHERE version = $1", version)
        if row is None:
            raise RankerNotFound(f"no ranker model {version!r}")
        return _record(row), bytes(row["artifact"])

    async def all(self) -> list[ModelRecord]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM ranker_models ORDER BY created_at, version")
        return [_record(r) for r in rows]

    async def production(self) -> ModelRecord | None:
        row = await self.pool.fetchrow(
            f"SELECT {_COLUMNS} FROM ranker_models WHERE stage = 'production'")
        return _record(row) if row is not None else None

    async def set_metrics(self, version: str, metrics: dict[str, object]) -> None:
        await self.pool.execute(
            "UPDATE ranker_models SET metrics = $2::jsonb WHERE version = $1",
            version, json.dumps(metrics))

    async def promote(self, version: str, by: str, *, forced: bool = False,
                      reason: str | None = None) -> str | None:
        """Makes `version` the production model (the one before is archived), in one
        transaction; returns the version it replaced."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE ranker_models IN SHARE ROW EXCLUSIVE MODE")
            stage = await conn.fetchval(
                "SELECT stage FROM ranker_models WHERE version = $1", version)
            if stage is None:
                raise RankerNotFound(f"no ranker model {version!r}")
            if stage == "production":
                raise Conflict(f"{version} is in production already", code="in_production")
            previous = await conn.fetchval(
                """UPDATE ranker_models SET stage = 'archived' WHERE stage = 'production'
                   RETURNING version""")
            if previous is not None:
                await self._log(conn, previous, "production", "archived", by, forced, reason)
            await conn.execute(
                "UPDATE ranker_models SET stage = 'production' WHERE version = $1", version)
            await self._log(conn, version, stage, "production", by, forced, reason)
            return str(previous) if previous is not None else None

    async def rollback(self, by: str, reason: str | None = None) -> tuple[str | None, str | None]:
        """Production goes back to the version that was in production before the current
        one (none: the formula); returns (the version rolled back, the one now in
        production)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE ranker_models IN SHARE ROW EXCLUSIVE MODE")
            current = await conn.fetchval(
                "SELECT version FROM ranker_models WHERE stage = 'production'")
            if current is None:
                raise Conflict("no learned model is in production", code="nothing_to_roll_back")
            changes = await conn.fetch(
                """SELECT version, from_stage, to_stage, rollback FROM ranker_stage_changes
                   WHERE 'production' IN (from_stage, to_stage) ORDER BY change_id""")
            before = production_before([(r["version"], r["from_stage"], r["to_stage"],
                                         r["rollback"]) for r in changes])
            await conn.execute(
                "UPDATE ranker_models SET stage = 'archived' WHERE version = $1", current)
            await self._log(conn, current, "production", "archived", by, False,
                            reason or "rollback", rollback=True)
            if before is not None:
                await conn.execute(
                    "UPDATE ranker_models SET stage = 'production' WHERE version = $1", before)
                await self._log(conn, before, "archived", "production", by, False,
                                reason or "rollback", rollback=True)
            return str(current), before

    async def archive(self, version: str, by: str, reason: str | None = None) -> None:
        """A candidate archived (one archived already: nothing to do); the production model
        is taken down by a rollback or a promotion, not archived (409)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("LOCK TABLE ranker_models IN SHARE ROW EXCLUSIVE MODE")
            stage = await conn.fetchval(
                "SELECT stage FROM ranker_models WHERE version = $1", version)
            if stage is None:
                raise RankerNotFound(f"no ranker model {version!r}")
            if stage == "production":
                raise Conflict(f"{version} is in production: roll back or promote another "
                               "model first", code="in_production")
            if stage == "candidate":
                await conn.execute(
                    "UPDATE ranker_models SET stage = 'archived' WHERE version = $1", version)
                await self._log(conn, version, "candidate", "archived", by, False, reason)

    async def history(self, version: str | None = None) -> list[StageChange]:
        rows = await self.pool.fetch(
            """SELECT version, from_stage, to_stage, changed_by, changed_at, forced, reason
               FROM ranker_stage_changes WHERE $1::text IS NULL OR version = $1
               ORDER BY change_id""", version)
        return [StageChange(**dict(r)) for r in rows]

    @staticmethod
    async def _log(conn: Conn, version: str, from_stage: str, to_stage: str,
                   by: str, forced: bool, reason: str | None, *, rollback: bool = False) -> None:
        await conn.execute(
            """INSERT INTO ranker_stage_changes (version, from_stage, to_stage, changed_by,
                                                 forced, reason, rollback)
               VALUES ($1, $2, $3, $4, $5, $6, $7)""",
            version, from_stage, to_stage, by, forced, reason, rollback)
