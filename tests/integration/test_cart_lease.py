"""A shopper cart's lease (one change at a time) against the real PostgreSQL: a lease
statement that reaches the server after its caller gave up waiting (a stalled server
resumed: the fault probe saw carts busy for a minute after PostgreSQL came back) takes and
renews nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from adapters.postgres import shopper_carts as store


async def test_a_lease_statement_run_after_its_deadline_takes_nothing(
        db: asyncpg.Pool) -> None:
    key = b"lease-test-token-hash"
    later, gone = (datetime.now(UTC) + timedelta(seconds=5),
                   datetime.now(UTC) - timedelta(seconds=1))
    async with db.acquire() as conn:
        await store.create(conn, "c-lease", key)
        # run after its caller gave up: nothing taken, the cart free for the next change
        assert not await store.take_lease(conn, key, "late", 60, gone)
        assert await conn.fetchval("SELECT busy_until FROM shopper_carts "
                                   "WHERE cart_id = 'c-lease'") is None
        assert await store.take_lease(conn, key, "first", 60, later)
        assert not await store.take_lease(conn, key, "second", 60, later)  # held
        until = await conn.fetchval("SELECT busy_until FROM shopper_carts "
                                    "WHERE cart_id = 'c-lease'")
        await store.renew_lease(conn, key, "first", 600, gone)  # late: not renewed
        assert await conn.fetchval("SELECT busy_until FROM shopper_carts "
                                   "WHERE cart_id = 'c-lease'") == until
        await store.renew_lease(conn, key, "first", 600, later)
        assert await conn.fetchval("SELECT busy_until FROM shopper_carts "
                                   "WHERE cart_id = 'c-lease'") > until
        await store.end_lease(conn, key, "first")
        assert await store.take_lease(conn, key, "second", 60, later)
