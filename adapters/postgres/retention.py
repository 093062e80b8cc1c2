"""Retention: the records that only grow, pruned once they can no longer be asked for.

What is pruned, once older than the retention (`AISLE_RETENTION_DAYS`):
- `reservations` closed (committed, released or expired) that no shopper cart still holds,
  with `inventory_ops` (the outcomes a replayed key is answered with) and `cart_decisions`
  of carts none of whose reservations is open: a key replayed after that is a new request;
- `idempotency_keys` of the internal API (the same window, so a key reused with another
  request is told so as long as its outcome is remembered);
- `outbox` events every consumer has consumed;
- `jobs` that ended.
Kept: the stock ledger (`inventory_movements`), prices' history and audit, accepted quotes,
experiments' events; they are the shop's records, exported or dropped by its own policy.

One pruner at a time per database (an advisory lock): every Gateway replica runs the hourly
pass (`prune_every`), and one of them does it. Each table is one statement (its own
transaction): rows that old are read and written by nobody, so it locks nothing anyone waits
for.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import asyncpg

from adapters.settings import MIN_RETENTION_DAYS
from domain.errors import Conflict

log = logging.getLogger("aisle.retention")

PRUNE_LOCK = 0x61_69_73_6C_65_70  # one pruner at a time, per database

_STATEMENTS: dict[str, str] = {
    "reservations": """
        DELETE FROM reservations r
        WHERE r.status <> 'OPEN' AND r.updated_at < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM shopper_cart_holds h
                          WHERE h.reservation_id = r.reservation_id)""",
    "inventory_ops": """
        DELETE FROM inventory_ops WHERE created_at < now() - make_interval(secs => $1)""",
    "cart_decisions": """
        DELETE FROM cart_decisions d
        WHERE d.decided_at < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM reservations r
                          WHERE r.cart_id = d.cart_id AND r.status = 'OPEN')""",
    "idempotency_keys": """
        DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(secs => $1)""",
    # consumed by every consumer; with no consumer yet, nothing is
    "outbox": """
        DELETE FROM outbox o
        WHERE o.created_at < now() - make_interval(secs => $1)
          AND EXISTS (SELECT 1 FROM outbox_consumers)
          AND NOT EXISTS (SELECT 1 FROM outbox_consumers c
                          WHERE (o.txid, o.event_id) > (c.last_txid, c.last_event_id))""",
    "jobs": """
        DELETE FROM jobs
        WHERE status <> 'running' AND finished_at < now() - make_interval(secs => $1)""",
}


class PruneUnderWay(Conflict):
    def __init__(self) -> None:
        super().__init__("another replica is pruning this database now", code="prune_under_way")


@dataclasses.dataclass(frozen=True, slots=True)
class Pruned:
    """Rows removed, by table."""

    reservations: int
    inventory_ops: int
    cart_decisions: int
    idempotency_keys: int
    outbox: int
    jobs: int

    def to_json(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @property
    def total(self) -> int:
        return sum(self.to_json().values())


def _count(status: str) -> int:
    """Rows a DELETE's status ("DELETE 12") names."""
    return int(status.rsplit(" ", 1)[-1])


async def prune(pool: asyncpg.Pool, keep_s: float) -> Pruned:
    """Removes what is older than `keep_s` seconds (see the module); PruneUnderWay (409)
    when another pruner holds the lock (nothing is done here: it does the same)."""
    if keep_s < MIN_RETENTION_DAYS * 86400:
        raise ValueError(f"retention under {MIN_RETENTION_DAYS} days: {keep_s} s")
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PRUNE_LOCK):
            raise PruneUnderWay()
        try:
            counts = {table: _count(await conn.execute(sql, float(keep_s)))
                      for table, sql in _STATEMENTS.items()}
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", PRUNE_LOCK)
    return Pruned(**counts)


async def prune_every(pool: asyncpg.Pool, keep_s: float, every_s: float) -> None:
    """`prune` every `every_s` seconds, the first pass one period after the start (a
    restart does not prune at once); a failed pass is logged and tried again next period."""
    while True:
        await asyncio.sleep(every_s)
        try:
            pruned = await prune(pool, keep_s)
        except PruneUnderWay:  # another replica's pass
            continue
        except Exception as exc:  # the database may be down: the next pass catches up
            log.warning("pruning failed: %r", exc)
            continue
        if pruned.total:
            log.info("pruned %s", pruned.to_json())
