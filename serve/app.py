"""The Serve application: one FastAPI ingress deployment (`Gateway`) and the `Ranker`
deployment, composed by `build_app`. The Gateway builds what the routes use (serve/services.py)
once per replica; the routes themselves live in serve/routes/, one module per area.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Mapping

from fastapi import FastAPI
from ray import serve
from ray.serve.handle import DeploymentHandle
from ray.serve.schema import LoggingConfig

from actors.index_builder import BuilderConfig, builder_actor, data_dir_abs
from actors.inventory import PartitionOptions
from actors.inventory_client import InventoryClient
from actors.repricer import repricer_actor
from actors.search_index import open_index
from adapters.cache import Cache, create_cache_redis
from adapters.experiment_metrics import ExperimentMetrics
from adapters.media_store import open_store
from adapters.postgres import connect, create_pool
from adapters.postgres.catalog_repo import CatalogRepository
from adapters.postgres.category_tree import CategoryTree
from adapters.postgres.experiments import ExperimentStore
from adapters.postgres.jobs import JobStore
from adapters.postgres.migrate import migrate
from adapters.postgres.retention import prune_every
from adapters.postgres.worker_lease import lease_snowflake
from adapters.rate_limit import RateLimiter
from adapters.redis import create_redis
from adapters.search import NoLiveIndex
from adapters.settings import Settings
from domain.catalog import Limits
from domain.errors import ConfigError
from domain.images import ImageLimits
from serve.api import make_api
from serve.carts import CartService
from serve.experiments import ExperimentRouter
from serve.jobs import Jobs
from serve.media import MediaService
from serve.observability import StatsExporter
from serve.pdp import ProductPages
from serve.quotes import QuoteService
from serve.ranker import RankerDeployment, RankerHandle
from serve.search import SearchService
from serve.services import Services

POOL_WAIT_S = 5.0  # a Gateway request's wait for a free PostgreSQL connection, at most


async def build_services(settings: Settings, ranker: DeploymentHandle | None) -> Services:
    """Everything one Gateway replica serves with: pools and clients opened here (never at
    import), the actors it talks to found or started."""
    if settings.database_url is None or settings.redis_url is None:
        raise ConfigError("Gateway needs DATABASE_URL and REDIS_URL")
    conn = await connect(settings.database_url)
    try:
        await migrate(conn)  # idempotent; serialized across replicas by an advisory lock
    finally:
        await conn.close()
    # a request waits at most POOL_WAIT_S for a free connection (a stalled PostgreSQL holds
    # them all): then 503 database_unavailable, and the breaker answers the next ones at once
    pool = await create_pool(settings.database_url, min_size=1, max_size=settings.pg_pool_max,
                             acquire_timeout_s=POOL_WAIT_S)
    ids = await lease_snowflake(settings.database_url, settings.snowflake_node)
    inventory = InventoryClient(
        settings.inventory_partitions, settings.database_url, redis_url=settings.redis_url,
        options=PartitionOptions(low_stock_threshold=settings.low_stock_threshold,
                                 scheduling=settings.inventory_scheduling))
    await inventory.owners()  # the slot map read, every partition started (or found) now
    cfg = BuilderConfig(settings.database_url, settings.redis_url,
                        data_dir_abs(settings.data_dir), settings.index_shards, settings.es_url,
                        text_vectors_max=settings.text_vectors_max,
                        gate_judgments=settings.index_gate_judgments)
    builder = builder_actor(cfg)  # starts (or finds) the one index builder
    # one per process, each: the category tree, and the cache client (short timeouts, a
    # breaker) for facet counts and product pages
    categories = CategoryTree(pool, settings.category_cache_s)
    cache_redis = create_cache_redis(settings.redis_url)
    cache = Cache(cache_redis)
    ranker_client = (RankerHandle(ranker, grpc=settings.ranker_transport == "GRPC",
                                  kept=settings.ranker_orders_kept) if ranker else None)
    search = SearchService(open_index(cfg, pool, settings.search_reads == "LOCAL",
                                       settings.search_inline_max_docs), pool,
                           inventory, ranker_client, cache,
                           settings.facet_cache_s, categories, settings.price_cache_s,
                           experiments=ExperimentRouter(ExperimentStore(pool),
                                                        ExperimentMetrics(cache_redis)),
                           semantic_candidates=settings.semantic_candidates)
    # Serve routes to a replica once its constructor returns: with a live generation, not
    # before its query model is loaded (the first build: /health says 503 until it is)
    with contextlib.suppress(NoLiveIndex):
        await search.ready()
    pages = ProductPages(pool, cache, inventory, search.index, settings.product_cache_s,
                         settings.price_cache_s, categories,
                         local_ms=settings.page_local_cache_ms, redis_url=settings.redis_url,
                         low_stock=settings.low_stock_threshold)
    pages.start()
    quotes = QuoteService(
        pool, inventory,
        settings.quote_key() if settings.quote_secret or settings.internal_token else None,
        settings.quote_ttl_s)
    catalog = CatalogRepository(pool, ids)
    return Services(
        settings=settings, pool=pool, redis=create_redis(settings.redis_url), ids=ids,
        limits=Limits(settings.max_variants, settings.max_images),
        catalog=catalog, inventory=inventory, search=search,
        pages=pages, quotes=quotes, builder=builder,
        carts=CartService(pool, inventory, quotes, settings.reservation_ttl_s),
        media=MediaService(pool, catalog, open_store(settings), settings.media_base_url,
                           ImageLimits(max_bytes=settings.image_max_bytes),
                           settings.max_images),
        repricer=repricer_actor(settings.database_url, settings.reprice_interval_s),
        jobs=Jobs(JobStore(pool)), limiter=RateLimiter(create_cache_redis(settings.redis_url)),
        database=pages.database)


@serve.deployment(name="Gateway", max_ongoing_requests=200, ray_actor_options={"num_cpus": 0.5})
@serve.ingress()
class Gateway:
    """The HTTP ingress. Its FastAPI app is made in the replica, once the services are built
    (`__serve_build_asgi_app__`), and finds them in its state."""

    async def __init__(self, settings: Settings,  # type: ignore[misc]
                       ranker: DeploymentHandle | None = None) -> None:
        self.services = svc = await build_services(settings, ranker)
        self.exporter = StatsExporter(  # this replica's counters into Ray's metrics
            lambda: {"page_local": (svc.pages.local_hits, svc.pages.local_misses)} | {
                kind: (c["hits"], c["misses"])
                for kind, c in svc.pages.cache.stats()["by_kind"].items()} | (
                {"ranker_orders": (svc.search.ranker.orders.hits, svc.search.ranker.orders.misses)}
                if isinstance(svc.search.ranker, RankerHandle) else {}),
            lambda: dict(svc.limiter.refused),
            lambda: {"redis": not svc.pages.cache.available,
                     "ranker": isinstance(svc.search.ranker, RankerHandle)
                     and svc.search.ranker.open,
                     "search": not svc.search.index_breaker.closed,
                     "postgres": not svc.database.closed})
        self.exporter.start()
        # every replica runs the pass; the one that takes the database's lock does it
        self.pruning = None if settings.prune_interval_s == 0 else \
            asyncio.get_running_loop().create_task(prune_every(
                svc.pool, settings.retention_days * 86400, settings.prune_interval_s))

    def __serve_build_asgi_app__(self) -> FastAPI:
        api = make_api(self.services.settings.max_body_bytes,
                       self.services.settings.image_max_bytes,
                       self.services.settings.internal_token)
        api.state.services = self.services
        return api


def build_app(args: Settings | Mapping[str, str] | None = None) -> serve.Application:
    """The Serve application. `args`: Settings, or strings overriding the environment
    (as `serve run serve:build_app KEY=value` passes them)."""
    if isinstance(args, Settings):
        settings = args
    else:
        settings = Settings.from_env({**os.environ, **(args or {})})
    logs = LoggingConfig(enable_access_log=settings.serve_access_log)
    ranker = RankerDeployment.options(logging_config=logs)  # type: ignore[attr-defined]
    return Gateway.options(  # type: ignore[attr-defined]
        num_replicas=settings.gateway_replicas, logging_config=logs
    ).bind(settings, ranker.bind(settings.database_url))
