"""The one wrapper through which everything calls InventoryPartition actors.

Finds (or starts) the partition actors by name, routes each variant to its owner, retries a
call on the restarted actor with the same key (idempotent), and reserves carts across
partitions all-or-nothing: partitions in ascending order, compensating releases on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors import database_tag, named
from actors.inventory import CommitFailed, InventoryPartition, PartitionOptions
from adapters import stock_cache
from adapters.coalesce import Coalescer
from adapters.redis import create_redis
from domain.errors import AisleError, Unavailable, ValidationFailed
from domain.inventory import Item, ReservationNotFound, partition_of
from domain.inventory_api import (
    CartItem,
    CartJson,
    FiguresJson,
    StockJson,
    StockView,
    cart_json,
    snapshot,
    stock_json,
)
from domain.inventory_commands import (
    Adjust,
    Command,
    Deduct,
    Done,
    GetReservation,
    NotCommitted,
    PartitionCommand,
    PartitionStats,
    ReadStock,
    Release,
    Reply,
    ReservationView,
    Reserve,
    Stocks,
)

T = TypeVar("T")

log = logging.getLogger("aisle.inventory")
MAX_INFLIGHT = 2  # Ray calls under way per partition, per client
MAX_OPS_PER_CALL = 512
WARM_EVERY_S = 0.25  # snapshots missing from Redis are asked of their owners this often...
WARM_MAX = 5_000  # ...at most this many variants at a time (more wait for a later round)
WARM_TIMEOUT_S = 2.0
RETRYABLE = (RayActorError, ActorDiedError, ActorUnavailableError, CommitFailed, TimeoutError)


class InventoryUnavailable(Unavailable):
    code = "inventory_unavailable"


def partition_actor(k: int, dsn: str, options: PartitionOptions,
                    redis_url: str | None = None) -> Any:
    """Partition k of the database at `dsn` (one set of partitions per database). The actor
    handle is untyped: Ray's are."""
    return named(InventoryPartition, f"inventory-{database_tag(dsn)}-{k}",
                 scheduling_strategy=options.scheduling).remote(
        k, dsn, options, redis_url=redis_url)


class InventoryClient:
    """Routes operations to partition owners and retries them with the same key.

    A call that gets no answer (actor died or restarting, batch not committed, no reply within
    `call_timeout_s`) is sent again, with backoff, until `deadline_s` has passed since the
    first try; then `InventoryUnavailable` (HTTP 503): the outcome is unknown, and the caller
    may retry with the same idempotency key later.
    """

    def __init__(self, partitions: int, dsn: str, low_stock_threshold: int = 5,
                 call_timeout_s: float = 5.0, deadline_s: float = 30.0,
                 redis_url: str | None = None, options: PartitionOptions | None = None) -> None:
        """`options` (when given) overrides `low_stock_threshold`; they apply to partition
        actors this client starts, not to ones already running."""
        self.n = partitions
        self.dsn = dsn
        self.options = options or PartitionOptions(low_stock_threshold=low_stock_threshold)
        self.redis_url = redis_url
        self.redis = create_redis(redis_url) if redis_url else None
        self._warming: asyncio.Task[None] | None = None
        self._to_warm: dict[int, None] = {}  # variants whose snapshots searches missed
        self.actors = [self._actor(k) for k in range(partitions)]
        self.timeout = call_timeout_s
        self.deadline = deadline_s
        self.retries = 0
        # under load, operations that arrive while calls are under way go together in the
        # next one (one Ray call for many; no timer, so an idle system adds no delay)
        self._calls: Coalescer[int, PartitionCommand, Reply] = Coalescer(
            self._call_many, MAX_INFLIGHT, MAX_OPS_PER_CALL)

    def _actor(self, k: int) -> Any:
        return partition_actor(k, self.dsn, self.options, self.redis_url)

    def owner(self, variant_id: int) -> int:
        return partition_of(variant_id, self.n)

    async def _call(self, k: int, cmd: Command[T]) -> T:
        """`cmd`'s value from partition k; its domain error raised; retried with the same
        key while it gets no answer."""
        assert isinstance(cmd, PartitionCommand)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline
        delay = 0.05
        while True:
            try:
                outcome = await asyncio.wait_for(self._calls.submit(k, cmd), min(
                    self.timeout, max(give_up - loop.time(), 0.1)))
                if isinstance(outcome, NotCommitted):
                    raise CommitFailed(outcome.reason)
            except RETRYABLE as exc:
                if loop.time() + delay >= give_up:
                    raise InventoryUnavailable(f"inventory partition {k} unavailable") from exc
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if isinstance(outcome, Done):
                return outcome.value  # type: ignore[return-value]  # Command[T] answers T
            raise outcome.error()

    async def _call_many(self, k: int, cmds: list[PartitionCommand]) -> list[Reply]:
        actor = self.actors[k]
        try:
            replies: list[Reply] = await actor.call_many.remote(cmds)
            return replies
        except ActorDiedError:
            if self.actors[k] is actor:
                # restarting: the name still resolves to it; dead for good (e.g. stopped
                # by an operator): a new one is started under the same name
                self.actors[k] = self._actor(k)
            raise

    # -- reservations ---------------------------------------------------------------------
    async def reserve(self, items: Sequence[CartItem], key: str | None = None,
                      ttl_s: float = 900.0) -> CartJson:
        """Reserves every item or none. Same key, same outcome (never reserves twice)."""
        key = key or uuid.uuid4().hex
        by_part: dict[int, list[Item]] = defaultdict(list)
        for v, q, w in items:
            by_part[self.owner(v)].append(Item(v, q, w))
        parts = sorted(by_part)
        cart_id = "r" + hashlib.sha256(key.encode()).hexdigest()[:20] + "." + "-".join(
            map(str, parts))
        done: list[tuple[int, ReservationView]] = []
        try:
            for k in parts:
                res = await self._call(k, Reserve(
                    f"{key}/p{k}", f"{cart_id}/p{k}", tuple(by_part[k]), int(ttl_s * 1000),
                    cart_id))
                done.append((k, res))
        except AisleError as exc:
            if isinstance(exc, InventoryUnavailable):
                # outcome unknown: keep what was reserved; a retry with the same key carries
                # on from there, and the TTL releases it if nobody retries
                raise
            await self._compensate(key, done)  # a definite "no": undo the partitions before
            raise
        return cart_json(cart_id, [r for _, r in done])

    async def _compensate(self, key: str, done: list[tuple[int, ReservationView]]) -> None:
        for k, res in reversed(done):
            with contextlib.suppress(AisleError):  # closed already; or unavailable: TTL frees it
                await self._call(k, Release(f"{key}/p{k}/undo", res.reservation_id))

    async def commit(self, cart_id: str, variant_id: int | None = None,
                     quantity: int | None = None) -> CartJson:
        """Turns the reservation into a sale (DEDUCT), whole."""
        return await self._close(cart_id, Deduct, "deduct", variant_id, quantity)

    async def release(self, cart_id: str, variant_id: int | None = None,
                      quantity: int | None = None) -> CartJson:
        """Gives the reserved units back, whole."""
        return await self._close(cart_id, Release, "release", variant_id, quantity)

    async def _close(self, cart_id: str, close: type[Release] | type[Deduct], op: str,
                     variant_id: int | None, quantity: int | None) -> CartJson:
        """`variant_id` (and `quantity`), when given, must be what the reservation holds; the
        owner's partition goes first, so a mismatch closes nothing."""
        parts = _parts_of(cart_id, self.n)
        if variant_id is not None:
            k = self.owner(variant_id)
            if k not in parts:
                await self.get(cart_id)  # 404 if there is no such reservation at all
                raise ValidationFailed(
                    {"reservation_id": f"does not hold variant {variant_id}"})
            parts = [k] + [p for p in parts if p != k]
        results = []
        for k in parts:
            names_it = variant_id is not None and k == parts[0]
            results.append(await self._call(k, close(
                f"{op}:{cart_id}/p{k}", f"{cart_id}/p{k}", variant_id if names_it else None,
                quantity if names_it else None)))
        return cart_json(cart_id, sorted(results, key=lambda r: r.reservation_id))

    async def get(self, cart_id: str) -> CartJson:
        parts = _parts_of(cart_id, self.n)
        return cart_json(cart_id, list(await asyncio.gather(*(
            self._call(k, GetReservation(f"{cart_id}/p{k}")) for k in parts))))

    # -- stock ----------------------------------------------------------------------------
    async def adjust(self, variant_id: int, warehouse_id: str, delta: int, reason: str,
                     key: str | None = None) -> FiguresJson:
        a = await self._call(self.owner(variant_id), Adjust(
            key or uuid.uuid4().hex, variant_id, warehouse_id, delta, reason))
        return {"available": a.available, "reserved": a.reserved, "sold": a.sold}

    async def stock(self, variant_ids: list[int]) -> dict[str, StockJson]:
        """Per-variant status, quantity hint and per-warehouse figures, from the owners."""
        return {str(v): stock_json(s) for v, s in (await self._stocks(variant_ids)).items()}

    async def _stocks(self, variant_ids: list[int]) -> Stocks:
        answers = await asyncio.gather(*(
            self._read(k, vs) for k, vs in self._by_owner(variant_ids).items()))
        out: Stocks = {}
        for a in answers:
            out.update(a)
        return out

    def _by_owner(self, variant_ids: Iterable[int]) -> dict[int, list[int]]:
        by_part: dict[int, list[int]] = defaultdict(list)
        for v in variant_ids:
            by_part[self.owner(v)].append(v)
        return by_part

    async def _read(self, partition: int, variant_ids: list[int]) -> Stocks:
        return await self._call(partition, ReadStock(tuple(variant_ids)))

    async def status(self, variant_ids: list[int],
                     wait_for_owners: bool = True) -> dict[str, StockView]:
        """Shoppers' view, in bulk: {variant: {status, quantity_hint, available}}. One Redis
        MGET; variants missing there (or all, if Redis fails) are read from their owners.
        Unknown variants are left out."""
        cached: dict[int, StockView] = {}
        if self.redis is not None:
            try:
                cached = await asyncio.wait_for(stock_cache.fetch(self.redis, variant_ids), 0.5)
            except Exception as exc:  # Redis down: the owners answer
                log.warning("stock cache unavailable: %r", exc)
        out: dict[str, StockView] = {str(v): snap for v, snap in cached.items()}
        missing = [v for v in variant_ids if v not in cached]
        if missing and not wait_for_owners:
            # the owners publish these snapshots when asked: ask in the background, and let
            # the caller use what it has (search: the index's in_stock, fresh to a second);
            # the misses of every request meanwhile go together, one call per owner a round
            if len(self._to_warm) < WARM_MAX:
                self._to_warm.update(dict.fromkeys(missing))
            if self._warming is None or self._warming.done():
                self._warming = asyncio.get_running_loop().create_task(self._warm())
            return out
        if missing:
            for v, full in (await self._stocks(missing)).items():
                out[str(v)] = dict(snapshot(full))
        return out

    async def _warm(self) -> None:
        while self._to_warm:
            await asyncio.sleep(WARM_EVERY_S)
            batch = list(self._to_warm)[:WARM_MAX]
            for v in batch:
                del self._to_warm[v]
            # each owner on its own: one slow or restarting partition holds up only its own
            # (a later miss asks again for what it did not answer)
            done = await asyncio.gather(*(asyncio.wait_for(self._read(k, vs), WARM_TIMEOUT_S)
                                          for k, vs in self._by_owner(batch).items()),
                                        return_exceptions=True)
            failed = [d for d in done if isinstance(d, BaseException)]
            if failed:
                log.info("stock snapshots of %d partitions not warmed: %r", len(failed),
                         failed[0])

    async def stats(self) -> list[PartitionStats]:
        return list(await asyncio.gather(*(a.stats.remote() for a in self.actors)))

    async def nodes(self) -> list[str]:
        """The Ray node of each partition, in partition order."""
        found: list[str] = await asyncio.gather(*(a.node_id.remote() for a in self.actors))
        return found

    async def reconcile(self, limit: int | None = None) -> list[tuple[int, int]]:
        """Per partition: (variants compared with PostgreSQL, variants that differ) now
        (partitions also do it by themselves while idle: `aisle_inventory_accuracy`)."""
        found: list[tuple[int, int]] = await asyncio.gather(
            *(a.reconcile.remote(limit) for a in self.actors))
        return [tuple(x) for x in found]  # type: ignore[misc]

    def kill(self, k: int) -> None:
        """For fault tests and operators: Ray restarts the actor, which recovers from PG."""
        ray.kill(self.actors[k], no_restart=False)

    def shutdown(self) -> None:
        """Stops the partition actors for good (they are detached: nothing else stops them)."""
        for a in self.actors:
            with contextlib.suppress(Exception):
                ray.kill(a, no_restart=True)


_CART_ID = re.compile(r"r[0-9a-f]{20}\.([0-9]{1,4}(?:-[0-9]{1,4})*)", re.ASCII)


def _parts_of(cart_id: str, partitions: int) -> list[int]:
    m = _CART_ID.fullmatch(cart_id)
    parts = [int(p) for p in m.group(1).split("-")] if m else []
    if not parts or any(p >= partitions for p in parts) or parts != sorted(set(parts)):
        raise ReservationNotFound(f"reservation {cart_id} not found")
    return parts

