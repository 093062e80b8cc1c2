"""Faults under load: partition actors killed, PostgreSQL connections dropped mid-batch.

A workload of carts (reserve, then commit or release) runs while a chaos task hurts the
system (tests/integration/histories.py). Clients retry every unanswered call with the same
idempotency key. Afterwards, every acknowledged outcome must be in PostgreSQL exactly once,
nothing unacknowledged may hold stock, and the ledger must balance for every stock row.
"""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest
import ray

from actors.inventory_client import InventoryClient, InventoryUnavailable
from tests.integration.conftest import PARTITIONS
from tests.integration.histories import MIN_HITS, WORKERS, Ledger, chaos, setup, verify, workload


async def test_killed_partition_actors_lose_nothing(db: asyncpg.Pool,
                                                    client: InventoryClient) -> None:
    variants = await setup(db, client)
    ledger, stop = Ledger(), asyncio.Event()
    rng = random.Random(7)

    async def kill() -> bool:
        client.kill(rng.randrange(PARTITIONS))
        return True

    ops, hits = await asyncio.gather(workload(client, variants, ledger, stop),
                                     chaos(kill, stop))
    assert hits >= MIN_HITS
    assert ops >= WORKERS * 5 and len(ledger.final) >= 30
    assert client.retries > 0, "no call was ever interrupted: the kills did not bite"
    assert ledger.refused, "no cart was refused: compensation was not exercised"
    await verify(db, ledger)
    # the actors came back by themselves and serve from the rebuilt state
    stock = await client.stock(variants)
    assert len(stock) == len(variants)


async def test_connections_dropped_mid_batch_never_half_apply(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    variants = await setup(db, client)
    ledger, stop = Ledger(), asyncio.Event()

    async def terminate_in_transaction() -> bool:
        # backends of the partition actors that are inside a transaction right now
        for _ in range(200):
            killed = await db.fetchval("""
                SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                WHERE datname = current_database()
                  AND application_name LIKE 'aisle-inventory-%'
                  AND xact_start IS NOT NULL""")
            if killed:
                return True
            await asyncio.sleep(0.002)
        return False

    ops, hits = await asyncio.gather(workload(client, variants, ledger, stop),
                                     chaos(terminate_in_transaction, stop))
    assert hits >= MIN_HITS
    assert ops >= WORKERS * 5 and len(ledger.final) >= 30
    failed = sum(s["failed_batches"] for s in await client.stats())
    assert failed >= 1, "no batch was interrupted"
    await verify(db, ledger)


async def test_a_slot_map_that_cannot_be_read_is_unavailable_not_a_database_error(
        ray_cluster: None) -> None:
    # the map's connection refused (it was also lost mid-read: the test above kills every
    # inventory backend, the client's map reader's too): outcome unknown, retried with the
    # same key, as a partition that does not answer
    client = InventoryClient(PARTITIONS, "postgresql://postgres@127.0.0.1:9/none")
    try:
        with pytest.raises(InventoryUnavailable) as refused:
            await client.reserve([(12345, 1, None)], key="map-unreadable")
        assert "slot map" in str(refused.value)
    finally:
        client.shutdown()


async def test_a_dead_partition_is_asked_again_while_the_map_cannot_be_read(
        ray_cluster: None, fresh_dsn: str) -> None:
    # a partition found dead sends the client to the map (was it retired by a rebalance?);
    # with the map unreadable too, the partition is asked again until the call's deadline,
    # and the call is then InventoryUnavailable naming the partition
    client = InventoryClient(PARTITIONS, fresh_dsn, deadline_s=3.0)
    try:
        await client.owners()  # the map read, the partitions started
        variant = 12345
        k = client.owner(variant)
        ray.kill(client._actor(k), no_restart=True)  # dead for good
        client.dsn = "postgresql://postgres@127.0.0.1:9/none"  # and the map cannot be read
        with pytest.raises(InventoryUnavailable) as refused:
            await client.reserve([(variant, 1, None)], key="dead-and-no-map")
        assert f"partition {k}" in str(refused.value)
        assert client.retries >= 2  # asked again, not given up at the first unreadable map
    finally:
        client.dsn = fresh_dsn
        client.shutdown()
