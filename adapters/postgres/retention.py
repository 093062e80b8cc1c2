"""Retention: the records that only grow, pruned once they can no longer be asked for.

What is pruned, once older than the retention (`AISLE_RETENTION_DAYS`):
- `shopper_carts` abandoned: open, untouched for that long, holding nothing (every hold run
  out; no unit sold, no price accepted by a checkout that has not finished), with their
  run-out holds; checked-out carts are orders and are kept. A shopper who comes back with
  such a cart's cookie is told 404 and the shop makes a new cart;
- `reservations` closed (committed, released or expired) that no shopper cart holds unsold,
  with `inventory_ops` (the outcomes a replayed key is answered with) and `cart_decisions`
  of carts none of whose reservations is open: a key replayed after that is a new request;
- `idempotency_keys` of the internal API, a reservation's life later (the longest, 7 days):
  a reserve's outcome is its reservation, pruned up to that long after the key's first use,
  so a key reused with another request is told so (422) as long as its outcome is
  remembered;
- `outbox` events every consumer has consumed;
- `jobs` that ended.
Kept: the stock ledger (`inventory_movements`), prices' history and audit, accepted quotes,
experiments' events; they are the shop's records, exported or dropped by its own policy.

One pruner at a time per database (an advisory lock): every Gateway replica runs the hourly
pass (`prune_every`), and one of them does it. A table is pruned BATCH rows a statement
(each its own short transaction, whatever the backlog): rows that old are read and written by
nobody, so it locks nothing anyone waits for. A table that fails (a timeout) is reported and
the others are pruned all the same.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Mapping

import asyncpg

from adapters.settings import MAX_RESERVATION_TTL_S, MIN_RETENTION_DAYS
from domain.errors import Conflict

log = logging.getLogger("aisle.retention")

PRUNE_LOCK = 0x61_69_73_6C_65_70  # one pruner at a time, per database

# each finds up to $2 rows older than $1 seconds; a pass deletes a table's batch after batch
_OLD: dict[str, str] = {
    # first: the reservations its run-out holds kept are then pruned in the same pass
    # a checkout under way (a price accepted, a unit sold even where the cart has not
    # recorded it: a commit whose answer was lost) keeps its cart
    "shopper_carts": """
        SELECT c.ctid FROM shopper_carts c
        WHERE c.status = 'OPEN' AND c.updated_at < now() - make_interval(secs => $1)
          AND (c.busy_until IS NULL OR c.busy_until < now())
          AND NOT EXISTS (SELECT 1 FROM shopper_cart_holds h
                          WHERE h.cart_id = c.cart_id
                            AND (h.committed_at IS NOT NULL OR h.expires_at > now()
                                 OR EXISTS (SELECT 1 FROM reservations r
                                            WHERE r.cart_id = h.reservation_id
                                              AND r.status = 'COMMITTED')))
          AND NOT EXISTS (SELECT 1 FROM accepted_quotes q
                          WHERE q.reservation_id = 'shopcart:' || c.cart_id)
        LIMIT $2""",
    "reservations": """
        SELECT r.ctid FROM reservations r
        WHERE r.status <> 'OPEN' AND r.updated_at < now() - make_interval(secs => $1)
          -- a cart's hold not yet recorded as sold may still be committed (a checkout
          -- finishing): its reservation stays; a sold one's is not read again. (Holds name
          -- the id reserve answered: the reservation rows' cart_id)
          AND NOT EXISTS (SELECT 1 FROM shopper_cart_holds h
                          WHERE h.reservation_id IN (r.cart_id, r.reservation_id)
                            AND h.committed_at IS NULL)
        LIMIT $2""",
    "inventory_ops": """
        SELECT ctid FROM inventory_ops
        WHERE created_at < now() - make_interval(secs => $1) LIMIT $2""",
    "cart_decisions": """
        SELECT d.ctid FROM cart_decisions d
        WHERE d.decided_at < now() - make_interval(secs => $1)
          AND NOT EXISTS (SELECT 1 FROM reservations r
                          WHERE r.cart_id = d.cart_id AND r.status = 'OPEN') LIMIT $2""",
    "idempotency_keys": f"""
        SELECT ctid FROM idempotency_keys
        WHERE created_at < now() - make_interval(secs => $1)
                                 - make_interval(secs => {MAX_RESERVATION_TTL_S})
        LIMIT $2""",
    # consumed by every consumer; with no consumer yet, nothing is
    "outbox": """
        SELECT o.ctid FROM outbox o
        WHERE o.created_at < now() - make_interval(secs => $1)
          AND EXISTS (SELECT 1 FROM outbox_consumers)
          AND NOT EXISTS (SELECT 1 FROM outbox_consumers c
                          WHERE (o.txid, o.event_id) > (c.last_txid, c.last_event_id))
        LIMIT $2""",
    "jobs": """
        SELECT ctid FROM jobs
        WHERE status <> 'running' AND finished_at < now() - make_interval(secs => $1)
        LIMIT $2""",
}
BATCH = 10_000  # rows a statement deletes (a short transaction, whatever the backlog)
STATEMENT_S = 120.0


class PruneUnderWay(Conflict):
    def __init__(self) -> None:
        super().__init__("another pass is pruning this database now", code="prune_under_way")


@dataclasses.dataclass(frozen=True, slots=True)
class Pruned:
    """Rows removed, by table; `failed`: the tables a pass could not finish, and why (the
    others were pruned all the same)."""

    shopper_carts: int
    reservations: int
    inventory_ops: int
    cart_decisions: int
    idempotency_keys: int
    outbox: int
    jobs: int
    failed: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {t: getattr(self, t) for t in _OLD}
        return out | ({"failed": dict(self.failed)} if self.failed else {})

    @property
    def total(self) -> int:
        return sum(int(getattr(self, t)) for t in _OLD)


def _count(status: str) -> int:
    """Rows a DELETE's status ("DELETE 12") names."""
    return int(status.rsplit(" ", 1)[-1])


async def prune(pool: asyncpg.Pool, keep_s: float, batch: int = BATCH) -> Pruned:
    """Removes what is older than `keep_s` seconds (see the module), `batch` rows a
    statement; PruneUnderWay (409) when another pruner holds the lock (nothing is done
    here: it does the same)."""
    if keep_s < MIN_RETENTION_DAYS * 86400:
        raise ValueError(f"retention under {MIN_RETENTION_DAYS} days: {keep_s} s")
    counts = dict.fromkeys(_OLD, 0)
    failed: dict[str, str] = {}
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PRUNE_LOCK):
            raise PruneUnderWay()
        try:
            for table, old in _OLD.items():
                try:
                    while True:
                        n = _count(await conn.execute(
                            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY({old}))",
                            float(keep_s), batch, timeout=STATEMENT_S))
                        counts[table] += n
                        if n < batch:
                            break
                except (asyncpg.PostgresError, TimeoutError) as exc:  # the next table's turn
                    log.warning("pruning %s stopped: %r", table, exc)
                    failed[table] = f"{type(exc).__name__}: {exc}"[:300]
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", PRUNE_LOCK)
    return Pruned(**counts, failed=failed)


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
