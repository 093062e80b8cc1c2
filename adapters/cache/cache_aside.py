"""`Cache`: Redis cache-aside, shared by every replica.

- `get_or_load(keys, load)`: one MGET for all keys; the keys that miss are loaded together by
  `load` and written back, each with its own lifetime. Values are JSON (values.py).
- Concurrent misses of the same keys share one run of `load` in this process (single_flight.py;
  `loads` counts the runs); across replicas only the holder of a key's lease writes it
  (leases.py), so a value read before a change is never stored after its invalidation.
- Redis down or slow: short socket timeouts, no retries (connection.py), and a breaker
  (breaker.py): while it is open every read is a miss (`bypass`) answered by `load`, and
  nothing is written.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Awaitable, Callable, Hashable, Iterable, Sequence
from typing import Any, Literal, TypedDict, TypeVar

import redis.asyncio as aioredis

from adapters import stock_cache
from adapters.cache.breaker import RETRY_AFTER_S, Breaker
from adapters.cache.leases import Leases, is_lease, new_lease
from adapters.cache.single_flight import SingleFlight
from adapters.cache.values import Loaded, V, dumps, loads

T = TypeVar("T")
Looked = Literal["hits", "misses"]


class KindCounts(TypedDict):
    hits: int
    misses: int


class Counts(TypedDict):
    hits: int
    misses: int
    bypassed: int  # reads answered by `load` while Redis was unavailable
    fills: int  # values stored
    lease_lost: int  # values not stored: an invalidation came during their load
    invalidations: int  # keys deleted


class CacheStats(TypedDict):
    hits: int
    misses: int
    bypassed: int
    fills: int
    lease_lost: int
    errors: int  # Redis calls that failed
    invalidations: int
    loads: int  # runs of `load` (concurrent misses share one)
    hit_ratio: float | None
    by_kind: dict[str, KindCounts]  # by the key's kind: `aisle:{kind}:...`
    redis: Literal["none", "up", "down"]


class Cache:
    def __init__(self, redis: aioredis.Redis | None, retry_after_s: float = RETRY_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.breaker = Breaker(retry_after_s, clock)
        self.flights = SingleFlight()
        self.reads = SingleFlight()  # concurrent reads of the same keys share one MGET
        self._leases = Leases(redis) if redis is not None else None
        self.counts: Counts = {"hits": 0, "misses": 0, "bypassed": 0, "fills": 0,
                               "lease_lost": 0, "invalidations": 0}
        self.by_kind: dict[str, KindCounts] = {}

    # -- Redis, behind the breaker ---------------------------------------------------------
    @property
    def available(self) -> bool:
        return self.redis is not None and self.breaker.closed

    async def _redis(self, what: str,
                     call: Callable[[aioredis.Redis], Awaitable[T]]) -> T | None:
        """`call(redis)`, or None when Redis is absent, down, slow or fails (and then left
        alone a while)."""
        redis = self.redis
        if redis is None:
            return None
        return await self.breaker.call(what, lambda: call(redis))

    async def mget(self, keys: Sequence[str]) -> list[bytes | None] | None:
        async def read(redis: aioredis.Redis) -> list[bytes | None]:
            return await redis.mget(keys)  # type: ignore[return-value]  # bytes: not decoded

        return await self._redis("read", read)

    async def set(self, key: str, value: object, ttl_s: int) -> bool:
        """Stores `value` (JSON) for `ttl_s`, unless Redis is unavailable (then False)."""
        data = dumps(value)
        done = await self._redis("write", lambda r: r.set(key, data, ex=ttl_s))
        return done is not None

    async def delete(self, keys: Iterable[str]) -> bool:
        keys = list(keys)
        done = await self._redis("delete", lambda r: r.delete(*keys))
        self.counts["invalidations"] += len(keys) if done is not None else 0
        return done is not None

    async def stock(self, variant_ids: Sequence[int]) -> dict[int, dict[str, Any]] | None:
        """The partition owners' stock snapshots (one MGET, shared by concurrent reads of the
        same variants); None when Redis is unavailable. Callers must not change the answer."""
        ids = tuple(variant_ids)
        return await self.reads.do(("stock", *ids), lambda: self._redis(
            "stock read", lambda r: stock_cache.fetch(r, ids)))

    # -- cache-aside ---------------------------------------------------------------------
    def looked_up(self, key: str, found: bool) -> None:
        """Counts a lookup its caller made with `mget` (the facets' counts): a hit or a miss
        of the key's kind, as `get_or_load` counts its own."""
        self._count(key, "hits" if found else "misses")

    def _count(self, key: str, what: Looked) -> None:
        kind = key.split(":")[1] if key.count(":") >= 2 else key
        per = self.by_kind.setdefault(kind, {"hits": 0, "misses": 0})
        per[what] += 1
        self.counts[what] += 1

    async def get_or_load(self, keys: Sequence[str],
                          load: Callable[[list[str]], Awaitable[Loaded[V]]],
                          also: Sequence[str] = (), tag: Hashable = None
                          ) -> tuple[dict[str, V], str, list[bytes | None] | None]:
        """Values of `keys`, from Redis or else from `load(missing keys)`, and how they came:
        "hit" (all from Redis), "miss" (some loaded), "bypass" (Redis unavailable). The keys
        `also` are read in the same MGET and returned as they are (None: Redis unavailable):
        one round trip for a page and the stock snapshots it is likely to need. Concurrent
        calls share reads and loads only when their `tag` is equal (a caller that learned of
        an invalidation must not join a read that began before it)."""
        # a stampede on one page is one MGET, then one load: a thousand reads at once would
        # queue for the pool's connections, time out and trip the breaker
        wanted = [*keys, *also]
        raw = (await self.reads.do(("mget", tag, *wanted), lambda: self.mget(wanted))
               if wanted else [])
        extra = raw[len(keys):] if raw is not None else None
        values: dict[str, V] = {}
        missing: list[str] = []
        for i, key in enumerate(keys):
            r = raw[i] if raw is not None else None
            if r is None or is_lease(r):
                missing.append(key)
                self._count(key, "misses")
            else:
                values[key] = loads(r)
                self._count(key, "hits")
        if not missing:
            return values, "hit", extra
        if raw is None:
            self.counts["bypassed"] += 1
        values.update(await self.flights.do((tag, *missing), lambda: self._load(missing, load)))
        return values, "bypass" if raw is None else "miss", extra

    async def refresh(self, keys: Sequence[str],
                      load: Callable[[list[str]], Awaitable[Loaded[V]]]) -> dict[str, V]:
        """Loads `keys` now and stores them (pre-warming): the old values are dropped first."""
        await self.delete(keys)
        return await self.flights.do((None, *keys), lambda: self._load(list(keys), load))

    async def _load(self, keys: list[str],
                    load: Callable[[list[str]], Awaitable[Loaded[V]]]) -> dict[str, V]:
        lease, leases = new_lease(), self._leases
        claimed = (await self._redis("claim", lambda _: leases.claim(keys, lease))
                   if leases is not None else None)
        loaded = await load(keys)
        mine = [k for k, ok in zip(keys, claimed or (), strict=False) if ok]
        if mine and leases is not None:  # store what we claimed; lifetime 0 drops our lease
            fills: list[tuple[bytes, int]] = []
            stored = 0
            for k in mine:
                value, ttl = loaded.get(k, (None, 0))
                fills.append((dumps(value), max(0, int(ttl))) if ttl > 0 else (b"", 0))
                stored += ttl > 0
            filled = await self._redis("fill", lambda _: leases.fill(mine, lease, fills))
            if filled is not None:
                self.counts["fills"] += int(filled)
                self.counts["lease_lost"] += stored - int(filled)
        return {k: v for k, (v, _) in loaded.items()}

    def stats(self) -> CacheStats:
        c = self.counts
        looked = c["hits"] + c["misses"]
        return {"hits": c["hits"], "misses": c["misses"], "bypassed": c["bypassed"],
                "fills": c["fills"], "lease_lost": c["lease_lost"],
                "errors": self.breaker.failures, "invalidations": c["invalidations"],
                "loads": self.flights.runs,
                "hit_ratio": round(c["hits"] / looked, 4) if looked else None,
                "by_kind": {k: v.copy() for k, v in self.by_kind.items()},
                "redis": ("none" if self.redis is None
                          else "up" if self.available else "down")}

    async def close(self) -> None:
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()
