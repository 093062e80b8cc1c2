"""Inventory partition actors against real PostgreSQL and a real Ray cluster."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg
import pytest

from actors.inventory import PartitionOptions
from actors.inventory_client import InventoryClient
from adapters import stock_cache
from adapters.redis import create_redis
from adapters.settings import Settings
from domain.inventory import InsufficientStock, Item
from domain.inventory_commands import Adjust, Done, Refused, Reserve
from domain.inventory_slots import slot_of
from tests.integration.conftest import PARTITIONS, check_invariants, make_catalog
from tests.integration.test_cart_decisions import spread

T = TypeVar("T")


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


async def test_stock_status_is_published_to_redis_and_read_in_bulk(
        db: asyncpg.Pool, ray_cluster: None, fresh_dsn: str, settings: Settings) -> None:
    low, many, none, ghost = (secrets.randbits(60) for _ in range(4))
    await make_catalog(db, {low: {"WH_01": 3}, many: {"WH_01": 40, "WH_02": 30},
                            none: {"WH_01": 0}})
    assert settings.redis_url is not None
    redis = create_redis(settings.redis_url)
    # every snapshot is published again after 3 s (by default: half its Redis lifetime)
    client = InventoryClient(PARTITIONS, fresh_dsn, redis_url=settings.redis_url,
                             options=PartitionOptions(republish_after_ms=3_000))
    try:
        assert await stock_cache.fetch(redis, [low, many, none]) == {}
        want = {str(low): {"status": "LOW_STOCK", "quantity_hint": "3", "available": 3},
                str(many): {"status": "IN_STOCK", "quantity_hint": "50+", "available": 70},
                str(none): {"status": "OUT_OF_STOCK", "quantity_hint": "0", "available": 0}}
        assert await client.status([low, many, none, ghost]) == want  # misses: the owners
        cached = await _eventually(lambda: stock_cache.fetch(redis, [low, many, none]),
                                   lambda got: len(got) == 3)
        assert {str(v): s for v, s in cached.items()} == want  # the owners published them

        await client.reserve([(low, 3, None)], key="take-all")
        after = await _eventually(lambda: stock_cache.fetch(redis, [low]),
                                  lambda got: got[low]["status"] == "OUT_OF_STOCK")
        assert after[low] == {"status": "OUT_OF_STOCK", "quantity_hint": "0", "available": 0}

        # hits are served by Redis alone: a marker written there comes back as is
        await redis.set(stock_cache.key(many), '{"status":"MARKER","quantity_hint":"x"}')
        assert (await client.status([many]))[str(many)]["status"] == "MARKER"

        # the owners publish every snapshot again before Redis would expire it
        await redis.delete(stock_cache.key(many), stock_cache.key(none))
        again = await _eventually(lambda: stock_cache.fetch(redis, [low, many, none]),
                                  lambda got: len(got) == 3, timeout_s=10)
        assert again[many]["available"] == 70 and again[none]["status"] == "OUT_OF_STOCK"
        assert 0 < await redis.ttl(stock_cache.key(many)) <= stock_cache.TTL_S

        # Redis down: the owners answer, nothing fails
        dead = InventoryClient(PARTITIONS, fresh_dsn, redis_url="redis://127.0.0.1:1/0")
        got = await dead.status([low, many])
        assert got[str(low)]["status"] == "OUT_OF_STOCK"
        assert got[str(many)]["available"] == 70
    finally:
        client.shutdown()
        await redis.delete(*(stock_cache.key(v) for v in (low, many, none)))
        await redis.aclose()


async def _eventually(read: Callable[[], Awaitable[T]], ok: Callable[[T], bool],
                      timeout_s: float = 2.0) -> T:
    for _ in range(int(timeout_s / 0.02)):
        got = await read()
        if ok(got):
            return got
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened; last: {got!r}")


async def test_a_key_replayed_long_after_gets_its_first_outcome(
        db: asyncpg.Pool, ray_cluster: None, fresh_dsn: str) -> None:
    """Outside the look-up window the actor does not query decided keys. A replayed reserve
    whose reservation is still in memory gets it back; one whose reservation has left memory
    hits the reservations primary key: the batch rolls back whole, the actor recovers, and
    the retry finds the reservation in PostgreSQL. Either way nothing is reserved twice.
    The partitions here remember no decided key (as if every key were long past)."""
    client = InventoryClient(PARTITIONS, fresh_dsn, options=PartitionOptions(remember_keys=0))
    try:
        await _replayed_long_after(db, client)
    finally:
        client.shutdown()


async def _replayed_long_after(db: asyncpg.Pool, client: InventoryClient) -> None:
    v = secrets.randbits(60)
    await make_catalog(db, {v: {"WH_01": 5}})
    k = client.owner(v)
    held = await client.reserve([(v, 1, None)], key="still-open")
    assert await client.reserve([(v, 1, None)], key="still-open") == held
    assert (await client.stats())[k]["failed_batches"] == 0  # answered from memory

    sold = await client.reserve([(v, 2, None)], key="long-gone", ttl_s=0.2)
    await client.commit(sold["reservation_id"])
    await asyncio.sleep(0.4)
    await client.stock([v])  # a batch past the deadline: the closed reservation leaves memory
    again = await client.reserve([(v, 2, None)], key="long-gone", ttl_s=0.2)
    assert again["reservation_id"] == sold["reservation_id"]
    assert again == sold  # its first outcome; a GET tells it is committed now
    assert (await client.get(sold["reservation_id"]))["status"] == "COMMITTED"
    assert (await client.stats())[k]["failed_batches"] == 1  # caught by the primary key
    got = (await client.stock([v]))[str(v)]["warehouses"]["WH_01"]
    assert (got["available"], got["reserved"], got["sold"]) == (2, 1, 2)
    await check_invariants(db)


async def test_a_cart_replayed_after_one_partition_restarted_is_answered_as_first(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    """A reserve over two partitions, committed, then replayed with its key after one of
    them restarted: the one that remembers the key and the one that reads it back from
    PostgreSQL answer the same first outcome (it was MIXED: OPEN from memory, COMMITTED from
    the row), and nothing is reserved again."""
    a, b = spread(client, 2)
    await make_catalog(db, {a: {"WH_01": 5}, b: {"WH_01": 5}})
    first = await client.reserve([(a, 1, None), (b, 1, None)], key="cart-replayed")
    assert first["status"] == "OPEN"
    await client.commit(first["reservation_id"])
    client.kill(client.owner(a))
    again = await client.reserve([(a, 1, None), (b, 1, None)], key="cart-replayed")
    assert again == first
    assert (await client.get(first["reservation_id"]))["status"] == "COMMITTED"
    stock = await client.stock([a, b])
    assert [stock[str(v)]["warehouses"]["WH_01"]["sold"] for v in (a, b)] == [1, 1]
    assert [stock[str(v)]["available"] for v in (a, b)] == [4, 4]
    await check_invariants(db)


async def test_snapshots_missed_by_searches_are_all_warmed_together(
        db: asyncpg.Pool, ray_cluster: None, fresh_dsn: str, settings: Settings) -> None:
    """Searches do not wait for the owners (wait_for_owners=False): what Redis lacks is asked
    of the owners in the background, the misses of every request meanwhile together, so each
    one's snapshots exist soon after (not only the first request's)."""
    ids = [secrets.randbits(60) for _ in range(12)]
    first = secrets.randbits(60)
    await make_catalog(db, {first: {"WH_01": 1}} | {v: {"WH_01": i} for i, v in enumerate(ids)})
    assert settings.redis_url is not None
    redis = create_redis(settings.redis_url)
    client = InventoryClient(PARTITIONS, fresh_dsn, redis_url=settings.redis_url)
    try:
        await client.stock([first])  # the owners are up (their start-up is not the point)
        answers = await asyncio.gather(*(
            client.status(ids[i:i + 3], wait_for_owners=False) for i in range(0, 12, 3)))
        assert answers == [{}, {}, {}, {}]  # nothing cached yet: nobody waited
        cached = await _eventually(lambda: stock_cache.fetch(redis, ids),
                                   lambda got: len(got) == 12)
        assert [cached[v]["available"] for v in ids] == list(range(12))
    finally:
        client.shutdown()
        await redis.delete(*(stock_cache.key(v) for v in [first, *ids]))
        await redis.aclose()


async def test_a_command_storage_refuses_fails_alone_not_its_batch(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    """Commands that reach a partition with a value PostgreSQL cannot hold (here a cart id with
    a NUL, sent to the actor directly: the client never makes one) fail their batch's commit.
    The partition then decides the batch's commands one at a time: the others are done, the
    bad one gets a definite validation error (no retry, no rebuild loop)."""
    a, b = secrets.randbits(60), secrets.randbits(60)
    await make_catalog(db, {a: {"WH_01": 5}, b: {"WH_01": 5}})
    await client.stock([a, b])
    k = client.owner(a)
    actor = client.actors[k]
    slot = f"/s{slot_of(a):04x}"  # a reservation id names the slot of its items
    cmds = [Reserve("good-1", "good-1" + slot, (Item(a, 2, None),), 60_000, "good-1"),
            Reserve("bad", "bad" + slot, (Item(a, 1, None),), 60_000, "cart\x00id"),
            Adjust("good-2", a, "WH_01", 3, "restock")]
    before = (await client.stats())[k]
    replies = await actor.call_many.remote(cmds)
    assert isinstance(replies[0], Done) and isinstance(replies[2], Done)
    assert isinstance(replies[1], Refused) and replies[1].code == "validation_failed"
    again = await actor.call_many.remote([cmds[1]])
    assert isinstance(again[0], Refused) and again[0].code == "validation_failed"
    after = (await client.stats())[k]
    assert after["failed_batches"] - before["failed_batches"] <= 3  # never a loop
    got = (await client.stock([a]))[str(a)]["warehouses"]["WH_01"]
    assert (got["available"], got["reserved"]) == (6, 2)
    await check_invariants(db)


async def test_reconciliation_finds_stock_written_behind_the_owner(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    """Inventory accuracy: partitions compare what they hold with the stock rows; a row
    changed behind the owner's back (by hand, by another writer) is counted as a difference."""
    variants = [secrets.randbits(60) for _ in range(6)]
    await make_catalog(db, {v: {"WH_01": 10} for v in variants})
    for i, v in enumerate(variants):
        await client.reserve([(v, 1 + i % 3, None)], key=f"rc-{v}")
    found = await client.reconcile()
    assert sum(n for n, _ in found) == len(variants)
    assert sum(d for _, d in found) == 0
    await db.execute("UPDATE stock SET available = available + 5 WHERE variant_id = $1",
                     variants[2])
    found = await client.reconcile()
    assert sum(n for n, _ in found) == len(variants) and sum(d for _, d in found) == 1
    await db.execute("UPDATE stock SET available = available - 5 WHERE variant_id = $1",
                     variants[2])
    assert sum(d for _, d in await client.reconcile()) == 0
