"""Coalescing calls to an actor: many callers' items, one remote call.

Per key (an actor), at most `in_flight` calls are under way; items submitted meanwhile wait
and go together in the next call, at most `max_per_call` at a time. No timer: an idle system
adds no delay, and a loaded one makes one call for many items (submitting a Ray call costs the
caller about a millisecond of CPU). Used by the inventory client (partition operations) and the
embedded search index (shard reads).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[K, T, R]):
    def __init__(self, send: Callable[[K, list[T]], Awaitable[list[R]]], in_flight: int,
                 max_per_call: int) -> None:
        """`send(key, items)` makes the remote call and returns one result per item."""
        self._send_batch = send
        self.in_flight = in_flight
        self.max_per_call = max_per_call
        self._waiting: dict[K, list[tuple[T, asyncio.Future[R]]]] = defaultdict(list)
        self._running: dict[K, int] = defaultdict(int)
        self._sends: set[asyncio.Task[None]] = set()

    def submit(self, key: K, item: T) -> asyncio.Future[R]:
        """A future of `item`'s result (or of the call's exception). A caller that gives up
        cancels it, and the item is then left out of the call if it has not gone yet."""
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting[key].append((item, fut))
        self._pump(key)
        return fut

    def _pump(self, key: K) -> None:
        waiting = self._waiting[key]
        while waiting and self._running[key] < self.in_flight:
            batch = [w for w in waiting[:self.max_per_call] if not w[1].done()]
            del waiting[:self.max_per_call]
            if not batch:
                continue
            self._running[key] += 1
            task = asyncio.get_running_loop().create_task(self._send(key, batch))
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)
        if not waiting and not self._running[key]:  # nothing kept for keys gone quiet
            del self._waiting[key], self._running[key]

    async def _send(self, key: K, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        try:
            results = await self._send_batch(key, [item for item, _ in batch])
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)
        except Exception as exc:
            for _, fut in batch:
                if not fut.done():
                    fut.set_exception(exc)
        finally:
            self._running[key] -= 1
            self._pump(key)
