"""`load_catalog`: one dataset into PostgreSQL, in one transaction, once.

Frames are built in a worker thread one chunk ahead of the COPY of the previous chunk, so
generation and PostgreSQL ingestion overlap and at most two chunks are in memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterator

import asyncpg

from adapters.loading._replace import delete_dataset_rows
from adapters.loading.datasets import Dataset, resolve
from adapters.loading.frames import CatalogFrames
from adapters.loading.writer import COPY_TIMEOUT_S, CatalogWriter
from adapters.postgres import connect
from adapters.postgres.outbox import OUTBOX_CHANNEL
from adapters.postgres.worker_lease import lease_snowflake
from domain.errors import AisleError

_LOCK_NAMESPACE = 0x4C44  # "LD": one load per dataset at a time
_TABLES = "sellers, categories, products, product_variants, product_images, reviews_summary, " \
          "warehouses, stock"


class CatalogLoadFailed(AisleError):
    code = "catalog_load_failed"


@dataclasses.dataclass(frozen=True)
class LoadResult:
    dataset: str
    skipped: bool = False
    products: int = 0
    variants: int = 0
    images: int = 0
    reviews: int = 0
    stock: int = 0
    categories: int = 0  # category nodes the catalog uses (new or already present)
    sellers: int = 0
    replaced_products: int = 0  # removed first by a forced reload
    seconds: float = 0.0


async def load_catalog(dsn: str, dataset: str, *, seed: int = 42, snowflake_node: int = 0,
                       force: bool = False) -> LoadResult:
    """Load `dataset` unless catalog_loads says it is there already (or `force`: replace it)."""
    ds = resolve(dataset)
    conn = await connect(dsn)
    try:
        return await load_on(conn, dsn, ds, seed=seed, snowflake_node=snowflake_node,
                             force=force)
    finally:
        await conn.close()


async def load_on(conn: asyncpg.Connection, dsn: str, ds: Dataset, *, seed: int,
                  snowflake_node: int, force: bool,
                  writer_class: type[CatalogWriter] = CatalogWriter) -> LoadResult:
    """`load_catalog` on an open connection (ids are leased through `dsn`); benchmarks pass
    other writers."""
    started = time.perf_counter()
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))",
                           _LOCK_NAMESPACE, ds.name, timeout=COPY_TIMEOUT_S)
        if not force and await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM catalog_loads WHERE dataset = $1)", ds.name):
            return LoadResult(ds.name, skipped=True, seconds=time.perf_counter() - started)
        replaced = await delete_dataset_rows(conn, ds.sku_prefix) if force else 0
        writer = writer_class(conn)
        await _write(writer, ds, seed, snowflake_node, dsn)
        await _record(conn, ds.name, seed, writer)
    await conn.execute(f"ANALYZE {_TABLES}", timeout=COPY_TIMEOUT_S)
    c = writer.counts
    return LoadResult(
        ds.name, products=c["products"], variants=c["variants"], images=c["images"],
        reviews=c["reviews"], stock=c["stock"], categories=c["categories"],
        sellers=c["sellers"], replaced_products=replaced,
        seconds=time.perf_counter() - started,
    )


async def _write(writer: CatalogWriter, ds: Dataset, seed: int, node: int, dsn: str) -> None:
    lease = await lease_snowflake(dsn, node)
    try:
        await write_pipelined(writer, ds.build(seed, lease.next_block))
    except asyncpg.UniqueViolationError as exc:
        raise CatalogLoadFailed(
            f"loading {ds.name}: rows already in the database conflict ({exc.detail}); "
            "was it loaded without a catalog_loads record? force=True replaces it"
        ) from exc
    finally:
        await lease.close()


async def write_pipelined(writer: CatalogWriter, frames: Iterator[CatalogFrames]) -> None:
    """Write every chunk, building the next one in a thread meanwhile."""
    pending = asyncio.ensure_future(asyncio.to_thread(next, frames, None))
    try:
        while (chunk := await pending) is not None:
            pending = asyncio.ensure_future(asyncio.to_thread(next, frames, None))
            await writer.write(chunk)
    finally:
        if not pending.done():
            await asyncio.wait({pending})
        if not pending.cancelled():
            pending.exception()  # retrieved: a failed write already says what went wrong


async def _record(conn: asyncpg.Connection, dataset: str, seed: int,
                  writer: CatalogWriter) -> None:
    products, variants = writer.counts["products"], writer.counts["variants"]
    await conn.execute(
        """INSERT INTO catalog_loads (dataset, products, variants, seed) VALUES ($1, $2, $3, $4)
           ON CONFLICT (dataset) DO UPDATE SET products = EXCLUDED.products,
               variants = EXCLUDED.variants, seed = EXCLUDED.seed, loaded_at = now()""",
        dataset, products, variants, seed,
    )
    await conn.execute(  # notified like the catalog's own events (delivered on commit)
        f"""WITH e AS (INSERT INTO outbox (event_type, aggregate_id, payload)
                       VALUES ($1, 0, $2::text::jsonb) RETURNING event_id)
            SELECT pg_notify('{OUTBOX_CHANNEL}', event_id::text) FROM e""",
        "catalog.loaded", json.dumps({"dataset": dataset, "products": products}),
    )
