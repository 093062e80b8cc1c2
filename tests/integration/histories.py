"""Histories of carts under faults: a workload of carts (reserve, then commit or release) whose
clients retry every unanswered call with the same idempotency key, a chaos task that hurts the
system meanwhile, and the check of the history afterwards: every acknowledged outcome is in
PostgreSQL exactly once, nothing unacknowledged holds stock, the ledger balances."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import asyncpg

from actors.inventory_client import InventoryClient, InventoryUnavailable
from domain.inventory import InsufficientStock
from tests.integration.conftest import PARTITIONS, check_invariants, make_catalog

WORKERS = 12
MIN_HITS = 8  # the chaos task must land at least this many blows before the workload stops


@dataclass
class Ledger:
    """What the clients were told."""

    final: dict[str, str] = field(default_factory=dict)  # cart id -> OPEN|COMMITTED|RELEASED
    lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    refused: set[str] = field(default_factory=set)  # idempotency keys answered "insufficient"
    keys: dict[str, str] = field(default_factory=dict)  # idempotency key -> cart id
    unavailable: int = 0


async def until_answered(call: Callable[[], Awaitable[Any]], ledger: Ledger) -> Any:
    """A client that keeps retrying with the same key until it gets an answer."""
    for _ in range(20):
        try:
            return await call()
        except InventoryUnavailable:
            ledger.unavailable += 1
            await asyncio.sleep(0.2)
    raise AssertionError("no answer after 20 retries")


async def workload(clients: InventoryClient | Sequence[InventoryClient], variants: list[int],
                   ledger: Ledger, stop: asyncio.Event, hot: int | None = None) -> int:
    """WORKERS shoppers until `stop` (at least 5 carts each); with `hot`, half the carts
    also want that variant (a flash sale). Workers take turns over `clients`."""
    pool = [clients] if isinstance(clients, InventoryClient) else list(clients)

    async def worker(w: int) -> int:
        rng = random.Random(w)
        client = pool[w % len(pool)]
        n = 0
        while not stop.is_set() or n < 5:
            n += 1
            key = f"w{w}-{n}"
            items = [(v, rng.randint(1, 2), None) for v in rng.sample(variants, rng.randint(1, 3))]
            if hot is not None and rng.random() < 0.5:
                items.append((hot, 1, None))
            try:
                cart = await until_answered(
                    partial(client.reserve, items, key=key, ttl_s=600), ledger)
            except InsufficientStock:
                ledger.refused.add(key)
                continue
            cid = cart["reservation_id"]
            ledger.keys[key] = cid
            ledger.lines[cid] = cart["lines"]
            ledger.final[cid] = "OPEN"
            then = rng.random()
            if then < 0.35:
                done = await until_answered(partial(client.commit, cid), ledger)
                assert done["status"] == "COMMITTED"
                ledger.final[cid] = "COMMITTED"
            elif then < 0.7:
                done = await until_answered(partial(client.release, cid), ledger)
                assert done["status"] == "RELEASED"
                ledger.final[cid] = "RELEASED"
        return n

    return sum(await asyncio.gather(*(worker(w) for w in range(WORKERS))))


async def setup(db: asyncpg.Pool, client: InventoryClient) -> list[int]:
    variants: list[int] = []
    while len(variants) < 24 or len({client.owner(v) for v in variants}) < PARTITIONS:
        variants.append(secrets.randbits(60))
    # scarce enough that some carts are refused, so compensation runs under faults too
    await make_catalog(db, {v: {"WH_01": 5, "WH_02": 3} for v in variants})
    return variants


async def verify(db: asyncpg.Pool, ledger: Ledger) -> None:
    rows = await db.fetch("SELECT reservation_id, cart_id, status, lines FROM reservations")
    by_cart: dict[str, list[asyncpg.Record]] = {}
    for r in rows:
        by_cart.setdefault(r["cart_id"], []).append(r)
    assert ledger.final, "the workload acknowledged nothing"
    for cid, status in ledger.final.items():
        parts = by_cart.get(cid, [])
        assert parts, f"acknowledged cart {cid} is not in PostgreSQL"
        assert {p["status"] for p in parts} == {status}, (cid, [dict(p) for p in parts])
        stored = sorted((str(v), w, q) for p in parts for v, w, q in p["lines"])
        told = sorted((str(x["variant_id"]), x["warehouse_id"], x["quantity"])
                      for x in ledger.lines[cid])
        assert stored == told, cid
    # nothing the clients were refused (or never told about) still holds stock
    acked = set(ledger.final)
    stray = [dict(r) for r in rows if r["status"] == "OPEN" and r["cart_id"] not in acked]
    assert stray == []
    # every reservation reserved exactly once: one RESERVE movement per line
    dup = await db.fetch("""
        SELECT r.reservation_id, jsonb_array_length(r.lines) AS lines, count(m.*) AS reserves
        FROM reservations r LEFT JOIN inventory_movements m
          ON m.reservation_id = r.reservation_id AND m.kind = 'RESERVE'
        GROUP BY 1, 2 HAVING count(m.*) <> jsonb_array_length(r.lines)""")
    assert dup == [], [dict(d) for d in dup]
    # held and sold stock is exactly what was acknowledged
    want_reserved = sum(q for c, s in ledger.final.items() if s == "OPEN"
                        for q in quantities(ledger, c))
    want_sold = sum(q for c, s in ledger.final.items() if s == "COMMITTED"
                    for q in quantities(ledger, c))
    got = await db.fetchrow("SELECT sum(reserved) AS r, sum(sold) AS s FROM stock")
    assert (got["r"], got["s"]) == (want_reserved, want_sold)
    await check_invariants(db)


def quantities(ledger: Ledger, cart_id: str) -> list[int]:
    return [int(x["quantity"]) for x in ledger.lines[cart_id]]


async def chaos(hit: Callable[[], Awaitable[bool]], stop: asyncio.Event,
                 budget_s: float = 90.0) -> int:
    """Lands blows until MIN_HITS landed (or the budget is spent), then stops the workload."""
    loop = asyncio.get_running_loop()
    end = loop.time() + budget_s
    hits = 0
    try:
        while hits < MIN_HITS and loop.time() < end:
            await asyncio.sleep(1.0)
            hits += await hit()
    finally:
        await asyncio.sleep(0.5)
        stop.set()
    return hits
