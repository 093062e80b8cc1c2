"""A process's short-lived copies: kept until they expire, at most a bound of them."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")
log = logging.getLogger("aisle.kept")


def keep_until(kept: dict[K, tuple[float, V]], key: K, expires: float, value: V,
               now: float, bound: int) -> None:
    """`value` kept under `key` until `expires` (time.monotonic seconds). `kept` holds its
    entries in the order they were kept: the expired ones (at the front) are dropped first,
    then the oldest down to `bound`."""
    kept.pop(key, None)
    while kept:
        oldest = next(iter(kept))
        if kept[oldest][0] > now and len(kept) < bound:
            break
        del kept[oldest]
    kept[key] = (expires, value)


class Refreshed(Generic[V]):
    """A value read from the database at most every `every_s`, kept through its reads
    again: only a replica's first read waits; later ones answer the value kept while it is
    read again in the background (a request's hang-up does not cancel that read). A read
    that fails keeps the value (logged) and is tried again `every_s` later, so a database
    that stalls or is down does not hold up, nor fail, what only needed this value. With
    `wait_for_none`, a None kept is not answered: the next get reads (and waits) again."""

    def __init__(self, read: Callable[[], Awaitable[V]], every_s: float, what: str,
                 wait_for_none: bool = False) -> None:
        self._read = read
        self.every_s = every_s
        self.what = what
        self.wait_for_none = wait_for_none
        self._kept: tuple[float, V] | None = None
        self._reading: asyncio.Task[V] | None = None
        self._reads = 0  # reads started; a read older than the kept value's is not kept
        self._kept_read = 0

    def forget(self) -> None:
        """The next get reads anew, and waits (after this replica changed the value: a read
        under way may have started before the change)."""
        self._kept = None
        self._reading = None

    async def get(self) -> V:
        kept = self._kept
        if kept is None or (self.wait_for_none and kept[1] is None):
            return await asyncio.shield(self._read_again())
        if time.monotonic() - kept[0] >= self.every_s:
            self._read_again()
        return kept[1]

    def _read_again(self) -> asyncio.Task[V]:
        if self._reading is None or self._reading.done():
            self._reads += 1
            self._reading = asyncio.get_running_loop().create_task(
                self._reread(self._reads), context=contextvars.Context())
            # a failure is its waiters' to tell; with none left (hung up), it is not news
            self._reading.add_done_callback(lambda t: t.cancelled() or t.exception())
        return self._reading

    async def _reread(self, n: int) -> V:
        try:
            value = await self._read()
        except Exception as exc:
            kept = self._kept
            if kept is None:
                raise  # nothing to answer instead: the caller is told
            log.warning("%s not read again (the one kept stays): %r", self.what, exc)
            self._kept = (time.monotonic(), kept[1])
            return kept[1]
        if n >= self._kept_read:
            self._kept, self._kept_read = (time.monotonic(), value), n
        return value
