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
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from actors import database_tag, named
from actors.inventory import CommitFailed, InventoryPartition
from adapters import stock_cache
from adapters.coalesce import Coalescer
from adapters.redis import create_redis
from domain.errors import AisleError, Unavailable, ValidationFailed
from domain.inventory import ReservationNotFound, error_from_json, partition_of

log = logging.getLogger("aisle.inventory")
MAX_INFLIGHT = 2  # Ray calls under way per partition, per client
MAX_OPS_PER_CALL = 512
WARM_EVERY_S = 0.25  # snapshots missing from Redis are asked of their owners this often...
WARM_MAX = 5_000  # ...at most this many variants at a time (more wait for a later round)
WARM_TIMEOUT_S = 2.0
RETRYABLE = (RayActorError, ActorDiedError, ActorUnavailableError, CommitFailed, TimeoutError)


class InventoryUnavailable(Unavailable):
    code = "inventory_unavailable"


def partition_actor(k: int, dsn: str, low_stock_threshold: int,
                    redis_url: str | None = None) -> Any:
    """Partition k of the database at `dsn` (one set of partitions per database)."""
    return named(InventoryPartition, f"inventory-{database_tag(dsn)}-{k}").remote(
        k, dsn, low_stock_threshold, redis_url=redis_url)


class InventoryClient:
    """Routes operations to partition owners and retries them with the same key.

    A call that gets no answer (actor died or restarting, batch not committed, no reply within
    `call_timeout_s`) is sent again, with backoff, until `deadline_s` has passed since the
    first try; then `InventoryUnavailable` (HTTP 503): the outcome is unknown, and the caller
    may retry with the same idempotency key later.
    """

    def __init__(self, partitions: int, dsn: str, low_stock_threshold: int = 5,
                 call_timeout_s: float = 5.0, deadline_s: float = 30.0,
                 redis_url: str | None = None) -> None:
        self.n = partitions
        self.dsn = dsn
        self.low = low_stock_threshold
        self.redis_url = redis_url
        self.redis = create_redis(redis_url) if redis_url else None
        self._warming: asyncio.Task[Any] | None = None
        self._to_warm: dict[int, None] = {}  # variants whose snapshots searches missed
        self.actors = [self._actor(k) for k in range(partitions)]
        self.timeout = call_timeout_s
        self.deadline = deadline_s
        self.retries = 0
        # under load, operations that arrive while calls are under way go together in the
        # next one (one Ray call for many; no timer, so an idle system adds no delay)
        self._calls: Coalescer[int, dict[str, Any], dict[str, Any]] = Coalescer(
            self._call_many, MAX_INFLIGHT, MAX_OPS_PER_CALL)

    def _actor(self, k: int) -> Any:
        return partition_actor(k, self.dsn, self.low, self.redis_url)

    def owner(self, variant_id: int) -> int:
        return partition_of(variant_id, self.n)

    async def _call(self, k: int, op: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline
        delay = 0.05
        while True:
            try:
                outcome = await asyncio.wait_for(self._calls.submit(k, op), min(self.timeout,
                                                          max(give_up - loop.time(), 0.1)))
                if "retry" in outcome:
                    raise CommitFailed(outcome["retry"])
            except RETRYABLE as exc:
                if loop.time() + delay >= give_up:
                    raise InventoryUnavailable(f"inventory partition {k} unavailable") from exc
                self.retries += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if outcome["ok"]:
                return outcome["value"]
            raise error_from_json(outcome["error"])

    async def _call_many(self, k: int, ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
        actor = self.actors[k]
        try:
            return await actor.call_many.remote(ops)
        except ActorDiedError:
            if self.actors[k] is actor:
                # restarting: the name still resolves to it; dead for good (e.g. stopped
                # by an operator): a new one is started under the same name
                self.actors[k] = self._actor(k)
            raise

    # -- reservations ---------------------------------------------------------------------
    async def reserve(self, items: list[tuple[int, int, str | None]], key: str | None = None,
                      ttl_s: float = 900.0) -> dict[str, Any]:
        """Reserves every item or none. Same key, same outcome (never reserves twice)."""
        key = key or uuid.uuid4().hex
        by_part: dict[int, list[list[Any]]] = defaultdict(list)
        for v, q, w in items:
            by_part[self.owner(v)].append([str(v), q, w])
        parts = sorted(by_part)
        cart_id = "r" + hashlib.sha256(key.encode()).hexdigest()[:20] + "." + "-".join(
            map(str, parts))
        done: list[tuple[int, dict[str, Any]]] = []
        try:
            for k in parts:
                res = await self._call(k, {
                    "op": "reserve", "key": f"{key}/p{k}", "items": by_part[k],
                    "ttl_ms": int(ttl_s * 1000), "cart_id": cart_id,
                    "reservation_id": f"{cart_id}/p{k}"})
                done.append((k, res))
        except AisleError as exc:
            if isinstance(exc, InventoryUnavailable):
                # outcome unknown: keep what was reserved; a retry with the same key carries
                # on from there, and the TTL releases it if nobody retries
                raise
            await self._compensate(key, done)  # a definite "no": undo the partitions before
            raise
        return _cart(cart_id, [r for _, r in done])

    async def _compensate(self, key: str, done: list[tuple[int, dict[str, Any]]]) -> None:
        for k, res in reversed(done):
            with contextlib.suppress(AisleError):  # closed already; or unavailable: TTL frees it
                await self._call(k, {"op": "release", "key": f"{key}/p{k}/undo",
                                     "reservation_id": res["reservation_id"]})

    async def commit(self, cart_id: str, variant_id: int | None = None,
                     quantity: int | None = None) -> dict[str, Any]:
        """Turns the reservation into a sale (DEDUCT), whole."""
        return await self._close(cart_id, "deduct", variant_id, quantity)

    async def release(self, cart_id: str, variant_id: int | None = None,
                      quantity: int | None = None) -> dict[str, Any]:
        """Gives the reserved units back, whole."""
        return await self._close(cart_id, "release", variant_id, quantity)

    async def _close(self, cart_id: str, op: str, variant_id: int | None,
                     quantity: int | None) -> dict[str, Any]:
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
            call: dict[str, Any] = {"op": op, "key": f"{op}:{cart_id}/p{k}",
                                    "reservation_id": f"{cart_id}/p{k}"}
            if variant_id is not None and k == parts[0]:
                call.update(variant_id=str(variant_id), quantity=quantity)
            results.append(await self._call(k, call))
        return _cart(cart_id, sorted(results, key=lambda r: r["reservation_id"]))

    async def get(self, cart_id: str) -> dict[str, Any]:
        parts = _parts_of(cart_id, self.n)
        return _cart(cart_id, list(await asyncio.gather(*(
            self._call(k, {"op": "get", "reservation_id": f"{cart_id}/p{k}"})
            for k in parts))))

    # -- stock ----------------------------------------------------------------------------
    async def adjust(self, variant_id: int, warehouse_id: str, delta: int, reason: str,
                     key: str | None = None) -> dict[str, Any]:
        return dict(await self._call(self.owner(variant_id), {
            "op": "adjust", "key": key or uuid.uuid4().hex, "variant_id": str(variant_id),
            "warehouse_id": warehouse_id, "delta": delta, "reason": reason}))

    async def stock(self, variant_ids: list[int]) -> dict[str, Any]:
        """Per-variant status, quantity hint and per-warehouse figures, from the owners."""
        answers = await asyncio.gather(*(
            self._read(k, vs) for k, vs in self._by_owner(variant_ids).items()))
        out: dict[str, Any] = {}
        for a in answers:
            out.update(a)
        return out

    def _by_owner(self, variant_ids: Iterable[int]) -> dict[int, list[int]]:
        by_part: dict[int, list[int]] = defaultdict(list)
        for v in variant_ids:
            by_part[self.owner(v)].append(v)
        return by_part

    async def _read(self, partition: int, variant_ids: list[int]) -> dict[str, Any]:
        return await self._call(
            partition, {"op": "read", "variant_ids": [str(v) for v in variant_ids]})

    async def status(self, variant_ids: list[int],
                     wait_for_owners: bool = True) -> dict[str, dict[str, Any]]:
        """Shoppers' view, in bulk: {variant: {status, quantity_hint, available}}. One Redis
        MGET; variants missing there (or all, if Redis fails) are read from their owners.
        Unknown variants are left out."""
        cached: dict[int, dict[str, Any]] = {}
        if self.redis is not None:
            try:
                cached = await asyncio.wait_for(stock_cache.fetch(self.redis, variant_ids), 0.5)
            except Exception as exc:  # Redis down: the owners answer
                log.warning("stock cache unavailable: %r", exc)
        out = {str(v): snap for v, snap in cached.items()}
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
            for v, full in (await self.stock(missing)).items():
                out[v] = {"status": full["status"], "quantity_hint": full["quantity_hint"],
                          "available": full["available"]}
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

    async def stats(self) -> list[dict[str, int]]:
        return list(await asyncio.gather(*(a.stats.remote() for a in self.actors)))

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


def _cart(cart_id: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    statuses = {p["status"] for p in parts}
    expires = min((p["expires_at_ms"] for p in parts), default=None)
    return {
        "reservation_id": cart_id,
        "status": statuses.pop() if len(statuses) == 1 else "MIXED",
        "expires_at": None if expires is None else datetime.fromtimestamp(
            expires / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "expires_at_ms": expires,
        "lines": [line for p in parts for line in p["lines"]],
    }
