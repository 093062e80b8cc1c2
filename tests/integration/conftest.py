"""Inventory test helpers: a small catalog, the partition client, the ledger invariants; and
a live search index generation for the embedded backend's tests."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from typing import Any

import asyncpg
import pytest

from actors.inventory_client import InventoryClient
from adapters.postgres import create_pool

PARTITIONS = 4


async def live_generation(index: Any, docs: Sequence[Mapping[str, Any]],
                          name: str = "g1") -> None:
    """`name` made from `docs` (length pivots from the first 40), refreshed, its term
    statistics counted, and swapped in live."""
    await index.create_generation(name, docs[:40])
    await index.upsert(docs, name)
    await index.refresh(name)
    await index.finish_generation(name)
    await index.swap(name)


async def make_catalog(pool: asyncpg.Pool, stock: dict[int, dict[str, int]]) -> None:
    seller = secrets.randbits(60)
    await pool.execute("INSERT INTO sellers (seller_id, name) VALUES ($1, 's')", seller)
    await pool.execute("""INSERT INTO warehouses (warehouse_id, name, region) VALUES
                          ('WH_01', 'one', 'eu'), ('WH_02', 'two', 'us') ON CONFLICT DO NOTHING""")
    for v, rows in stock.items():
        await pool.execute(
            """INSERT INTO products (product_id, seller_id, external_id, title)
               VALUES ($1, $2, $3, 't')""", v, seller, str(v))
        await pool.execute(
            """INSERT INTO product_variants (variant_id, product_id, sku, price_cents)
               VALUES ($1, $1, $2, 100)""", v, f"SKU-{v}")
        for w, n in rows.items():
            await pool.execute("INSERT INTO stock (variant_id, warehouse_id, available) "
                               "VALUES ($1, $2, $3)", v, w, n)


@pytest.fixture
async def db(fresh_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(fresh_dsn, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
def client(ray_cluster: None, fresh_dsn: str) -> Iterator[InventoryClient]:
    client = InventoryClient(PARTITIONS, fresh_dsn)
    yield client
    client.shutdown()


async def check_invariants(pool: asyncpg.Pool) -> None:
    """Conservation and ledger, for every stock row; reserved equals open reservations."""
    bad = await pool.fetch("""
        WITH led AS (
          SELECT variant_id, warehouse_id,
            sum(CASE kind WHEN 'RESERVE' THEN -quantity WHEN 'RELEASE' THEN quantity
                WHEN 'EXPIRE' THEN quantity WHEN 'ADJUST' THEN quantity ELSE 0 END) AS d_avail,
            sum(CASE kind WHEN 'RESERVE' THEN quantity WHEN 'RELEASE' THEN -quantity
                WHEN 'EXPIRE' THEN -quantity WHEN 'DEDUCT' THEN -quantity ELSE 0 END) AS d_res,
            sum(CASE kind WHEN 'DEDUCT' THEN quantity ELSE 0 END) AS d_sold,
            sum(CASE kind WHEN 'ADJUST' THEN quantity ELSE 0 END) AS adj
          FROM inventory_movements GROUP BY 1, 2),
        held AS (
          SELECT (l->>0)::bigint AS variant_id, l->>1 AS warehouse_id, sum((l->>2)::int) AS q
          FROM reservations, jsonb_array_elements(lines) l WHERE status = 'OPEN' GROUP BY 1, 2)
        SELECT s.*, led.*, held.q FROM stock s
        LEFT JOIN led USING (variant_id, warehouse_id)
        LEFT JOIN held USING (variant_id, warehouse_id)
        WHERE s.available < 0 OR s.reserved < 0
           OR s.available + s.reserved + s.sold <> s.initial + coalesce(led.adj, 0)
           OR s.available <> s.initial + coalesce(led.d_avail, 0)
           OR s.reserved <> coalesce(led.d_res, 0)
           OR s.sold <> coalesce(led.d_sold, 0)
           OR s.reserved <> coalesce(held.q, 0)""")
    assert bad == [], [dict(r) for r in bad]
