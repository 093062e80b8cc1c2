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


async def within(work: Awaitable[V], seconds: float) -> V:
    """`work`'s result, or TimeoutError after `seconds`, without waiting for `work` to be
    cancelled (asyncio.wait_for does: a client stuck on a stalled server may take long)."""
    task = asyncio.ensure_future(work)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        raise TimeoutError(f"no answer within {seconds} s")
    return task.result()


class Refreshed(Generic[V]):
    """A value read from the database again every `every_s`, without making a request wait
    for PostgreSQL while it is up to date or the database is slow:
    - younger than `every_s`: answered;
    - younger than twice that: answered, and read again in the background (a request's
      hang-up does not cancel that read);
    - older (a replica no request reached for a while): read again, waited for up to
      `wait_s`; past that (a database that stalls), the value kept is answered.
    Only a replica's first read is waited for however long it takes (with `wait_for_none`, a
    None kept too: the next get reads again). A read that fails keeps the value (logged) for
    another `every_s`; a read started before `forget` is never kept."""

    def __init__(self, read: Callable[[], Awaitable[V]], every_s: float, what: str,
                 wait_for_none: bool = False, wait_s: float = 1.0) -> None:
        self._read = read
        self.every_s = every_s
        self.what = what
        self.wait_for_none = wait_for_none
        self.wait_s = wait_s
        self._kept: tuple[float, V] | None = None
        self._reading: asyncio.Task[V] | None = None
        self._reading_since = 0.0
        self._reads = 0  # reads started; a read older than the kept value's is not kept
        self._kept_read = 0

    def forget(self) -> None:
        """The next get reads anew, and waits (after this replica changed the value: a read
        under way may have started before the change, and is not kept)."""
        self._kept = None
        self._reading = None
        self._kept_read = self._reads + 1

    async def get(self) -> V:
        kept = self._kept
        if kept is None or (self.wait_for_none and kept[1] is None):
            return await asyncio.shield(self._read_again())
        now = time.monotonic()
        if now - kept[0] < self.every_s:
            return kept[1]
        reading = self._read_again()
        waited = now - self._reading_since
        if now - kept[0] < 2 * self.every_s or waited >= self.wait_s:
            return kept[1]  # fresh enough; or a read is stuck: the database is slow
        await asyncio.wait({reading}, timeout=self.wait_s - waited)
        return (self._kept or kept)[1]

    def _read_again(self) -> asyncio.Task[V]:
        if self._reading is None or self._reading.done():
            self._reads += 1
            self._reading_since = time.monotonic()
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
