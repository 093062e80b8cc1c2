"""Snowflake worker ids leased through PostgreSQL advisory locks.

A worker id is `(snowflake_node << 5) | slot`: the node comes from config (AISLE_SNOWFLAKE_NODE),
the slot (0..31) is leased by holding a session advisory lock on a dedicated connection for as
long as the process issues ids. Two live processes can therefore never share a worker id; a
process that dies releases its slot with its connection.
"""

from __future__ import annotations

import asyncpg

from adapters.postgres import connect
from domain.ids import SnowflakeGenerator

_LOCK_NAMESPACE = 0x534E  # "SN"
SLOTS = 32


class WorkerIdsExhausted(RuntimeError):
    pass


class LeasedSnowflake:
    """A SnowflakeGenerator whose worker id is held by an advisory lock.

    Writers call `ensure()` first: if the lease's connection was lost (PostgreSQL restart,
    failover) a new slot is leased before any further id is issued.
    """

    def __init__(self, conn: asyncpg.Connection, generator: SnowflakeGenerator,
                 dsn: str = "", node: int = 0) -> None:
        self._conn = conn
        self.generator = generator
        self._dsn = dsn
        self._node = node

    @property
    def held(self) -> bool:
        return not self._conn.is_closed()

    async def ensure(self) -> None:
        if self.held or not self._dsn:
            return
        fresh = await lease_snowflake(self._dsn, self._node)
        self._conn, self.generator = fresh._conn, fresh.generator

    @property
    def worker_id(self) -> int:
        return self.generator.worker_id

    def _check(self) -> None:
        if self._conn.is_closed():
            raise RuntimeError("snowflake worker lease lost (its connection closed)")

    def next_id(self) -> int:
        self._check()
        return self.generator.next_id()

    def next_block(self, n: int):  # type: ignore[no-untyped-def]
        self._check()
        return self.generator.next_block(n)

    async def close(self) -> None:
        if not self._conn.is_closed():
            await self._conn.close()


async def lease_snowflake(dsn: str, node: int) -> LeasedSnowflake:
    conn = await connect(dsn)
    try:
        for slot in range(SLOTS):
            worker_id = (node << 5) | slot
            if await conn.fetchval(
                "SELECT pg_try_advisory_lock($1, $2)", _LOCK_NAMESPACE, worker_id
            ):
                return LeasedSnowflake(conn, SnowflakeGenerator(worker_id), dsn, node)
    except BaseException:
        await conn.close()
        raise
    await conn.close()
    raise WorkerIdsExhausted(f"all {SLOTS} snowflake slots of node {node} are in use")
