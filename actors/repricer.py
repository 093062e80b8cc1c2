"""The dynamic-pricing actor: every `interval_s` it runs one pass over the enabled rules
(adapters.postgres.pricing_repo.reprice, a page at a time): each price moves within its floor
and ceiling from stock and recent sales, and every change is written with its price history
row and a `price.changed` outbox event in one transaction (search and product pages follow
the event). One actor per database (named, detached); a pass that fails is logged and the next
tick tries again. A price changed by its seller meanwhile is left alone (compare-and-set).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TypedDict

import asyncpg
import ray
from ray.actor import ActorHandle

from actors import database_tag, named
from adapters.postgres import create_pool
from adapters.postgres.pricing_repo import reprice

log = logging.getLogger("aisle.repricer")
PAGE = 500


class RepricedJson(TypedDict):
    variant_id: str
    old_cents: int
    new_cents: int


@ray.remote(max_restarts=-1, num_cpus=0)
class Repricer:
    async def __init__(self, dsn: str, interval_s: float) -> None:  # type: ignore[misc]
        self.dsn = dsn
        self.interval_s = interval_s
        self.pool: asyncpg.Pool | None = None
        self.passes = 0
        self.changes = 0
        self.failures = 0
        self._lock = asyncio.Lock()
        self._loop = (asyncio.get_running_loop().create_task(self._run())
                      if interval_s > 0 else None)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            with contextlib.suppress(Exception):
                await self.run_pass()

    async def run_pass(self) -> dict[str, list[RepricedJson]]:
        """One pass over every rule now (also what operators and tests call)."""
        async with self._lock:
            try:
                if self.pool is None:
                    self.pool = await create_pool(self.dsn, min_size=1, max_size=2)
                now = datetime.now(UTC)
                changed: list[RepricedJson] = []
                cursor: int | None = 0
                while cursor is not None:
                    async with self.pool.acquire() as conn:
                        page, cursor = await reprice(conn, now, cursor, PAGE)
                    changed += [{"variant_id": str(c.variant_id), "old_cents": c.old_cents,
                                 "new_cents": c.new_cents} for c in page]
            except Exception:
                self.failures += 1
                log.exception("dynamic pricing pass failed")
                raise
            self.passes += 1
            self.changes += len(changed)
            return {"changed": changed}

    async def stats(self) -> dict[str, int]:
        return {"passes": self.passes, "changes": self.changes, "failures": self.failures}


def repricer_actor(dsn: str, interval_s: float) -> ActorHandle:
    return named(Repricer, f"repricer-{database_tag(dsn)}").remote(dsn, interval_s)
