"""The slot map in PostgreSQL: which inventory partition owns each hash slot.

Read by every inventory client (routing) and partition (what it owns); changed only by
`InventoryStore.hand_over`, the owner handing its own slots over. A rebalance holds an
advisory lock, so that two of them never plan from the same map.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator

import asyncpg

from adapters.postgres import connect
from domain.errors import Conflict
from domain.inventory_slots import SLOTS, initial_owners

_REBALANCE_LOCK = 0x61_69_73_6C_65_73  # "aisles": one rebalance at a time, per database


class RebalanceUnderWay(Conflict):
    def __init__(self) -> None:
        super().__init__("another rebalance of the inventory partitions is under way",
                         code="rebalance_under_way")


async def owners(conn: asyncpg.Connection) -> list[int]:
    """slot -> partition, or [] before the map is made."""
    rows = await conn.fetch("SELECT slot, partition FROM inventory_slots ORDER BY slot")
    if len(rows) != SLOTS:
        return []
    return [int(r["partition"]) for r in rows]


async def ensure(conn: asyncpg.Connection, partitions: int) -> list[int]:
    """The map; made for `partitions` partitions if there is none yet (the first client of a
    database; concurrent first clients agree: one makes it, the others read it)."""
    found = await owners(conn)
    if found:
        return found
    async with conn.transaction():
        await conn.execute("LOCK TABLE inventory_slots IN SHARE ROW EXCLUSIVE MODE")
        if await conn.fetchval("SELECT count(*) FROM inventory_slots") == 0:
            await conn.execute(
                "INSERT INTO inventory_slots (slot, partition) "
                "SELECT s - 1, p FROM unnest($1::int[]) WITH ORDINALITY AS u(p, s)",
                initial_owners(partitions))
    return await owners(conn)


async def read_map(dsn: str, partitions_if_new: int) -> list[int]:
    conn = await connect(dsn, server_settings={"application_name": "aisle-inventory-map"})
    try:
        return await ensure(conn, partitions_if_new)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def rebalancing(dsn: str) -> AsyncIterator[None]:
    """Held for a whole rebalance; RebalanceUnderWay (409) if another one holds it."""
    conn = await connect(dsn, server_settings={"application_name": "aisle-inventory-rebalance"})
    try:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", _REBALANCE_LOCK):
            raise RebalanceUnderWay()
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", _REBALANCE_LOCK)
    finally:
        await conn.close()


@dataclasses.dataclass(frozen=True)
class SlotMove:
    """One handoff as recorded."""

    source: int
    target: int
    slots: int
    moved_at: str  # ISO 8601


async def moves(dsn: str, limit: int = 50) -> list[SlotMove]:
    """The latest handoffs, newest first."""
    conn = await connect(dsn)
    try:
        rows = await conn.fetch(
            "SELECT source, target, slots, moved_at FROM inventory_slot_moves "
            "ORDER BY move_id DESC LIMIT $1", limit)
    finally:
        await conn.close()
    return [SlotMove(r["source"], r["target"], r["slots"], r["moved_at"].isoformat())
            for r in rows]
