import asyncpg

from adapters.postgres import connect
from adapters.postgres.migrate import migrate, packaged_migrations


async def test_migrations_are_applied_once_and_recorded(fresh_dsn: str) -> None:
    conn = await connect(fresh_dsn)
    try:
        assert await migrate(conn) == []  # the factory migrated already: idempotent
        rows = await conn.fetch("SELECT version, name FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in packaged_migrations()]
        tables = {
            r["tablename"]
            for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname='public'")
        }
        assert {"sellers", "categories", "products", "product_versions", "product_variants",
                "product_images", "reviews_summary", "warehouses", "outbox", "stock"} <= tables
    finally:
        await conn.close()


async def test_a_failing_migration_leaves_nothing_behind(fresh_dsn: str) -> None:
    from adapters.postgres.migrate import Migration

    broken = Migration(9000, "broken", "CREATE TABLE t9000 (x int); SELEC 1;")
    bad = [*packaged_migrations(), broken]
    conn = await connect(fresh_dsn)
    try:
        try:
            await migrate(conn, bad)
        except asyncpg.PostgresSyntaxError:
            pass
        else:
            raise AssertionError("the broken migration should fail")
        assert await conn.fetchval("SELECT to_regclass('t9000')") is None
        assert await conn.fetchval("SELECT count(*) FROM schema_migrations WHERE version=9000") == 0
    finally:
        await conn.close()
