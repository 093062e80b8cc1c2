"""python -m adapters.loading --dataset esci|icecat|synthetic:N|PATH [--seed S] [--force]

Loads into DATABASE_URL; without it, into the embedded PostgreSQL under AISLE_DATA_DIR (the
one `scripts/demo` uses), started for the load. Migrates first, then prints counts and time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from adapters.embedded import Infrastructure
from adapters.loading.loader import LoadResult, load_catalog
from adapters.postgres import connect
from adapters.postgres.migrate import migrate
from adapters.settings import Settings
from domain.errors import AisleError


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="load_catalog", description=__doc__.split("\n\n")[1])
    p.add_argument("--dataset", required=True,
                   help="esci, icecat, synthetic:N, or the path of a parquet file")
    p.add_argument("--seed", type=int, default=42, help="seed of everything synthesized")
    p.add_argument("--force", action="store_true",
                   help="load even if loaded before (replaces that load's rows)")
    return p.parse_args(argv)


async def run(dsn: str, args: argparse.Namespace, node: int) -> LoadResult:
    conn = await connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    return await load_catalog(dsn, args.dataset, seed=args.seed, snowflake_node=node,
                              force=args.force)


def report(r: LoadResult) -> str:
    if r.skipped:
        return f"{r.dataset}: already loaded, skipped (--force reloads it)"
    rows = [("products", r.products), ("variants", r.variants), ("images", r.images),
            ("reviews", r.reviews), ("stock rows", r.stock), ("categories", r.categories),
            ("sellers", r.sellers)]
    lines = [f"{r.dataset}: loaded in {r.seconds:.1f} s "
             f"({r.products / max(r.seconds, 1e-9):,.0f} products/s)"]
    if r.replaced_products:
        lines.append(f"  replaced {r.replaced_products:,} products of the earlier load")
    lines += [f"  {name:<11}{count:>12,}" for name, count in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        settings = Settings.from_env()
        infra = None
        if settings.database_url is None:  # only PostgreSQL is needed: leave Redis alone
            infra = Infrastructure(settings.replace(redis_url=settings.redis_url or "redis://-"))
            settings = infra.settings
        try:
            assert settings.database_url is not None
            result = asyncio.run(run(settings.database_url, args, settings.snowflake_node))
        finally:
            if infra is not None:
                infra.close()
    except AisleError as exc:
        print(f"load_catalog: {exc.message}", file=sys.stderr)
        return 2
    print(report(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
