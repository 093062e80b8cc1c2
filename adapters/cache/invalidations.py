"""Invalidations relayed to in-process copies: the index builder announces changed products
on a channel (after deleting their Redis keys), and each process follows it to drop its own
copies of their pages."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence

import redis.asyncio as aioredis

from adapters.cache.breaker import RETRY_AFTER_S
from adapters.redis_keys import (
    INVALIDATIONS,
    invalidated_ids,
    invalidation_message,
    stale_keys,
)

log = logging.getLogger("aisle.cache")


async def announce(redis: aioredis.Redis, product_ids: Iterable[int]) -> None:
    """Tells every process holding local copies of these products' pages to drop them
    (called after their Redis keys are deleted)."""
    ids = invalidation_message(product_ids)
    if ids:
        await redis.publish(INVALIDATIONS, ids)


async def drop_pages(redis: aioredis.Redis, product_ids: Sequence[int]) -> None:
    """After a change of these products: their Redis keys deleted (pages, prices, listing
    prices), then every process told to drop its own copies of their pages."""
    if product_ids:
        await redis.delete(*stale_keys(product_ids))
        await announce(redis, product_ids)


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
                            self.on_ids(invalidated_ids(msg["data"]))
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
