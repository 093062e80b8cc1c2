"""Test harness.

- With DATABASE_URL / REDIS_URL set (CI), tests use those servers; every session works in a
  fresh database of its own, dropped at the end. Without them, the session starts the embedded
  PostgreSQL and Redis under a temporary directory, like `scripts/demo` does.
- One Ray cluster per session (`ray_cluster`), started only when a test needs it, and one Serve
  app on a free port (`app_url`).
- Tests marked `demo` run first: they start their own cluster, before the shared one exists.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest

from adapters.embedded import Infrastructure, free_port
from adapters.postgres import create_pool
from adapters.postgres.scratch import create_database, drop_database
from adapters.settings import Settings

INTERNAL_TOKEN = "test-internal-token-" + "x" * 8


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: 0 if item.get_closest_marker("demo") else 1)


class DatabaseFactory:
    """Makes fresh, migrated databases on the session's PostgreSQL server."""

    def __init__(self, admin_dsn: str) -> None:
        self.admin_dsn = admin_dsn
        self.made: list[str] = []

    async def create(self) -> str:
        name, dsn = await create_database(self.admin_dsn, "aisle_test")
        self.made.append(name)
        return dsn

    async def drop_all(self) -> None:
        for name in self.made:
            await drop_database(self.admin_dsn, name)


@pytest.fixture(scope="session")
def infra() -> Iterator[Infrastructure]:
    base = Settings.from_env()
    with tempfile.TemporaryDirectory(prefix="aisle-test-") as tmp:
        infra = Infrastructure(base.replace(data_dir=Path(tmp)))
        try:
            yield infra
        finally:
            infra.close()


@pytest.fixture(scope="session")
async def databases(infra: Infrastructure) -> AsyncIterator[DatabaseFactory]:
    assert infra.settings.database_url is not None
    factory = DatabaseFactory(infra.settings.database_url)
    yield factory
    await factory.drop_all()


@pytest.fixture(scope="session")
async def settings(infra: Infrastructure, databases: DatabaseFactory) -> Settings:
    """Settings of the session: its own migrated database, Redis, a known internal token."""
    dsn = await databases.create()
    # product pages stay in the Gateway for 5 s: the e2e tests that expect a change within a
    # second then show the invalidation channel at work, not the copies' expiry
    return infra.settings.replace(
        database_url=dsn, internal_token=INTERNAL_TOKEN, http_port=free_port(),
        page_local_cache_ms=5000,
        # the suite searches from one address far faster than a shopper: no limits here
        # (tests/e2e/test_rate_limits.py sets its own)
        rate_limit_search=0, rate_limit_seller=0, rate_limit_events=0,
    )


@pytest.fixture(scope="session")
async def pool(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    assert settings.database_url is not None
    pool = await create_pool(settings.database_url, min_size=1, max_size=4)
    yield pool
    await pool.close()


@pytest.fixture
async def fresh_dsn(databases: DatabaseFactory) -> str:
    """A new, empty, migrated database for one test."""
    return await databases.create()


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    import ray

    from serve.proxy_setup import CALLBACK, ENV
    from serve.ray_env import ONE_LOOP, serve_env

    os.environ.setdefault(ENV, CALLBACK)  # Serve's proxy answers unparsable requests in JSON
    serve_env(os.environ, ONE_LOOP)  # where the demo's replicas run their code (not its pace)
    ray.init(
        num_cpus=8,
        include_dashboard=False,
        log_to_driver=False,
        configure_logging=False,
        runtime_env={"env_vars": {"PYTHONWARNINGS": "ignore"}},
    )
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="session")
def app_url(ray_cluster: None, settings: Settings) -> Iterator[str]:
    """The whole Serve app, running on the session's cluster."""
    from ray import serve

    from serve import build_app
    from tooling.demo import wait_healthy

    serve.start(http_options={"host": "127.0.0.1", "port": settings.http_port})
    serve.run(build_app(settings), name="aisle", route_prefix="/", blocking=False)
    url = f"http://127.0.0.1:{settings.http_port}"
    wait_healthy(url)
    try:
        yield url
    finally:
        serve.shutdown()


@pytest.fixture(scope="session")
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    return asyncio.DefaultEventLoopPolicy()


os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
