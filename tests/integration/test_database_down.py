"""The seed's failure table, PostgreSQL down, for writes: a write whose transaction is under
way when the database stops fails with an error the API answers as 503
`database_unavailable` (serve/_errors.py), and nothing of it is there once the database is
back: no product row, no variant, no outbox event (one transaction). A real PostgreSQL (embedded,
its own), stopped while the write sits inside its transaction."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from adapters.embedded import EmbeddedPostgres
from adapters.postgres import connect, create_pool, unavailable
from adapters.postgres.catalog_repo import CatalogRepository
from adapters.postgres.migrate import migrate
from adapters.postgres.worker_lease import lease_snowflake
from domain.catalog import ProductIn
from domain.sellers import new_api_key

CATEGORY = 900_002


def _body(title: str, sku: str) -> ProductIn:
    return ProductIn.model_validate({"title": title, "category_id": CATEGORY,
                                     "variants": [{"sku": sku, "price_cents": 100}]})


async def test_a_write_cut_by_postgresql_stopping_leaves_nothing(tmp_path: Path) -> None:
    pg = EmbeddedPostgres(tmp_path / "pg")
    conn = await connect(pg.url)
    await migrate(conn)
    await conn.execute("""INSERT INTO categories (category_id, name, path, depth)
                          VALUES ($1, 'Down root', '{Down root}', 0)""", CATEGORY)
    # the variant is written inside the product's transaction, after the product row: make
    # that step slow, so the database can be stopped while the write is half done
    await conn.execute("""
        CREATE FUNCTION slow_variant() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN IF NEW.sku = 'DOWN-2' THEN PERFORM pg_sleep(30); END IF; RETURN NEW; END $$;
        CREATE TRIGGER slow_variant AFTER INSERT ON product_variants
        FOR EACH ROW EXECUTE FUNCTION slow_variant();""")
    await conn.close()
    pool = await create_pool(pg.url, min_size=1, max_size=2)
    ids = await lease_snowflake(pg.url, 0)
    repo = CatalogRepository(pool, ids)
    try:
        seller = await repo.create_seller("Down", new_api_key())
        kept = await repo.create_product(seller, _body("kept lamp", "DOWN-1"))
        events_before = await pool.fetchval("SELECT count(*) FROM outbox")
        write = asyncio.create_task(repo.create_product(seller, _body("cut short", "DOWN-2")))
        deadline = time.monotonic() + 20
        while not await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"):
            assert time.monotonic() < deadline and not write.done()
            await asyncio.sleep(0.05)
        await asyncio.to_thread(pg.close)  # PostgreSQL stops (fast: the write is cut)
        failed = await asyncio.gather(write, return_exceptions=True)
        assert isinstance(failed[0], BaseException) and unavailable(failed[0]), failed
    finally:
        pool.terminate()
        pg.close()
    pg = EmbeddedPostgres(tmp_path / "pg")  # back, on the same files
    conn = await connect(pg.url)
    try:
        titles = await conn.fetch("SELECT title FROM products ORDER BY title")
        assert [r["title"] for r in titles] == ["kept lamp"]
        skus = await conn.fetch("SELECT sku FROM product_variants ORDER BY sku")
        assert [r["sku"] for r in skus] == ["DOWN-1"]
        assert await conn.fetchval("SELECT count(*) FROM outbox") == events_before
        assert await conn.fetchval("SELECT count(*) FROM outbox WHERE aggregate_id = $1",
                                   int(kept["product_id"])) >= 1
    finally:
        await conn.close()
        pg.close()


async def test_a_server_that_does_not_answer_in_time_is_unavailable(db: asyncpg.Pool) -> None:
    """A stalled server (or a network dropping packets) shows as asyncpg's timeouts: they
    answer 503 and open the breaker as a refused connection does; another library's timeout
    is not the database's."""
    with pytest.raises(TimeoutError) as waited:
        await db.fetchval("SELECT pg_sleep(5)", timeout=0.2)
    assert unavailable(waited.value)
    async with db.acquire(), db.acquire(), db.acquire(), db.acquire():  # the pool's 4
        with pytest.raises(TimeoutError) as queued:
            await db.acquire(timeout=0.2)
    assert unavailable(queued.value)
    with pytest.raises(TimeoutError) as other:
        await asyncio.wait_for(asyncio.sleep(1), 0.05)
    assert not unavailable(other.value)


async def test_a_pools_wait_for_a_free_connection_is_bounded(fresh_dsn: str) -> None:
    """A stalled server holds every connection of a pool: with `acquire_timeout_s` (the
    Gateway's), a statement that finds none free within it is asyncpg's TimeoutError, which
    answers 503 and opens the breaker, instead of waiting as long as the stall; a caller's own
    timeout still wins."""
    pool = await create_pool(fresh_dsn, min_size=1, max_size=1, acquire_timeout_s=0.3)
    try:
        async with pool.acquire() as held:  # stuck in a stalled server, say
            waiting = asyncio.ensure_future(pool.fetchval("SELECT 1"))
            done, _ = await asyncio.wait({waiting}, timeout=5)
            assert waiting in done, "the statement waited for a connection without end"
            failed = waiting.exception()
            assert isinstance(failed, TimeoutError) and unavailable(failed)
            with pytest.raises(TimeoutError):
                await pool.acquire(timeout=0.05)
            assert await held.fetchval("SELECT 2") == 2
        assert await pool.fetchval("SELECT 3") == 3  # free again: no wait
    finally:
        await pool.close()
