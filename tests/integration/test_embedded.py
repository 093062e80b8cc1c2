"""The embedded defaults: real PostgreSQL and Redis servers, started and stopped."""

from __future__ import annotations

from pathlib import Path

from adapters.embedded import Infrastructure
from adapters.postgres import connect
from adapters.postgres.migrate import migrate
from adapters.redis import create_redis
from adapters.settings import Settings


async def test_embedded_servers_start_serve_and_stop(tmp_path: Path) -> None:
    infra = Infrastructure(Settings(data_dir=tmp_path))
    try:
        s = infra.settings
        assert s.database_url is not None and s.redis_url is not None
        assert str(tmp_path) in s.database_url  # the socket lives under the data dir
        conn = await connect(s.database_url)
        try:
            assert await migrate(conn) != []
            assert await conn.fetchval("SELECT count(*) FROM schema_migrations") >= 2
        finally:
            await conn.close()
        r = create_redis(s.redis_url)
        await r.set(b"k", b"v")
        assert await r.get(b"k") == b"v"
        await r.aclose()
        assert infra.redis is not None and infra.redis.running
        redis_server = infra.redis
    finally:
        infra.close()
    assert not redis_server.running
    assert not (tmp_path / "postgres" / "pgdata" / "postmaster.pid").exists()


def test_configured_urls_start_nothing(tmp_path: Path) -> None:
    s = Settings(database_url="postgresql://u@127.0.0.1:1/x", redis_url="redis://127.0.0.1:1/0",
                 data_dir=tmp_path)
    with Infrastructure(s) as infra:
        assert infra.postgres is None and infra.redis is None
        assert infra.settings == s
    assert list(tmp_path.iterdir()) == []
