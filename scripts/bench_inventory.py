"""scripts/bench_inventory [--clients 64] [--seconds 10] [--partitions 8] [--dsn URL]

RESERVE throughput of the InventoryPartition actors against plain PostgreSQL, two scenarios:
`hot` (every client reserves 1 unit of one variant with 1,000,000 units) and `uniform` (each
reservation picks one of 10,000 variants at random). Paths, each in a fresh, migrated database
(dropped afterwards):

  actor   InventoryClient.reserve, a new idempotency key per request (the client coalesces
          concurrent calls per partition; the actor decides a batch, then writes stock +
          ledger + reservation rows in one statement per batch)
  update  the seed's conditional `UPDATE stock ... WHERE ... AND available >= $q`, autocommit,
          one statement per reservation (writes the stock row only)
  txn     the same UPDATE plus the reservation and ledger rows the actor also writes, in
          one transaction per reservation (like-for-like durability)
  handoff the actor path while the hash slots are rebalanced over and over during the
          measured window (partitions -> +2 -> -1 -> back, scripts/inventory_partitions):
          the cost of scaling online
  checkout  a checkout through the actors: a cart of 2 variants (the picked one and the
          next; almost always in two hash slots) reserved, then committed; carts/s (run it
          with the code before a change to the inventory's commits: same script, other
          checkout)

N asyncio tasks (--clients) reserve in a loop for --seconds after --warmup seconds. After each
run the database is checked: units reserved == acknowledged reservations, available >= 0,
available + reserved + sold == initial, and for actor/txn one reservation and one ledger row
per acknowledgement. Server: --dsn, else DATABASE_URL, else an embedded PostgreSQL in a
temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import itertools
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlparse

import asyncpg

from adapters.postgres import create_pool
from adapters.postgres.scratch import temp_database
from adapters.settings import Settings
from domain.inventory_slots import Rebalanced
from tooling.load import percentile

WAREHOUSE = "WH_01"
FIRST_VARIANT = 1_000_001
TTL_S = 3600.0  # nothing expires during a run

BARE_UPDATE = """UPDATE stock SET available = available - $3, reserved = reserved + $3
WHERE variant_id = $1 AND warehouse_id = $2 AND available >= $3"""

TXN_UPDATE = """UPDATE stock SET available = available - $3, reserved = reserved + $3,
    version = version + 1, updated_at = now()
WHERE variant_id = $1 AND warehouse_id = $2 AND available >= $3
RETURNING available, reserved, sold"""
TXN_RESERVATION = """INSERT INTO reservations (reservation_id, cart_id, partition, status, lines,
    expires_at) VALUES ($1, $2, 0, 'OPEN', $3, now() + make_interval(secs => $4))"""
TXN_MOVEMENT = """INSERT INTO inventory_movements (variant_id, warehouse_id, kind, quantity,
    reservation_id, available_after, reserved_after, sold_after)
VALUES ($1, $2, 'RESERVE', $3, $4, $5, $6, $7)"""


# -- databases ----------------------------------------------------------------------------


async def make_catalog(dsn: str, variants: list[int], units: int) -> None:
    """One seller, warehouse WH_01, a product + variant + stock row of `units` per variant."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await conn.execute("INSERT INTO sellers (seller_id, name) VALUES (1, 'bench')")
            await conn.execute("INSERT INTO warehouses (warehouse_id, name, region) "
                               "VALUES ($1, 'bench', 'eu')", WAREHOUSE)
            await conn.copy_records_to_table(
                "products", columns=["product_id", "seller_id", "external_id", "title"],
                records=[(v, 1, str(v), "t") for v in variants])
            await conn.copy_records_to_table(
                "product_variants", columns=["variant_id", "product_id", "sku", "price_cents"],
                records=[(v, v, f"SKU-{v}", 100) for v in variants])
            await conn.copy_records_to_table(
                "stock", columns=["variant_id", "warehouse_id", "available"],
                records=[(v, WAREHOUSE, units) for v in variants])
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


async def verify_sold(dsn: str, carts: int) -> tuple[int, int, str]:
    """Checkouts: every acknowledged cart sold whole (2 units), nothing left reserved.
    (units sold in PG, oversold units, "ok" or what is wrong)."""
    conn = await asyncpg.connect(dsn)
    try:
        s = await conn.fetchrow("""
            SELECT coalesce(sum(sold), 0) AS sold, coalesce(sum(reserved), 0) AS reserved,
                   count(*) FILTER (WHERE available < 0) AS negative,
                   count(*) FILTER (WHERE available + reserved + sold <> initial) AS unbalanced
            FROM stock""")
    finally:
        await conn.close()
    assert s is not None
    problems = [f"sold {s['sold']} != 2 x {carts} carts"] if s["sold"] != 2 * carts else []
    if s["reserved"] or s["negative"] or s["unbalanced"]:
        problems.append(f"{s['reserved']} reserved, {s['negative']} rows < 0, "
                        f"{s['unbalanced']} unbalanced")
    return int(s["sold"]), max(int(s["sold"]) - 2 * carts, 0), \
        "ok" if not problems else "; ".join(problems)


async def verify(dsn: str, acks: int, rows_expected: bool) -> tuple[int, int, str]:
    """(units reserved in PG, oversold units, "ok" or what is wrong)."""
    conn = await asyncpg.connect(dsn)
    try:
        s = await conn.fetchrow("""
            SELECT coalesce(sum(reserved), 0) AS reserved,
                   coalesce(sum(greatest(-available, 0)), 0) AS oversold,
                   count(*) FILTER (WHERE available < 0) AS negative,
                   count(*) FILTER (WHERE available + reserved + sold <> initial) AS unbalanced
            FROM stock""")
        res = await conn.fetchval("SELECT count(*) FROM reservations WHERE status = 'OPEN'")
        mov = await conn.fetchval(
            "SELECT count(*) FROM inventory_movements WHERE kind = 'RESERVE'")
    finally:
        await conn.close()
    problems = []
    if s["reserved"] != acks:
        problems.append(f"reserved {s['reserved']} != acks {acks}")
    if s["negative"] or s["unbalanced"]:
        problems.append(f"{s['negative']} rows < 0, {s['unbalanced']} rows unbalanced")
    if rows_expected and not res == mov == acks:
        problems.append(f"{res} reservations / {mov} ledger rows for {acks} acks")
    # every stock row starts with enough units: any unit reserved beyond what was
    # acknowledged, or any negative row, is oversell
    oversold = int(s["oversold"]) + max(int(s["reserved"]) - acks, 0)
    return int(s["reserved"]), oversold, "ok" if not problems else "; ".join(problems)


# -- load ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Tally:
    ok: int = 0  # every acknowledged reservation (warm-up included): what PG must hold
    refused: int = 0
    errors: int = 0
    m_ok: int = 0  # started inside the measured window
    m_refused: int = 0
    m_end: float = 0.0
    latencies: list[float] = dataclasses.field(default_factory=list)
    first_error: str = ""


async def drive(op: Callable[[int], Awaitable[bool]], pick: Callable[[], int], clients: int,
                warmup: float, seconds: float) -> tuple[Tally, float, float]:
    """Runs `clients` loops of op(variant) -> reserved?; returns tally, window start, length."""
    tally = Tally()
    loop = asyncio.get_running_loop()
    start = loop.time() + warmup
    stop = start + seconds

    async def client() -> None:
        while True:
            t0 = loop.time()
            if t0 >= stop:
                return
            try:
                ok = await op(pick())
            except Exception as exc:  # unavailable/timeout: outcome unknown
                tally.errors += 1
                tally.first_error = tally.first_error or repr(exc)[:200]
                continue
            t1 = loop.time()
            tally.ok += ok
            tally.refused += not ok
            if t0 >= start:
                tally.m_ok += ok
                tally.m_refused += not ok
                tally.latencies.append(t1 - t0)
                tally.m_end = max(tally.m_end, t1)

    await asyncio.gather(*(client() for _ in range(clients)))
    return tally, start, max(tally.m_end - start, 1e-9)


@dataclasses.dataclass
class Result:
    scenario: str
    path: str
    tally: Tally
    seconds: float
    db_reserved: int
    oversold: int
    check: str
    batch: str = ""

    @property
    def rate(self) -> float:
        return self.tally.m_ok / self.seconds

    def pct(self, p: float) -> float:
        return percentile(self.tally.latencies, p * 100) * 1000


def picker(scenario: str, variants: list[int], seed: int) -> Callable[[], int]:
    if scenario == "hot":
        return lambda: variants[0]
    rng = random.Random(seed)
    return lambda: variants[rng.randrange(len(variants))]


async def run_actor(dsn: str, variants: list[int], pick: Callable[[], int],
                    args: argparse.Namespace, churn: bool = False,
                    checkouts: bool = False) -> tuple[Tally, float, str]:
    from actors.inventory_client import InventoryClient
    from domain.inventory import InsufficientStock

    client = InventoryClient(args.partitions, dsn)
    try:
        # wait for every partition to be up and to have loaded the variants (steady state:
        # no first-touch loads inside the window)
        for i in range(0, len(variants), 2000):
            await client.stock(variants[i:i + 2000])
        await client.owners()  # the slot map, made for --partitions on this new database
        one_each = {client.owner(v): v
                    for v in range(FIRST_VARIANT, FIRST_VARIANT + 100 * args.partitions)}
        await client.stock(list(one_each.values()))  # every partition answers
        before = sum(s["commits"] for s in await client.stats())

        async def op(v: int) -> bool:
            try:
                await client.reserve([(v, 1, WAREHOUSE)], key=uuid.uuid4().hex, ttl_s=TTL_S)
                return True
            except InsufficientStock:
                return False

        async def checkout(v: int) -> bool:
            other = FIRST_VARIANT + (v - FIRST_VARIANT + 1) % len(variants)
            try:
                cart = await client.reserve([(v, 1, WAREHOUSE), (other, 1, WAREHOUSE)],
                                            key=uuid.uuid4().hex, ttl_s=TTL_S)
            except InsufficientStock:
                return False
            await client.commit(cart["reservation_id"])
            return True

        done = asyncio.Event()
        moves: list[Rebalanced] = []

        async def rebalance() -> None:
            sizes = itertools.cycle([args.partitions + 2, max(args.partitions - 1, 1),
                                     args.partitions])
            await asyncio.sleep(args.warmup)
            while not done.is_set():
                moves.append(await client.set_partitions(next(sizes)))

        churning = asyncio.get_running_loop().create_task(rebalance()) if churn else None
        try:
            tally, _, secs = await drive(checkout if checkouts else op, pick,
                                         args.clients, args.warmup, args.seconds)
        finally:
            done.set()
        if churning is not None:
            await churning
            await client.set_partitions(args.partitions)
        stats = await client.stats()
        commits = [s["commits"] for s in stats]
        busy = [c for c in commits if c]
        total = sum(commits) - before
        batch = (f"{(tally.ok + tally.refused) / max(total, 1):.1f} avg over {total:,} commits"
                 f" ({len(busy)} busy partitions)")
        if client.retries:
            batch += f", {client.retries} retries"
        if churn:
            batch += (f"; {len(moves)} rebalances, {sum(m.slots_moved for m in moves):,} slots "
                      f"in {sum(m.handoffs for m in moves)} handoffs, {client.moved} calls "
                      f"answered Moved")
        return tally, secs, batch
    finally:
        client.shutdown()


async def run_pg(dsn: str, path: str, pick: Callable[[], int],
                 args: argparse.Namespace) -> tuple[Tally, float, str]:
    pool = await create_pool(dsn, min_size=args.clients, max_size=args.clients)
    try:
        async def update(v: int) -> bool:
            return str(await pool.execute(BARE_UPDATE, v, WAREHOUSE, 1)) == "UPDATE 1"

        async def txn(v: int) -> bool:
            key = uuid.uuid4().hex
            rid = f"r{key[:20]}.0000/s0000"
            async with pool.acquire() as conn, conn.transaction():
                row = await conn.fetchrow(TXN_UPDATE, v, WAREHOUSE, 1)
                if row is None:
                    return False
                lines = [[str(v), WAREHOUSE, 1]]
                await conn.execute(TXN_RESERVATION, rid, rid[:-6], lines, TTL_S)
                await conn.execute(TXN_MOVEMENT, v, WAREHOUSE, 1, rid, row["available"],
                                   row["reserved"], row["sold"])
                return True  # the reservation row (id from the key) is the idempotency record

        tally, _, secs = await drive(update if path == "update" else txn, pick, args.clients,
                                     args.warmup, args.seconds)
        return tally, secs, ""
    finally:
        await pool.close()


async def bench(server: str, args: argparse.Namespace) -> list[Result]:
    results: list[Result] = []
    for scenario in args.scenarios:
        n = 1 if scenario == "hot" else args.variants
        units = args.hot_units if scenario == "hot" else args.units
        variants = list(range(FIRST_VARIANT, FIRST_VARIANT + n))
        for path in args.paths:
            async with temp_database(server) as dsn:
                await make_catalog(dsn, variants, units)
                pick = picker(scenario, variants, args.seed)
                print(f"... {scenario} / {path}", file=sys.stderr, flush=True)
                if path in ("actor", "handoff", "checkout"):
                    tally, secs, batch = await run_actor(dsn, variants, pick, args,
                                                         churn=path == "handoff",
                                                         checkouts=path == "checkout")
                else:
                    tally, secs, batch = await run_pg(dsn, path, pick, args)
                if path == "checkout":
                    reserved, oversold, check = await verify_sold(dsn, tally.ok)
                else:
                    reserved, oversold, check = await verify(dsn, tally.ok, path != "update")
                if tally.errors:
                    check += f"; {tally.errors} errors, first: {tally.first_error}"
                results.append(Result(scenario, path, tally, secs, reserved, oversold, check,
                                      batch))
    return results


def report(results: list[Result], args: argparse.Namespace, server: str) -> None:
    host = urlparse(server).hostname or "embedded (unix socket)"
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; PostgreSQL at {host}; "
          f"date {time.strftime('%Y-%m-%d')}")
    print(f"{args.clients} clients, {args.warmup:g} s warm-up + {args.seconds:g} s measured, "
          f"{args.partitions} partitions, quantity 1 per reservation")
    print("\n| scenario | path | reservations/s | p50 ms | p99 ms | ok | refused | "
          "PG reserved | oversell | check | actor/this |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    actor = {r.scenario: r.rate for r in results if r.path == "actor"}
    for r in results:
        ratio = f"{actor[r.scenario] / r.rate:.2f}x" if r.scenario in actor and r.rate else "-"
        print(f"| {r.scenario} | {r.path} | {r.rate:,.0f} | {r.pct(0.5):.1f} | "
              f"{r.pct(0.99):.1f} | {r.tally.m_ok:,} | {r.tally.m_refused:,} | "
              f"{r.db_reserved:,} | {r.oversold} | {r.check} | {ratio} |")
    for r in results:
        if r.batch:
            print(f"actor batch size, {r.scenario}: {r.batch}")
    print("\nok/refused: reservations started in the measured window; PG reserved: units "
          "reserved in PostgreSQL after the run (warm-up included), checked against every ack"
          " (checkout: carts of 2 reserved then committed; PG reserved is units sold)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench_inventory", description=__doc__.split("\n\n")[1])
    settings = Settings.from_env()
    p.add_argument("--clients", type=int, default=64, help="concurrent clients (asyncio tasks)")
    p.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    p.add_argument("--partitions", type=int, default=settings.inventory_partitions,
                   help="inventory partition actors (default AISLE_INVENTORY_PARTITIONS or 8)")
    p.add_argument("--variants", type=int, default=10_000, help="variants of `uniform`")
    p.add_argument("--units", type=int, default=10_000, help="stock per variant, `uniform`")
    p.add_argument("--hot-units", type=int, default=1_000_000, help="stock of the hot variant")
    p.add_argument("--scenarios", default="hot,uniform", help="hot,uniform")
    p.add_argument("--paths", default="actor,update,txn",
                   help="actor,update,txn,handoff")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--dsn", default=settings.database_url,
                   help="server to make temporary databases on (default DATABASE_URL; "
                        "unset: an embedded PostgreSQL)")
    args = p.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.paths = [s for s in args.paths.split(",") if s]
    if set(args.scenarios) - {"hot", "uniform"} or set(args.paths) - {
            "actor", "update", "txn", "handoff", "checkout"}:
        p.error("unknown scenario or path")
    if "checkout" in args.paths and "hot" in args.scenarios:
        p.error("checkout carts take two variants: --scenarios uniform")

    with tempfile.TemporaryDirectory(prefix="aisle-bench-") as tmp:
        infra = None
        server = args.dsn
        if server is None:  # only PostgreSQL is needed: leave Redis alone
            from adapters.embedded import Infrastructure

            infra = Infrastructure(settings.replace(data_dir=Path(tmp),
                                                    redis_url=settings.redis_url or "redis://-"))
            server = infra.settings.database_url
        try:
            actors = bool({"actor", "handoff", "checkout"} & set(args.paths))
            if actors:
                import ray

                ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False,
                         log_to_driver=False, configure_logging=False)
            try:
                results = asyncio.run(bench(server, args))
            finally:
                if actors:
                    ray.shutdown()
        finally:
            if infra is not None:
                infra.close()
    report(results, args, server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
