"""A partition's committed stock status, published to Redis for shoppers' reads
(adapters.stock_cache).

Snapshots are taken right after a commit (committed state); the write goes in the background,
one at a time, in order. Best effort: on failure the variants stay pending and go with a later
batch (the partition's loop ticks at least every 0.5 s), and publishing pauses for a second.
Every snapshot is published again before Redis would expire it: a variant whose snapshot is
missing costs every search that shows it a call to its owner.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Callable, Iterable

import redis.asyncio as aioredis

from adapters import stock_cache
from domain.inventory import PartitionState
from domain.inventory_api import StockSnapshot, snapshot
from domain.inventory_commands import VariantStock

log = logging.getLogger("aisle.inventory")


class StockPublisher:
    def __init__(self, redis: aioredis.Redis | None, clock: Callable[[], int],
                 partition: int, republish_after_ms: int = stock_cache.TTL_S * 500) -> None:
        self.redis = redis
        self.republish_after_ms = republish_after_ms
        self.clock = clock
        self.partition = partition
        self.pending: set[int] = set()  # variants whose Redis snapshot is behind
        self._quiet_until = 0  # after a Redis failure, publishing pauses for a second
        self._writing: asyncio.Task[None] | None = None
        # publish times in order, to publish every snapshot again before Redis expires it
        self._published: collections.OrderedDict[int, int] = collections.OrderedDict()

    def mark(self, variants: Iterable[int]) -> None:
        """These variants' snapshots are behind (changed, or loaded)."""
        self.pending.update(variants)

    def publish(self, state: PartitionState) -> None:
        """Snapshots of the pending variants and of those due again, written in the
        background (unless a write is under way: they go with a later call)."""
        self._refresh_due(state)
        if self.redis is None or not self.pending or self.clock() < self._quiet_until:
            return
        if self._writing is not None and not self._writing.done():
            return
        todo, self.pending = self.pending, set()
        now = self.clock()
        for v in todo:  # oldest publish first; one entry per variant
            self._published[v] = now
            self._published.move_to_end(v)
        snaps = {v: snapshot(VariantStock.of(state, v)) for v in todo if state.knows(v)}
        self._writing = asyncio.get_running_loop().create_task(self._write(snaps))

    async def settle(self) -> None:
        """Waits for the write under way, if any (before handing variants to another owner,
        whose snapshots must not be overwritten by an older one of ours)."""
        if self._writing is not None and not self._writing.done():
            with contextlib.suppress(Exception):
                await self._writing

    def _refresh_due(self, state: PartitionState) -> None:
        """Snapshots published more than `republish_after_ms` ago (by default half their
        Redis lifetime) are pending again (in publish order: amortized O(1) per variant)."""
        due = self.clock() - self.republish_after_ms
        published = self._published
        while published:
            v, at = next(iter(published.items()))
            if at >= due:
                break
            del published[v]
            if state.knows(v):
                self.pending.add(v)

    async def _write(self, snaps: dict[int, StockSnapshot]) -> None:
        assert self.redis is not None
        try:
            await asyncio.wait_for(stock_cache.publish(self.redis, snaps), 0.5)
        except Exception as exc:  # Redis is a cache: never fail or stall the partition for it
            log.warning("partition %d: stock snapshot not published: %r", self.partition, exc)
            self.pending |= set(snaps)
            self._quiet_until = self.clock() + 1000
