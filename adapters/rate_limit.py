"""Request rate limits shared by every Gateway replica: a counter per (scope, client, minute)
in Redis (INCR + EXPIRE, one round trip), so N replicas allow a client `limit` requests a
minute in all, not N times that. When Redis does not answer (50 ms), each replica counts on
its own for the moment (the same windows, in memory): limits stay in force, per replica."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from adapters.redis_keys import rate_limit_key
from domain.errors import RateLimited

log = logging.getLogger("aisle.http")
WINDOW_S = 60
REDIS_TIMEOUT_S = 0.05
LOCAL_KEPT = 100_000  # local counters kept while Redis is down (old windows dropped first)


class RateLimiter:
    def __init__(self, redis: aioredis.Redis | None,
                 clock: Callable[[], float] = time.time,
                 timeout_s: float = REDIS_TIMEOUT_S) -> None:
        self.redis = redis
        self.clock = clock
        self.timeout_s = timeout_s  # for Redis's count; past it, this replica counts alone
        self._local: dict[str, int] = {}
        self.rejected = 0  # requests refused, by this replica
        self.refused: dict[str, int] = {}  # the same, by scope

    async def check(self, scope: str, client: str, limit: int) -> None:
        """Counts one request of `client` in `scope`; RateLimited past `limit` a minute
        (0: no limit)."""
        if limit <= 0:
            return
        now = self.clock()
        window = int(now // WINDOW_S)
        key = rate_limit_key(scope, client, window)
        count = await self._count(key)
        if count > limit:
            self.rejected += 1
            self.refused[scope] = self.refused.get(scope, 0) + 1
            raise RateLimited(limit, max(1, int((window + 1) * WINDOW_S - now + 0.999)))

    async def _count(self, key: str) -> int:
        if self.redis is not None:
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    pipe.incr(key)
                    pipe.expire(key, WINDOW_S * 2)
                    count, _ = await asyncio.wait_for(pipe.execute(), self.timeout_s)
                return int(count)
            except Exception as exc:  # Redis down or slow: count here for now
                log.debug("rate limit counted locally: %r", exc)
        if len(self._local) >= LOCAL_KEPT:
            for k in sorted(self._local, key=lambda k: k.rsplit(":", 1)[1])[:LOCAL_KEPT // 2]:
                del self._local[k]
        self._local[key] = self._local.get(key, 0) + 1
        return self._local[key]
