"""Redis through redis-py's asyncio client."""

from __future__ import annotations

import redis.asyncio as aioredis


def create_redis(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_connect_timeout=2.0,
        socket_timeout=2.0,
        health_check_interval=30,
        decode_responses=False,
    )
