"""IndexBuilder: keeps the search index in step with the catalog (CQRS), and builds whole new
index generations.

Incremental: LISTEN on the outbox channel (wake-up) plus a poll. Events are read in
(txid, event_id) order, only from transactions older than every running one, so an event that
commits late is never skipped. A batch of events becomes a set of products; their current rows
are read, turned into documents (a pyarrow batch), written to every writable generation (the
live one, and one being built), committed in the index; then the Redis keys of those products
are invalidated and only then the consumer position is committed. A crash anywhere before that
replays the batch: upserts are idempotent and ordered by product version.

Full build: the length pivots of BM25 are measured on a deterministic sample of the catalog;
parallel workers scan product id ranges into a new generation beside the live one; its term
statistics are counted over all its shards; the result is checked (document count, canary
queries); its query-understanding vocabulary is built and stored with it; only then is it
swapped in atomically (a Gateway that sees it live finds everything it needs); the previous
generation is kept for rollback. A live generation in an older document format is built again
when the builder starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import ray

from actors import database_tag, named
from adapters.cache import announce
from adapters.postgres import Conn, connect, create_pool
from adapters.postgres import search_docs as sd
from adapters.postgres.catalog_repo import OUTBOX_CHANNEL
from adapters.postgres.pricing_repo import listing_prices
from adapters.postgres.search_artifacts import VOCABULARY, SearchArtifacts
from adapters.postgres.search_registry import INDEX_FORMAT, GenerationRegistry
from adapters.postgres.vocabulary import build_vocabulary
from adapters.redis import create_redis
from adapters.search.factory import open_index
from domain.search import IndexQuery, TextQuery
from domain.search_documents import document, record_batch
from domain.text_scoring import SAMPLE_SIZE

log = logging.getLogger("aisle.index_builder")
CONSUMER = "search-index"
POLL_S = 1.0
MAX_EVENTS = 5_000
SCAN_PAGE = 2_000
PRODUCT_EVENTS = ("product.created", "product.updated", "product.deleted", "price.changed")
FULL_BUILD_EVENTS = ("catalog.loaded", "index.rebuild")


@dataclass(frozen=True)
class BuilderConfig:
    dsn: str
    redis_url: str | None
    data_dir: str
    shards: int
    es_url: str | None = None
    workers: int = 2


async def documents(conn: Conn, rows: Sequence[dict[str, Any]],
                    parents: dict[int, int | None]) -> pa.RecordBatch:
    """Catalog rows -> one pyarrow batch of search documents (categories unknown to `parents`
    are read again first: one was added since). Prices are what listings show now: the
    pricing engine's (buy box, deals, dynamic rules), so price filters, sorts and facets see
    what results show; a deal's start or end re-prices its products (IndexBuilder)."""
    if any(r["category_id"] is not None and r["category_id"] not in parents for r in rows):
        parents.update(await sd.category_parents(conn))
    # priced at PostgreSQL's clock: the one deal boundaries are looked for with
    at = await conn.fetchval("SELECT clock_timestamp()")
    shown = await listing_prices(conn, [v for r in rows for v in r["variant_ids"]], at)
    for r in rows:
        if r["product_id"] in shown:
            r["price_cents"], r["price_was_cents"] = shown[r["product_id"]]
    now = time.time()
    return record_batch([document(r, parents, now) for r in rows])


@ray.remote(num_cpus=0)
def build_range(cfg: BuilderConfig, generation: str, after: int, upto: int) -> int:
    """One worker of a full build: products after < id <= upto into `generation`."""
    async def run() -> int:
        pool = await create_pool(cfg.dsn, max_size=2)  # the scan and the registry
        index = await open_index(cfg, pool)
        try:
            async with pool.acquire() as conn:
                parents = await sd.category_parents(conn)
                done, cursor = 0, after
                while rows := await sd.scan(conn, cursor, SCAN_PAGE, upto):
                    await index.write(await documents(conn, rows, parents), (), generation,
                                      commit=False)
                    done += len(rows)
                    cursor = rows[-1]["product_id"]
                return done
        finally:
            await index.close()
            await pool.close()
    return asyncio.run(run())


@ray.remote(max_restarts=-1, max_task_retries=0, num_cpus=0)
class IndexBuilder:
    async def __init__(self, cfg: BuilderConfig) -> None:  # type: ignore[misc]
        # No I/O here: a constructor that raises leaves the actor dead for good. Connecting
        # happens in the loop, retried until it works.
        self.cfg = cfg
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._stats = {"batches": 0, "events": 0, "documents": 0, "deleted": 0,
                       "deal_boundaries": 0, "full_builds": 0, "errors": 0}
        self._fail_after_write = False
        self._deals_looked = -float("inf")
        self._last_error: str | None = None
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _setup(self) -> None:
        self.pool = await create_pool(self.cfg.dsn, max_size=4)
        self.index = await open_index(self.cfg, self.pool)
        self.registry = GenerationRegistry(self.pool, self.index.backend)
        self.artifacts = SearchArtifacts(self.pool)
        self.redis = create_redis(self.cfg.redis_url) if self.cfg.redis_url else None
        self.parents = await sd.category_parents(self.pool)  # type: ignore[arg-type]
        await self._abandon_unfinished()

    async def _abandon_unfinished(self) -> None:
        """A generation still BUILDING when the builder starts was being built by a builder
        that died (there is one builder): nothing will finish it. Left alone, every change
        would still be written into it (it counts as writable) and its files kept on disk."""
        for g in await self.registry.all():
            if g["status"] == "BUILDING":
                name = str(g["name"])
                log.warning("dropping generation %s: its build did not finish", name)
                await self.index.drop_generation(name)
                await self.registry.mark(name, "FAILED")

    async def start(self, timeout_s: float = 120.0) -> bool:
        """Waits until the builder is connected and the index has a live generation."""
        await asyncio.wait_for(self._ready.wait(), timeout_s)
        return True

    async def status(self) -> dict[str, Any]:
        await self._ready.wait()
        lag = await self.pool.fetchrow(
            """SELECT count(*) AS events, extract(epoch FROM now() - min(o.created_at)) AS secs
               FROM outbox o, outbox_consumers c
               WHERE c.name = $1 AND (o.txid, o.event_id) > (c.last_txid, c.last_event_id)""",
            CONSUMER)
        gens = await self.registry.all()
        return {"backend": self.index.backend, "builder": self.stats(),
                "pending_events": int(lag["events"]) if lag else 0,
                "oldest_pending_s": float(lag["secs"]) if lag and lag["secs"] else 0.0,
                "generations": [{k: (v.isoformat() if hasattr(v, "isoformat") else v)
                                 for k, v in g.items()} for g in gens]}

    def stats(self) -> dict[str, Any]:
        return {**self._stats, "last_error": self._last_error}

    def fail_after_next_write(self) -> None:
        """Fault injection for tests: the process dies after the next index write, before the
        consumer position is committed."""
        self._fail_after_write = True

    async def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once every event committed before this call has been indexed."""
        target = await self.pool.fetchval(
            "SELECT max(event_id) FROM outbox WHERE txid < pg_snapshot_xmin(pg_current_snapshot())")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pending = await self.pool.fetchval(
                """SELECT count(*) FROM outbox o, outbox_consumers c
                   WHERE c.name = $1 AND o.event_id <= $2
                     AND (o.txid, o.event_id) > (c.last_txid, c.last_event_id)""",
                CONSUMER, target or 0)
            if pending == 0 and await self.registry.live() is not None:
                return True
            self._wake.set()
            await asyncio.sleep(0.05)
        return False

    async def _run(self) -> None:
        listener = None
        while not self._ready.is_set():
            try:
                await self._setup()
                await self._bootstrap()
                self._ready.set()
            except Exception as exc:
                self._last_error = repr(exc)
                log.exception("index builder start failed; retrying")
                await asyncio.sleep(1.0)
        while True:
            try:
                if listener is None or listener.is_closed():
                    listener = await connect(self.cfg.dsn)
                    await listener.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
                while await self._process_once():
                    await self._deal_boundaries(every_s=POLL_S)  # not starved by a backlog
                await self._deal_boundaries()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
                self._wake.clear()
            except Exception as exc:  # keep going: the position was not committed
                self._stats["errors"] += 1
                self._last_error = repr(exc)
                log.exception("index builder batch failed; retrying")
                if listener is not None:
                    with contextlib.suppress(Exception):
                        await listener.close()
                listener = None
                await asyncio.sleep(0.5)

    async def _bootstrap(self) -> None:
        """First start on a database: no position yet. Build everything into a first
        generation, and start consuming from before that build began."""
        row = await self.pool.fetchrow(
            "SELECT 1 FROM outbox_consumers WHERE name = $1", CONSUMER)
        if row is not None and await self.registry.live() is not None:
            if (await self.registry.live_format() or 0) < INDEX_FORMAT:
                log.info("the live search index predates format %d: full build", INDEX_FORMAT)
                await self.full_build()
            return
        begin = await self.pool.fetchrow(
            "SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin, clock_timestamp() AS at")
        assert begin is not None
        start, started = begin["xmin"], begin["at"]
        # deals that start or end during the build are looked for from `started` on
        await self.full_build()
        # consume every transaction from `start` on (all older ones ended before the scan)
        await self.pool.execute(
            """INSERT INTO outbox_consumers (name, last_txid, last_event_id,
                                             deals_checked_until)
               VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING""",
            CONSUMER, _prev_xid(start), 2**63 - 1, started)

    async def _process_once(self) -> bool:
        """One batch of events; False when there was nothing to do."""
        async with self.pool.acquire() as conn:
            pos = await conn.fetchrow(
                "SELECT last_txid, last_event_id FROM outbox_consumers WHERE name = $1",
                CONSUMER)
            events = await conn.fetch(
                """SELECT event_id, event_type, aggregate_id, payload, txid FROM outbox
                   WHERE (txid, event_id) > ($1::xid8, $2::bigint)
                     AND txid < pg_snapshot_xmin(pg_current_snapshot())
                   ORDER BY txid, event_id LIMIT $3""",
                pos["last_txid"] if pos else 0, pos["last_event_id"] if pos else 0, MAX_EVENTS)
            if pos is None or not events:
                return False
            products: set[int] = set()
            variants: set[int] = set()
            full = False
            scopes: list[dict[str, str]] = []
            for e in events:
                kind = e["event_type"]
                if kind in PRODUCT_EVENTS:
                    products.add(int(e["aggregate_id"]))
                elif kind == "inventory.changed":
                    variants.add(int(e["aggregate_id"]))
                elif kind == "deal.changed":  # written by a trigger on deals
                    scopes += (e["payload"] or {}).get("scopes") or []
                elif kind in FULL_BUILD_EVENTS:
                    full = True
            if variants:
                products.update(await sd.product_of_variants(conn, sorted(variants)))
            if scopes:
                products.update(await sd.products_in_scopes(conn, scopes))
            if full:
                await self.full_build()
            elif products:
                await self.apply(conn, sorted(products))
            last = events[-1]
            await conn.execute(
                """UPDATE outbox_consumers SET last_txid = $2, last_event_id = $3,
                          updated_at = now() WHERE name = $1""",
                CONSUMER, last["txid"], last["event_id"])
            self._stats["batches"] += 1
            self._stats["events"] += len(events)
        return True

    async def _deal_boundaries(self, every_s: float = 0.0) -> None:
        """Re-prices in the index the products of deals that started or ended since the last
        look (nothing is written then, so no event says so); no more often than `every_s`.
        The position moves only after the products are written: a crash looks again. With no
        position yet (an index built before documents were priced by the engine), the whole
        index is built again first."""
        if time.monotonic() - self._deals_looked < every_s:
            return
        self._deals_looked = time.monotonic()
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT deals_checked_until, now() AS now FROM outbox_consumers WHERE name = $1",
                CONSUMER)
            if row is None:
                return
            after, upto = row["deals_checked_until"], row["now"]
            if after is None:  # an index from before documents were priced by the engine
                # (deals, offers, rules): build it again; boundaries from before that build
                log.info("search documents predate engine prices: full build")
                await self.full_build()
                scopes = []
            else:
                scopes = await sd.deal_scopes_between(conn, after, upto) if after < upto else []
            if scopes:
                await self.apply(conn, await sd.products_in_scopes(conn, scopes))
                self._stats["deal_boundaries"] += 1
            await conn.execute(
                "UPDATE outbox_consumers SET deals_checked_until = $2 WHERE name = $1",
                CONSUMER, upto)

    async def apply(self, conn: Conn, product_ids: Sequence[int]) -> None:
        """These products' documents, as the catalog has them now, in every writable
        generation (SCAN_PAGE at a time: a category's deal may touch very many)."""
        for i in range(0, len(product_ids), SCAN_PAGE):
            await self._apply(conn, product_ids[i:i + SCAN_PAGE])

    async def _apply(self, conn: Conn, product_ids: Sequence[int]) -> None:
        rows, gone = await sd.rows_for(conn, product_ids)
        batch = await documents(conn, rows, self.parents)
        for generation in await self.registry.writable():
            await self.index.write(batch, gone, generation, commit=True)
        if self._fail_after_write:
            os._exit(1)
        if self.redis is not None and product_ids:
            with contextlib.suppress(Exception):  # the keys expire anyway; never block indexing
                # product pages: metadata and price snapshots (price.changed lands here too)
                await self.redis.delete(*(f"aisle:{kind}:{p}" for p in product_ids
                                          for kind in ("product", "price", "listing")))
                await announce(self.redis, product_ids)  # then the Gateways' page copies
        self._stats["documents"] += batch.num_rows
        self._stats["deleted"] += len(gone)

    async def full_build(self, workers: int | None = None, swap: bool = True) -> dict[str, Any]:
        """A new generation from a scan of PostgreSQL, checked, then made live."""
        started = time.monotonic()
        name = f"g{int(time.time() * 1000)}"
        async with self.pool.acquire() as conn:
            sample = await sd.text_sample(conn, SAMPLE_SIZE)
        await self.index.create_generation(name, sample)
        workers = workers or self.cfg.workers
        try:
            bounds = await self._ranges(workers)
            counts = await asyncio.gather(*(
                build_range.remote(self.cfg, name, lo, hi) for lo, hi in bounds))
            await self.index.refresh(name)
            await self.index.finish_generation(name)
            built = int(sum(counts))
            problems = await self._check(name, built)
            if problems:
                raise RuntimeError(f"generation {name} failed its checks: {problems}")
            vocabulary = await build_vocabulary(self.pool)
            await self.artifacts.put(name, VOCABULARY, await asyncio.to_thread(
                vocabulary.to_bytes))
        except BaseException:  # not made live: nothing else would drop it
            with contextlib.suppress(Exception):
                await self.index.drop_generation(name)
            await self.registry.mark(name, "FAILED")
            raise
        previous = await self.index.swap(name) if swap else None
        self._stats["full_builds"] += 1
        seconds = time.monotonic() - started
        return {"generation": name, "documents": built, "previous": previous,
                "seconds": round(seconds, 2), "docs_per_s": round(built / max(seconds, 1e-9))}

    async def _ranges(self, workers: int) -> list[tuple[int, int]]:
        """`workers` product-id ranges of about equal size (one round trip)."""
        cuts = await self.pool.fetch(
            """WITH n AS (SELECT count(*) AS n FROM products WHERE status = 'ACTIVE')
               SELECT (SELECT product_id FROM products WHERE status = 'ACTIVE'
                       ORDER BY product_id OFFSET n.n * i / $1 LIMIT 1) AS cut
               FROM n, generate_series(1, $1 - 1) AS i ORDER BY i""", workers)
        bounds = [0]
        for r in cuts:
            if r["cut"] is not None and r["cut"] > bounds[-1]:
                bounds.append(int(r["cut"]))
        return [(lo, hi) for lo, hi in zip(bounds, [*bounds[1:], 2**63 - 1], strict=True)]

    async def _check(self, name: str, built: int) -> list[str]:
        problems = []
        indexed = await self.index.count(name)
        if indexed != built:
            problems.append(f"{indexed} documents indexed, {built} built")
        canaries = await self.pool.fetch(
            """SELECT product_id, title FROM products WHERE status = 'ACTIVE'
               ORDER BY random() LIMIT 3""")
        for c in canaries if built else []:
            docs = await self.index.get([c["product_id"]], name)
            if c["product_id"] not in docs:
                continue  # no active variant: not searchable, fine
            words = tuple((w,) for w in c["title"].split()[:6])
            res = await self.index.search_generation(
                name, IndexQuery(TextQuery(words), limit=50, facets=False))
            if c["product_id"] not in {h.product_id for h in res.hits}:
                problems.append(f"canary {c['product_id']} not found by its title")
        return problems


def _prev_xid(x: Any) -> Any:
    """The position just before transaction `x` (consume from x on)."""
    return type(x)(int(x) - 1) if int(x) > 0 else x


def builder_actor(cfg: BuilderConfig) -> Any:
    return named(IndexBuilder, f"index-builder-{database_tag(cfg.dsn)}").remote(cfg)


def data_dir_abs(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())
