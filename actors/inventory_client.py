"""The one wrapper through which everything calls InventoryPartition actors.

Finds (or starts) the partition actors by name, routes each variant to the owner of its hash
slot (the map in PostgreSQL), retries a call on the restarted actor or the slot's new owner
with the same key (idempotent), reserves carts all-or-nothing (one reservation per slot,
compensating releases on a refusal), and rebalances slots over partitions online.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TypeVar

import asyncpg
import ray
from ray.actor import ActorHandle
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors import NAMESPACE, database_tag, named
from actors.inventory import CommitFailed, InventoryPartition, PartitionOptions
from adapters import stock_cache
from adapters.coalesce import Coalescer
from adapters.postgres import cart_decisions, create_pool, unavailable
from adapters.postgres import inventory_slots as slot_map
from adapters.postgres.cart_decisions import CartOutcome
from adapters.redis import create_redis
from domain.errors import AisleError, Conflict, Unavailable, ValidationFailed
from domain.inventory import InsufficientStock, Item, ReservationClosed, ReservationNotFound
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
    Moved,
    NotCommitted,
    PartitionCommand,
    PartitionStats,
    ReadStock,
    Refused,
    Release,
    Reply,
    ReservationView,
    Reserve,
    Stocks,
)
from domain.inventory_decisions import holding_problem
from domain.inventory_slots import (
    Move,
    Rebalanced,
    cart_of_key,
    initial_owners,
    partitions_of,
    plan,
    reservation_id,
    slot_of,
    slots_of_cart,
    spans_slots,
)

T = TypeVar("T")

log = logging.getLogger("aisle.inventory")
MAX_INFLIGHT = 2  # Ray calls under way per partition, per client
MAX_OPS_PER_CALL = 512
WARM_EVERY_S = 0.25  # snapshots missing from Redis are asked of their owners this often...
WARM_MAX = 5_000  # ...at most this many variants at a time (more wait for a later round)
WARM_TIMEOUT_S = 2.0
DECISION_CONNECTIONS = 4  # per client: closes of carts over several slots, at once


class PartitionGone(RuntimeError):
    """No actor runs for the partition (retired by a rebalance, or stopped): the map is read
    again, which starts it if it still owns slots."""


RETRYABLE = (RayActorError, ActorDiedError, ActorUnavailableError, CommitFailed, TimeoutError,
             PartitionGone)


class InventoryUnavailable(Unavailable):
    code = "inventory_unavailable"


def partition_name(k: int, dsn: str) -> str:
    return f"inventory-{database_tag(dsn)}-{k}"


def partition_actor(k: int, dsn: str, options: PartitionOptions,
                    redis_url: str | None = None) -> ActorHandle:
    """Partition k of the database at `dsn` (one set of partitions per database). The actor
    handle is untyped: Ray's are."""
    return named(InventoryPartition, partition_name(k, dsn),
                 scheduling_strategy=options.scheduling).remote(
        k, dsn, options, redis_url=redis_url)


class InventoryClient:
    """Routes operations to the owners of their hash slots and retries them with the same key.

    Which partition owns a slot is the map in PostgreSQL, read on first use (made for
    `partitions` partitions if the database has none) and again whenever a partition answers
    `Moved` (a handoff moved the slot). A call that gets no answer (actor died or restarting,
    batch not committed, no reply within `call_timeout_s`) is sent again, with backoff, until
    `deadline_s` has passed since the first try; then `InventoryUnavailable` (HTTP 503): the
    outcome is unknown, and the caller may retry with the same idempotency key later.
    """

    def __init__(self, partitions: int, dsn: str, low_stock_threshold: int = 5,
                 call_timeout_s: float = 5.0, deadline_s: float = 30.0,
                 redis_url: str | None = None, options: PartitionOptions | None = None) -> None:
        """`options` (when given) overrides `low_stock_threshold`; they apply to partition
        actors this client starts, not to ones already running. `partitions` is used only
        where the database has no slot map yet."""
        self.n = partitions
        self.dsn = dsn
        self.options = options or PartitionOptions(low_stock_threshold=low_stock_threshold)
        self.redis_url = redis_url
        self.redis = create_redis(redis_url) if redis_url else None
        self._warming: asyncio.Task[None] | None = None
        self._to_warm: dict[int, None] = {}  # variants whose snapshots searches missed
        self._owners: list[int] = []  # slot -> partition, once read
        self._reading: asyncio.Task[list[int]] | None = None
        self._reading_at = 0.0  # when that read started (loop time)
        self._answered_at = -1e9  # when every partition last answered `check` (loop time)
        self.actors: dict[int, ActorHandle] = {}
        # connections for carts' decisions (their loop: tests run clients in several)
        self._decisions: tuple[asyncio.AbstractEventLoop, asyncio.Task[asyncpg.Pool]] | None = None
        self.timeout = call_timeout_s
        self.deadline = deadline_s
        self.retries = 0
        self.moved = 0  # answers "Moved": calls that reached a slot's previous owner
        # under load, operations that arrive while calls are under way go together in the
        # next one (one Ray call for many; no timer, so an idle system adds no delay)
        self._calls: Coalescer[int, PartitionCommand, Reply] = Coalescer(
            self._call_many, MAX_INFLIGHT, MAX_OPS_PER_CALL)
        self._deciding: Coalescer[int, tuple[str, CartOutcome], CartOutcome | None] = \
            Coalescer(self._decide_many, DECISION_CONNECTIONS, MAX_OPS_PER_CALL)

    # -- the slot map ---------------------------------------------------------------------
    def _actor(self, k: int) -> ActorHandle:
        actor = self.actors.get(k)
        if actor is None:
            actor = self.actors[k] = partition_actor(k, self.dsn, self.options, self.redis_url)
        return actor

    def owner(self, variant_id: int) -> int:
        """The partition that owns the variant's slot, by the map as last read (before the
        first read: the map a new database starts with)."""
        owners = self._owners or initial_owners(self.n)
        return owners[slot_of(variant_id)]

    async def owners(self) -> list[int]:
        """slot -> partition (read once; again after a handoff)."""
        return self._owners or await self.read_map()

    async def read_map(self) -> list[int]:
        """Reads the map from PostgreSQL: a read that starts after this call (callers that
        come while one is under way share the next one). InventoryUnavailable when
        PostgreSQL cannot be reached (outcome unknown to callers: as a partition's)."""
        loop = asyncio.get_running_loop()
        asked = loop.time()
        while True:
            task = self._reading
            if task is not None and self._reading_at >= asked:
                break
            if task is not None and not task.done():
                with contextlib.suppress(Exception):
                    await asyncio.shield(task)
                continue
            self._reading_at = loop.time()
            self._reading = task = loop.create_task(slot_map.read_map(self.dsn, self.n))
            break
        try:
            self._owners = await asyncio.shield(task)
        except Exception as exc:
            if unavailable(exc):  # the map's connection refused, lost or timed out
                raise InventoryUnavailable("the inventory slot map cannot be read: "
                                           "PostgreSQL is unavailable") from exc
            raise
        for k in range(partitions_of(self._owners)):
            self._actor(k)  # every partition started (or found) now, not on its first call
        return self._owners

    async def partitions(self) -> int:
        return partitions_of(await self.owners())

    # -- calls ----------------------------------------------------------------------------
    async def _call(self, slot: int, cmd: Command[T]) -> T:
        """`cmd`'s value from the owner of `slot`; its domain error raised; sent again with
        the same key while it gets no answer or reaches a previous owner."""
        assert isinstance(cmd, PartitionCommand)
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline
        delay, moves = 0.02, 0
        while True:
            owners = await self.owners()
            outcome = await self._send(owners[slot], cmd, give_up)
            if isinstance(outcome, Done):
                return outcome.value  # type: ignore[return-value]  # Command[T] answers T
            if isinstance(outcome, Refused):
                raise outcome.error()
            # Moved: the map changed under us; read it again (twice in a row: the new owner
            # has not taken the slot up yet, so wait a little)
            self.moved += 1
            if loop.time() + delay >= give_up:
                raise InventoryUnavailable(f"inventory slot {slot} is moving")
            if moves:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 0.5)
            moves += 1
            await self.read_map()

    async def _send(self, k: int, cmd: PartitionCommand,
                    give_up: float) -> Done | Refused | Moved:
        """`cmd` to partition k until it is answered (or InventoryUnavailable at `give_up`)."""
        loop = asyncio.get_running_loop()
        delay = 0.05
        while True:
            try:
                outcome = await asyncio.wait_for(self._calls.submit(k, cmd), min(
                    self.timeout, max(give_up - loop.time(), 0.1)))
                if isinstance(outcome, NotCommitted):
                    raise CommitFailed(outcome.reason)
                return outcome
            except RETRYABLE as exc:
                if loop.time() + delay >= give_up:
                    raise InventoryUnavailable(f"inventory partition {k} unavailable") from exc
                self.retries += 1
                if isinstance(exc, ActorDiedError | PartitionGone):
                    # dead for good or not running: stopped by an operator (reading the map
                    # starts it again), or retired by a rebalance (then the map no longer
                    # names it, and its slots' owners answer)
                    # the map unreadable meanwhile: asked again, until the call's deadline
                    with contextlib.suppress(InventoryUnavailable, TimeoutError):
                        if k not in await asyncio.wait_for(
                                self.read_map(), max(give_up - loop.time(), 0.1)):
                            return Moved(())
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _existing(self, k: int) -> ActorHandle:
        """Partition k's actor if it runs (PartitionGone otherwise). Calls never start one:
        with a map read before a rebalance retired k, that would bring k back; partitions are
        started from a map just read (read_map) or by a rebalance."""
        actor = self.actors.get(k)
        if actor is None:
            try:
                actor = ray.get_actor(partition_name(k, self.dsn), namespace=NAMESPACE)
            except ValueError:
                raise PartitionGone(f"inventory partition {k} is not running") from None
            self.actors[k] = actor
        return actor

    async def _call_many(self, k: int, cmds: list[PartitionCommand]) -> list[Reply]:
        actor = self._existing(k)
        try:
            replies: list[Reply] = await actor.call_many.remote(cmds)
            return replies
        except ActorDiedError:
            if self.actors.get(k) is actor:
                # restarting: the name still resolves to it; dead for good: a new one is
                # started under the same name, if the map still gives it slots
                del self.actors[k]
            raise

    # -- reservations ---------------------------------------------------------------------
    async def reserve(self, items: Sequence[CartItem], key: str | None = None,
                      ttl_s: float = 900.0) -> CartJson:
        """Reserves every item or none (one reservation per slot, all at once; a definite
        refusal releases the ones made). Same key, same outcome (never reserves twice)."""
        key = key or uuid.uuid4().hex
        by_slot: dict[int, list[Item]] = defaultdict(list)
        for v, q, w in items:
            by_slot[slot_of(v)].append(Item(v, q, w))
        slots = sorted(by_slot)
        cart = cart_of_key(key, (v for v, _, _ in items))
        got = await asyncio.gather(*(self._call(s, Reserve(
            f"{key}/s{s:04x}", reservation_id(cart, s), tuple(by_slot[s]), int(ttl_s * 1000),
            cart)) for s in slots), return_exceptions=True)
        done = [(s, r) for s, r in zip(slots, got, strict=True)
                if isinstance(r, ReservationView)]
        failed = [r for r in got if isinstance(r, BaseException)]
        if not failed:
            return cart_json(cart, [r for _, r in done])
        for exc in failed:
            if isinstance(exc, InventoryUnavailable) or not isinstance(exc, AisleError):
                # outcome unknown: keep what was reserved; a retry with the same key carries
                # on from there, and the TTL releases it if nobody retries
                raise exc
        await self._compensate(key, cart, done)  # a definite "no": undo the slots reserved
        short = [i for e in failed if isinstance(e, InsufficientStock) for i in e.items]
        if len(short) > 0 and all(isinstance(e, InsufficientStock) for e in failed):
            raise InsufficientStock(short)  # every short item, whichever slot it is in
        raise failed[0]

    async def _compensate(self, key: str, cart: str,
                          done: list[tuple[int, ReservationView]]) -> None:
        """Releases the slots reserved of a cart refused whole. A cart over several slots is
        decided RELEASED first (a retry with the same key that reserves the rest then finds
        it released, never half of it kept); with no decision possible, the TTL frees it."""
        if not done:
            return
        if spans_slots(cart):
            try:
                if (await self._decide({cart: "RELEASED"})).get(cart) != "RELEASED":
                    return  # decided otherwise already: its closes follow that
            except Exception as exc:  # the refusal stands; the TTL frees what was held
                log.warning("cart %s refused whole, not released now: %r", cart, exc)
                return

        async def undo(s: int, res: ReservationView) -> None:
            with contextlib.suppress(AisleError):  # closed already; or unavailable: TTL frees it
                await self._call(s, Release(f"{key}/s{s:04x}/undo", res.reservation_id))
        await asyncio.gather(*(undo(s, r) for s, r in done))

    async def commit(self, cart_id: str, variant_id: int | None = None,
                     quantity: int | None = None) -> CartJson:
        """Turns the reservation into a sale (DEDUCT), whole."""
        return await self._close(cart_id, Deduct, "deduct", variant_id, quantity)

    async def release(self, cart_id: str, variant_id: int | None = None,
                      quantity: int | None = None) -> CartJson:
        """Gives the reserved units back, whole."""
        return await self._close(cart_id, Release, "release", variant_id, quantity)

    async def _close(self, cart: str, close: type[Release] | type[Deduct], op: str,
                     variant_id: int | None, quantity: int | None) -> CartJson:
        """`variant_id` (and `quantity`), when given, must be what the reservation holds:
        checked before anything closes. A cart over several slots closes whole, as its
        decision says (the first close decided, recorded once in PostgreSQL): each caller
        closes every slot as decided, and one whose close lost (to another caller's, or to
        the cart's expiry) gets 409 `reservation_closed` with the cart's status."""
        slots = _slots_of(cart)
        if variant_id is not None:
            s = slot_of(variant_id)
            if s not in slots:
                await self.get(cart)  # 404 if there is no such reservation at all
                raise ValidationFailed(
                    {"reservation_id": f"does not hold variant {variant_id}"})
            if len(slots) > 1:
                held = await self._call(s, GetReservation(reservation_id(cart, s)))
                problem = holding_problem(held.lines, variant_id, quantity)
                if problem is not None:
                    raise problem
        if len(slots) == 1:  # one partition decides it alone
            rid = reservation_id(cart, slots[0])
            return cart_json(cart, [await self._call(slots[0], close(
                f"{op}:{rid}", rid, variant_id, quantity))])
        wanted: CartOutcome = "COMMITTED" if close is Deduct else "RELEASED"
        outcome = (await self._decide({cart: wanted})).get(cart)
        if outcome is None:  # no reservation of this cart was ever made
            raise ReservationNotFound(f"reservation {cart} not found")
        if outcome == "EXPIRED":  # its partitions expire its slots when due
            raise ReservationClosed(cart, outcome)
        found = await asyncio.gather(*(self._close_slot(s, reservation_id(cart, s), outcome)
                                       for s in slots))
        parts = [p for p in found if p is not None]  # a slot refused when the cart was made
        if any(p.status != outcome for p in parts):
            # closed otherwise before decisions were recorded for it (or by hand): said, not
            # hidden behind the decision
            log.error("cart %s decided %s, its slots are %s", cart, outcome,
                      [p.status for p in parts])
            raise ReservationClosed(cart, "MIXED")
        if outcome != wanted:
            raise ReservationClosed(cart, outcome)
        return cart_json(cart, sorted(parts, key=lambda r: r.reservation_id))

    async def _close_slot(self, slot: int, rid: str,
                          outcome: CartOutcome) -> ReservationView | None:
        """One slot of a decided cart, closed as decided (or found closed so already: by the
        caller that decided, or by its partition's expiry). None: the slot was never reserved
        (a cart refused whole, RELEASED; COMMITTED is never decided for such a cart)."""
        cmd = Deduct(f"deduct:{rid}", rid) if outcome == "COMMITTED" else Release(
            f"release:{rid}", rid)
        try:
            return await self._call(slot, cmd)
        except ReservationNotFound:
            if outcome == "COMMITTED":
                raise
            return None
        except Conflict as exc:
            if exc.code != "reservation_closed":
                raise
        return await self._call(slot, GetReservation(rid))

    async def _decide(self, wanted: Mapping[str, CartOutcome]) -> dict[str, CartOutcome]:
        """The carts' decisions, `wanted` recorded where there is none (a cart no reservation
        was made for is left out). Concurrent callers' carts go together: one round trip to
        PostgreSQL for many (as partition calls do)."""
        carts = list(wanted)
        found = await asyncio.gather(*(self._deciding.submit(0, (c, wanted[c])) for c in carts))
        return {c: o for c, o in zip(carts, found, strict=True) if o is not None}

    async def _decide_many(self, _: int, wanted: list[tuple[str, CartOutcome]]
                           ) -> list[CartOutcome | None]:
        """One round trip for several callers' carts (the first wanted outcome of a cart
        asked twice goes in; both get what was decided). PostgreSQL unreachable:
        InventoryUnavailable (503: retry with the same key)."""
        first: dict[str, CartOutcome] = {}
        for cart, outcome in wanted:
            first.setdefault(cart, outcome)
        decided = await self._record(first)
        return [decided.get(cart) for cart, _ in wanted]

    async def _record(self, wanted: Mapping[str, CartOutcome]) -> dict[str, CartOutcome]:
        """cart_decisions.decide through this client's pool (made on first use)."""
        loop = asyncio.get_running_loop()
        try:
            if self._decisions is None or self._decisions[0] is not loop:
                self._decisions = (loop, loop.create_task(create_pool(
                    self.dsn, min_size=0, max_size=DECISION_CONNECTIONS,
                    server_settings={"application_name": "aisle-carts"})))
            pool = await asyncio.shield(self._decisions[1])
            async with pool.acquire(timeout=self.timeout) as conn:
                return await cart_decisions.decide(conn, wanted)
        except BaseException as exc:
            making = self._decisions[1] if self._decisions is not None else None
            if making is not None and making.done() and (
                    making.cancelled() or making.exception() is not None):
                self._decisions = None  # the pool was not made: made again next time
            if not isinstance(exc, Exception):
                raise
            if unavailable(exc) or isinstance(exc, TimeoutError | OSError):
                raise InventoryUnavailable("cart decisions unavailable: retry with the "
                                           "same key") from exc
            raise

    async def get(self, cart: str) -> CartJson:
        slots = _slots_of(cart)
        return cart_json(cart, list(await asyncio.gather(*(
            self._call(s, GetReservation(reservation_id(cart, s))) for s in slots))))

    # -- stock ----------------------------------------------------------------------------
    async def adjust(self, variant_id: int, warehouse_id: str, delta: int, reason: str,
                     key: str | None = None, absolute: bool = False) -> FiguresJson:
        """Adds `delta` to the warehouse's available units (with `absolute`: sets them to
        `delta`)."""
        a = await self._call(slot_of(variant_id), Adjust(
            key or uuid.uuid4().hex, variant_id, warehouse_id, delta, reason, absolute))
        return {"available": a.available, "reserved": a.reserved, "sold": a.sold}

    async def stock(self, variant_ids: list[int]) -> dict[str, StockJson]:
        """Per-variant status, quantity hint and per-warehouse figures, from the owners."""
        return {str(v): stock_json(s) for v, s in (await self._stocks(variant_ids)).items()}

    async def _stocks(self, variant_ids: list[int]) -> Stocks:
        out: Stocks = {}
        todo = list(variant_ids)
        while todo:
            groups = list((await self._by_owner(todo)).items())
            answers = await asyncio.gather(*(self._read(k, vs) for k, vs in groups))
            todo = []
            for (_, vs), got in zip(groups, answers, strict=True):
                if got is None:
                    todo += vs  # some moved: the map is read again, and they are regrouped
                else:
                    out.update(got)
            if todo:
                await asyncio.sleep(0.01)
        return out

    async def _by_owner(self, variant_ids: Iterable[int]) -> dict[int, list[int]]:
        owners = await self.owners()
        by_part: dict[int, list[int]] = defaultdict(list)
        for v in variant_ids:
            by_part[owners[slot_of(v)]].append(v)
        return by_part

    async def _read(self, partition: int, variant_ids: list[int]) -> Stocks | None:
        """None if the partition no longer owns all of them (the map is read again)."""
        got = await self._send(partition, ReadStock(tuple(variant_ids)),
                               asyncio.get_running_loop().time() + self.deadline)
        if isinstance(got, Moved):
            self.moved += 1
            await self.read_map()
            return None
        if isinstance(got, Refused):
            raise got.error()
        return got.value  # type: ignore[return-value]  # ReadStock answers Stocks

    async def status(self, variant_ids: list[int], wait_for_owners: bool = True,
                     cached: Mapping[int, StockView] | None = None) -> dict[str, StockView]:
        """Shoppers' view, in bulk: {variant: {status, quantity_hint, available}}. One Redis
        MGET (none when the caller read the snapshots already: `cached`, the ones it found);
        variants missing there (or all, if Redis fails) are read from their owners. Unknown
        variants are left out."""
        if cached is None:
            cached = {}
            if self.redis is not None:
                try:
                    cached = await asyncio.wait_for(
                        stock_cache.fetch(self.redis, variant_ids), 0.5)
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
            groups = await self._by_owner(batch)
            done = await asyncio.gather(*(asyncio.wait_for(self._read(k, vs), WARM_TIMEOUT_S)
                                          for k, vs in groups.items()),
                                        return_exceptions=True)
            failed = [d for d in done if isinstance(d, BaseException)]
            if failed:
                log.info("stock snapshots of %d partitions not warmed: %r", len(failed),
                         failed[0])

    # -- partitions -----------------------------------------------------------------------
    async def _each(self, call: Callable[[ActorHandle], Awaitable[T]],
                    timeout_s: float | None = None) -> list[T]:
        """`call` on the actor of every partition the map names now, in partition order. An
        operator's reads: the map is read again (another replica may have rebalanced since
        this one last looked); a partition that died or is gone meanwhile (stopped by a
        rebalance elsewhere) means the map moved: `_ask` reads it again. Never starts a
        partition (the map just read starts those it names)."""
        async def once() -> list[T]:
            n = partitions_of(await self.read_map())
            actors = [self._existing(k) for k in range(n)]  # all found before any call
            return list(await asyncio.gather(*(
                asyncio.wait_for(call(a), timeout_s) for a in actors)))

        return await self._ask(once, bounded=False)

    async def stats(self) -> list[PartitionStats]:
        found: list[PartitionStats] = await self._each(lambda a: a.stats.remote(), self.timeout)
        return found

    async def nodes(self) -> list[str]:
        """The Ray node of each partition, in partition order."""
        found: list[str] = await self._each(lambda a: a.node_id.remote(), self.timeout)
        return found

    async def check(self, fresh_s: float = 5.0) -> None:
        """Every partition the map names answers (for /health: the map read from PostgreSQL
        and one call to each); an answer from all of them within `fresh_s` stands for one, so
        a load balancer polling every replica costs at most one round every `fresh_s`."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._answered_at < fresh_s:
            return
        await self.nodes()
        self._answered_at = loop.time()

    async def report(self) -> list[tuple[PartitionStats, str]]:
        """(stats, Ray node) of each partition, in partition order: one read of the map."""
        async def both(a: ActorHandle) -> tuple[PartitionStats, str]:
            got: tuple[PartitionStats, str] = tuple(  # type: ignore[assignment]
                await asyncio.gather(a.stats.remote(), a.node_id.remote()))
            return got

        return await self._each(both, self.timeout)

    async def reconcile(self, limit: int | None = None) -> list[tuple[int, int]]:
        """Per partition: (variants compared with PostgreSQL, variants that differ) now
        (partitions also do it by themselves while idle: `aisle_inventory_accuracy`). No
        timeout: a large sample takes its time, and a call sent again would do it twice."""
        found: list[list[int]] = await self._each(lambda a: a.reconcile.remote(limit))
        return [(x[0], x[1]) for x in found]

    async def set_partitions(self, partitions: int) -> Rebalanced:
        """Moves hash slots between partition actors until `partitions` partitions hold
        them evenly (domain.inventory_slots.plan: as few slots move as that allows), while
        operations keep flowing: each move is a handoff (the owner hands the slots over
        between two of its batches; the new owner takes them up with their open
        reservations); calls that reach the old owner meanwhile are answered `Moved` and sent
        on. Partitions left without slots are stopped. One rebalance at a time per database
        (409 otherwise)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with slot_map.rebalancing(self.dsn):
            owners = await self.read_map()
            before = partitions_of(owners)
            moves = plan(owners, partitions)
            # new partitions start together first (a start takes a second or two)
            await asyncio.gather(*(self._ask(partial(self._adopt, k))
                                   for k in sorted({m.target for m in moves})))
            moved = 0
            for m in moves:
                moved += await self._move(m)
            owners = await self.read_map()
            retired = [k for k in range(partitions, before) if k not in owners]
            for attempt in range(2 if retired else 0):
                if attempt:
                    # another client that read the map just before the moves ended may have
                    # looked a retired partition up as it stopped: stop what came back
                    await asyncio.sleep(1.0)
                for k in retired:
                    self.actors.pop(k, None)
                    with contextlib.suppress(ValueError):
                        ray.kill(ray.get_actor(partition_name(k, self.dsn),
                                               namespace=NAMESPACE), no_restart=True)
        return Rebalanced(before, partitions_of(owners), moved, len(moves),
                          round(loop.time() - started, 3))

    async def _move(self, m: Move) -> int:
        """One handoff: the source hands the slots over, the target takes them up at once (it
        would by itself on the first call for them). Slots moved."""
        async def hand_over() -> list[int]:
            given: list[int] = await self._actor(m.source).hand_over.remote(
                list(m.slots), m.target)
            return given

        got = await self._ask(hand_over)
        await self._ask(partial(self._adopt, m.target))
        return len(got)

    async def _adopt(self, k: int) -> int:
        taken: int = await self._actor(k).adopt.remote()
        return taken

    async def _ask(self, call: Callable[[], Awaitable[T]], bounded: bool = True) -> T:
        """An administrative call to an actor, tried again while the actor restarts (the
        calls used with it are idempotent); each try within the call timeout if `bounded`."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline
        delay = 0.05
        while True:
            try:
                return await asyncio.wait_for(call(), self.timeout if bounded else None)
            except RETRYABLE as exc:
                if loop.time() + delay >= give_up:
                    raise InventoryUnavailable("inventory partition unavailable") from exc
                if isinstance(exc, ActorDiedError | PartitionGone):
                    # dead for good or gone: stopped by a rebalance another replica ran (and
                    # maybe started again there under its name); calls find it anew by name
                    self.actors.clear()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    def kill(self, k: int) -> None:
        """For fault tests and operators: Ray restarts the actor, which recovers from PG."""
        ray.kill(self._actor(k), no_restart=False)

    def shutdown(self) -> None:
        """Stops the partition actors for good (they are detached: nothing else stops them):
        those this client has called, and any other the map names."""
        for k in range(max(partitions_of(self._owners), self.n, *self.actors, 0) + 1):
            actor = self.actors.pop(k, None)
            if actor is None:
                with contextlib.suppress(Exception):
                    actor = ray.get_actor(partition_name(k, self.dsn), namespace=NAMESPACE)
            if actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)


def _slots_of(cart: str) -> list[int]:
    slots = slots_of_cart(cart)
    if slots is None:
        raise ReservationNotFound(f"reservation {cart} not found")
    return slots
