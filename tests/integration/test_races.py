"""Two writers racing for the same row, against the real database."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from adapters.postgres import Conn
from adapters.postgres.catalog_repo import CatalogRepository
from adapters.postgres.worker_lease import lease_snowflake
from adapters.settings import Settings
from domain.catalog import ImageIn, ProductIn
from domain.errors import VersionConflict
from domain.sellers import new_api_key

# an explicit id far above the identity's: other tests in the session database make theirs
CATEGORY = 900_001


def _body(title: str, sku: str) -> ProductIn:
    return ProductIn.model_validate({"title": title, "category_id": CATEGORY,
                                     "variants": [{"sku": sku, "price_cents": 100}]})


@pytest.fixture
async def repo(settings: Settings, pool: asyncpg.Pool) -> CatalogRepository:
    assert settings.database_url is not None
    await pool.execute("""INSERT INTO categories (category_id, name, path, depth)
                          VALUES ($1, 'Race root', '{Race root}', 0) ON CONFLICT DO NOTHING""",
                       CATEGORY)
    ids = await lease_snowflake(settings.database_url, settings.snowflake_node)
    return CatalogRepository(pool, ids)


async def test_two_updates_of_the_same_version_one_wins(repo: CatalogRepository) -> None:
    seller = await repo.create_seller("Racer", new_api_key())
    p = await repo.create_product(seller, _body("v1", "RACE-1"))
    pid = int(p["product_id"])
    results = await asyncio.gather(
        repo.update_product(seller, pid, _body("writer A", "RACE-1"), 1),
        repo.update_product(seller, pid, _body("writer B", "RACE-1"), 1),
        return_exceptions=True,
    )
    wins = [r for r in results if isinstance(r, dict)]
    losses = [r for r in results if isinstance(r, VersionConflict)]
    assert len(wins) == 1 and len(losses) == 1
    assert losses[0].current_version == 2
    stored = await repo.get_product(seller, pid)
    assert stored["version"] == 2 and stored["title"] == wins[0]["title"]
    events = await repo.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type = 'product.updated'",
        pid)
    assert events == 1


async def test_one_image_finished_twice_at_once_is_shown_once(repo: CatalogRepository) -> None:
    """Two Gateways finishing the same upload (a retried request): the image joins the
    product once, one new version; each finisher's own rows are still written."""
    seller = await repo.create_seller("Imager", new_api_key())
    pid = int((await repo.create_product(seller, _body("pictured", "RACE-IMG")))["product_id"])
    image = ImageIn.model_construct(url="https://img.example.com/a.jpg", position=0,
                                    alt_text="", variant_sku=None)
    finished: list[int] = []

    async def also(conn: Conn) -> None:
        finished.append(1)

    versions = await asyncio.gather(*(repo.change_images(seller, pid, image, None, [], also)
                                      for _ in range(3)))
    assert sorted(versions) == [2, 2, 2] and len(finished) == 3
    assert await repo.pool.fetchval(
        "SELECT count(*) FROM product_images WHERE product_id = $1", pid) == 1
    assert await repo.pool.fetchval(
        "SELECT count(*) FROM outbox WHERE aggregate_id = $1 AND event_type = 'product.updated'",
        pid) == 1


async def test_two_creates_racing_for_one_sku_one_wins(repo: CatalogRepository) -> None:
    a = await repo.create_seller("A", new_api_key())
    b = await repo.create_seller("B", new_api_key())
    results = await asyncio.gather(
        repo.create_product(a, _body("from A", "CONTESTED-1")),
        repo.create_product(b, _body("from B", "CONTESTED-1")),
        return_exceptions=True,
    )
    assert sum(isinstance(r, dict) for r in results) == 1
    loser = next(r for r in results if not isinstance(r, dict))
    assert getattr(loser, "code", None) == "duplicate_sku"
    n = await repo.pool.fetchval(
        "SELECT count(*) FROM products p JOIN sellers s USING (seller_id) "
        "WHERE s.seller_id = ANY($1::bigint[])", [a, b])
    assert n == 1  # the loser's product row was rolled back with its variant


async def test_worker_leases_are_exclusive_and_freed_on_close(settings: Settings) -> None:
    assert settings.database_url is not None
    first = await lease_snowflake(settings.database_url, 7)
    second = await lease_snowflake(settings.database_url, 7)
    assert first.worker_id != second.worker_id
    assert first.worker_id >> 5 == 7 and second.worker_id >> 5 == 7
    freed = first.worker_id
    await first.close()
    third = await lease_snowflake(settings.database_url, 7)
    assert third.worker_id == freed
    with pytest.raises(RuntimeError, match="lease lost"):
        first.next_id()
    await second.close()
    await third.close()
