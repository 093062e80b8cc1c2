"""IndexBuilder: keeps the search index in step with the catalog (CQRS), and builds whole new
index generations. One per database (a detached, named Ray actor, restarted by Ray).

Incremental: LISTEN on the outbox channel (wake-up) plus a poll; the outbox consumer
(adapters/postgres/outbox.py) hands out events in commit order. A batch of events becomes a set
of products; their current rows are read, turned into documents (a pyarrow batch), written to
every writable generation (the live one, and one being built), committed in the index; then
the Redis keys of those products are deleted and announced, and only then the consumer position
is committed. A crash anywhere before that replays the batch: upserts are idempotent and
ordered by product version.

Full build: the length pivots of BM25 are measured on a deterministic sample of the catalog;
parallel workers (Ray tasks) scan product id ranges into a new generation beside the live one;
its term statistics are counted over all its shards; the result is checked (document count,
canary queries); its query-understanding vocabulary is built and stored with it; only then is
it swapped in atomically (a Gateway that sees it live finds everything it needs); the previous
generation is kept for rollback. A live generation in an older document format is built again
when the builder starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypedDict

import asyncpg
import pyarrow as pa
import ray
import redis.asyncio as aioredis
from ray.actor import ActorHandle

from actors import database_tag, metrics, named
from actors.search_index import open_index
from adapters.cache import drop_pages
from adapters.postgres import Conn, connect, create_pool
from adapters.postgres import search_docs as sd
from adapters.postgres.outbox import OUTBOX_CHANNEL, OutboxConsumer, OutboxEvent
from adapters.postgres.pricing_repo import listing_prices
from adapters.postgres.search_artifacts import VOCABULARY, SearchArtifacts
from adapters.postgres.search_registry import INDEX_FORMAT, Generation, GenerationRegistry
from adapters.postgres.vocabulary import build_vocabulary
from adapters.redis import create_redis
from adapters.search import SearchIndex
from adapters.text_embedding import TextEmbedder, to_bytes
from domain.errors import GenerationRefused, RebuildUnderWay
from domain.search import IndexQuery, TextQuery
from domain.search_documents import document, record_batch
from domain.text_scoring import SAMPLE_SIZE
from ranking.judgments import read_judgments
from ranking.metrics import ndcg_of_ids

log = logging.getLogger("aisle.index_builder")
CONSUMER = "search-index"
POLL_S = 1.0
METRICS_S = 5.0  # how often the builder reports its lag and throughput to Ray's metrics
RETIRED_GRACE_S = 60.0  # a retired generation is dropped this long after the swap
GATE_TOLERANCE = 0.02  # nDCG@10 a rebuilt generation may lose against the live one
GATE_QUERIES = 300  # judged queries the gate runs (the first, in file order)
MAX_EVENTS = 5_000
SCAN_PAGE = 2_000
VECTOR_PAGE = 200  # with vectors: a page is embedded (~100 titles/s) before it is written
CANARIES = 3
PRODUCT_EVENTS = ("product.created", "product.updated", "product.deleted", "price.changed")
FULL_BUILD_EVENTS = ("catalog.loaded", "index.rebuild")


@dataclasses.dataclass(frozen=True)
class BuilderConfig:
    dsn: str
    redis_url: str | None
    data_dir: str
    shards: int
    es_url: str | None = None
    workers: int = 2
    text_vectors_max: int = 100_000  # dense title vectors up to this many products (0: never)
    gate_judgments: str | None = None  # "<dataset>:<path>": the relevance gate of rebuilds


@dataclasses.dataclass
class BuilderStats:
    batches: int = 0
    events: int = 0
    documents: int = 0
    deleted: int = 0
    deal_boundaries: int = 0
    full_builds: int = 0
    errors: int = 0
    last_error: str | None = None
    last_gate: dict[str, object] | None = None  # the relevance gate's last figures


@dataclasses.dataclass(frozen=True)
class RollbackReport:
    live: str  # the generation live again
    previous: str | None  # the one it replaced (now the previous one)


@dataclasses.dataclass(frozen=True)
class BuildReport:
    generation: str
    documents: int
    previous: str | None
    seconds: float
    docs_per_s: int


@dataclasses.dataclass(frozen=True)
class IndexStatus:
    backend: str
    builder: BuilderStats
    pending_events: int
    oldest_pending_s: float
    generations: list[Generation]

    def to_json(self) -> dict[str, object]:
        out = dataclasses.asdict(self)
        out["generations"] = [g.to_json() for g in self.generations]
        return out


async def documents(conn: Conn, rows: Sequence[dict[str, Any]],
                    parents: dict[int, int | None],
                    embedder: TextEmbedder | None = None) -> pa.RecordBatch:
    """Catalog rows -> one pyarrow batch of search documents (categories unknown to `parents`
    are read again first: one was added since). Prices are what listings show now: the
    pricing engine's (buy box, deals, dynamic rules), so price filters, sorts and facets see
    what results show; a deal's start or end re-prices its products. With `embedder`, each
    document carries its title's dense vector (learned rankers' `dense` signal)."""
    if any(r["category_id"] is not None and r["category_id"] not in parents for r in rows):
        parents.update(await sd.category_parents(conn))
    # priced at PostgreSQL's clock: the one deal boundaries are looked for with
    at = await sd.database_now(conn)
    shown = await listing_prices(conn, [v for r in rows for v in r["variant_ids"]], at)
    for r in rows:
        if r["product_id"] in shown:
            r["price_cents"], r["price_was_cents"] = shown[r["product_id"]]
    now = time.time()
    docs = [document(r, parents, now) for r in rows]
    if embedder is not None and docs:
        vectors = await asyncio.to_thread(embedder.embed, [d["title"] for d in docs])
        for d, v in zip(docs, vectors, strict=True):
            d["title_vec"] = to_bytes(v)
    return record_batch(docs)


def canary_query(title: str, words: int = 6) -> TextQuery:
    """The first `words` words of a title that can match (a word of punctuation alone, such
    as "-" or "|", is no word: required, it would match nothing), every one required."""
    return TextQuery(tuple((w,) for w in title.split() if any(c.isalnum() for c in w))[:words])


@ray.remote(num_cpus=0)
def build_range(cfg: BuilderConfig, generation: str, after: int, upto: int,
                vectors: bool = False) -> int:
    """One worker of a full build: products after < id <= upto into `generation` (with
    dense title vectors when `vectors`)."""
    async def run() -> int:
        pool = await create_pool(cfg.dsn, max_size=2)  # the scan and the registry
        index = open_index(cfg, pool)
        embedder = TextEmbedder() if vectors else None
        try:
            async with pool.acquire() as conn:
                parents = await sd.category_parents(conn)
                done, cursor = 0, after
                while rows := await sd.scan(conn, cursor, VECTOR_PAGE if vectors else SCAN_PAGE,
                                            upto):
                    await index.write(await documents(conn, rows, parents, embedder), (),
                                      generation, commit=False)
                    done += len(rows)
                    cursor = rows[-1]["product_id"]
                return done
        finally:
            await index.close()
            await pool.close()
    return asyncio.run(run())


class IndexBuilderLoop:
    """What the IndexBuilder actor runs (a plain class: tests subclass it to inject faults
    at its seams, e.g. `_written`)."""

    async def __init__(self, cfg: BuilderConfig) -> None:  # type: ignore[misc]
        # No I/O here: a constructor that raises leaves the actor dead for good. Connecting
        # happens in the loop, retried until it works.
        self.cfg = cfg
        self._wake = asyncio.Event()
        self._dropped_at = 0.0  # monotonic time of the last look for retired generations
        self._connected = asyncio.Event()  # _setup done: status can be read
        self._ready = asyncio.Event()  # and a live generation is there
        self._stats = BuilderStats()
        self._building: str | None = None  # the generation a full build is making
        self._build_lock = asyncio.Lock()  # one full build at a time
        self._metrics_at = 0.0
        self._metrics_documents = 0
        self._deals_looked = -float("inf")
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _setup(self) -> None:
        self.pool: asyncpg.Pool = await create_pool(self.cfg.dsn, max_size=4)
        self.index: SearchIndex = open_index(self.cfg, self.pool)
        self.registry = GenerationRegistry(self.pool, self.index.backend)
        self.artifacts = SearchArtifacts(self.pool)
        self.outbox = OutboxConsumer(self.pool, CONSUMER)
        self.redis: aioredis.Redis | None = (create_redis(self.cfg.redis_url)
                                             if self.cfg.redis_url else None)
        async with self.pool.acquire() as conn:
            self.parents = await sd.category_parents(conn)
            self.embedder = await self._embedder(conn)
        await self._abandon_unfinished()

    async def _embedder(self, conn: Conn) -> TextEmbedder | None:
        """Dense title vectors are made for catalogs up to cfg.text_vectors_max products (an
        empty one too: a shop that starts empty and grows through the seller API gets them
        for every product it adds; checked again at each rebuild)."""
        if self.cfg.text_vectors_max > 0 and (
                await sd.count_active(conn) <= self.cfg.text_vectors_max):
            return getattr(self, "embedder", None) or TextEmbedder()
        return None

    async def _abandon_unfinished(self) -> None:
        """A generation still BUILDING when the builder starts was being built by a builder
        that died (there is one builder): nothing will finish it. Left alone, every change
        would still be written into it (it counts as writable) and its files kept on disk."""
        for g in await self.registry.all():
            if g.status == "BUILDING":
                log.warning("dropping generation %s: its build did not finish", g.name)
                await self.index.drop_generation(g.name)
                await self.registry.mark(g.name, "FAILED")

    # -- what callers ask ----------------------------------------------------------------
    async def start(self, timeout_s: float = 120.0) -> bool:
        """Waits until the builder is connected and the index has a live generation."""
        await asyncio.wait_for(self._ready.wait(), timeout_s)
        return True

    async def status(self) -> IndexStatus:
        """Generations, counters and lag; during the first build too (its generation shows
        BUILDING), which takes minutes on a large catalog."""
        await self._connected.wait()
        lag = await self.outbox.lag()
        return IndexStatus(self.index.backend, self.stats(), lag.events, lag.oldest_s,
                           await self.registry.all())

    def stats(self) -> BuilderStats:
        return dataclasses.replace(self._stats)

    async def wait_idle(self, timeout_s: float = 30.0) -> bool:
        """True once every event committed before this call has been indexed (False if not
        within `timeout_s`, which includes a restarted builder's connecting)."""
        deadline = time.monotonic() + timeout_s
        try:
            await asyncio.wait_for(self._ready.wait(), timeout_s)
        except TimeoutError:
            return False
        target = await self.outbox.head()
        while time.monotonic() < deadline:
            if await self.outbox.pending(target) == 0 and await self.registry.live() is not None:
                return True
            self._wake.set()
            await asyncio.sleep(0.05)
        return False

    # -- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        listener = None
        while not self._ready.is_set():
            try:
                await self._setup()
                self._connected.set()
                await self._bootstrap()
                self._ready.set()
            except Exception as exc:
                self._stats.last_error = repr(exc)
                log.exception("index builder start failed; retrying")
                await asyncio.sleep(1.0)
        while True:
            try:
                if listener is None or listener.is_closed():
                    listener = await connect(self.cfg.dsn)
                    await listener.add_listener(OUTBOX_CHANNEL, lambda *_: self._wake.set())
                while await self._process_once():
                    await self._deal_boundaries(every_s=POLL_S)  # not starved by a backlog
                    await self._export_metrics()  # nor the lag it reports
                await self._deal_boundaries()
                await self._drop_retired()
                await self._export_metrics()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), POLL_S)
                self._wake.clear()
            except Exception as exc:  # keep going: the position was not committed
                self._stats.errors += 1
                self._stats.last_error = repr(exc)
                log.exception("index builder batch failed; retrying")
                if listener is not None:
                    with contextlib.suppress(Exception):
                        await listener.close()
                listener = None
                await asyncio.sleep(0.5)

    async def _export_metrics(self) -> None:
        """Ray metrics, at most every METRICS_S: the index lag (outbox events not indexed,
        age of the oldest) and the documents written since the last export."""
        if time.monotonic() - self._metrics_at < METRICS_S:
            return
        self._metrics_at = time.monotonic()
        try:
            lag = await self.outbox.lag()
            metrics.index_lag(lag.events, lag.oldest_s)
            metrics.documents_indexed(self._stats.documents - self._metrics_documents)
            self._metrics_documents = self._stats.documents
        except Exception as exc:  # metrics never stop the builder
            log.debug("index metrics not exported: %r", exc)

    async def _bootstrap(self) -> None:
        """First start on a database: no position yet. Build everything into a first
        generation, and start consuming from before that build began. A live generation in
        an older format is built again."""
        if await self.outbox.exists() and await self.registry.live() is not None:
            if (await self.registry.live_format() or 0) < INDEX_FORMAT:
                log.info("the live search index predates format %d: full build", INDEX_FORMAT)
                await self.full_build(wait=True)
            return
        start = await self.outbox.start_point()
        await self.full_build(wait=True)
        await self.outbox.begin(start)

    async def _process_once(self) -> bool:
        """One batch of events; False when there was nothing to do."""
        async with self.pool.acquire() as conn:
            events = await self.outbox.batch(conn, MAX_EVENTS)
            if not events:
                return False
            full, products = await self._products_of(conn, events)
            if full:
                await self.full_build(wait=True)
            elif products:
                await self.apply(conn, sorted(products))
            await self.outbox.commit(conn, events[-1])
            self._stats.batches += 1
            self._stats.events += len(events)
        return True

    async def _products_of(self, conn: Conn,
                           events: Sequence[OutboxEvent]) -> tuple[bool, set[int]]:
        """(whether a full build is asked, the products the events touch)."""
        products: set[int] = set()
        variants: set[int] = set()
        scopes: list[dict[str, str]] = []
        full = False
        for e in events:
            if e.event_type in PRODUCT_EVENTS:
                products.add(e.aggregate_id)
            elif e.event_type == "inventory.changed":
                variants.add(e.aggregate_id)
            elif e.event_type == "deal.changed":  # written by a trigger on deals
                found = (e.payload or {}).get("scopes")
                scopes += found if isinstance(found, list) else []
            elif e.event_type in FULL_BUILD_EVENTS:
                full = True
        if variants:
            products.update(await sd.product_of_variants(conn, sorted(variants)))
        if scopes:
            products.update(await sd.products_in_scopes(conn, scopes))
        return full, products

    async def _deal_boundaries(self, every_s: float = 0.0) -> None:
        """Re-prices in the index the products of deals that started or ended since the last
        look (nothing is written then, so no event says so); no more often than `every_s`.
        The watermark moves only after the products are written: a crash looks again. With
        none yet (an index built before documents were priced by the engine), the whole
        index is built again first."""
        if time.monotonic() - self._deals_looked < every_s:
            return
        self._deals_looked = time.monotonic()
        async with self.pool.acquire() as conn:
            mark = await self.outbox.watermark(conn)
            if mark is None:
                return
            after, upto = mark
            scopes: list[dict[str, str]] = []
            if after is None:  # an index from before documents were priced by the engine
                # (deals, offers, rules): build it again; boundaries from before that build
                log.info("search documents predate engine prices: full build")
                await self.full_build(wait=True)
            elif after < upto:
                scopes = await sd.deal_scopes_between(conn, after, upto)
            if scopes:
                await self.apply(conn, await sd.products_in_scopes(conn, scopes))
                self._stats.deal_boundaries += 1
            await self.outbox.set_watermark(conn, upto)

    async def apply(self, conn: Conn, product_ids: Sequence[int]) -> None:
        """These products' documents, as the catalog has them now, in every writable
        generation (SCAN_PAGE at a time: a category's deal may touch very many)."""
        for i in range(0, len(product_ids), SCAN_PAGE):
            await self._apply(conn, product_ids[i:i + SCAN_PAGE])

    async def _apply(self, conn: Conn, product_ids: Sequence[int]) -> None:
        rows, gone = await sd.rows_for(conn, product_ids)
        batch = await documents(conn, rows, self.parents, self.embedder)
        for generation in await self.registry.writable():
            await self.index.write(batch, gone, generation, commit=True)
        await self._written(product_ids)
        if self.redis is not None and product_ids:
            with contextlib.suppress(Exception):  # the keys expire anyway; never block indexing
                # product pages and listing prices (price.changed lands here too)
                await drop_pages(self.redis, product_ids)  # then the Gateways' copies
        self._stats.documents += batch.num_rows
        self._stats.deleted += len(gone)

    async def _written(self, product_ids: Sequence[int]) -> None:
        """The products are in the index; their caches are not dropped yet and the position
        not moved (a seam for tests: a crash here must lose nothing)."""

    # -- full builds ---------------------------------------------------------------------
    def building(self) -> str | None:
        """The generation a full build is making now (None: no build under way)."""
        return self._building

    async def full_build(self, workers: int | None = None, swap: bool = True,
                         wait: bool = False) -> BuildReport:
        """A new generation from a scan of PostgreSQL, checked, then made live. One at a time:
        while another runs, RebuildUnderWay (an operator's request), or with `wait` (the
        builder's own: a catalog load, a stale format) this one after it; GenerationRefused
        (its problems) if it fails its checks (marked FAILED, the live generation unchanged)."""
        if self._building is not None and not wait:
            raise RebuildUnderWay(f"generation {self._building} is being built: one full build "
                                  "at a time", generation=self._building)
        async with self._build_lock:
            name = self._building = f"g{int(time.time() * 1000)}"
            try:
                return await self._full_build(name, workers, swap)
            finally:
                self._building = None

    async def _full_build(self, name: str, workers: int | None, swap: bool) -> BuildReport:
        started = time.monotonic()
        async with self.pool.acquire() as conn:
            sample = await sd.text_sample(conn, SAMPLE_SIZE)
            bounds = await sd.id_ranges(conn, workers or self.cfg.workers)
            self.embedder = await self._embedder(conn)
        vectors = self.embedder is not None
        await self.index.create_generation(name, sample, vectors)
        try:
            counts = await asyncio.gather(*(
                build_range.remote(self.cfg, name, lo, hi, vectors)  # type: ignore[call-arg]
                for lo, hi in bounds))
            await self.index.refresh(name)
            await self.index.finish_generation(name)
            built = int(sum(counts))
            problems = await self._check(name, built)
            if problems:
                raise GenerationRefused(f"generation {name} failed its checks: "
                                        f"{'; '.join(problems)} (the live one is unchanged)",
                                        generation=name, problems=problems)
            await self.registry.counted(name, built)
            vocabulary = await build_vocabulary(self.pool)
            await self.artifacts.put(name, VOCABULARY, await asyncio.to_thread(
                vocabulary.to_bytes))
        except BaseException:  # not made live: nothing else would drop it
            with contextlib.suppress(Exception):
                await self.index.drop_generation(name)
            await self.registry.mark(name, "FAILED")
            raise
        previous = await self.index.swap(name) if swap else None
        self._stats.full_builds += 1
        seconds = time.monotonic() - started
        return BuildReport(name, built, previous, round(seconds, 2),
                           round(built / max(seconds, 1e-9)))

    async def rollback(self) -> RollbackReport | None:
        """Makes the previous generation live again (it received every change: it is
        current); the one that was live becomes the previous one, so a second rollback
        undoes the first. None if there is none to go back to."""
        previous = await self.registry.previous()
        if previous is None:
            return None
        replaced = await self.index.swap(previous)
        log.warning("rolled back: %s is live again (was %s)", previous, replaced)
        return RollbackReport(previous, replaced)

    async def _drop_retired(self, every_s: float = 5.0) -> None:
        """Generations retired by a swap (older than the previous one) are removed (files,
        shard actors, Elasticsearch indices) RETIRED_GRACE_S after it: Gateways may read
        one until they have loaded the new live generation's query model."""
        now = time.monotonic()
        if now - self._dropped_at < every_s:
            return
        self._dropped_at = now
        for name in await self.registry.retired_before(RETIRED_GRACE_S):
            try:
                await self.index.drop_generation(name)
                log.info("dropped retired generation %s", name)
            except Exception as exc:  # left RETIRED: tried again on a later tick
                log.warning("generation %s not dropped: %r", name, exc)

    async def _check(self, name: str, built: int) -> list[str]:
        problems = []
        indexed = await self.index.count(name)
        if indexed != built:
            problems.append(f"{indexed} documents indexed, {built} built")
        async with self.pool.acquire() as conn:
            canaries = await sd.random_products(conn, CANARIES) if built else []
        for pid, title in canaries:
            docs = await self.index.get([pid], name)
            if pid not in docs:
                continue  # no active variant: not searchable, fine
            query = canary_query(title)
            if not query.groups:
                continue  # nothing to search it by
            res = await self.index.search_generation(
                name, IndexQuery(query, limit=50, facets=False))
            if pid not in {h.product_id for h in res.hits}:
                problems.append(f"canary {pid} not found by its title")
        if self.cfg.gate_judgments and built:
            problems += await self._relevance_gate(name)
        return problems

    async def _relevance_gate(self, name: str) -> list[str]:
        """The judged queries' mean nDCG@10 in the new generation (its own text ranking)
        against the live generation's: no worse than GATE_TOLERANCE below it."""
        assert self.cfg.gate_judgments is not None
        dataset, _, path = self.cfg.gate_judgments.partition(":")
        judgments = await asyncio.to_thread(read_judgments, Path(path), dataset)
        queries = list(judgments.items())[:GATE_QUERIES]
        new = await self._judged_ndcg(name, queries)
        self._stats.last_gate = {"generation": name, "ndcg": round(new, 4)}
        live = await self.registry.live_info()
        if live is None or live[1] != INDEX_FORMAT:
            return []  # nothing comparable to hold it to
        old = await self._judged_ndcg(live[0], queries)
        self._stats.last_gate |= {"live": live[0], "live_ndcg": round(old, 4)}
        if new < old - GATE_TOLERANCE:
            return [f"nDCG@10 on {len(queries)} judged {dataset} queries fell from "
                    f"{old:.4f} (live {live[0]}) to {new:.4f}"]
        return []

    async def _judged_ndcg(self, generation: str,
                           queries: Sequence[tuple[str, dict[str, float]]]) -> float:
        gate = asyncio.Semaphore(16)  # a few at a time: the shards also serve shoppers

        async def one(query: str, judged: dict[str, float]) -> float:
            async with gate:
                res = await self.index.search_generation(generation, IndexQuery(
                    TextQuery(tuple((w,) for w in query.split()), require_all=False),
                    limit=10, facets=False))
            return ndcg_of_ids([str(h.doc.get("external_id")) for h in res.hits], judged)

        scores = await asyncio.gather(*(one(q, judged) for q, judged in queries))
        return sum(scores) / max(len(queries), 1)


class ActorOptions(TypedDict):
    max_restarts: int
    max_task_retries: int
    num_cpus: float


BUILDER_OPTIONS: ActorOptions = {"max_restarts": -1, "max_task_retries": 0, "num_cpus": 0}
IndexBuilder = ray.remote(**BUILDER_OPTIONS)(IndexBuilderLoop)


def builder_actor(cfg: BuilderConfig) -> ActorHandle:
    """The database's one index builder: started, or the one already running."""
    return named(IndexBuilder, f"index-builder-{database_tag(cfg.dsn)}").remote(cfg)


def data_dir_abs(path: str | Path) -> str:
    return str(Path(path).expanduser().resolve())


__all__ = [
    "BuildReport",
    "BuilderConfig",
    "BuilderStats",
    "IndexBuilder",
    "IndexBuilderLoop",
    "IndexStatus",
    "RollbackReport",
    "builder_actor",
    "data_dir_abs",
]
