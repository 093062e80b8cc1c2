"""For operators: health (PostgreSQL, Redis, Ray, the id lease, a searchable index, how far
the index is behind the catalog), and the no-op that benchmarks measure the framework's
ceiling with."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Annotated, Literal

import ray
from fastapi import APIRouter, Path, Query, Response

from actors.index_builder import CONSUMER
from adapters.postgres import ping
from adapters.postgres.outbox import OutboxConsumer
from adapters.postgres.retention import prune
from serve._kept import within
from serve.services import Internal, Json, Svc

log = logging.getLogger("aisle.gateway")
router = APIRouter(tags=["operations"])


async def _check(awaitable: Awaitable[object], timeout_s: float = 2.0) -> str:
    """"ok", or "down: <why>" within `timeout_s` (a check that has not answered by then is
    not waited for: serve/_kept.within)."""
    try:
        await within(awaitable, timeout_s)
        return "ok"
    except Exception as exc:  # a health check reports every failure, whatever its kind
        log.warning("health check failed: %r", exc)
        return f"behind: {exc}" if isinstance(exc, IndexBehind) else f"down: {type(exc).__name__}"


# without Redis the service works (caches read through, stock from the partitions), an
# index behind the catalog still answers (older titles, attributes), and without a partition
# search and product pages do (stock from its Redis snapshots): degraded, not down (a load
# balancer would take every replica out for one partition, the partitions being shared)
OPTIONAL = frozenset({"redis", "index_freshness", "inventory"})
# the oldest catalog change not yet searchable, at most (the AisleIndexLagHigh alert's bound)
INDEX_BEHIND_S = 120.0


async def _freshness(svc: Svc) -> None:
    """Raises IndexBehind when the search index's builder has not consumed a catalog change
    older than INDEX_BEHIND_S (it is down, stuck or overwhelmed)."""
    behind = await OutboxConsumer(svc.pool, CONSUMER).behind_s()
    if behind is not None and behind > INDEX_BEHIND_S:
        raise IndexBehind(f"{behind:.0f} s")


class IndexBehind(Exception):
    pass


@router.get("/health")
async def health(svc: Svc, response: Response) -> Json:
    """Each dependency "ok" or "down: <why>" (the index's freshness: "behind: <N> s" when
    the oldest catalog change not yet searchable is older than 120 s; `inventory`: every
    inventory partition answers); status "ok", "degraded" (only Redis, the index's
    freshness, the partitions or a shard actor while searches answer: 200, search and product
    pages work; carts and reservations answer 503 while a partition does not) or "down"
    (503)."""
    *answers, searches = await asyncio.gather(
        _check(ping(svc.pool)),
        _check(svc.redis.ping()),
        _check(asyncio.to_thread(ray.cluster_resources)),
        _check(svc.ids.ensure()),
        _check(svc.search.check()),
        _check(_freshness(svc)),
        _check(svc.inventory.check()),  # every partition the map names answers
        _check(svc.search.serves()),  # not a check of its own: whether search_index's matters
    )
    checks = dict(zip(("postgres", "redis", "ray", "id_lease", "search_index",
                       "index_freshness", "inventory"), answers, strict=True))
    optional = OPTIONAL
    if checks["search_index"] != "ok" and searches == "ok":
        # a shard actor (the index's writer) is down or restarting while this replica's
        # searches answer from its own read-only shards: changes wait, shoppers are served
        checks["search_index"] = checks["search_index"] + " (searches answer)"
        optional = OPTIONAL | {"search_index"}
    failed = {k for k, v in checks.items() if v != "ok"}
    status = "ok" if not failed else "degraded" if failed <= optional else "down"
    response.status_code = 503 if status == "down" else 200
    return {"status": status, "checks": checks}


@router.head("/health", include_in_schema=False)
async def health_probe(svc: Svc, response: Response) -> Json:
    """GET /health for load balancers' HEAD probes: its status code, no body."""
    return await health(svc, response)


@router.get("/api/v1/noop", include_in_schema=False)
async def noop(awaits: Annotated[bool, Query(alias="await")] = False) -> Json:
    """Does nothing: the framework's ceiling for benchmarks. `?await=true` yields to the
    event loop once, as any handler that awaits I/O does: Serve then also starts its
    client-disconnect watcher (a Ray call back to the proxy), which a handler that answers
    without awaiting never starts."""
    if awaits:
        await asyncio.sleep(0)
    return {"ok": True}


JobKind = Literal["index.rebuild", "cache.prewarm", "retention.prune"]


@router.post("/api/v1/internal/retention/prune", tags=["internal"], status_code=202,
             responses={200: {"description": "wait=true: the rows removed, by table"}})
async def prune_now(svc: Svc, _: Internal, response: Response, wait: bool = False) -> Json:
    """Prunes now what the hourly pass prunes (closed reservations and their keys, consumed
    outbox events, ended jobs: older than AISLE_RETENTION_DAYS). A background job (202 with
    its record); `wait=true` answers the rows removed, by table (200); 409 prune_under_way
    while another replica prunes."""
    days = svc.settings.retention_days

    async def run() -> Json:
        pruned = await prune(svc.pool, days * 86400)
        return {"retention_days": days, "pruned": pruned.to_json()}

    return await svc.jobs.answer("retention.prune", {"retention_days": days}, run, wait,
                                 response)


@router.get("/api/v1/internal/jobs", tags=["internal"])
async def list_jobs(svc: Svc, _: Internal, kind: Annotated[JobKind | None, Query()] = None,
                    limit: Annotated[int, Query(ge=1, le=100)] = 20) -> Json:
    """Background jobs, newest first (`kind`: index.rebuild, cache.prewarm,
    retention.prune)."""
    return {"jobs": [j.to_json() for j in await svc.jobs.store.recent(kind, limit)]}


@router.get("/api/v1/internal/jobs/{job_id}", tags=["internal"])
async def get_job(svc: Svc, _: Internal,
                  job_id: Annotated[str, Path(pattern=r"^j[0-9a-f]{20}$")]) -> Json:
    """A background job (an index rebuild, a cache prewarm): running, succeeded with its
    result, or failed with its error."""
    return (await svc.jobs.get(job_id)).to_json()
