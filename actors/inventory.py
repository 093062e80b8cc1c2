"""InventoryPartition: a Ray actor owning the stock of the variants that hash to it.

A thin shell around `domain.inventory.PartitionState`. Operations queue in an inbox; one loop
takes a batch, loads what it lacks (variants, reservations, outcomes of already-decided keys),
decides every operation synchronously (no await between check and change), commits the whole
batch in one PostgreSQL transaction, and only then answers the callers. If the commit fails,
every caller of the batch gets a retryable error and the actor rebuilds its state from
PostgreSQL: a batch is applied whole or not at all. On (re)start, state comes from PostgreSQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from typing import Any

import asyncpg
import ray

from adapters.postgres import create_pool
from adapters.postgres.inventory_store import InventoryStore
from domain.errors import AisleError
from domain.ids import wall_clock_ms
from domain.inventory import Item, PartitionState, error_to_json

log = logging.getLogger("aisle.inventory")
RECENT_KEYS = 200_000


class CommitFailed(RuntimeError):
    """The batch holding this operation was not committed: retry with the same key."""


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0, max_concurrency=10_000)  # type: ignore[call-overload]
class InventoryPartition:
    async def __init__(  # type: ignore[misc]  # Ray awaits an async constructor
        self, partition: int, dsn: str, low_stock_threshold: int = 5,
                       max_batch: int = 1024) -> None:
        # No I/O here: a constructor that raises leaves the actor dead for good (Ray does not
        # restart it). Connecting and rebuilding happen in the loop, retried until they work;
        # calls queue in the inbox meanwhile.
        self.partition = partition
        self.dsn = dsn
        self.low = low_stock_threshold
        self.max_batch = max_batch
        self.pool: asyncpg.Pool | None = None
        self.state = PartitionState(wall_clock_ms, self.low)
        self.recent: dict[str, dict[str, Any]] = {}
        self.inbox: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self.wake = asyncio.Event()
        self.commits = 0
        self.failed_batches = 0
        self.recoveries = 0
        self._loop = asyncio.get_running_loop().create_task(self._run())
        self._loop.add_done_callback(_exit_when_loop_ends)

    async def _recover(self) -> None:
        if self.pool is None:
            self.pool = await create_pool(
                self.dsn, min_size=1, max_size=2,
                server_settings={"application_name": f"aisle-inventory-{self.partition}"})
            self.store = InventoryStore(self.pool, self.partition)
        state = PartitionState(wall_clock_ms, self.low)
        state.warehouses = await self.store.warehouses()
        opened = await self.store.open_reservations()
        variants = {v for r in opened for v, _, _ in r.lines}
        for v, rows in (await self.store.load_variants(list(variants))).items():
            state.load_variant(v, rows)
        for r in opened:
            state.load_reservation(r)
        self.state = state
        self.recent = {}

    async def call(self, op: dict[str, Any]) -> dict[str, Any]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.inbox.append((op, fut))
        self.wake.set()
        return await fut

    async def stats(self) -> dict[str, int]:
        return {"commits": self.commits, "failed_batches": self.failed_batches,
                "recoveries": self.recoveries, "variants": len(self.state.stock),
                "open_reservations": sum(r.status == "OPEN"
                                         for r in self.state.reservations.values())}

    async def _run(self) -> None:
        await self._recover_until_ok()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=0.5)
            self.wake.clear()
            batch, self.inbox = self.inbox[: self.max_batch], self.inbox[self.max_batch:]
            if self.inbox:
                self.wake.set()
            try:
                await self._process(batch)
            except Exception as exc:
                self.failed_batches += 1
                log.warning("partition %d: batch of %d failed: %r", self.partition,
                            len(batch), exc)
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(CommitFailed(f"not committed: {exc!r}"))
                await self._recover_until_ok()

    async def _recover_until_ok(self) -> None:
        delay = 0.05
        while True:
            try:
                await self._recover()
                self.recoveries += 1
                return
            except Exception as exc:
                log.warning("partition %d: recovery failed: %r", self.partition, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _process(self, batch: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        st = self.state
        writes = [op for op, _ in batch if op["op"] != "read"]
        unknown = [op["key"] for op in writes if op["key"] not in self.recent]
        if unknown:
            self.recent.update(await self.store.decided(unknown))
        need_r = [op["reservation_id"] for op in writes if "reservation_id" in op
                  and op["reservation_id"] not in st.reservations]
        need_v = {int(v) for op, _ in batch for v in _variants_of(op)}
        if need_r:
            for r in await self.store.reservations(need_r):
                st.load_reservation(r)
                need_v.update(v for v, _, _ in r.lines)
        need_v = {v for v in need_v if not st.knows(v)}
        if need_v:
            for v, rows in (await self.store.load_variants(sorted(need_v))).items():
                st.load_variant(v, rows)
        # -- decide: synchronous from here to the commit ------------------------------------
        outcomes: dict[str, dict[str, Any]] = {}
        for op, _ in batch:
            if op["op"] != "read" and op["key"] not in self.recent and op["key"] not in outcomes:
                outcomes[op["key"]] = self._decide(op)
        st.expire()
        changes = st.drain()
        if outcomes or changes.movements:
            await self.store.commit(changes, outcomes)
            self.commits += 1
        self.recent.update(outcomes)
        if len(self.recent) > RECENT_KEYS:
            for k in list(self.recent)[: RECENT_KEYS // 2]:
                del self.recent[k]
        for op, fut in batch:
            if not fut.done():
                fut.set_result(self._read(op) if op["op"] == "read" else self.recent[op["key"]])

    def _decide(self, op: dict[str, Any]) -> dict[str, Any]:
        st = self.state
        try:
            kind = op["op"]
            if kind == "reserve":
                items = [Item(int(v), int(q), w) for v, q, w in op["items"]]
                rid = op.get("reservation_id") or uuid.uuid4().hex
                value: Any = st.reserve(rid, items, int(op["ttl_ms"]), op.get("cart_id")).to_json()
            elif kind == "release":
                value = st.release(op["reservation_id"]).to_json()
            elif kind == "deduct":
                value = st.deduct(op["reservation_id"]).to_json()
            elif kind == "adjust":
                s = st.adjust(int(op["variant_id"]), op["warehouse_id"], int(op["delta"]),
                              op["reason"])
                value = {"available": s.available, "reserved": s.reserved, "sold": s.sold}
            else:
                raise ValueError(f"unknown operation {kind!r}")
            return {"ok": True, "value": value}
        except AisleError as exc:
            return {"ok": False, "error": error_to_json(exc)}

    def _read(self, op: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for v in op["variant_ids"]:
            v = int(v)
            if not self.state.knows(v):
                continue
            status, hint = self.state.status(v)
            rows = self.state.stock[v]
            out[str(v)] = {
                "status": status, "quantity_hint": hint,
                "available": sum(s.available for s in rows.values()),
                "warehouses": {w: {"available": s.available, "reserved": s.reserved,
                                   "sold": s.sold, "version": s.version}
                               for w, s in sorted(rows.items())},
            }
        return {"ok": True, "value": out}


def _exit_when_loop_ends(task: asyncio.Task[None]) -> None:
    """The loop never ends by itself; if it does, the process exits and Ray restarts the
    actor, which rebuilds from PostgreSQL (better than an actor that queues calls forever)."""
    log.error("inventory loop ended: %r; exiting so that Ray restarts the actor",
              None if task.cancelled() else task.exception())
    os._exit(1)


def _variants_of(op: dict[str, Any]) -> list[int]:
    if op["op"] == "reserve":
        return [int(v) for v, _, _ in op["items"]]
    if op["op"] == "adjust":
        return [int(op["variant_id"])]
    if op["op"] == "read":
        return [int(v) for v in op["variant_ids"]]
    return []
