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
import collections
import contextlib
import logging
import os
import uuid
from typing import Any

import ray

from adapters import stock_cache
from adapters.postgres.inventory_store import InventoryStore
from adapters.redis import create_redis
from domain.errors import AisleError, ValidationFailed
from domain.ids import wall_clock_ms
from domain.inventory import Item, PartitionState, ReservationNotFound, error_to_json

log = logging.getLogger("aisle.inventory")
RECENT_KEYS = 200_000
LOOKUP_AFTER_RECOVERY_MS = 60_000
_READS = {"read", "get"}
_NOT_REMEMBERED = {"validation_failed", "unknown_variant", "reservation_not_found"}


class CommitFailed(RuntimeError):
    """The batch holding this operation was not committed: retry with the same key."""


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0, max_concurrency=10_000)  # type: ignore[call-overload]
class InventoryPartition:
    async def __init__(  # type: ignore[misc]  # Ray awaits an async constructor
        self, partition: int, dsn: str, low_stock_threshold: int = 5,
        max_batch: int = 1024, redis_url: str | None = None) -> None:
        # No I/O here: a constructor that raises leaves the actor dead for good (Ray does not
        # restart it). Connecting and rebuilding happen in the loop, retried until they work;
        # calls queue in the inbox meanwhile.
        self.partition = partition
        self.dsn = dsn
        self.low = low_stock_threshold
        self.max_batch = max_batch
        self.store = InventoryStore(dsn, partition)
        self.redis = create_redis(redis_url) if redis_url else None
        self.unpublished: set[int] = set()  # variants whose Redis snapshot is behind
        self._quiet_until = 0  # after a Redis failure, publishing pauses for a second
        self.state = PartitionState(wall_clock_ms, self.low)
        self.recent: dict[str, dict[str, Any]] = {}
        self.inbox: list[tuple[dict[str, Any], asyncio.Future[dict[str, Any]]]] = []
        self.wake = asyncio.Event()
        self.commits = 0
        self.failed_batches = 0
        self.lookup_until = 0
        self._publishing: asyncio.Task[None] | None = None
        # publish times in order, to re-publish every snapshot before Redis expires it: a
        # variant whose snapshot is missing costs every search that shows it a call here
        self._published: collections.OrderedDict[int, int] = collections.OrderedDict()
        self.recoveries = 0
        self._loop = asyncio.get_running_loop().create_task(self._run())
        self._loop.add_done_callback(_exit_when_loop_ends)

    async def _recover(self) -> None:
        await self.store.reconnect()
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
        self.unpublished = set(state.stock)

    async def call(self, op: dict[str, Any]) -> dict[str, Any]:
        fut: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.inbox.append((op, fut))
        self.wake.set()
        return await fut

    async def call_many(self, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Several callers' operations in one Ray call (the client coalesces them): each
        gets its own outcome; one whose batch was not committed gets {"retry": ...}."""
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[dict[str, Any]]] = []
        for op in ops:
            fut: asyncio.Future[dict[str, Any]] = loop.create_future()
            self.inbox.append((op, fut))
            futs.append(fut)
        self.wake.set()
        done = await asyncio.gather(*futs, return_exceptions=True)
        return [d if isinstance(d, dict) else {"ok": False, "retry": repr(d)} for d in done]

    async def forget_decided(self) -> None:
        """Drops the memory of decided keys and ends the look-up window, as if they were long
        past: a replayed key must then be caught by inventory_ops' primary key (tests)."""
        self.recent = {}
        self.lookup_until = 0

    async def age_snapshots(self, seconds: float) -> None:
        """As if every Redis snapshot had been published `seconds` earlier (tests)."""
        shift = int(seconds * 1000)
        for v in self._published:
            self._published[v] -= shift

    async def stats(self) -> dict[str, int]:
        return {"commits": self.commits, "failed_batches": self.failed_batches,
                "recoveries": self.recoveries, "variants": len(self.state.stock),
                "open_reservations": sum(r.status == "OPEN"
                                         for r in self.state.reservations.values())}

    async def _run(self) -> None:
        await self._recover_until_ok()
        if not ray.get_runtime_context().was_current_actor_reconstructed:
            self.lookup_until = 0  # a new actor: no call of ours can be in flight
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
                self.lookup_until = wall_clock_ms() + LOOKUP_AFTER_RECOVERY_MS
                return
            except Exception as exc:
                log.warning("partition %d: recovery failed: %r", self.partition, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _process(self, batch: list[tuple[dict[str, Any], asyncio.Future[Any]]]) -> None:
        st = self.state
        writes = [op for op, _ in batch if op["op"] not in _READS]
        # Keys not in `recent` are looked up in PostgreSQL only for a while after a recovery,
        # when retries of calls in flight arrive. Otherwise a key decided long ago (or one
        # evicted from `recent`) makes the commit fail on inventory_ops' primary key: the
        # batch rolls back whole, the actor recovers and the callers retry, looked up.
        if wall_clock_ms() < self.lookup_until:
            unknown = {op["key"]: op.get("reservation_id") if op["op"] == "reserve" else None
                       for op in writes if op["key"] not in self.recent}
            if unknown:
                self.recent.update(await self.store.decided(unknown))
        # a reserve's id is new (it derives from its key, which `decided` covers): only closes
        # and gets look reservations up
        need_r = [op["reservation_id"] for op, _ in batch if op["op"] != "reserve"
                  and "reservation_id" in op and op["reservation_id"] not in st.reservations]
        need_v = {int(v) for op, _ in batch for v in _variants_of(op)}
        if need_r:
            for r in await self.store.reservations(need_r):
                st.load_reservation(r)
                need_v.update(v for v, _, _ in r.lines)
        need_v = {v for v in need_v if not st.knows(v)}
        if need_v:
            for v, rows in (await self.store.load_variants(sorted(need_v))).items():
                st.load_variant(v, rows)
                self.unpublished.add(v)
        if any(w is not None and w not in st.warehouses for op in writes
               for w in _warehouses_of(op)):
            st.warehouses = await self.store.warehouses()  # one added since we loaded them
        # -- decide: synchronous from here to the commit ------------------------------------
        outcomes: dict[str, dict[str, Any]] = {}
        reserved_ok: set[str] = set()
        for op, _ in batch:
            if op["op"] not in _READS and op["key"] not in self.recent \
                    and op["key"] not in outcomes:
                outcomes[op["key"]] = outcome = self._decide(op)
                if op["op"] == "reserve" and outcome["ok"]:
                    reserved_ok.add(op["key"])
        st.expire()
        changes = st.drain()
        # refusals that depend on the request's content rather than on stock (bad input, no
        # such variant or reservation) are answered but not remembered: the same key with a
        # corrected request is decided afresh
        durable = {k: o for k, o in outcomes.items() if o["ok"]
                   or o["error"]["code"] not in _NOT_REMEMBERED}
        if durable or changes.movements:
            # a successful reserve is recorded by its reservation row (its id derives from
            # the key): inventory_ops keeps the other outcomes
            await self.store.commit(changes, {k: o for k, o in durable.items()
                                              if k not in reserved_ok})
            self.commits += 1
        self.recent.update(durable)
        if len(self.recent) > RECENT_KEYS:
            for k in list(self.recent)[: RECENT_KEYS // 2]:
                del self.recent[k]
        for op, fut in batch:
            if not fut.done():
                fut.set_result(self._read(op) if op["op"] in _READS
                               else outcomes.get(op["key"]) or self.recent[op["key"]])
        self.unpublished.update(v for v, _ in changes.stock)
        self._refresh_due()
        self._publish()

    def _refresh_due(self) -> None:
        """Snapshots published more than half their Redis lifetime ago are published again
        (in publish order: amortized O(1) per variant)."""
        due = wall_clock_ms() - stock_cache.TTL_S * 500
        published = self._published
        while published:
            v, at = next(iter(published.items()))
            if at >= due:
                break
            del published[v]
            if self.state.knows(v):
                self.unpublished.add(v)

    def _publish(self) -> None:
        """Committed status of changed variants to Redis, for shoppers' reads. The snapshot
        is taken now (right after a commit: committed state); the write goes in the
        background, one at a time, in order. Best effort: on failure the variants stay
        pending and go with a later batch (the loop ticks at least every 0.5 s)."""
        if self.redis is None or not self.unpublished or wall_clock_ms() < self._quiet_until:
            return
        if self._publishing is not None and not self._publishing.done():
            return
        todo, self.unpublished = self.unpublished, set()
        now = wall_clock_ms()
        for v in todo:  # oldest publish first; one entry per variant
            self._published[v] = now
            self._published.move_to_end(v)
        snaps = {}
        for v in todo:
            if self.state.knows(v):
                status, hint = self.state.status(v)
                snaps[v] = {"status": status, "quantity_hint": hint,
                            "available": sum(s.available for s in self.state.stock[v].values())}
        self._publishing = asyncio.get_running_loop().create_task(self._write(snaps))

    async def _write(self, snaps: dict[int, dict[str, Any]]) -> None:
        assert self.redis is not None
        try:
            await asyncio.wait_for(stock_cache.publish(self.redis, snaps), 0.5)
        except Exception as exc:  # Redis is a cache: never fail or stall the partition for it
            log.warning("partition %d: stock snapshot not published: %r", self.partition, exc)
            self.unpublished |= set(snaps)
            self._quiet_until = wall_clock_ms() + 1000

    def _decide(self, op: dict[str, Any]) -> dict[str, Any]:
        st = self.state
        try:
            kind = op["op"]
            if kind == "reserve":
                rid = op.get("reservation_id") or uuid.uuid4().hex
                if rid in st.reservations:  # a replay: the reservation is its outcome
                    return {"ok": True, "value": st.reservations[rid].to_json()}
                items = [Item(int(v), int(q), w) for v, q, w in op["items"]]
                value: Any = st.reserve(rid, items, int(op["ttl_ms"]), op.get("cart_id")).to_json()
            elif kind in ("release", "deduct"):
                if "variant_id" in op:
                    _check_holds(st, op["reservation_id"], int(op["variant_id"]),
                                 op.get("quantity"))
                r = (st.release if kind == "release" else st.deduct)(op["reservation_id"])
                value = r.to_json()
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
        if op["op"] == "get":
            r = self.state.reservations.get(op["reservation_id"])
            if r is None:
                return {"ok": False, "error": error_to_json(ReservationNotFound(
                    f"reservation {op['reservation_id']} not found"))}
            return {"ok": True, "value": r.to_json()}
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


def _check_holds(st: PartitionState, reservation_id: str, variant_id: int,
                 quantity: int | None) -> None:
    """For a close that names a variant: the reservation must hold it (and that many units)."""
    r = st.reservations.get(reservation_id)
    if r is None:
        return  # the close itself reports it
    held = sum(q for v, _, q in r.lines if v == variant_id)
    if held == 0:
        raise ValidationFailed({"reservation_id": f"does not hold variant {variant_id}"})
    if quantity is not None and quantity != held:
        raise ValidationFailed({"quantity_delta": f"the reservation holds {held} units of this "
                                "variant; it is released or deducted whole"})


def _exit_when_loop_ends(task: asyncio.Task[None]) -> None:
    """The loop never ends by itself; if it does, the process exits and Ray restarts the
    actor, which rebuilds from PostgreSQL (better than an actor that queues calls forever)."""
    log.error("inventory loop ended: %r; exiting so that Ray restarts the actor",
              None if task.cancelled() else task.exception())
    os._exit(1)


def _warehouses_of(op: dict[str, Any]) -> list[str | None]:
    if op["op"] == "reserve":
        return [w for _, _, w in op["items"]]
    if op["op"] == "adjust":
        return [op["warehouse_id"]]
    return []


def _variants_of(op: dict[str, Any]) -> list[int]:
    if op["op"] == "reserve":
        return [int(v) for v, _, _ in op["items"]]
    if op["op"] == "adjust":
        return [int(op["variant_id"])]
    if op["op"] == "read":
        return [int(v) for v in op["variant_ids"]]
    return []
