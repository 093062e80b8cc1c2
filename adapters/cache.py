"""Caches for read paths: Redis cache-aside with single-flight misses, and in-process values.

`Cache` (Redis, shared by every replica):
- `get_or_load(keys, load)`: one MGET for all keys; the keys that miss are loaded together by
  `load` and written back, each with its own lifetime. Values are JSON.
- Single flight, per process: concurrent misses of the same keys share one run of `load`
  (`loads` counts the runs), so a stampede of 1,000 requests for an uncached product costs
  one database read in this replica.
- Across replicas (or processes) there is no coordination of the load itself: each replica
  that misses at the same moment loads once (N replicas: at most N loads for one stampede).
  Only one of them writes: a miss claims the key with a lease (`SET NX PX`) before reading
  the database, and the value is stored only if the lease is still there (a Lua
  compare-and-set). An invalidation (`DEL`, the index builder's after each catalog or price
  event) removes the lease too, so a value read before a change is never stored after the
  change's invalidation (the classic cache-aside race that leaves stale data for a whole TTL).
- Redis down or slow: short socket timeouts, no retries, and a breaker: after a failure Redis
  is not asked again for `retry_after_s`, every read is a miss (`bypass`) answered by `load`,
  and nothing is written; the first request after that tries again, so caching resumes by
  itself when Redis is back.

`Invalidations` (this process only): follows the channel on which the index builder announces
changed products, so in-process copies of their pages can be dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterable, Sequence
from typing import Any, TypeVar

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from adapters import stock_cache

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def dumps(value: Any) -> bytes:
    return orjson.dumps(value, option=_OPTIONS)


loads: Callable[[bytes | str], Any] = orjson.loads
log = logging.getLogger("aisle.cache")
T = TypeVar("T")
LEASE = b"\x00lease:"  # a claimed key holds this prefix and a token until the value comes
LEASE_MS = 10_000  # a lease outlives any sane load; a crashed loader's lease just expires
TIMEOUT_S = 0.25  # per Redis command: a slow Redis is treated as a down one
RETRY_AFTER_S = 1.0  # breaker: how long Redis is left alone after a failure
MAX_CONNECTIONS = 32  # per process
POOL_WAIT_S = 1.0  # for a free connection, under a burst

# KEYS: the keys to claim. ARGV[1]: the lease value, ARGV[2]: its lifetime (ms).
# Returns 1 per key claimed, 0 per key that exists already (a value, or another lease).
_CLAIM = """
local out = {}
for i, k in ipairs(KEYS) do
  if redis.call('SET', k, ARGV[1], 'NX', 'PX', ARGV[2]) then out[i] = 1 else out[i] = 0 end
end
return out
"""
# KEYS: the keys to fill. ARGV[1]: the lease value; then a value and a lifetime (ms) per key
# (lifetime 0: drop the lease, store nothing). A key is written only while it still holds our
# lease (no invalidation came in between).
_FILL = """
local n = 0
for i, k in ipairs(KEYS) do
  if redis.call('GET', k) == ARGV[1] then
    if ARGV[2 * i + 1] == '0' then
      redis.call('DEL', k)
    else
      redis.call('SET', k, ARGV[2 * i], 'PX', ARGV[2 * i + 1])
      n = n + 1
    end
  end
end
return n
"""

Loaded = dict[str, tuple[Any, int]]  # key -> (value, lifetime in ms; 0: do not store)


def create_cache_redis(url: str, timeout_s: float = TIMEOUT_S,
                       max_connections: int = MAX_CONNECTIONS) -> aioredis.Redis:
    """A client for caching: short timeouts and no retries (a cache never waits for Redis),
    and a bounded pool (a burst of requests queues for a connection instead of opening one
    socket each)."""
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=max_connections, timeout=POOL_WAIT_S,
        socket_connect_timeout=timeout_s, socket_timeout=timeout_s,
        retry=Retry(NoBackoff(), 0), health_check_interval=0, decode_responses=False)
    return aioredis.Redis(connection_pool=pool)


class SingleFlight:
    """Concurrent `do(key, load)` calls with one key share one run of `load` (this process).
    The run is a task of its own: a caller that gives up (a client disconnects) does not
    cancel it for the others."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task[Any]] = {}
        self.runs = 0

    async def do(self, key: Hashable, load: Callable[[], Coroutine[Any, Any, T]]) -> T:
        task = self._running.get(key)
        if task is None:
            self.runs += 1
            task = asyncio.get_running_loop().create_task(load())
            self._running[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        return await asyncio.shield(task)

    def _done(self, key: Hashable, task: asyncio.Task[Any]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved, even when every caller gave up


class Cache:
    def __init__(self, redis: aioredis.Redis | None, retry_after_s: float = RETRY_AFTER_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.redis = redis
        self.retry_after_s = retry_after_s
        self.clock = clock
        self.flights = SingleFlight()
        self.reads = SingleFlight()  # concurrent reads of the same keys share one MGET
        self._down_until = 0.0
        self._claim = redis.register_script(_CLAIM) if redis is not None else None
        self._fill = redis.register_script(_FILL) if redis is not None else None
        self.counts: dict[str, int] = {"hits": 0, "misses": 0, "bypassed": 0, "fills": 0,
                                       "lease_lost": 0, "errors": 0, "invalidations": 0}
        self.by_kind: dict[str, dict[str, int]] = {}

    # -- Redis, behind the breaker ---------------------------------------------------------
    @property
    def available(self) -> bool:
        return self.redis is not None and self.clock() >= self._down_until

    def _failed(self, what: str, exc: BaseException) -> None:
        if self.clock() >= self._down_until:
            log.warning("redis %s failed (%r): reading through for %.1f s", what, exc,
                        self.retry_after_s)
        self.counts["errors"] += 1
        self._down_until = self.clock() + self.retry_after_s

    async def _redis(self, what: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """`call()`, or None when Redis is down, slow or fails (and then left alone a while)."""
        if not self.available:
            return None
        try:
            return await call()
        except Exception as exc:  # any Redis failure: the caller reads through
            self._failed(what, exc)
            return None

    async def mget(self, keys: Sequence[str]) -> list[bytes | None] | None:
        async def read() -> list[bytes | None]:
            assert self.redis is not None
            return await self.redis.mget(keys)  # type: ignore[return-value]

        return await self._redis("read", read)

    async def set(self, key: str, value: Any, ttl_s: int) -> bool:
        """Stores `value` (JSON) for `ttl_s`, unless Redis is unavailable (then False)."""
        data = dumps(value)
        done = await self._redis("write", lambda: self.redis.set(  # type: ignore[union-attr]
            key, data, ex=ttl_s))
        return done is not None

    async def delete(self, keys: Iterable[str]) -> bool:
        keys = list(keys)
        done = await self._redis("delete", lambda: self.redis.delete(*keys))  # type: ignore[union-attr]
        self.counts["invalidations"] += len(keys) if done is not None else 0
        return done is not None

    async def stock(self, variant_ids: Sequence[int]) -> dict[int, dict[str, Any]] | None:
        """The partition owners' stock snapshots (one MGET, shared by concurrent reads of the
        same variants); None when Redis is unavailable. Callers must not change the answer."""
        ids = tuple(variant_ids)
        return await self.reads.do(("stock", *ids), lambda: self._redis(
            "stock read", lambda: stock_cache.fetch(self.redis, ids)))  # type: ignore[arg-type]

    # -- cache-aside ---------------------------------------------------------------------
    def _count(self, key: str, what: str) -> None:
        kind = key.split(":")[1] if key.count(":") >= 2 else key
        per = self.by_kind.setdefault(kind, {"hits": 0, "misses": 0})
        per[what] += 1
        self.counts[what] += 1

    async def get_or_load(self, keys: Sequence[str], load: Callable[[list[str]], Awaitable[Loaded]],
                          also: Sequence[str] = (), tag: Hashable = None
                          ) -> tuple[dict[str, Any], str, list[bytes | None] | None]:
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
        values: dict[str, Any] = {}
        missing: list[str] = []
        for i, key in enumerate(keys):
            r = raw[i] if raw is not None else None
            if r is None or r.startswith(LEASE):
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

    async def refresh(self, keys: Sequence[str], load: Callable[[list[str]], Awaitable[Loaded]]
                      ) -> dict[str, Any]:
        """Loads `keys` now and stores them (pre-warming): the old values are dropped first."""
        await self.delete(keys)
        return await self.flights.do((None, *keys), lambda: self._load(list(keys), load))

    async def _load(self, keys: list[str], load: Callable[[list[str]], Awaitable[Loaded]]
                    ) -> dict[str, Any]:
        token = LEASE + secrets.token_hex(8).encode()
        claimed = await self._redis("claim", lambda: self._claim(  # type: ignore[misc]
            keys=keys, args=[token, LEASE_MS]))
        loaded = await load(keys)
        mine = [k for k, ok in zip(keys, claimed or (), strict=False) if ok]
        if mine:  # store what we claimed; a lifetime of 0 only drops our lease
            args: list[Any] = [token]
            stored = 0
            for k in mine:
                value, ttl = loaded.get(k, (None, 0))
                args += [dumps(value), max(0, int(ttl))] if ttl > 0 else [b"", 0]
                stored += ttl > 0
            filled = await self._redis("fill", lambda: self._fill(  # type: ignore[misc]
                keys=mine, args=args))
            if filled is not None:
                self.counts["fills"] += int(filled)
                self.counts["lease_lost"] += stored - int(filled)
        return {k: v for k, (v, _) in loaded.items()}

    def stats(self) -> dict[str, Any]:
        looked = self.counts["hits"] + self.counts["misses"]
        return {**self.counts, "loads": self.flights.runs,
                "hit_ratio": round(self.counts["hits"] / looked, 4) if looked else None,
                "by_kind": {k: dict(v) for k, v in self.by_kind.items()},
                "redis": ("none" if self.redis is None
                          else "up" if self.available else "down")}

    async def close(self) -> None:
        if self.redis is not None:
            with contextlib.suppress(Exception):
                await self.redis.aclose()


# -- invalidations relayed to in-process copies ------------------------------------------
INVALIDATIONS = "aisle:invalidations"  # channel: comma-separated product ids, after the DEL


async def announce(redis: aioredis.Redis, product_ids: Iterable[int]) -> None:
    """Tells every process holding local copies of these products' pages to drop them
    (called after their Redis keys are deleted)."""
    ids = ",".join(str(int(p)) for p in product_ids)
    if ids:
        await redis.publish(INVALIDATIONS, ids)


class Invalidations:
    """Follows the invalidation channel for one process. `live` is True only while the
    subscription stands: pub/sub drops messages sent while a subscriber is away, so when it
    is lost (Redis down, connection cut) `on_gap` is called and local copies must not be
    trusted until `live` again. `on_ids` gets the product ids of each message."""

    def __init__(self, url: str, on_ids: Callable[[list[int]], None],
                 on_gap: Callable[[], None], retry_s: float = RETRY_AFTER_S,
                 ping_s: float = 1.0) -> None:
        self.url = url
        self.on_ids = on_ids
        self.on_gap = on_gap
        self.retry_s = retry_s
        self.ping_s = ping_s  # a quiet channel is PINGed; 3 unanswered: the link is lost
        self.live = False
        self.messages = 0
        self.gaps = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            client = aioredis.Redis.from_url(self.url, socket_connect_timeout=1.0,
                                             health_check_interval=5)
            try:
                async with client.pubsub() as ps:
                    await ps.subscribe(INVALIDATIONS)
                    heard = time.monotonic()
                    while True:
                        msg = await ps.get_message(timeout=self.ping_s)
                        if msg is None:  # quiet: is Redis still there (a half-open link
                            # or a stalled server would otherwise look like a quiet channel)?
                            if time.monotonic() - heard > 3 * self.ping_s:
                                raise ConnectionError("no answer to PING")
                            await ps.ping()
                            continue
                        heard = time.monotonic()
                        if msg["type"] == "subscribe":
                            # announcements sent before now may have been missed: whatever
                            # was read meanwhile is not kept
                            self.on_gap()
                            self.live = True
                        elif msg["type"] == "message":
                            self.messages += 1
                            data = msg["data"]
                            text = data.decode() if isinstance(data, bytes) else str(data)
                            self.on_ids([int(x) for x in text.split(",") if x])
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down or the connection cut: retry, trust nothing
                log.warning("invalidation channel lost (%r): local copies off", exc)
            finally:
                if self.live:
                    self.gaps += 1
                self.live = False
                self.on_gap()
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(self.retry_s)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
