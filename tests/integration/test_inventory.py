"""Inventory partition actors against real PostgreSQL and a real Ray cluster."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import pytest

from actors.inventory_client import InventoryClient
from domain.inventory import InsufficientStock
from tests.integration.conftest import check_invariants, make_catalog


async def test_flash_sale_exactly_the_stock_is_sold(db: asyncpg.Pool,
                                                    client: InventoryClient) -> None:
    v = secrets.randbits(60)
    await make_catalog(db, {v: {"WH_01": 100}})
    sem = asyncio.Semaphore(200)

    async def attempt(i: int) -> bool:
        async with sem:
            try:
                await client.reserve([(v, 1, None)], key=f"fs-{i}", ttl_s=600)
                return True
            except InsufficientStock:
                return False

    results = await asyncio.gather(*(attempt(i) for i in range(1000)))
    assert sum(results) == 100
    row = await db.fetchrow("SELECT available, reserved FROM stock WHERE variant_id = $1", v)
    assert (row["available"], row["reserved"]) == (0, 100)
    reserves = "SELECT count(*) FROM inventory_movements WHERE kind = 'RESERVE'"
    assert await db.fetchval(reserves) == 100
    assert await db.fetchval("SELECT count(*) FROM reservations WHERE status = 'OPEN'") == 100
    await check_invariants(db)


async def test_idempotent_retry_reserves_once(db: asyncpg.Pool, client: InventoryClient) -> None:
    v = secrets.randbits(60)
    await make_catalog(db, {v: {"WH_01": 5}})
    first = await client.reserve([(v, 2, None)], key="same-key")
    again = await client.reserve([(v, 2, None)], key="same-key")
    assert first == again
    assert (await client.stock([v]))[str(v)]["available"] == 3
    await check_invariants(db)


async def test_cart_is_all_or_nothing_across_partitions(db: asyncpg.Pool,
                                                        client: InventoryClient) -> None:
    vs: list[int] = []
    while len({client.owner(v) for v in vs}) < 3:
        v = secrets.randbits(60)
        if client.owner(v) not in {client.owner(x) for x in vs}:
            vs.append(v)
    vs.sort(key=client.owner)
    await make_catalog(db, {vs[0]: {"WH_01": 5}, vs[1]: {"WH_02": 5}, vs[2]: {"WH_01": 1}})
    with pytest.raises(InsufficientStock) as err:
        await client.reserve([(vs[0], 2, None), (vs[1], 2, None), (vs[2], 3, None)], key="cart")
    assert err.value.items == [{"variant_id": str(vs[2]), "requested": 3, "available": 1}]
    stock = await client.stock(vs)
    assert [stock[str(v)]["available"] for v in vs] == [5, 5, 1]  # compensated
    ok = await client.reserve([(vs[0], 2, None), (vs[1], 2, "WH_02"), (vs[2], 1, None)],
                              key="cart-2")
    assert ok["status"] == "OPEN" and len(ok["lines"]) == 3
    done = await client.commit(ok["reservation_id"])
    assert done["status"] == "COMMITTED"
    sold = await db.fetchval("SELECT sum(sold) FROM stock WHERE variant_id = ANY($1)", vs)
    assert sold == 5
    await check_invariants(db)


async def test_reservations_expire_by_themselves(db: asyncpg.Pool,
                                                 client: InventoryClient) -> None:
    v = secrets.randbits(60)
    await make_catalog(db, {v: {"WH_01": 3}})
    r = await client.reserve([(v, 3, None)], ttl_s=0.5)
    assert (await client.stock([v]))[str(v)]["status"] == "OUT_OF_STOCK"
    for _ in range(40):
        await asyncio.sleep(0.25)
        if await db.fetchval("SELECT status FROM reservations WHERE reservation_id LIKE $1",
                             r["reservation_id"] + "%") == "EXPIRED":
            break
    assert (await client.stock([v]))[str(v)]["available"] == 3
    kinds = [x["kind"] for x in await db.fetch(
        "SELECT kind FROM inventory_movements WHERE variant_id = $1 ORDER BY movement_id", v)]
    assert kinds == ["RESERVE", "EXPIRE"]
    events = await db.fetch("SELECT payload FROM outbox WHERE event_type = 'inventory.changed' "
                            "AND aggregate_id = $1 ORDER BY event_id", v)
    assert [e["payload"]["status"] for e in events] == ["OUT_OF_STOCK", "LOW_STOCK"]
    await check_invariants(db)
