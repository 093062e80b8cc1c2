"""A consumer of the transactional outbox: its position, its batches, its commits.

Events are read in (txid, event_id) order, only from transactions older than every running
one (`pg_snapshot_xmin`), so an event that commits late is never skipped. The position
(`outbox_consumers`) is committed by the consumer after it has done a batch's work: a crash
before that replays the batch (the work must be idempotent). A consumer may also keep a clock
watermark (`deals_checked_until`: the index builder's look for deal boundaries).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime

import asyncpg

from adapters.postgres import Conn

OUTBOX_CHANNEL = "aisle_outbox"  # NOTIFY on every outbox insert: a consumer's wake-up


@dataclasses.dataclass(frozen=True, slots=True)
class OutboxEvent:
    event_id: int
    event_type: str
    aggregate_id: int
    payload: Mapping[str, object] | None
    txid: int


@dataclasses.dataclass(frozen=True, slots=True)
class Lag:
    events: int  # events not consumed yet
    oldest_s: float  # age of the oldest of them


@dataclasses.dataclass(frozen=True, slots=True)
class Start:
    """Where a consumer that builds everything first starts: every transaction from `txid`
    on (all older ones ended before the build's scan), deal boundaries from `at` on."""

    txid: int
    at: datetime


class OutboxConsumer:
    def __init__(self, pool: asyncpg.Pool, name: str) -> None:
        self.pool = pool
        self.name = name

    async def exists(self) -> bool:
        return await self.pool.fetchval(
            "SELECT 1 FROM outbox_consumers WHERE name = $1", self.name) is not None

    async def start_point(self) -> Start:
        row = await self.pool.fetchrow(
            "SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin, clock_timestamp() AS at")
        assert row is not None
        return Start(int(row["xmin"]), row["at"])

    async def begin(self, start: Start) -> None:
        """Creates the position (if none): consume every transaction from `start.txid` on."""
        await self.pool.execute(
            """INSERT INTO outbox_consumers (name, last_txid, last_event_id,
                                             deals_checked_until)
               VALUES ($1, $2::text::xid8, $3, $4) ON CONFLICT (name) DO NOTHING""",
            self.name, str(max(start.txid - 1, 0)), 2**63 - 1, start.at)

    async def batch(self, conn: Conn, limit: int) -> list[OutboxEvent] | None:
        """The next events after the position (None: this consumer has no position yet)."""
        pos = await conn.fetchrow(
            "SELECT last_txid, last_event_id FROM outbox_consumers WHERE name = $1", self.name)
        if pos is None:
            return None
        rows = await conn.fetch(
            """SELECT event_id, event_type, aggregate_id, payload, txid::text AS txid
               FROM outbox
               WHERE (txid, event_id) > ($1::xid8, $2::bigint)
                 AND txid < pg_snapshot_xmin(pg_current_snapshot())
               ORDER BY txid, event_id LIMIT $3""",
            pos["last_txid"], pos["last_event_id"], limit)
        return [OutboxEvent(int(r["event_id"]), r["event_type"], int(r["aggregate_id"]),
                            r["payload"], int(r["txid"])) for r in rows]

    async def commit(self, conn: Conn, last: OutboxEvent) -> None:
        """Moves the position past `last` (the batch's work is done)."""
        await conn.execute(
            """UPDATE outbox_consumers SET last_txid = $2::text::xid8, last_event_id = $3,
                      updated_at = now() WHERE name = $1""",
            self.name, str(last.txid), last.event_id)

    async def lag(self) -> Lag:
        row = await self.pool.fetchrow(
            """SELECT count(*) AS events, extract(epoch FROM now() - min(o.created_at)) AS secs
               FROM outbox o, outbox_consumers c
               WHERE c.name = $1 AND (o.txid, o.event_id) > (c.last_txid, c.last_event_id)""",
            self.name)
        return Lag(int(row["events"]) if row else 0,
                   float(row["secs"]) if row and row["secs"] else 0.0)

    async def behind_s(self) -> float | None:
        """Age in seconds of the oldest event not consumed yet (0.0: none); None when this
        consumer has no position (it never started). One row through the (txid, event_id)
        index, whatever the backlog: cheap enough for a health check."""
        row = await self.pool.fetchrow(
            """SELECT c.name, extract(epoch FROM now() - (
                   SELECT o.created_at FROM outbox o
                   WHERE (o.txid, o.event_id) > (c.last_txid, c.last_event_id)
                   ORDER BY o.txid, o.event_id LIMIT 1)) AS secs
               FROM outbox_consumers c WHERE c.name = $1""", self.name)
        if row is None:
            return None
        return max(0.0, float(row["secs"] or 0.0))

    async def head(self) -> int:
        """The newest event of the transactions that ended (0: none)."""
        return int(await self.pool.fetchval(
            """SELECT coalesce(max(event_id), 0) FROM outbox
               WHERE txid < pg_snapshot_xmin(pg_current_snapshot())""") or 0)

    async def pending(self, upto_event: int) -> int:
        """Events up to `upto_event` not consumed yet."""
        return int(await self.pool.fetchval(
            """SELECT count(*) FROM outbox o, outbox_consumers c
               WHERE c.name = $1 AND o.event_id <= $2
                 AND (o.txid, o.event_id) > (c.last_txid, c.last_event_id)""",
            self.name, upto_event))

    # -- the clock watermark ---------------------------------------------------------------
    async def watermark(self, conn: Conn) -> tuple[datetime | None, datetime] | None:
        """(deals checked until, PostgreSQL's now); None when there is no position."""
        row = await conn.fetchrow(
            "SELECT deals_checked_until, now() AS now FROM outbox_consumers WHERE name = $1",
            self.name)
        return None if row is None else (row["deals_checked_until"], row["now"])

    async def set_watermark(self, conn: Conn, upto: datetime) -> None:
        await conn.execute(
            "UPDATE outbox_consumers SET deals_checked_until = $2 WHERE name = $1",
            self.name, upto)
