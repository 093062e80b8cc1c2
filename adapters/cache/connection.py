"""The Redis client caches use: short timeouts, no retries, a bounded pool."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

TIMEOUT_S = 0.25  # per Redis command: a slow Redis is treated as a down one
MAX_CONNECTIONS = 32  # per process
POOL_WAIT_S = 1.0  # for a free connection, under a burst


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
