"""InventoryPartition: a Ray actor owning the stock of the variants that hash to it.

A thin shell around `domain.inventory.PartitionState`. Operations queue in an inbox; one loop
takes a batch, loads what it lacks (variants, reservations, outcomes of already-decided keys),
decides every operation synchronously (no await between check and change), commits the whole
batch in one PostgreSQL transaction, and only then answers the callers. If the commit fails,
every caller of the batch gets a retryable error and the actor rebuilds its state from
PostgreSQL: a batch is applied whole or not at all. On (re)start, state comes from PostgreSQL.

A partition owns a set of hash slots (domain.inventory_slots; the map is in PostgreSQL):
commands on other slots are answered `Moved`, and `hand_over` gives slots to another
partition between two batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
from collections.abc import Sequence

import ray

from actors import metrics
from actors.stock_publisher import StockPublisher
from adapters import stock_cache
from adapters.postgres.inventory_store import InventoryStore, StorageRejected
from adapters.redis import create_redis
from domain.errors import ValidationFailed
from domain.ids import wall_clock_ms
from domain.inventory import PartitionState, Stock
from domain.inventory_commands import (
    WRITES,
    Adjust,
    Close,
    Done,
    GetReservation,
    Moved,
    NotCommitted,
    Outcome,
    PartitionCommand,
    PartitionStats,
    Refused,
    Reply,
    Reserve,
    Write,
)
from domain.inventory_decisions import decide, read, slots_of, variants_of, warehouses_of
from domain.inventory_slots import slot_of, slot_of_reservation

log = logging.getLogger("aisle.inventory")
# refusals that depend on the request's content rather than on stock (bad input, no such
# variant or reservation) are answered but not remembered: the same key with a corrected
# request is decided afresh
_NOT_REMEMBERED = frozenset({"validation_failed", "unknown_variant", "reservation_not_found"})


@dataclasses.dataclass(frozen=True)
class PartitionOptions:
    """How a partition actor runs (the same for every partition of a deployment)."""

    low_stock_threshold: int = 5
    max_batch: int = 1024  # commands decided and committed together, at most
    remember_keys: int = 200_000  # decided keys answered from memory (the newest)
    # after a recovery, keys not in memory are looked up in PostgreSQL for this long (the
    # retries of calls that were in flight arrive then)
    lookup_after_recovery_ms: int = 60_000
    # every Redis stock snapshot is published again after this long (before it expires)
    republish_after_ms: int = stock_cache.TTL_S * 500
    # inventory accuracy: while idle, up to `reconcile_sample` held variants are compared
    # with their PostgreSQL rows every `reconcile_every_s` (0: never)
    reconcile_every_s: float = 30.0
    reconcile_sample: int = 1000
    # Ray's scheduling of the partition actors: "DEFAULT", or "SPREAD" over the nodes
    scheduling: str = "DEFAULT"


class CommitFailed(RuntimeError):
    """The batch holding this command was not committed: retry with the same key."""


Pending = tuple[PartitionCommand, "asyncio.Future[Outcome | Moved]"]


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0, max_concurrency=10_000)  # type: ignore[call-overload]
class InventoryPartition:
    async def __init__(  # type: ignore[misc]  # Ray awaits an async constructor
            self, partition: int, dsn: str, options: PartitionOptions | None = None,
            redis_url: str | None = None) -> None:
        # No I/O here: a constructor that raises leaves the actor dead for good (Ray does not
        # restart it). Connecting and rebuilding happen in the loop, retried until they work;
        # calls queue in the inbox meanwhile.
        self.partition = partition
        self.options = options or PartitionOptions()
        self.low = self.options.low_stock_threshold
        self.store = InventoryStore(dsn, partition)
        self.stock_publisher = StockPublisher(
            create_redis(redis_url) if redis_url else None, wall_clock_ms, partition,
            self.options.republish_after_ms)
        self.state = PartitionState(wall_clock_ms, self.low)
        self.recent: dict[str, Outcome] = {}
        self.inbox: list[Pending] = []
        self.wake = asyncio.Event()
        self.commits = 0
        self.failed_batches = 0
        self.lookup_until = 0
        self.recoveries = 0
        self.busy = asyncio.Lock()  # a batch (or a recovery) in progress: no reconciling
        self.slots: set[int] = set()  # the hash slots this partition owns (read on recovery)
        self.slots_read_at = 0.0
        self.reconciled_at = 0.0
        self._reconcile_from = 0  # where the next sample starts among the held variants
        self._loop = asyncio.get_running_loop().create_task(self._run())
        self._loop.add_done_callback(_exit_when_loop_ends)

    async def _recover(self) -> None:
        await self.store.reconnect()
        state = PartitionState(wall_clock_ms, self.low)
        _set_warehouses(state, await self.store.warehouses())
        slots = await self.store.owned_slots()
        await self._load_open(state, slots)
        self.state = state
        self.slots = slots
        self.slots_read_at = asyncio.get_running_loop().time()
        self.recent = {}
        self.stock_publisher.mark(state.stock)

    async def _load_open(self, state: PartitionState, slots: set[int]) -> None:
        """The open reservations of these slots, and the variants they hold, into `state`."""
        if not slots:
            return
        opened = await self.store.open_reservations(slots)
        variants = {v for r in opened for v, _, _ in r.lines if not state.knows(v)}
        for v, rows in (await self.store.load_variants(sorted(variants))).items():
            state.load_variant(v, rows)
        for r in opened:
            state.load_reservation(r)
        await self._known_warehouses(state, {w for r in opened for _, w, _ in r.lines})
        await self._known_warehouses(state, {w for v in variants if state.knows(v)
                                             for w in state.stock[v]})

    async def _known_warehouses(self, state: PartitionState, seen: set[str]) -> None:
        """Reads the warehouses (and their owners) again when rows name one added since they
        were read: a warehouse a seller owns must never pass for the platform's."""
        if seen - state.warehouses:
            _set_warehouses(state, await self.store.warehouses())

    # -- slots ----------------------------------------------------------------------------
    async def hand_over(self, slots: list[int], target: int) -> list[int]:
        """Gives these slots (those still ours) to partition `target`: between batches, so
        everything decided on them is committed; the map changes in PostgreSQL, then they
        leave memory. Commands for them get `Moved` from here on. The slots moved."""
        async with self.busy:
            await self.stock_publisher.settle()  # no snapshot of ours lands after the owner's
            try:
                moved = await self.store.hand_over(slots, target)
            except Exception:
                # the map may or may not have changed (a reply lost after the commit): what
                # we own is read again from PostgreSQL, never assumed
                await self._recover_until_ok()
                raise
            self._forget(set(moved))
        self.wake.set()
        return moved

    async def adopt(self) -> int:
        """Takes up the slots the map gives us now (after a handoff to us; a partition also
        does it by itself when asked about a slot it does not hold). Slots owned."""
        async with self.busy:
            await self._read_slots()
        self.wake.set()
        return len(self.slots)

    async def _read_slots(self) -> None:
        slots = await self.store.owned_slots()
        self.slots_read_at = asyncio.get_running_loop().time()
        gone, new = self.slots - slots, slots - self.slots
        if gone:  # only we hand ours over; this is for a map changed by hand
            log.warning("partition %d: %d slots left the map behind our back",
                        self.partition, len(gone))
            self._forget(gone)
        if new:
            await self._load_open(self.state, new)
            self.slots = self.slots | new
            # retries of calls the previous owner answered arrive here now: look them up
            self.lookup_until = wall_clock_ms() + self.options.lookup_after_recovery_ms
            log.info("partition %d: took up %d slots", self.partition, len(new))

    def _forget(self, slots: set[int]) -> None:
        st = self.state
        st.forget([v for v in st.stock if slot_of(v) in slots],
                  [r for r in st.reservations if slot_of_reservation(r) in slots])
        self.slots = self.slots - slots

    async def _misrouted(self, batch: list[Pending]) -> list[Pending]:
        """Answers `Moved` to the commands that touch slots we do not own (after reading the
        map again, at most once a second: a handoff to us whose `adopt` has not come); the
        rest is ours to decide."""
        def foreign(cmd: PartitionCommand) -> set[int]:
            return slots_of(cmd) - self.slots

        if not any(foreign(c) for c, _ in batch):
            return batch
        if asyncio.get_running_loop().time() - self.slots_read_at >= 1.0:
            await self._read_slots()
        ours = []
        for cmd, fut in batch:
            if (away := foreign(cmd)) and not fut.done():
                fut.set_result(Moved(tuple(sorted(away))))
            elif not away:
                ours.append((cmd, fut))
        return ours

    async def call(self, cmd: PartitionCommand) -> Outcome | Moved:
        """One command's outcome (or Moved); CommitFailed if its batch was not committed."""
        fut: asyncio.Future[Outcome | Moved] = asyncio.get_running_loop().create_future()
        self.inbox.append((cmd, fut))
        self.wake.set()
        return await fut

    async def call_many(self, cmds: list[PartitionCommand]) -> list[Reply]:
        """Several callers' commands in one Ray call (the client coalesces them): each gets
        its own outcome, or NotCommitted if its batch was not committed."""
        loop = asyncio.get_running_loop()
        futs: list[asyncio.Future[Outcome | Moved]] = []
        for cmd in cmds:
            fut: asyncio.Future[Outcome | Moved] = loop.create_future()
            self.inbox.append((cmd, fut))
            futs.append(fut)
        self.wake.set()
        done = await asyncio.gather(*futs, return_exceptions=True)
        return [NotCommitted(repr(d)) if isinstance(d, BaseException) else d for d in done]

    async def reconcile(self, limit: int | None = None) -> tuple[int, int]:
        """Inventory accuracy: up to `limit` of the variants this partition holds (a rotating
        sample) compared with their PostgreSQL stock rows, between batches (memory then
        equals what was committed). Returns (variants checked, variants that differ) and
        reports their ratio as `aisle_inventory_accuracy`. A difference means something
        wrote stock rows behind the owner's back: logged, for the alert."""
        limit = self.options.reconcile_sample if limit is None else limit
        async with self.busy:
            held = sorted(self.state.stock)
            if not held or limit <= 0:  # nothing held: nothing can differ
                self.reconciled_at = asyncio.get_running_loop().time()
                with contextlib.suppress(Exception):
                    metrics.inventory_accuracy(self.partition, 1.0)
                return 0, 0
            start = self._reconcile_from % len(held)
            sample = (held[start:] + held[:start])[:limit]
            self._reconcile_from = start + len(sample)
            rows = await self.store.load_variants(sample)
            differ = [v for v in sample if _counts(rows.get(v, {})) !=
                      _counts(self.state.stock.get(v, {}))]
        self.reconciled_at = asyncio.get_running_loop().time()
        if differ:
            log.error("partition %d: %d of %d variants differ from PostgreSQL, e.g. %s",
                      self.partition, len(differ), len(sample), differ[:5])
        with contextlib.suppress(Exception):  # metrics never fail the partition
            metrics.inventory_accuracy(self.partition, 1 - len(differ) / len(sample))
        return len(sample), len(differ)

    async def node_id(self) -> str:
        """The Ray node this partition runs on (placement checks, drills)."""
        node: str = ray.get_runtime_context().get_node_id()
        return node

    async def stats(self) -> PartitionStats:
        return {"commits": self.commits, "failed_batches": self.failed_batches,
                "recoveries": self.recoveries, "variants": len(self.state.stock),
                "open_reservations": sum(r.status == "OPEN"
                                         for r in self.state.reservations.values()),
                "slots": len(self.slots)}

    async def _run(self) -> None:
        async with self.busy:
            await self._recover_until_ok()
        if not ray.get_runtime_context().was_current_actor_reconstructed:
            self.lookup_until = 0  # a new actor: no call of ours can be in flight
        max_batch = self.options.max_batch
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=0.5)
            self.wake.clear()
            idle = not self.inbox
            batch, self.inbox = self.inbox[:max_batch], self.inbox[max_batch:]
            if self.inbox:
                self.wake.set()
            async with self.busy:  # an empty batch still expires and republishes snapshots
                await self._step(batch)
            if idle:
                await self._reconcile_when_due()

    async def _reconcile_when_due(self) -> None:
        every = self.options.reconcile_every_s
        if every > 0 and asyncio.get_running_loop().time() - self.reconciled_at >= every:
            try:
                await self.reconcile()
            except Exception as exc:
                log.warning("partition %d: reconciliation failed: %r", self.partition, exc)
                self.reconciled_at = asyncio.get_running_loop().time()

    async def _step(self, batch: list[Pending]) -> None:
        """One batch decided and committed (or failed, then the state rebuilt)."""
        try:
            await self._process(batch)
        except StorageRejected as exc:
            # nothing of the batch was written; the commands are decided again one at a
            # time, so that only one carrying a value PostgreSQL refuses fails (for good)
            self.failed_batches += 1
            await self._recover_until_ok()
            await self._isolate(batch, exc)
        except Exception as exc:
            self.failed_batches += 1
            log.warning("partition %d: batch of %d failed: %r", self.partition,
                        len(batch), exc)
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(CommitFailed(f"not committed: {exc!r}"))
            await self._recover_until_ok()

    async def _isolate(self, batch: list[Pending], exc: StorageRejected) -> None:
        if len(batch) == 1:
            _, fut = batch[0]
            log.warning("partition %d: a command refused by storage: %s", self.partition, exc)
            if not fut.done():
                fut.set_result(Refused.of(ValidationFailed(
                    {"body": f"a value cannot be stored: {exc}"}, "a value cannot be stored")))
            return
        for pending in batch:
            try:
                await self._process([pending])
            except StorageRejected as alone:
                self.failed_batches += 1
                await self._recover_until_ok()
                await self._isolate([pending], alone)

    async def _recover_until_ok(self) -> None:
        delay = 0.05
        while True:
            try:
                await self._recover()
                self.recoveries += 1
                self.lookup_until = wall_clock_ms() + self.options.lookup_after_recovery_ms
                return
            except Exception as exc:
                log.warning("partition %d: recovery failed: %r", self.partition, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _load(self, batch: list[Pending], writes: list[Write]) -> None:
        """What the batch needs and memory lacks: outcomes of keys decided before (after a
        recovery), reservations, variants, warehouses."""
        st = self.state
        # Keys not in `recent` are looked up in PostgreSQL only for a while after a recovery,
        # when retries of calls in flight arrive. Otherwise a key decided long ago (or one
        # evicted from `recent`) makes the commit fail on inventory_ops' primary key: the
        # batch rolls back whole, the actor recovers and the callers retry, looked up.
        if wall_clock_ms() < self.lookup_until:
            unknown = {c.key: c.reservation_id if isinstance(c, Reserve) else None
                       for c in writes if c.key not in self.recent}
            if unknown:
                self.recent.update(await self.store.decided(unknown))
        # a reserve's id is new (it derives from its key, which `decided` covers): only closes
        # and gets look reservations up
        need_r = [c.reservation_id for c, _ in batch if isinstance(c, Close | GetReservation)
                  and c.reservation_id not in st.reservations]
        need_v = {v for c, _ in batch for v in variants_of(c)}
        if need_r:
            for r in await self.store.reservations(need_r):
                st.load_reservation(r)
                need_v.update(v for v, _, _ in r.lines)
        need_v = {v for v in need_v if not st.knows(v)}
        if need_v:
            loaded = await self.store.load_variants(sorted(need_v))
            for v, rows in loaded.items():
                st.load_variant(v, rows)
            self.stock_publisher.mark(need_v)
            await self._known_warehouses(st, {w for rows in loaded.values() for w in rows})
        await self._known_warehouses(st, {w for c in writes for w in warehouses_of(c)
                                          if w is not None})  # one added since we loaded

    async def _process(self, batch: list[Pending]) -> None:
        batch = await self._misrouted(batch)
        st = self.state
        writes = [c for c, _ in batch if isinstance(c, WRITES)]
        await self._load(batch, writes)
        # carts over several slots with a reservation of ours due: expired, unless a close
        # of the whole cart was decided first (then closed as that says)
        due = st.due_carts()
        decided = await self.store.decide_carts(dict.fromkeys(due, "EXPIRED")) if due else {}
        # -- decide: synchronous from here to the commit ------------------------------------
        outcomes: dict[str, Outcome] = {}
        for c in writes:
            if c.key not in self.recent and c.key not in outcomes:
                outcomes[c.key] = decide(st, c)
        # reads see the batch's writes, and what expires now as it was just before (a
        # closed reservation leaves memory at its deadline: one loaded to be read is shown)
        reads = {i: read(st, cmd) for i, (cmd, _) in enumerate(batch)
                 if not isinstance(cmd, Reserve | Close | Adjust)}
        st.expire(decided)
        changes = st.drain()
        durable = {k: o for k, o in outcomes.items()
                   if not (isinstance(o, Refused) and o.code in _NOT_REMEMBERED)}
        if durable or changes.movements:
            # a successful reserve is recorded by its reservation row (its id derives from
            # the key): inventory_ops keeps the other outcomes
            reserved = {c.key for c in writes
                        if isinstance(c, Reserve) and isinstance(outcomes.get(c.key), Done)}
            await self.store.commit(changes, {k: o for k, o in durable.items()
                                              if k not in reserved})
            self.commits += 1
        self.recent.update(durable)
        self._count(writes, outcomes)
        for i, (cmd, fut) in enumerate(batch):
            if fut.done():
                continue
            if isinstance(cmd, Reserve | Close | Adjust):
                fut.set_result(outcomes.get(cmd.key) or self.recent[cmd.key])
            else:
                fut.set_result(reads[i])
        self._forget_oldest()
        self.stock_publisher.mark(v for v, _ in changes.stock)
        self.stock_publisher.publish(st)

    def _count(self, writes: Sequence[PartitionCommand], outcomes: dict[str, Outcome]) -> None:
        """Ray metrics: the operations decided in this batch, by kind and outcome (a replay
        of a decided key is not counted again)."""
        counts: dict[tuple[str, str], int] = {}
        for c in writes:
            if not isinstance(c, WRITES) or (o := outcomes.get(c.key)) is None:
                continue
            key = (type(c).__name__.lower(), "ok" if isinstance(o, Done) else
                   o.code if isinstance(o, Refused) else "other")
            counts[key] = counts.get(key, 0) + 1
        try:
            metrics.inventory_ops(counts)
        except Exception as exc:  # metrics never fail an operation
            log.debug("inventory metrics not recorded: %r", exc)

    def _forget_oldest(self) -> None:
        """Decided keys are remembered for replays: the newest `remember_keys` of them."""
        limit = self.options.remember_keys
        if len(self.recent) > limit:
            for k in list(self.recent)[: len(self.recent) - limit // 2]:
                del self.recent[k]


def _counts(rows: dict[str, Stock]) -> dict[str, tuple[int, int, int]]:
    """What must agree between memory and PostgreSQL: per warehouse, available, reserved,
    sold."""
    return {w: (s.available, s.reserved, s.sold) for w, s in rows.items()}


def _exit_when_loop_ends(task: asyncio.Task[None]) -> None:
    """The loop never ends by itself; if it does, the process exits and Ray restarts the
    actor, which rebuilds from PostgreSQL (better than an actor that queues calls forever)."""
    log.error("inventory loop ended: %r; exiting so that Ray restarts the actor",
              None if task.cancelled() else task.exception())
    os._exit(1)


def _set_warehouses(state: PartitionState, owners: dict[str, int | None]) -> None:
    state.warehouses = set(owners)
    state.owned = {w: s for w, s in owners.items() if s is not None}
