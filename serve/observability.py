"""What a Gateway replica reports to Ray's metrics (actors/metrics.py lists the series):

- `RequestMetrics`, an ASGI middleware: every HTTP request's route template, method, status
  class and time;
- `StatsExporter`, a task that every EXPORT_S turns this replica's own counters (cache
  lookups by cache, local page copies, rate-limit refusals by scope, the Redis breaker) into
  Ray counters and gauges, adding what changed since the last export.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from actors import metrics

log = logging.getLogger("aisle.metrics")
EXPORT_S = 5.0


class RequestMetrics:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = scope.get("route")
            name = getattr(route, "path", None) or "unmatched"
            try:
                metrics.http_request(name, scope.get("method", "?"), status,
                                     (time.perf_counter() - started) * 1000)
            except Exception as exc:  # metrics never fail a request
                log.debug("request metrics not recorded: %r", exc)


Counts = Mapping[str, tuple[int, int]]  # cache -> (hits, misses), cumulative


class StatsExporter:
    """`read()` gives this replica's cumulative figures; their growth is added to Ray's
    counters every EXPORT_S."""

    def __init__(self, caches: Callable[[], Counts], refused: Callable[[], Mapping[str, int]],
                 breakers: Callable[[], Mapping[str, bool]]) -> None:
        self.caches = caches
        self.refused = refused
        self.breakers = breakers
        self._caches: dict[str, tuple[int, int]] = {}
        self._refused: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None

    def export(self) -> None:
        for cache, (hits, misses) in self.caches().items():
            h0, m0 = self._caches.get(cache, (0, 0))
            metrics.cache_lookups(cache, hits - h0, misses - m0)
            self._caches[cache] = (hits, misses)
        for scope, n in self.refused().items():
            metrics.rate_limited(scope, n - self._refused.get(scope, 0))
            self._refused[scope] = n
        metrics.breakers(self.breakers())

    def start(self) -> None:
        async def loop() -> None:
            while True:
                await asyncio.sleep(EXPORT_S)
                try:
                    self.export()
                except Exception as exc:
                    log.warning("metrics not exported: %r", exc)

        self._task = asyncio.get_running_loop().create_task(loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
