"""A shopper cart's lease (one change at a time) against the real PostgreSQL: a lease taken by
a statement that reached the server after its caller had left is given back as soon as the
statement answers. The fault probe saw carts busy (409 cart_busy) for a minute after a stalled
PostgreSQL resumed: the statements queued in its backends took leases nobody gave back. Here
the statement waits for the cart's row instead of a stalled server."""

from __future__ import annotations

import asyncio
from typing import cast

import asyncpg
import pytest

from adapters.postgres import shopper_carts as store
from adapters.postgres.shopper_carts import CartRow
from domain.inventory_api import Inventory
from serve.carts import CartService, new_token, token_hash
from serve.quotes import QuoteService

WAITING = """SELECT count(*) FROM pg_stat_activity
              WHERE datname = current_database() AND wait_event_type = 'Lock'
                AND query LIKE 'UPDATE shopper_carts SET busy_token = $2%'"""


async def busy_token(db: asyncpg.Pool | asyncpg.Connection, cart_id: str) -> str | None:
    token: str | None = await db.fetchval(
        "SELECT busy_token FROM shopper_carts WHERE cart_id = $1", cart_id)
    return token


async def test_a_lease_taken_after_its_caller_left_is_given_back(db: asyncpg.Pool) -> None:
    # the lease touches neither the partitions nor the prices
    carts = CartService(db, cast(Inventory, None), cast(QuoteService, None), 900)
    token = new_token()
    async with db.acquire() as conn:
        await store.create(conn, "c-lease-late", token_hash(token))
    ran: list[str] = []

    async def change(row: CartRow) -> None:
        ran.append(row.cart_id)

    async with db.acquire() as holder, holder.transaction():
        await holder.execute("SELECT 1 FROM shopper_carts WHERE cart_id = 'c-lease-late' "
                             "FOR UPDATE")
        caller = asyncio.create_task(carts._change(token, change))
        for _ in range(100):  # the lease's statement waits for the row
            if await db.fetchval(WAITING) == 1:
                break
            await asyncio.sleep(0.05)
        assert await db.fetchval(WAITING) == 1
        caller.cancel()  # the shopper hangs up (Serve cancels the request)
        with pytest.raises(asyncio.CancelledError):
            await caller
        await asyncio.sleep(0.5)
        # still sent: it takes the lease once it runs, as one queued in a stalled server's
        # backend does when the server resumes
        assert await db.fetchval(WAITING) == 1
        assert await busy_token(db, "c-lease-late") is None
    # the row is free: the late statement takes the lease, and it is given back at once
    # (not after LEASE_TERM_S)
    for _ in range(100):  # the late statement runs
        if await db.fetchval(WAITING) == 0:
            break
        await asyncio.sleep(0.05)
    assert await db.fetchval(WAITING) == 0
    for _ in range(100):  # and its lease is given back
        if await busy_token(db, "c-lease-late") is None:
            break
        await asyncio.sleep(0.05)
    assert await busy_token(db, "c-lease-late") is None
    assert ran == []  # the change its caller left was not made
    await carts._change(token, change)  # the next change is not refused cart_busy
    assert ran == ["c-lease-late"]
    assert await busy_token(db, "c-lease-late") is None



async def test_a_lease_not_given_back_at_once_is_given_back_when_it_can_be(
        db: asyncpg.Pool, fresh_dsn: str) -> None:
    # every connection is taken when the change ends (PostgreSQL stalled under load, or
    # restarting): the give-back is tried again until it goes through, not left to run out
    carts = CartService(db, cast(Inventory, None), cast(QuoteService, None), 900)
    token = new_token()
    async with db.acquire() as conn:
        await store.create(conn, "c-lease-retried", token_hash(token))
    held: list[asyncpg.pool.PoolConnectionProxy] = []

    async def hog(row: CartRow) -> None:  # ends holding every connection of the pool
        while len(held) < db.get_max_size():
            held.append(await db.acquire())

    async def free_later() -> None:
        await asyncio.sleep(6.5)  # longer than a give-back waits for a connection
        for conn in held:
            await db.release(conn)

    freeing = asyncio.create_task(free_later())
    await carts._change(token, hog)
    probe = await asyncpg.connect(fresh_dsn)  # beside the pool
    try:
        assert await busy_token(probe, "c-lease-retried") is not None
        await freeing
        for _ in range(60):
            if await busy_token(probe, "c-lease-retried") is None:
                break
            await asyncio.sleep(0.1)
        assert await busy_token(probe, "c-lease-retried") is None
    finally:
        await probe.close()
