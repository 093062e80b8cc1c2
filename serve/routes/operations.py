"""For operators: health (PostgreSQL, Redis, Ray, the id lease, a searchable index), and the
no-op that benchmarks measure the framework's ceiling with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Annotated

import ray
from fastapi import APIRouter, Query, Response

from adapters.postgres import ping
from serve.services import Json, Svc

log = logging.getLogger("aisle.gateway")
router = APIRouter(tags=["operations"])


async def _check(awaitable: Awaitable[object], timeout_s: float = 2.0) -> str:
    try:
        await asyncio.wait_for(awaitable, timeout_s)
        return "ok"
    except Exception as exc:  # a health check reports every failure, whatever its kind
        log.warning("health check failed: %r", exc)
        return f"error: {type(exc).__name__}"


@router.get("/health")
async def health(svc: Svc, response: Response) -> Json:
    checks = dict(zip(("postgres", "redis", "ray", "id_lease", "search_index"),
                      await asyncio.gather(
        _check(ping(svc.pool)),
        _check(svc.redis.ping()),
        _check(asyncio.to_thread(ray.cluster_resources)),
        _check(svc.ids.ensure()),
        _check(svc.search.ready()),
    ), strict=True))
    ok = all(v == "ok" for v in checks.values())
    response.status_code = 200 if ok else 503
    return {"status": "ok" if ok else "degraded", "checks": checks}


@router.get("/api/v1/noop", include_in_schema=False)
async def noop(awaits: Annotated[bool, Query(alias="await")] = False) -> Json:
    """Does nothing: the framework's ceiling for benchmarks. `?await=true` yields to the
    event loop once, as any handler that awaits I/O does: Serve then also starts its
    client-disconnect watcher (a Ray call back to the proxy), which a handler that answers
    without awaiting never starts."""
    if awaits:
        await asyncio.sleep(0)
    return {"ok": True}
