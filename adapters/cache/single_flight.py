"""Single flight, per process: concurrent calls with one key share one run (so a stampede of
1,000 requests for an uncached product costs one database read in this replica)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import TypeVar, cast

T = TypeVar("T")


class SingleFlight:
    """Concurrent `do(key, load)` calls with one key share one run of `load` (this process).
    The run is a task of its own: a caller that gives up (a client disconnects) does not
    cancel it for the others."""

    def __init__(self) -> None:
        self._running: dict[Hashable, asyncio.Task[object]] = {}
        self.runs = 0

    async def do(self, key: Hashable, load: Callable[[], Coroutine[object, None, T]]) -> T:
        task = self._running.get(key)
        if task is None:
            self.runs += 1
            task = asyncio.get_running_loop().create_task(load())
            self._running[key] = task
            task.add_done_callback(lambda t: self._done(key, t))
        # the run of this key's load: every caller of one key loads the same kind of value
        return cast("T", await asyncio.shield(task))

    def _done(self, key: Hashable, task: asyncio.Task[object]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            task.exception()  # retrieved, even when every caller gave up
