"""A breaker in front of a dependency (Redis for the caches, the Ranker deployment for
searches): after a failure it is not asked again for `retry_after_s` (for Redis every read is
then a miss answered by the database, and nothing is written); the first call after that tries
again, so the dependency is used again by itself when it is back."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

log = logging.getLogger("aisle.cache")
T = TypeVar("T")
RETRY_AFTER_S = 1.0  # how long Redis is left alone after a failure


class Breaker:
    def __init__(self, retry_after_s: float = RETRY_AFTER_S,
                 clock: Callable[[], float] = time.monotonic, name: str = "redis") -> None:
        self.name = name
        self.retry_after_s = retry_after_s
        self.clock = clock
        self.failures = 0
        self._down_until = 0.0

    @property
    def closed(self) -> bool:
        """True while calls go through: no failure in the last `retry_after_s`."""
        return self.clock() >= self._down_until

    def failed(self, what: str, exc: BaseException) -> None:
        """Records a failure of the dependency seen outside `call` (opens the breaker)."""
        if self.clock() >= self._down_until:
            log.warning("%s %s failed (%r): left alone for %.1f s", self.name, what, exc,
                        self.retry_after_s)
        self.failures += 1
        self._down_until = self.clock() + self.retry_after_s

    async def call(self, what: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """`call()`, or None while open or when it fails (which opens the breaker)."""
        if not self.closed:
            return None
        try:
            return await call()
        except Exception as exc:  # any failure: the caller does without (reads through)
            self.failed(what, exc)
            return None
