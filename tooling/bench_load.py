"""python -m tooling.bench_load [--products N] [--sample M] [--seed S] [--dsn URL]

Loads synthetic:N into a temporary database with the real loader (COPY of pyarrow CSV), and
reports wall time, products/s and the peak RSS of this process. Then loads synthetic:M into
fresh databases three ways - COPY CSV, COPY binary (copy_records_to_table) and row-by-row
INSERTs (executemany) - through the same loader, and prints the speed ratios. Temporary
databases are dropped at the end. DATABASE_URL (or --dsn) names the server.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import resource
import time
from urllib.parse import urlparse

import asyncpg

from adapters.loading.baseline_writers import InsertWriter, RecordsWriter
from adapters.loading.datasets import resolve
from adapters.loading.loader import LoadResult, load_catalog, load_on
from adapters.loading.writer import CatalogWriter
from adapters.postgres import connect
from adapters.postgres.scratch import temp_database

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"


@dataclasses.dataclass(frozen=True)
class Run:
    label: str
    result: LoadResult

    @property
    def rows(self) -> int:
        r = self.result
        return r.products + r.variants + r.images + r.reviews + r.stock

    def line(self) -> str:
        r = self.result
        return (f"| {self.label} | {r.products:,} | {self.rows:,} | {r.seconds:,.1f} | "
                f"{r.products / r.seconds:,.0f} | {self.rows / r.seconds:,.0f} |")


async def sample(server: str, label: str, n: int, seed: int,
                 writer_class: type[CatalogWriter]) -> Run:
    async with temp_database(server) as dsn:
        plain = writer_class is RecordsWriter  # binary COPY: no text-only jsonb codec
        conn = await (asyncpg.connect(dsn) if plain else connect(dsn))
        try:
            result = await load_on(conn, dsn, resolve(f"synthetic:{n}"), seed=seed,
                                   snowflake_node=0, force=False, writer_class=writer_class)
        finally:
            await conn.close()
    return Run(label, result)


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def bench(server: str, products: int, sample_n: int, seed: int) -> None:
    before = rss_mb()
    async with temp_database(server) as dsn:
        full = Run(f"COPY CSV, synthetic:{products:,}",
                   await load_catalog(dsn, f"synthetic:{products}", seed=seed))
    peak = rss_mb()
    runs = [full]
    for label, cls in [("COPY CSV", CatalogWriter), ("COPY binary (records)", RecordsWriter),
                       ("INSERT executemany", InsertWriter)]:
        runs.append(await sample(server, f"{label}, synthetic:{sample_n:,}", sample_n, seed,
                                 cls))
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, "
          f"PostgreSQL at {urlparse(server).hostname}; date {time.strftime('%Y-%m-%d')}")
    print("\n| method | products | rows | seconds | products/s | rows/s |")
    print("|---|---:|---:|---:|---:|---:|")
    for run in runs:
        print(run.line())
    rate = {run.label.split(",")[0]: run.result.products / run.result.seconds for run in runs[1:]}
    full_rate = products / full.result.seconds
    print(f"\npeak RSS of the loading process: {peak:,.0f} MB (before loading: {before:,.0f} MB)")
    print(f"row-by-row INSERT extrapolated to {products:,} products: "
          f"{products / rate['INSERT executemany']:,.0f} s")
    print(f"speed ratio COPY ({products:,}) / row-by-row ({sample_n:,}): "
          f"{full_rate / rate['INSERT executemany']:.1f}x; same {sample_n:,} sample: "
          f"{rate['COPY CSV'] / rate['INSERT executemany']:.1f}x; "
          f"CSV / binary COPY: {rate['COPY CSV'] / rate['COPY binary (records)']:.2f}x")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="bench_load", description=__doc__.split("\n\n")[1])
    p.add_argument("--products", type=int, default=1_000_000)
    p.add_argument("--sample", type=int, default=20_000, help="products for the comparisons")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dsn", default=os.environ.get("DATABASE_URL") or DEFAULT_DSN,
                   help="server to make temporary databases on")
    args = p.parse_args(argv)
    asyncio.run(bench(args.dsn, args.products, args.sample, args.seed))


if __name__ == "__main__":
    main()
