"""Catalog loads against a real PostgreSQL (a fresh database per test)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from adapters.loading import load_catalog
from adapters.loading.datasets import ESCI_FILE, icecat_file
from adapters.postgres import connect
from domain.errors import ConfigError

TABLES = ["sellers", "categories", "products", "product_variants", "product_images",
          "reviews_summary", "stock", "catalog_loads", "outbox"]
KNOWN_ASIN = "B00TREI0A2"  # Apple iPad Air 2, $190.00 in the ESCI data


@pytest.fixture
async def db(fresh_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await connect(fresh_dsn)
    yield conn
    await conn.close()


async def counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in TABLES}


@pytest.fixture
def esci_subset(tmp_path: Path) -> Path:
    path = tmp_path / "esci_subset.parquet"
    pq.write_table(pq.read_table(ESCI_FILE).slice(0, 300), path)
    return path


@pytest.fixture
def icecat_subset(tmp_path: Path) -> Path:
    try:
        source = icecat_file()
    except ConfigError as exc:  # ../shared/data is not on every machine (esci is vendored)
        pytest.skip(str(exc))
    t = pq.read_table(source)
    puzzles = t.filter(pc.match_substring(t["title"], "Jigsaw puzzle")).slice(0, 20)
    path = tmp_path / "icecat_subset.parquet"
    pq.write_table(pa.concat_tables([t.slice(0, 200), puzzles]), path)
    return path


async def test_synthetic_load_writes_consistent_rows(fresh_dsn: str,
                                                     db: asyncpg.Connection) -> None:
    r = await load_catalog(fresh_dsn, "synthetic:2000", seed=3)
    assert not r.skipped and r.products == 2000 and r.sellers == 50
    c = await counts(db)
    assert (c["products"], c["product_variants"], c["product_images"], c["stock"]) == (
        r.products, r.variants, r.images, r.stock)
    assert c["reviews_summary"] == 2000 and c["categories"] == r.categories == 208
    assert await db.fetchval("SELECT count(DISTINCT sku) FROM product_variants") == r.variants
    assert await db.fetchval("""SELECT count(*) FROM product_variants v WHERE NOT EXISTS
                                (SELECT 1 FROM stock s WHERE s.variant_id = v.variant_id)""") == 0
    assert await db.fetchval("""SELECT count(*) FROM products p JOIN categories c
                                USING (category_id) WHERE c.depth = 2""") == 2000
    load = await db.fetchrow("SELECT * FROM catalog_loads")
    assert (load["dataset"], load["products"], load["variants"], load["seed"]) == (
        "synthetic:2000", 2000, r.variants, 3)
    event = await db.fetchrow("SELECT event_type, aggregate_id, payload FROM outbox")
    assert (event["event_type"], event["aggregate_id"]) == ("catalog.loaded", 0)
    assert event["payload"] == {"dataset": "synthetic:2000", "products": 2000}


async def test_the_load_event_is_notified_on_commit(fresh_dsn: str,
                                                    db: asyncpg.Connection) -> None:
    heard: list[str] = []
    await db.add_listener("aisle_outbox", lambda *args: heard.append(args[-1]))
    await load_catalog(fresh_dsn, "synthetic:50")
    await db.fetchval("SELECT 1")  # let the notification arrive
    assert heard == [str(await db.fetchval("SELECT event_id FROM outbox"))]


async def test_esci_product_round_trips(fresh_dsn: str, db: asyncpg.Connection,
                                        esci_subset: Path) -> None:
    r = await load_catalog(fresh_dsn, str(esci_subset))
    assert r.products == 300
    row = await db.fetchrow(
        """SELECT p.title, p.brand, c.path, v.price_cents, v.price_synthetic, v.sku
           FROM products p JOIN categories c USING (category_id)
           JOIN product_variants v USING (product_id) WHERE p.external_id = $1""", KNOWN_ASIN)
    assert row["title"].startswith("Apple iPad Air 2 MGKM2LL/A") and row["brand"] == "Apple"
    assert row["path"] == ["Electronics", "Computers & Accessories", "Computers & Tablets",
                           "Tablets"]
    assert (row["price_cents"], row["price_synthetic"]) == (19000, False)
    assert row["sku"].endswith(f"-{KNOWN_ASIN}-1")
    bad = await db.fetchval("""SELECT count(*) FROM categories c JOIN categories p
                               ON p.category_id = c.parent_id
                               WHERE c.path <> p.path || c.name OR c.depth <> p.depth + 1""")
    assert bad == 0


async def test_loading_twice_is_skipped_unless_forced(fresh_dsn: str, db: asyncpg.Connection,
                                                      esci_subset: Path) -> None:
    await load_catalog(fresh_dsn, str(esci_subset))
    before = await counts(db)
    again = await load_catalog(fresh_dsn, str(esci_subset))
    assert again.skipped and await counts(db) == before
    forced = await load_catalog(fresh_dsn, str(esci_subset), force=True, seed=4)
    assert not forced.skipped and forced.replaced_products == 300
    after = await counts(db)
    assert after["products"] == 300 and after["outbox"] == 2
    assert after["sellers"] == before["sellers"] and after["categories"] == before["categories"]
    assert await db.fetchval("SELECT seed FROM catalog_loads") == 4


async def test_two_catalogs_merge_category_trees(fresh_dsn: str, db: asyncpg.Connection,
                                                 esci_subset: Path, icecat_subset: Path) -> None:
    a = await load_catalog(fresh_dsn, str(esci_subset))
    b = await load_catalog(fresh_dsn, str(icecat_subset))
    nodes = await db.fetchval("SELECT count(*) FROM categories")
    assert nodes < a.categories + b.categories  # shared nodes are not duplicated
    assert await db.fetchval("SELECT count(DISTINCT path) FROM categories") == nodes
    toys = await db.fetch("SELECT category_id FROM categories WHERE path = '{Toys & Games}'")
    assert len(toys) == 1
    owners = await db.fetchval(
        """SELECT count(DISTINCT left(v.sku, 4)) FROM products p
           JOIN categories c USING (category_id)
           JOIN product_variants v USING (product_id) WHERE c.path[1] = 'Toys & Games'""")
    assert owners == 2  # esci and icecat products under the one root
    assert (await counts(db))["products"] == a.products + b.products


async def test_a_failing_load_leaves_nothing(fresh_dsn: str, db: asyncpg.Connection,
                                             tmp_path: Path) -> None:
    t = pq.read_table(ESCI_FILE).slice(0, 50)
    asins = t["asin"].to_pylist()
    asins[-1] = "X" * 70  # its SKU is longer than product_variants.sku allows
    path = tmp_path / "bad.parquet"
    pq.write_table(t.set_column(0, "asin", pa.array(asins)), path)
    with pytest.raises(asyncpg.StringDataRightTruncationError):
        await load_catalog(fresh_dsn, str(path))
    assert set((await counts(db)).values()) == {0}
    assert await db.fetchval("SELECT count(*) FROM warehouses") == 0
