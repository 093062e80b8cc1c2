"""The product detail page behind `GET /api/v1/products/{product_id}`.

Redis (one MGET: metadata `aisle:product:{id}` + price snapshot `aisle:price:{id}`) -> on a
miss, one load per process for concurrent misses (adapters/cache/: single flight, leases)
from PostgreSQL (adapters/postgres/product_pages.py: one statement for the metadata, the
pricing engine's inputs for the prices) and the search index (related products) -> stock of
the variants and of the related candidates (the partition owners' snapshots, a second MGET;
the owners themselves for a variant without one) -> the category path (in-process tree)
-> domain/product_page.page. A hit touches neither PostgreSQL nor Ray.

Lifetimes: metadata AISLE_PRODUCT_CACHE_SECONDS (600), dropped by the index builder on every
catalog, stock-status and price event of the product; prices AISLE_PRICE_CACHE_SECONDS (60),
dropped on the same events, and never kept past a deal's start or end; a product shoppers may
not see is remembered as such for at most NEGATIVE_TTL_S. Stock is never cached here.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import Callable, Hashable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapters import stock_cache
from adapters.cache import Cache, Invalidations, Loaded, SingleFlight, drop_pages, dumps, loads
from adapters.cache.breaker import Breaker
from adapters.postgres import unavailable
from adapters.postgres.category_tree import CategoryTree
from adapters.postgres.pricing_repo import PricingInputs, load_product_pricing
from adapters.postgres.product_pages import load_product, top_products
from adapters.redis_keys import last_page_key, price_key, product_key
from adapters.search import SearchIndex
from domain.errors import Unavailable
from domain.inventory_api import Inventory
from domain.product_page import (
    LOW_STOCK,
    RELATED_LIMIT,
    metadata,
    page,
    price_snapshot,
    stock_ids,
)
from domain.query import tokenize
from domain.search import Filters, IndexQuery, TextQuery, normalize_key
from serve._kept import keep_until, within
from serve.stages import timed

log = logging.getLogger("aisle.pdp")
JsonObject = dict[str, Any]  # a page, a row, a report: JSON objects (keys in the docs)
NEGATIVE_TTL_S = 60  # unknown / unavailable products (a product.created event drops it sooner)
NO_RELATED_TTL_S = 30  # metadata whose related products could not be computed (no index yet)
RELATED_CANDIDATES = 2 * RELATED_LIMIT  # kept with the metadata; in-stock ones shown per request
OWNER_TIMEOUT_S = 1.0  # stock of a variant without a snapshot, asked of its owner
INDEX_TIMEOUT_S = 2.0
PREWARM_CONCURRENCY = 4
STOCK_IDS_KEPT = 100_000  # products whose stock keys this process remembers (one MGET a page)
LOCAL_PAGES_KEPT = 2_000  # whole pages kept in-process (AISLE_PAGE_LOCAL_CACHE_MS each)
ANNOUNCED_KEPT = 100_000  # products whose last announcement this process remembers
LAST_PAGE_TTL_S = 86_400  # pages as last assembled, served marked stale while PostgreSQL is down
PG_RETRY_AFTER_S = 1.0  # after PostgreSQL failed, misses go straight to the last pages
# a page's load not answered by then (PostgreSQL stalled, or every connection waiting on it):
# the page as last assembled, or 503, instead of a wait as long as the stall
PG_WAIT_S = 3.0
_SHORT_WORD = 2


class DatabaseStalled(ConnectionError):
    """PostgreSQL did not answer a page's load within PG_WAIT_S (unavailable, as a lost
    connection: the breaker opens, the page as last assembled is shown)."""


class PrewarmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    product_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(
        default_factory=list, max_length=10_000)
    top: int = Field(default=0, ge=0, le=10_000,
                     description="also the N products most sold, then most reviewed")

    @model_validator(mode="after")
    def _something(self) -> PrewarmIn:
        if not self.product_ids and self.top == 0:  # a job that would warm nothing
            raise ValueError("name product_ids, or top > 0")
        return self


class ProductPages:
    def __init__(self, pool: asyncpg.Pool, cache: Cache, inventory: Inventory | None,
                 index: SearchIndex | None, product_ttl_s: int = 600, price_ttl_s: int = 60,
                 categories: CategoryTree | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 local_ms: int = 0, redis_url: str | None = None,
                 low_stock: int = LOW_STOCK) -> None:
        self.pool = pool
        self.low_stock = low_stock
        self.cache = cache
        self.inventory = inventory  # InventoryClient (stock of variants without a snapshot)
        self.index = index  # the search index (related products); None: none shown
        self.product_ttl_s = product_ttl_s
        self.price_ttl_s = price_ttl_s
        self.clock = clock
        self.categories = categories or CategoryTree(pool)
        self.owner_timeout_s = OWNER_TIMEOUT_S
        self._owner_reads = SingleFlight()  # concurrent requests share one ask of the owners
        self._stock_ids: dict[int, tuple[list[int], list[int]]] = {}
        # whole encoded pages for `local_ms`, trusted only while the invalidation channel is
        # followed (catalog and price events drop them at once; stock is at most that old)
        self.local_s = local_ms / 1000
        self._local: dict[int, tuple[float, bytes]] = {}  # product -> (expires, page)
        # a page is kept only if nothing was announced for its product, and the channel was
        # not lost, while it was read: (announcements at the last gap, product's last one)
        self._seq = 0  # announcements received
        self._gap_seq = 0
        self._announced: collections.OrderedDict[int, int] = collections.OrderedDict()
        self.local_hits = 0
        self.local_misses = 0
        self.stale_served = 0
        # PostgreSQL failed: misses go straight to the last pages for PG_RETRY_AFTER_S
        self.database = Breaker(PG_RETRY_AFTER_S, name="PostgreSQL")
        self._last_writes = SingleFlight()  # concurrent misses of a page: one write of it
        self._tasks: set[asyncio.Task[bool]] = set()
        self.invalidations = (Invalidations(redis_url, self._drop, self._drop_all)
                              if redis_url and local_ms > 0 else None)

    def start(self) -> None:
        """Follows the invalidation channel (call from the running event loop)."""
        if self.invalidations is not None:
            self.invalidations.start()

    async def close(self) -> None:
        if self.invalidations is not None:
            await self.invalidations.close()

    # -- whole pages in-process ----------------------------------------------------------
    def local(self, product_id: int) -> bytes | None:
        """This process's copy of the encoded page, if fresh: no await, no Redis."""
        got = self._local.get(product_id)
        if got is None:
            self.local_misses += 1
            return None
        if got[0] <= time.monotonic() or not self._following():
            self._local.pop(product_id, None)
            self.local_misses += 1
            return None
        self.local_hits += 1
        return got[1]

    async def encoded(self, product_id: int) -> tuple[bytes, str]:
        """The page as JSON bytes and how the cache served it; kept in-process when it came
        through Redis and nothing was announced for it (nor the channel lost) meanwhile;
        never past its prices' validity (a deal's start or end)."""
        token = self._token(product_id)
        body, how, valid_until_ms = await self._page(product_id, token)
        data = dumps(body)
        if how in ("hit", "miss") and self._following() and self._token(product_id) == token:
            now = time.monotonic()
            ttl = min(self.local_s, valid_until_ms / 1000 - time.time())
            if ttl > 0:
                self._keep(product_id, now + ttl, data, now)
        return data, how

    def _keep(self, product_id: int, expires: float, data: bytes, now: float) -> None:
        keep_until(self._local, product_id, expires, data, now, LOCAL_PAGES_KEPT)

    def _token(self, product_id: int) -> tuple[int, int]:
        return self._gap_seq, self._announced.get(product_id, 0)

    def _following(self) -> bool:
        return self.invalidations is not None and self.invalidations.live

    def _drop(self, product_ids: list[int]) -> None:
        self._seq += 1
        for p in product_ids:
            self._local.pop(p, None)
            self._announced[p] = self._seq
            self._announced.move_to_end(p)
        while len(self._announced) > ANNOUNCED_KEPT:  # a forgotten one reads as 0: a page
            self._announced.popitem(last=False)  # read across it is not kept either

    async def written(self, product_ids: Sequence[int]) -> None:
        """A write of these products was acknowledged: their pages go now (the Redis keys,
        then every Gateway's copy), so that whoever wrote reads the write; the index builder
        drops them again once they are indexed (a page read before the write committed may be
        kept meanwhile). Redis away: the keys expire as usual."""
        self._drop(list(product_ids))
        redis = self.cache.redis
        if redis is not None and product_ids:  # behind the breaker: Redis away, no wait
            await self.cache.breaker.call("delete", lambda: drop_pages(redis, product_ids))

    def _drop_all(self) -> None:
        self._seq += 1
        self._gap_seq = self._seq
        self._local.clear()

    # -- the page ----------------------------------------------------------------------
    async def page(self, product_id: int) -> tuple[JsonObject, str]:
        """The answer and how the cache served it: hit, miss or bypass (Redis unavailable).
        ProductNotFound / ProductUnavailable (404) for products shoppers may not see."""
        body, how, _ = await self._page(product_id, self._token(product_id))
        return body, how

    async def _page(self, product_id: int,
                    token: Hashable) -> tuple[JsonObject, str, int]:
        """(answer, how, until when its prices hold: epoch ms). While PostgreSQL cannot be
        reached, a page that needs it is the page as last assembled (kept a day in Redis),
        with `stale: true` and how "stale"; 503 `unavailable` if there is none."""
        try:
            body, how, until = await self._fresh_page(product_id, token)
        except Exception as exc:
            if not unavailable(exc):
                raise
            self.database.failed("page load", exc)
            return await self._last_page(product_id, exc)
        if how == "miss":
            self._write_last_page(product_id, body)
        return body, how, until

    def _write_last_page(self, product_id: int, body: JsonObject) -> None:
        """Keeps the page as just assembled, in the background (a page misses once per
        lifetime of its cached parts; the requests that shared that miss share one write)."""
        task = asyncio.get_running_loop().create_task(self._last_writes.do(
            product_id, lambda: self.cache.set(last_page_key(product_id), body,
                                               LAST_PAGE_TTL_S)))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _last_page(self, product_id: int,
                         exc: BaseException) -> tuple[JsonObject, str, int]:
        raw = await self.cache.mget([last_page_key(product_id)])
        if raw and raw[0]:
            self.stale_served += 1
            body: JsonObject = loads(raw[0])
            return body | {"stale": True}, "stale", int(time.time() * 1000) + 1000
        raise Unavailable("the catalog database cannot be reached and this page was not "
                          "cached: retry shortly") from exc

    async def _fresh_page(self, product_id: int,
                          token: Hashable) -> tuple[JsonObject, str, int]:
        """(answer, how, until when its prices hold: epoch ms). Reads and loads are shared
        only with requests of the same `token`."""
        keys = [product_key(product_id), price_key(product_id)]
        # the stock keys this page needed last time come in the same MGET (one round trip)
        guess = self._stock_ids.get(product_id)
        with timed("page_cache"):
            values, how, raw = await self.cache.get_or_load(
                keys, lambda missing: self._load(product_id, missing),
                stock_cache.keys(guess[0] + guess[1]) if guess else (), tag=token)
        meta = values[keys[0]]
        own, related = stock_ids(meta)
        if guess == (own, related) and raw is not None:
            stock = await self._stock(own, [], {str(v): snap for v, snap in stock_cache.read(
                own + related, raw).items()})
        else:
            self._remember(product_id, own, related)
            stock = await self._stock(own, related) if own else {}
        path = await self.categories.path(meta.get("category_id"))
        prices = values[keys[1]] or {}
        until = int(prices.get("valid_until_ms") or time.time() * 1000 + NEGATIVE_TTL_S * 1000)
        return page(meta, prices, stock, path, low_stock=self.low_stock), how, until

    def _remember(self, product_id: int, own: list[int], related: list[int]) -> None:
        self._stock_ids.pop(product_id, None)
        if len(self._stock_ids) >= STOCK_IDS_KEPT:
            del self._stock_ids[next(iter(self._stock_ids))]  # the oldest
        self._stock_ids[product_id] = (own, related)

    async def _load(self, product_id: int, keys: list[str]) -> Loaded:
        """The missing parts from PostgreSQL (one connection), related products from the
        index (searched while the prices are read); each with the lifetime it may be cached
        for (ms)."""
        now = self.clock()
        out: Loaded = {}
        pk, ck = product_key(product_id), price_key(product_id)
        if not self.database.closed:  # a dead database costs no timeout
            raise ConnectionError("PostgreSQL failed less than a second ago")

        related: asyncio.Task[tuple[list[JsonObject], bool]] | None = None

        async def read() -> tuple[JsonObject | None, PricingInputs | None]:
            nonlocal related
            row: JsonObject | None = None
            prices: PricingInputs | None = None
            async with self.pool.acquire() as conn:
                if pk in keys:
                    with timed("page_db"):
                        row = await load_product(conn, product_id)
                    if _sellable(row):  # searched while the prices are read
                        related = asyncio.get_running_loop().create_task(
                            self._related(row))
                if ck in keys and (pk not in keys or _sellable(row)):
                    with timed("page_db"):
                        prices = await load_product_pricing(conn, product_id, now)
            return row, prices

        try:  # PostgreSQL's part bounded (the index's search has its own timeout)
            row, prices = await within(read(), PG_WAIT_S)
        except BaseException as exc:
            if related is not None:  # PostgreSQL failed meanwhile
                related.cancel()
            if isinstance(exc, TimeoutError):  # not a connection's or a statement's own
                raise DatabaseStalled(f"PostgreSQL did not answer within {PG_WAIT_S} s"
                                      ) from exc
            raise
        found, related_ok = await related if related is not None else ([], True)
        if pk in keys:
            meta = metadata(row, found, related_ok, now.timestamp())
            ttl = (NEGATIVE_TTL_S if "gone" in meta
                   else self.product_ttl_s if related_ok else NO_RELATED_TTL_S)
            out[pk] = (meta, min(ttl, self.product_ttl_s) * 1000)
        if ck in keys:
            if prices is None:  # not on sale: nothing to price (remembered like the 404;
                out[ck] = ({}, NEGATIVE_TTL_S * 1000)  # a catalog event drops it sooner)
            else:
                vs = prices.variants.values()
                snapshot, ttl_ms = price_snapshot(
                    ((v.item, v.compare_price_cents, v.offers, v.rule) for v in vs),
                    prices.deals, prices.seller_names, prices.deal_names,
                    prices.next_deal_start, now, self.price_ttl_s)
                out[ck] = (snapshot, ttl_ms)
        return out

    async def _related(self, row: JsonObject | None) -> tuple[list[JsonObject], bool]:
        """Products of the same category with similar titles (the title's and the brand's
        words, in titles: a product sharing no word with this title is not one, whatever its
        brand), those of the same brand first, in stock by the index, this one excluded;
        without a category, those of the same brand (their every field). One index search,
        over titles only in a category (half the CPU of searching every text field: at 1M
        products most of a page's load); ([], False) while the index cannot answer (the
        metadata is then kept a short while only)."""
        if self.index is None or row is None:
            return [], True
        with timed("page_related"):
            return await self._similar(self.index, row)

    async def _similar(self, index: SearchIndex, row: JsonObject
                       ) -> tuple[list[JsonObject], bool]:
        pid = int(row["product_id"])
        words = [w for w in tokenize(row["title"]) if len(w) > _SHORT_WORD][:12]
        words += tokenize(row["brand"] or "")
        # in a category, titles only; by brand alone (no category), the brand's words must
        # find the brand's products in every field, as the filter asks
        text = TextQuery(tuple((w,) for w in dict.fromkeys(words)), require_all=False,
                         fields="title" if row["category_id"] is not None else "all")
        if row["category_id"] is not None:
            filters = Filters(category_ids=(int(row["category_id"]),), in_stock=True,
                              exclude_ids=(pid,))
        elif row["brand"]:
            filters = Filters(brands=(normalize_key(row["brand"]),), in_stock=True,
                              exclude_ids=(pid,))
        else:
            return [], True
        try:
            result = await asyncio.wait_for(index.search(IndexQuery(
                text, filters, limit=2 * RELATED_CANDIDATES, facets=False)), INDEX_TIMEOUT_S)
        except Exception as exc:  # no live index yet, or shards restarting: none for now
            log.info("related products of %d unavailable: %r", pid, exc)
            return [], False
        brand = normalize_key(row["brand"]) if row["brand"] else None
        hits = sorted((h for h in result.hits if h.product_id != pid),  # stable: by score
                      key=lambda h: brand is None or _brand_key(h.doc) != brand)
        return [{"product_id": str(h.product_id),
                 "variant_ids": [str(v) for v in h.doc.get("variant_ids") or ()],
                 "in_stock": bool(h.doc.get("in_stock"))}
                for h in hits[:RELATED_CANDIDATES]], True

    async def _stock(self, own: list[int], related: list[int],
                     got: dict[str, Any] | None = None) -> dict[str, dict[str, Any]]:
        """Snapshots of the product's variants and the related candidates' (one MGET, unless
        `got` has them already); the product's variants without one come from their owners
        (who publish them then)."""
        if got is None:
            with timed("page_stock"):
                snaps = await self.cache.stock(own + related)
            got = {str(v): s for v, s in (snaps or {}).items()}
        missing = [v for v in own if str(v) not in got]
        inventory = self.inventory
        if missing and inventory is not None:
            try:
                with timed("page_owners"):
                    owners = await self._owner_reads.do(
                        tuple(missing),
                        lambda: asyncio.wait_for(inventory.stock(missing), self.owner_timeout_s))
            except Exception as exc:  # shown as UNKNOWN: never guessed
                log.warning("stock of %s unavailable: %r", missing, exc)
                owners = {}
            for v, full in owners.items():
                got[str(v)] = {"status": full["status"], "quantity_hint": full["quantity_hint"],
                               "available": full["available"]}
        return got

    # -- operations ----------------------------------------------------------------------
    async def prewarm(self, product_ids: list[int], top: int = 0) -> JsonObject:
        """Loads metadata and price snapshots of these products (and of the `top` most sold)
        into Redis now, replacing what is there: before a flash sale."""
        started = time.monotonic()
        if top:
            async with self.pool.acquire() as conn:
                product_ids = list(dict.fromkeys([*product_ids, *await top_products(conn, top)]))
        gate = asyncio.Semaphore(PREWARM_CONCURRENCY)

        async def one(pid: int) -> bool:
            async with gate:
                keys = [product_key(pid), price_key(pid)]
                values = await self.cache.refresh(keys, lambda missing: self._load(pid, missing))
                return "gone" not in values[keys[0]]

        ok = await asyncio.gather(*(one(p) for p in product_ids))
        return {"warmed": sum(ok), "not_available": [str(p) for p, k in zip(product_ids, ok,
                                                                            strict=True)
                                                     if not k],
                "redis": self.cache.stats()["redis"],
                "seconds": round(time.monotonic() - started, 3)}

    def stats(self) -> JsonObject:
        inv = self.invalidations
        return {**self.cache.stats(), "owner_stock_reads": self._owner_reads.runs,
                "local": {"hits": self.local_hits, "pages": len(self._local),
                          "following": self._following(),
                          "invalidations": inv.messages if inv else 0,
                          "gaps": inv.gaps if inv else 0},
                "pid": os.getpid()}


def _sellable(row: JsonObject | None) -> bool:
    return (row is not None and row["status"] == "ACTIVE" and row["seller_status"] == "ACTIVE"
            and bool(row["variants"]))


def _brand_key(doc: Mapping[str, object]) -> str | None:
    """The hit's normalized brand: documents store `brand` as written (`brand_key` is indexed
    for filters only, not stored)."""
    brand = doc.get("brand")
    return normalize_key(brand) if isinstance(brand, str) and brand else None
