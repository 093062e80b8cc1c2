"""The HTTP app: one FastAPI ingress deployment (`Gateway`), composed by `build_app`.

Routes: seller write API, categories, warehouses (internal), inventory, search, product
pages, health. The Ranker deployment is bound into the same application by `build_app`.
"""


import asyncio
import contextlib
import dataclasses
import hmac
import logging
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any

import ray
from fastapi import Depends, FastAPI, Header, Path, Query, Request, Response
from ray import serve

from actors.index_builder import BuilderConfig, builder_actor, data_dir_abs
from actors.inventory_client import InventoryClient
from actors.repricer import repricer_actor
from actors.search_index import open_index
from adapters.cache import Cache, create_cache_redis, dumps
from adapters.postgres import connect, create_pool
from adapters.postgres.catalog_repo import CatalogRepository
from adapters.postgres.category_tree import CategoryTree
from adapters.postgres.migrate import migrate
from adapters.postgres.worker_lease import lease_snowflake
from adapters.redis import create_redis
from adapters.search import NoLiveIndex
from adapters.settings import Settings
from domain.catalog import Limits, ProductIn, check_product
from domain.errors import (
    ConfigError,
    PreconditionRequired,
    Unauthorized,
    ValidationFailed,
)
from domain.inventory import UnknownVariant
from serve._errors import BodyGuard, install_error_handlers
from serve.inventory_models import InventoryPatch, QuoteIn, ReservationIn
from serve.pdp import PrewarmIn, ProductPages
from serve.quotes import QuoteService
from serve.ranker import RankerDeployment, RankerHandle
from serve.search import SORTS, SearchParams, SearchService, parse_attribute_params

log = logging.getLogger("aisle.gateway")

api = FastAPI(
    title="aisle",
    version="0.1.0",
    description="Product listing: seller catalog API, categories, search, product pages, "
    "inventory. Errors are JSON: {\"error\": {\"code\", \"message\", \"fields\"}}.",
)
install_error_handlers(api)
api.add_middleware(BodyGuard)

ProductPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Snowflake product id")]
_IF_MATCH = re.compile(r'\s*(?:"([0-9]{1,9})"|([0-9]{1,9}))\s*', re.ASCII)


def _bearer(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("missing Authorization: Bearer <api key>")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization must be 'Bearer <api key>'")
    return token.strip()


def _expected_version(if_match: str | None, body_version: int | None) -> int | None:
    header_version = None
    if if_match is not None:
        m = _IF_MATCH.fullmatch(if_match)
        if not m:
            raise ValidationFailed({"If-Match": 'must be a product version such as "3"'})
        header_version = int(m.group(1) or m.group(2))
    if header_version is not None and body_version is not None and header_version != body_version:
        raise ValidationFailed({"version": "differs from the If-Match header"})
    return header_version if header_version is not None else body_version


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


async def _check(awaitable: Any, timeout_s: float = 2.0) -> str:
    try:
        await asyncio.wait_for(awaitable, timeout_s)
        return "ok"
    except Exception as exc:  # a health check reports every failure, whatever its kind
        log.warning("health check failed: %r", exc)
        return f"error: {type(exc).__name__}"


async def current_seller(authorization: Annotated[str | None, Header()] = None) -> int:
    """Seller of the request's API key. A dependency, so it runs before the body is validated:
    a request without a valid key gets 401 whatever its body."""
    gateway = serve.get_replica_context().servable_object
    return await gateway._seller(authorization)  # type: ignore[attr-defined]


Seller = Annotated[int, Depends(current_seller)]


async def require_internal(authorization: Annotated[str | None, Header()] = None) -> None:
    """Internal callers only (checkout, warehouse systems): the internal token, checked before
    the body is validated."""
    gateway = serve.get_replica_context().servable_object
    gateway._internal(authorization)  # type: ignore[attr-defined]


Internal = Annotated[None, Depends(require_internal)]
VariantPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Snowflake variant id")]
ReservationPath = Annotated[str, Path(min_length=1, max_length=64)]
IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]


def _idempotency_key(header: str | None, body: str | None) -> str | None:
    if header is not None and body is not None and header != body:
        raise ValidationFailed({"idempotency_key": "differs from the Idempotency-Key header"})
    key = header if header is not None else body
    if key is not None and not _KEY.fullmatch(key):
        raise ValidationFailed({"Idempotency-Key": "1 to 128 printable ASCII characters"})
    return key


_KEY = re.compile(r"[\x21-\x7e]{1,128}", re.ASCII)


def _known_ranker(name: str) -> str:
    from ranking import ranker_names
    if name != "bm25_title" and name not in ranker_names():
        raise ValidationFailed({
            "ranker": f"one of bm25_title, {', '.join(ranker_names())}"}, "unknown ranker")
    return name


# Serve pickles the class when it is decorated: everything it uses is defined above it.
@serve.deployment(name="Gateway", max_ongoing_requests=200, ray_actor_options={"num_cpus": 0.5})
@serve.ingress(api)
class Gateway:
    async def __init__(self, settings: Settings,  # type: ignore[misc]
                       ranker: Any | None = None) -> None:
        if settings.database_url is None or settings.redis_url is None:
            raise ConfigError("Gateway needs DATABASE_URL and REDIS_URL")
        self.settings = settings
        self.limits = Limits(settings.max_variants, settings.max_images)
        conn = await connect(settings.database_url)
        try:
            await migrate(conn)  # idempotent; serialized across replicas by an advisory lock
        finally:
            await conn.close()
        self.pool = await create_pool(settings.database_url, min_size=1,
                                      max_size=settings.pg_pool_max)
        self.redis = create_redis(settings.redis_url)
        self.ids = await lease_snowflake(settings.database_url, settings.snowflake_node)
        self.catalog = CatalogRepository(self.pool, self.ids)
        self.inventory = InventoryClient(
            settings.inventory_partitions, settings.database_url, settings.low_stock_threshold,
            redis_url=settings.redis_url)
        cfg = BuilderConfig(settings.database_url, settings.redis_url,
                            data_dir_abs(settings.data_dir), settings.index_shards,
                            settings.es_url)
        self.builder = builder_actor(cfg)  # starts (or finds) the one index builder
        # one per process, each: the category tree, and the cache client (short timeouts, a
        # breaker) for facet counts and product pages
        categories = CategoryTree(self.pool, settings.category_cache_s)
        cache = Cache(create_cache_redis(settings.redis_url))
        self.search_service = SearchService(open_index(cfg, self.pool), self.pool,
                                            self.inventory,
                                            RankerHandle(ranker) if ranker else None, cache,
                                            settings.facet_cache_s, categories,
                                            settings.price_cache_s)
        # Serve routes to a replica once this returns: with a live generation, not before
        # its query model is loaded (the first build: /health says 503 until it is)
        with contextlib.suppress(NoLiveIndex):
            await self.search_service.ready()
        self.pdp = ProductPages(self.pool, cache,
                                self.inventory, self.search_service.index,
                                settings.product_cache_s, settings.price_cache_s, categories,
                                local_ms=settings.page_local_cache_ms,
                                redis_url=settings.redis_url)
        self.pdp.start()
        self.quotes = QuoteService(
            self.pool, self.inventory,
            settings.quote_key() if settings.quote_secret or settings.internal_token else None,
            settings.quote_ttl_s)
        self.repricer = repricer_actor(settings.database_url, settings.reprice_interval_s)

    async def _seller(self, authorization: str | None) -> int:
        row = await self.catalog.seller_for_key(_bearer(authorization))
        if row is None:
            raise Unauthorized("invalid API key")
        return int(row["seller_id"])

    def _internal(self, authorization: str | None) -> None:
        token = _bearer(authorization)
        expected = self.settings.internal_token
        if expected is None or not hmac.compare_digest(token.encode(), expected.encode()):
            raise Unauthorized("invalid internal token")

    # -- seller write API --------------------------------------------------------------------
    @api.post("/api/v1/seller/products", status_code=201, tags=["seller"])
    async def create_product(
        self, seller_id: Seller, body: ProductIn, response: Response
    ) -> dict[str, Any]:
        check_product(body, self.limits)
        product = await self.catalog.create_product(seller_id, body)
        response.headers["Location"] = f"/api/v1/seller/products/{product['product_id']}"
        _etag(response, product["version"])
        return product

    @api.put("/api/v1/seller/products/{product_id}", tags=["seller"])
    async def update_product(
        self, seller_id: Seller, product_id: ProductPath, body: ProductIn, response: Response,
        if_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        version = _expected_version(if_match, body.version)
        if version is None:
            raise PreconditionRequired(
                "send the version you read, in If-Match or the body's version field"
            )
        check_product(body, self.limits)
        product = await self.catalog.update_product(seller_id, product_id, body, version)
        _etag(response, product["version"])
        return product

    @api.delete("/api/v1/seller/products/{product_id}", tags=["seller"])
    async def delete_product(
        self, seller_id: Seller, product_id: ProductPath,
        if_match: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        return await self.catalog.delete_product(
            seller_id, product_id, _expected_version(if_match, None)
        )

    @api.get("/api/v1/seller/products/{product_id}", tags=["seller"])
    async def get_product(
        self, seller_id: Seller, product_id: ProductPath, response: Response
    ) -> dict[str, Any]:
        product = await self.catalog.get_product(seller_id, product_id)
        _etag(response, product["version"])
        return product

    @api.get("/api/v1/seller/products", tags=["seller"])
    async def list_products(
        self,
        seller_id: Seller,
        status: Annotated[str | None, Query(pattern="^(DRAFT|ACTIVE|INACTIVE)$")] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
        cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    ) -> dict[str, Any]:
        items, next_cursor = await self.catalog.list_products(seller_id, status, limit, cursor)
        return {"items": items,
                "next_cursor": str(next_cursor) if next_cursor is not None else None}

    # -- browsing and internal -------------------------------------------------------------
    @api.get("/api/v1/categories", tags=["catalog"])
    async def categories(self) -> dict[str, Any]:
        return {"categories": await self.catalog.category_tree()}

    @api.get("/api/v1/warehouses", tags=["internal"])
    async def warehouses(self, _: Internal) -> dict[str, Any]:
        return {"warehouses": await self.catalog.warehouses()}

    # -- internal inventory API ------------------------------------------------------------
    @api.get("/api/v1/inventory/{variant_id}", tags=["inventory"])
    async def get_inventory(self, _: Internal, variant_id: VariantPath) -> dict[str, Any]:
        """Status, quantity hint and per-warehouse figures, from the owning partition."""
        got = (await self.inventory.stock([variant_id])).get(str(variant_id))
        if got is None:
            raise UnknownVariant(f"variant {variant_id} not found")
        return {"variant_id": str(variant_id), **got}

    @api.patch("/api/v1/inventory/{variant_id}", tags=["inventory"])
    async def patch_inventory(
        self, _: Internal, variant_id: VariantPath, body: InventoryPatch, response: Response,
        idempotency_key: IdempotencyHeader = None,
    ) -> dict[str, Any]:
        """RESERVE (201, a reservation), RELEASE / DEDUCT (a reservation, closed whole) or
        ADJUST (the warehouse's figures; creates the stock row if there is none)."""
        problems = body.problems()
        if problems:
            raise ValidationFailed(problems)
        key = _idempotency_key(idempotency_key, body.idempotency_key)
        delta = body.quantity_delta
        if body.operation == "RESERVE":
            assert delta is not None
            response.status_code = 201
            return await self.inventory.reserve(
                [(variant_id, abs(delta), body.warehouse_id)], key=key,
                ttl_s=body.ttl_seconds or self.settings.reservation_ttl_s)
        if body.operation in ("RELEASE", "DEDUCT"):
            assert body.reservation_id is not None
            close = (self.inventory.release if body.operation == "RELEASE"
                     else self.inventory.commit)
            return await close(body.reservation_id, variant_id,
                               abs(delta) if delta is not None else None)
        assert delta is not None and body.warehouse_id is not None and body.reason is not None
        figures = await self.inventory.adjust(
            variant_id, body.warehouse_id, delta, body.reason,
            key=f"adjust:{key}" if key is not None else None)
        return {"variant_id": str(variant_id), "warehouse_id": body.warehouse_id, **figures}

    @api.post("/api/v1/reservations", status_code=201, tags=["inventory"])
    async def create_reservation(
        self, _: Internal, body: ReservationIn, idempotency_key: IdempotencyHeader = None,
    ) -> dict[str, Any]:
        """A cart: every item reserved, or none (409 naming each short item). With a
        `quote_token` (POST /api/v1/quotes) the items must be the quoted ones: the quote is
        recorded with the reservation and its coupon redeemed, so the shopper pays the quote."""
        items = [(i.variant_id, i.quantity, i.warehouse_id) for i in body.items]
        key = _idempotency_key(idempotency_key, body.idempotency_key)
        ttl_s = body.ttl_seconds or self.settings.reservation_ttl_s
        if body.quote_token is not None:
            return await self.quotes.reserve(body.quote_token, items, key, ttl_s,
                                             body.customer_id)
        return await self.inventory.reserve(items, key=key, ttl_s=ttl_s)

    # -- pricing ---------------------------------------------------------------------------
    @api.post("/api/v1/quotes", status_code=201, tags=["pricing"])
    async def create_quote(self, body: QuoteIn) -> dict[str, Any]:
        """The exact price of a cart at each variant's buy-box offer: per line list -> deal
        -> dynamic -> coupon, totals in cents, and `quote_token`, which a reservation carries
        to pay exactly this until `expires_at`."""
        return await self.quotes.make([(i.variant_id, i.quantity) for i in body.items],
                                      body.coupon, body.customer_id)

    @api.post("/api/v1/internal/pricing/reprice", tags=["pricing"])
    async def reprice_now(self, _: Internal) -> dict[str, Any]:
        """Runs a dynamic-pricing pass now (it also runs every
        AISLE_REPRICE_INTERVAL_SECONDS): the prices it moved."""
        return await self.repricer.run_pass.remote()

    @api.get("/api/v1/reservations/{reservation_id}", tags=["inventory"])
    async def get_reservation(self, _: Internal,
                              reservation_id: ReservationPath) -> dict[str, Any]:
        return await self.inventory.get(reservation_id)

    @api.post("/api/v1/reservations/{reservation_id}/commit", tags=["inventory"])
    async def commit_reservation(self, _: Internal,
                                 reservation_id: ReservationPath) -> dict[str, Any]:
        """Checkout: the reserved units are sold (DEDUCT). Repeating it returns the same."""
        return await self.inventory.commit(reservation_id)

    @api.delete("/api/v1/reservations/{reservation_id}", tags=["inventory"])
    async def release_reservation(self, _: Internal,
                                  reservation_id: ReservationPath) -> dict[str, Any]:
        """Cart abandoned: the reserved units go back on sale."""
        return await self.inventory.release(reservation_id)

    # -- shoppers: search ------------------------------------------------------------------
    @api.get("/api/v1/products/search", tags=["search"])
    async def search(
        self,
        request: Request,
        q: Annotated[str, Query(max_length=500)] = "",
        category: Annotated[str | None, Query(max_length=300)] = None,
        price_min: Annotated[float | None, Query(ge=0, le=1e9)] = None,
        price_max: Annotated[float | None, Query(ge=0, le=1e9)] = None,
        brand: Annotated[str | None, Query(max_length=2000,
                                           description="comma-separated brands")] = None,
        rating_min: Annotated[float | None, Query(ge=0, le=5)] = None,
        in_stock: bool | None = None,
        sort: Annotated[str, Query(pattern="^(" + "|".join(SORTS) + ")$")] = "relevance",
        page: Annotated[int, Query(ge=1, le=10_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100)] = 20,
        ranker: Annotated[str, Query(pattern="^[a-z0-9_]{1,40}$")] = "default",
    ) -> Response:
        """Keyword search with filters, facets, sorts and pages. `color=`, `size=` and
        `attr.<name>=` filter on attributes (comma lists). `ranker` picks the re-ranking model
        (`default`, `text`, or `bm25_title`: plain BM25 over titles, for comparisons)."""
        if price_min is not None and price_max is not None and price_min > price_max:
            raise ValidationFailed({"price_min": "must not be above price_max"},
                                   "bad price range")
        brands = tuple(b.strip() for b in (brand or "").split(",") if b.strip())
        if len(brands) > 50:
            raise ValidationFailed({"brand": "at most 50 brands"}, "too many brands")
        found = await self.search_service.search(SearchParams(
            q=q, category=category, price_min=price_min, price_max=price_max, brands=brands,
            rating_min=rating_min, in_stock=in_stock,
            attributes=parse_attribute_params(request.query_params), sort=sort, page=page,
            page_size=page_size, ranker=_known_ranker(ranker)))
        # encoded here: FastAPI's generic encoder walks ~10 KB of answer in Python
        return Response(dumps(found), media_type="application/json")

    @api.get("/api/v1/products/suggest", tags=["search"])
    async def suggest(
        self, q: Annotated[str, Query(min_length=1, max_length=100)],
        limit: Annotated[int, Query(ge=1, le=20)] = 8,
    ) -> dict[str, Any]:
        """Typeahead: titles completing the last word, most popular first."""
        return await self.search_service.suggest(q, limit)

    # -- shoppers: product pages -----------------------------------------------------------
    @api.get("/api/v1/products/{product_id}", tags=["catalog"])
    async def product_page(self, product_id: ProductPath) -> Response:
        """The product detail page: product, variants with price, stock and images, the buy
        box, seller, reviews summary, related products, badges, deals. 404 `product_not_found`
        (unknown, deleted, draft) or `product_unavailable` (taken off sale). The `X-Cache`
        header says whether Redis had it (hit), it was loaded (miss) or Redis was unavailable
        (bypass), or this process had the whole page from the last second (local)."""
        local = self.pdp.local(product_id)  # no await: Serve then skips its extra calls
        if local is not None:
            return Response(local, media_type="application/json", headers={"X-Cache": "local"})
        data, how = await self.pdp.encoded(product_id)
        return Response(data, media_type="application/json", headers={"X-Cache": how})

    @api.post("/api/v1/internal/cache/prewarm", tags=["internal"])
    async def prewarm_cache(self, _: Internal, body: PrewarmIn) -> dict[str, Any]:
        """Loads product metadata and price snapshots into Redis now (before a flash sale)."""
        return await self.pdp.prewarm(body.product_ids, body.top)

    @api.get("/api/v1/internal/cache/stats", tags=["internal"])
    async def cache_stats(self, _: Internal) -> dict[str, Any]:
        """This replica's product-page cache counters (hits, misses, loads, Redis state)."""
        return self.pdp.stats()

    @api.post("/api/v1/internal/search/rebuild", tags=["internal"])
    async def rebuild_index(self, _: Internal, workers: Annotated[int, Query(ge=1, le=64)] = 2
                            ) -> dict[str, Any]:
        """Builds a new index generation beside the live one, checks it, swaps it in (the
        previous one is kept for rollback)."""
        report = await self.builder.full_build.remote(workers)
        return dataclasses.asdict(report)

    @api.get("/api/v1/internal/search/status", tags=["internal"])
    async def search_status(self, _: Internal) -> dict[str, Any]:
        """Index generations, the builder's counters and its lag behind the outbox."""
        status = await self.builder.status.remote()
        return status.to_json()

    # -- operations ------------------------------------------------------------------------
    @api.get("/health", tags=["operations"])
    async def health(self, response: Response) -> dict[str, Any]:
        checks = dict(zip(("postgres", "redis", "ray", "id_lease", "search_index"),
                          await asyncio.gather(
            _check(self.pool.fetchval("SELECT 1")),
            _check(self.redis.ping()),
            _check(asyncio.to_thread(ray.cluster_resources)),
            _check(self.ids.ensure()),
            _check(self.search_service.ready()),
        ), strict=True))
        ok = all(v == "ok" for v in checks.values())
        response.status_code = 200 if ok else 503
        return {"status": "ok" if ok else "degraded", "checks": checks}

    @api.get("/api/v1/noop", tags=["operations"], include_in_schema=False)
    async def noop(self, awaits: Annotated[bool, Query(alias="await")] = False
                   ) -> dict[str, Any]:
        """Does nothing: the framework's ceiling for benchmarks. `?await=true` yields to the
        event loop once, as any handler that awaits I/O does: Serve then also starts its
        client-disconnect watcher (a Ray call back to the proxy), which a handler that
        answers without awaiting never starts."""
        if awaits:
            await asyncio.sleep(0)
        return {"ok": True}


def build_app(args: Settings | Mapping[str, str] | None = None) -> serve.Application:
    """The Serve application. `args`: Settings, or strings overriding the environment
    (as `serve run serve:build_app KEY=value` passes them)."""
    if isinstance(args, Settings):
        settings = args
    else:
        settings = Settings.from_env({**os.environ, **(args or {})})
    return Gateway.options(  # type: ignore[attr-defined]
        num_replicas=settings.gateway_replicas
    ).bind(settings, RankerDeployment.bind())  # type: ignore[attr-defined]

