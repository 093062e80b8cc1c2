"""Index builders against real PostgreSQL, Ray and tantivy shards: first build, incremental
updates from the outbox, ordering and idempotence, deletes, stock, a crash mid-batch."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import ray

from actors.index_builder import BUILDER_OPTIONS, BuilderConfig, IndexBuilderLoop
from actors.search_index import sharded_index
from adapters.postgres import create_pool
from adapters.postgres.search_registry import GenerationRegistry
from adapters.search.sharded import ShardedIndex
from domain.errors import GenerationRefused, RebuildUnderWay
from domain.search import Filters, IndexQuery, TextQuery

SHARDS = 2


class CrashableBuilder(IndexBuilderLoop):
    """The index builder with a fault to arm: the process dies right after its next index
    write, before that batch's caches are dropped and its position committed."""

    async def crash_after_next_write(self) -> None:
        self.crash = True

    async def _written(self, product_ids: Sequence[int]) -> None:
        if getattr(self, "crash", False):
            os._exit(1)


IndexBuilder = ray.remote(**BUILDER_OPTIONS)(CrashableBuilder)


class HeldFirstBuild(IndexBuilderLoop):
    """The index builder with its first build held until `go`."""

    async def go(self) -> None:
        self.going.set()

    async def _bootstrap(self) -> None:
        self.going = getattr(self, "going", asyncio.Event())
        await self.going.wait()
        await super()._bootstrap()


async def add_product(pool: asyncpg.Pool, seller: int, title: str, *, price: int = 1000,
                      stock: int = 5, brand: str = "Acme") -> int:
    pid = secrets.randbits(62)
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """INSERT INTO products (product_id, seller_id, external_id, title, brand)
               VALUES ($1, $2, $3, $4, $5)""", pid, seller, f"E{pid}", title, brand)
        await conn.execute(
            """INSERT INTO product_variants (variant_id, product_id, sku, price_cents)
               VALUES ($1, $1, $2, $3)""", pid, f"SKU-{pid}", price)
        await conn.execute("INSERT INTO stock (variant_id, warehouse_id, available) "
                           "VALUES ($1, 'WH_01', $2)", pid, stock)
        await conn.execute("INSERT INTO outbox (event_type, aggregate_id, aggregate_version) "
                           "VALUES ('product.created', $1, 1)", pid)
    return pid


async def retitle(pool: asyncpg.Pool, pid: int, title: str) -> int:
    async with pool.acquire() as conn, conn.transaction():
        version = await conn.fetchval(
            """UPDATE products SET title = $2, version = version + 1 WHERE product_id = $1
               RETURNING version""", pid, title)
        await conn.execute("INSERT INTO outbox (event_type, aggregate_id, aggregate_version) "
                           "VALUES ('product.updated', $1, $2)", pid, version)
        return int(version)


class Env:
    def __init__(self, pool: asyncpg.Pool, builder: Any, index: ShardedIndex,
                 seller: int, dsn: str) -> None:
        self.pool, self.builder, self.index, self.seller = pool, builder, index, seller
        self.dsn = dsn

    async def idle(self) -> None:
        assert await self.builder.wait_idle.remote(30.0)

    async def titles(self, words: str) -> dict[int, str]:
        res = await self.index.search(IndexQuery(
            TextQuery(tuple((w,) for w in words.split())), limit=100, facets=False))
        return {h.product_id: h.doc["title"] for h in res.hits}


@pytest.fixture
async def env(ray_cluster: None, fresh_dsn: str, tmp_path: Path) -> AsyncIterator[Env]:
    pool = await create_pool(fresh_dsn, max_size=4)
    seller = secrets.randbits(60)
    await pool.execute("INSERT INTO sellers (seller_id, name) VALUES ($1, 's')", seller)
    await pool.execute("INSERT INTO warehouses (warehouse_id, name, region) "
                       "VALUES ('WH_01', 'one', 'eu')")
    cfg = BuilderConfig(fresh_dsn, None, str(tmp_path), SHARDS)
    builder = IndexBuilder.remote(cfg)  # type: ignore[attr-defined]
    index = sharded_index(SHARDS, tmp_path, fresh_dsn, GenerationRegistry(pool, "tantivy"))
    env = Env(pool, builder, index, seller, fresh_dsn)
    yield env
    ray.kill(env.builder)
    for gen in (await index.registry.all()):
        await index.drop_generation(gen.name)
    await pool.close()


async def test_first_build_then_incremental_updates(env: Env) -> None:
    a = await add_product(env.pool, env.seller, "Walnut desk lamp")
    assert await env.builder.start.remote()
    await env.idle()
    assert await env.titles("walnut lamp") == {a: "Walnut desk lamp"}
    b = await add_product(env.pool, env.seller, "Walnut bookshelf")
    await retitle(env.pool, a, "Oak desk lamp")
    await env.idle()
    assert await env.titles("walnut") == {b: "Walnut bookshelf"}
    assert await env.titles("oak lamp") == {a: "Oak desk lamp"}
    stats = await env.builder.stats.remote()
    assert stats.events >= 2 and stats.full_builds == 1


async def test_old_event_replayed_after_newer_changes_nothing(env: Env) -> None:
    a = await add_product(env.pool, env.seller, "Copper kettle")
    await env.builder.start.remote()
    await env.idle()
    v2 = await retitle(env.pool, a, "Copper kettle deluxe")
    await env.idle()
    # the v1 event again (a redelivery), and an old document straight at the index
    await env.pool.execute("INSERT INTO outbox (event_type, aggregate_id, aggregate_version) "
                           "VALUES ('product.updated', $1, 1)", a)
    await env.idle()
    old = (await env.index.get([a]))[a] | {"title": "Copper kettle", "version": 1}
    assert await env.index.upsert([old]) == 0
    doc = (await env.index.get([a]))[a]
    assert (doc["title"], doc["version"]) == ("Copper kettle deluxe", v2)
    same = doc | {"in_stock": False}  # equal version: stock and price refresh replaces
    assert await env.index.upsert([same]) == 1
    assert (await env.index.get([a]))[a]["in_stock"] is False


async def test_deleted_products_disappear_and_stock_follows_inventory(env: Env) -> None:
    a = await add_product(env.pool, env.seller, "Linen apron", stock=1)
    b = await add_product(env.pool, env.seller, "Linen towel", stock=0)
    await env.builder.start.remote()
    await env.idle()
    docs = await env.index.get([a, b])
    assert (docs[a]["in_stock"], docs[b]["in_stock"]) == (True, False)
    async with env.pool.acquire() as conn, conn.transaction():
        await conn.execute("UPDATE products SET status = 'DELETED', version = version + 1 "
                           "WHERE product_id = $1", b)
        await conn.execute("INSERT INTO outbox (event_type, aggregate_id, aggregate_version) "
                           "VALUES ('product.deleted', $1, 2)", b)
        await conn.execute("UPDATE stock SET available = 0 WHERE variant_id = $1", a)
        await conn.execute("INSERT INTO outbox (event_type, aggregate_id) "
                           "VALUES ('inventory.changed', $1)", a)
    await env.idle()
    assert await env.titles("linen") == {a: "Linen apron"}
    assert (await env.index.get([a]))[a]["in_stock"] is False


async def test_builder_crash_mid_batch_loses_nothing(env: Env) -> None:
    a = await add_product(env.pool, env.seller, "Granite mortar")
    await env.builder.start.remote()
    await env.idle()
    await env.builder.crash_after_next_write.remote()
    await retitle(env.pool, a, "Granite mortar and pestle")
    # the process dies after the index write, before the position is committed;
    # Ray restarts it and the batch is processed again
    for _ in range(200):
        try:
            if await env.builder.wait_idle.remote(1.0):
                break
        except ray.exceptions.RayActorError:
            await asyncio.sleep(0.1)
    await env.idle()
    assert await env.titles("pestle") == {a: "Granite mortar and pestle"}
    stats = await env.builder.stats.remote()
    assert stats.full_builds == 0  # a restarted builder, resumed from its position
    assert stats.events >= 1


async def test_a_build_cut_off_is_dropped_when_the_builder_starts_again(env: Env) -> None:
    """A generation left BUILDING by a builder that died (a full build cut off) is dropped
    when the builder starts again: marked FAILED, its files deleted, no more writes to it."""
    a = await add_product(env.pool, env.seller, "Slate coaster")
    await env.builder.start.remote()
    await env.idle()
    live = await env.index.live_generation()
    await env.index.create_generation("gcutoff")  # what a full build makes first
    assert (env.index.root / "gcutoff").is_dir()
    assert set(await env.index.registry.writable()) == {live, "gcutoff"}
    ray.kill(env.builder, no_restart=False)  # Ray starts it again
    for _ in range(300):  # dropped (its files), then marked FAILED: wait for the last step
        status = {g.name: g.status for g in await env.index.registry.all()}
        if status["gcutoff"] not in ("BUILDING", "DROPPED"):
            break
        await asyncio.sleep(0.1)
    for _ in range(100):
        try:
            assert await env.builder.start.remote()
            break
        except ray.exceptions.RayActorError:
            await asyncio.sleep(0.1)
    assert status == {live: "LIVE", "gcutoff": "FAILED"}
    assert not (env.index.root / "gcutoff").exists()
    assert await env.index.registry.writable() == [live]
    await retitle(env.pool, a, "Slate coaster set")
    await env.idle()
    assert await env.titles("set") == {a: "Slate coaster set"}


async def test_events_before_the_first_build_are_not_replayed(env: Env) -> None:
    await add_product(env.pool, env.seller, "Basalt bookend")
    # the last transaction before the builder starts: covered by its first full scan
    await env.pool.execute("INSERT INTO outbox (event_type, aggregate_id, payload) "
                           "VALUES ('catalog.loaded', 0, '{}'::jsonb)")
    assert await env.builder.start.remote()
    await env.idle()
    await asyncio.sleep(1.5)  # a poll tick: nothing left to consume
    stats = await env.builder.stats.remote()
    assert stats.full_builds == 1 and stats.events == 0
    assert len(await env.titles("basalt")) == 1


async def test_a_new_shard_count_applies_to_the_next_generation(env: Env,
                                                                 tmp_path: Path) -> None:
    """Operators change AISLE_INDEX_SHARDS: the live generation keeps the count it was built
    with (reads and writes route by it) until a full rebuild makes one with the new count."""
    a = await add_product(env.pool, env.seller, "Cedar planter")
    await env.builder.start.remote()
    await env.idle()
    ray.kill(env.builder)
    cfg = BuilderConfig(env.dsn, None, str(tmp_path), SHARDS + 1)
    env.builder = IndexBuilder.remote(cfg)  # type: ignore[attr-defined]
    three = sharded_index(SHARDS + 1, tmp_path, env.dsn, env.index.registry)
    assert await env.builder.start.remote()
    b = await add_product(env.pool, env.seller, "Cedar bench")
    await env.idle()
    titles = {h.product_id: h.doc["title"] for h in (await three.search(IndexQuery(
        TextQuery((("cedar",),)), limit=10, facets=False))).hits}
    assert titles == {a: "Cedar planter", b: "Cedar bench"}
    live = await three.live_generation()
    assert live is not None and await env.index.registry.shards(live) == SHARDS
    await env.builder.full_build.remote()
    rebuilt = await three.live_generation()
    assert rebuilt is not None and rebuilt != live
    assert await env.index.registry.shards(rebuilt) == SHARDS + 1
    assert set(await three.get([a, b])) == {a, b}
    assert (await three.search(IndexQuery(TextQuery((("cedar",),)), limit=10,
                                          facets=False))).total == 2


async def test_documents_carry_deal_prices_from_the_deal_and_its_start_and_end(env: Env) -> None:
    """A deal written straight into the table re-prices the products in its scope in the
    index (trigger -> outbox); so does its start, and its end, though nothing is written
    then: price filters and sorts see what the results show."""
    brand = f"Brand{secrets.token_hex(3)}"
    a = await add_product(env.pool, env.seller, "Linen shirt", price=5_000, brand=brand)
    b = await add_product(env.pool, env.seller, "Linen trousers", price=8_000)
    assert await env.builder.start.remote()
    await env.idle()

    async def prices() -> dict[int, tuple[float, float | None]]:
        res = await env.index.search(IndexQuery(
            TextQuery((("linen",),)), limit=10, facets=False))
        return {h.product_id: (h.doc["price"], h.doc.get("price_was")) for h in res.hits}

    async def under(cents: int) -> set[int]:
        res = await env.index.search(IndexQuery(
            TextQuery((("linen",),)), Filters(price_max=cents / 100), limit=10, facets=False))
        return {h.product_id for h in res.hits}

    async def until(expect: dict[int, tuple[float, float | None]], within_s: float) -> None:
        deadline = asyncio.get_running_loop().time() + within_s
        while (got := await prices()) != expect:
            assert asyncio.get_running_loop().time() < deadline, got
            await asyncio.sleep(0.1)

    assert await prices() == {a: (50.0, None), b: (80.0, None)}
    # on now, by brand (any case), 20 % off: written directly, no event from the writer
    await env.pool.execute(
        """INSERT INTO deals (scope, scope_value, kind, amount, starts_at, ends_at)
           VALUES ('brand', $1, 'percent', 2000, now() - interval '1 minute',
                   now() + interval '1 hour')""", brand.upper())
    await until({a: (40.0, 50.0), b: (80.0, None)}, 10)
    assert await under(4_500) == {a}
    # on b's product, 1,000 cents off, from 2 s from now for 2 s: its start, then its end
    await env.pool.execute(
        """INSERT INTO deals (scope, scope_value, kind, amount, starts_at, ends_at)
           VALUES ('product', $1, 'fixed', 1000, now() + interval '2 seconds',
                   now() + interval '4 seconds')""", str(b))
    await asyncio.sleep(0.5)
    assert (await prices())[b] == (80.0, None)  # not yet
    await until({a: (40.0, 50.0), b: (70.0, 80.0)}, 10)
    assert await under(7_500) == {a, b}
    await until({a: (40.0, 50.0), b: (80.0, None)}, 10)
    # the brand deal removed: its products go back to the list price
    await env.pool.execute("DELETE FROM deals WHERE scope = 'brand' AND scope_value = $1",
                           brand.upper())
    await until({a: (50.0, None), b: (80.0, None)}, 10)
    assert (await env.builder.stats.remote()).deal_boundaries >= 2


async def test_category_and_seller_deals_and_offers_reprice_documents(env: Env) -> None:
    """A deal on a parent category re-prices products of its subcategories; an offer written
    by another seller (the buy box moves) and a deal on that seller's offers re-price the
    product they are offered on."""
    tag = secrets.token_hex(3)
    parent = await env.pool.fetchval(
        "INSERT INTO categories (category_id, name, path, depth) VALUES ($1, $2, $3, 0) "
        "RETURNING category_id", 900_000 + secrets.randbelow(90_000), f"Home {tag}",
        [f"Home {tag}"])
    child = await env.pool.fetchval(
        "INSERT INTO categories (category_id, parent_id, name, path, depth) "
        "VALUES ($1, $2, $3, $4, 1) RETURNING category_id", parent + 1, parent,
        f"Rugs {tag}", [f"Home {tag}", f"Rugs {tag}"])
    a = await add_product(env.pool, env.seller, "Wool rug", price=10_000)
    b = await add_product(env.pool, env.seller, "Wool throw", price=6_000)
    await env.pool.execute("UPDATE products SET category_id = $2 WHERE product_id = $1", a, child)
    await retitle(env.pool, a, "Wool rug")
    rival = secrets.randbits(60)
    await env.pool.execute("INSERT INTO sellers (seller_id, name, rating) VALUES ($1, 'r', 4.9)",
                           rival)
    assert await env.builder.start.remote()
    await env.idle()

    async def prices() -> dict[int, float]:
        res = await env.index.search(IndexQuery(TextQuery((("wool",),)), limit=10,
                                                facets=False))
        return {h.product_id: h.doc["price"] for h in res.hits}

    async def until(expect: dict[int, float]) -> None:
        deadline = asyncio.get_running_loop().time() + 10
        while (got := await prices()) != expect:
            assert asyncio.get_running_loop().time() < deadline, got
            await asyncio.sleep(0.1)

    assert await prices() == {a: 100.0, b: 60.0}
    await env.pool.execute(
        """INSERT INTO deals (scope, scope_value, kind, amount, starts_at, ends_at)
           VALUES ('category', $1, 'percent', 1000, now() - interval '1 minute',
                   now() + interval '1 hour')""", str(parent))
    await until({a: 90.0, b: 60.0})  # the child category's product, 10 % off
    # the rival offers b cheaper (in stock): the buy box, so the listing price, moves
    await env.pool.execute("INSERT INTO offers (variant_id, seller_id, price_cents, available) "
                           "VALUES ($1, $2, 5500, 3)", b, rival)
    await until({a: 90.0, b: 55.0})
    await env.pool.execute(
        """INSERT INTO deals (scope, scope_value, kind, amount, starts_at, ends_at)
           VALUES ('seller', $1, 'fixed', 500, now() - interval '1 minute',
                   now() + interval '1 hour')""", str(rival))
    await until({a: 90.0, b: 50.0})


async def test_an_index_from_before_engine_prices_is_built_again(env: Env) -> None:
    """No deal-boundary position (an index built before documents carried the engine's
    prices): the builder builds the index again, with the prices results show, once."""
    a = await add_product(env.pool, env.seller, "Cedar chest", price=20_000)
    assert await env.builder.start.remote()
    await env.idle()
    rival = secrets.randbits(60)
    await env.pool.execute("INSERT INTO sellers (seller_id, name, rating) VALUES ($1, 'r', 4.9)",
                           rival)
    async with env.pool.acquire() as conn, conn.transaction():  # as an older version left it:
        await conn.execute("ALTER TABLE offers DISABLE TRIGGER offers_changed")  # no event
        await conn.execute("INSERT INTO offers (variant_id, seller_id, price_cents, available) "
                           "VALUES ($1, $2, 15000, 2)", a, rival)
        await conn.execute("ALTER TABLE offers ENABLE TRIGGER offers_changed")
    builds = (await env.builder.stats.remote()).full_builds
    deadline = asyncio.get_running_loop().time() + 60
    # the running builder moves the position every second: cleared until it saw it cleared
    while (await env.builder.stats.remote()).full_builds == builds:
        await env.pool.execute("UPDATE outbox_consumers SET deals_checked_until = NULL")
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.3)
    while True:
        res = await env.index.search(IndexQuery(TextQuery((("cedar",),)), limit=5,
                                                facets=False))
        if [h.doc["price"] for h in res.hits] == [150.0]:
            break
        assert asyncio.get_running_loop().time() < deadline, [h.doc for h in res.hits]
        await asyncio.sleep(0.2)
    # the position is set after the build, and the builder stops building (a last clear of
    # ours may have raced its own write: then it builds once more, and settles)
    async def state() -> tuple[int, Any]:
        return ((await env.builder.stats.remote()).full_builds,
                await env.pool.fetchval("SELECT deals_checked_until FROM outbox_consumers"))

    while True:
        (builds_before, position_before) = await state()
        await asyncio.sleep(2.5)
        (builds_after, position_after) = await state()
        if builds_after == builds_before and None not in (position_before, position_after):
            break
        assert asyncio.get_running_loop().time() < deadline + 30, (builds_before, builds_after)


async def test_the_previous_generation_is_kept_current_and_older_ones_dropped(
        env: Env) -> None:
    """After a rebuild the previous generation still receives every change, so a rollback to
    it serves current documents; a generation retired by a later rebuild is dropped (files,
    shard actors) a while after, not at once (Gateways may still read it for a moment)."""
    a = await add_product(env.pool, env.seller, "Walnut desk lamp")
    assert await env.builder.start.remote()
    first = (await env.index.registry.all())[0].name
    await env.builder.full_build.remote()
    built = await env.builder.full_build.remote()
    await retitle(env.pool, a, "Cherry desk lamp")
    await env.idle()

    async def titles_in(generation: str) -> dict[int, str]:
        res = await env.index.search_generation(generation, IndexQuery(
            TextQuery((("cherry",),)), limit=10, facets=False))
        return {h.product_id: h.doc["title"] for h in res.hits}

    assert await titles_in(built.previous) == {a: "Cherry desk lamp"}  # kept current
    status = {g.name: g.status for g in await env.index.registry.all()}
    assert status[first] == "RETIRED" and (env.index.root / first).is_dir()  # not at once

    report = await env.builder.rollback.remote()
    assert (report.live, report.previous) == (built.previous, built.generation)
    assert await env.index.registry.live() == built.previous
    assert await env.titles("cherry lamp") == {a: "Cherry desk lamp"}

    # a minute later (its retirement moved back in time), the builder drops the retired one
    await env.pool.execute("UPDATE search_generations SET retired_at = now() - interval "
                           "'2 minutes' WHERE name = $1", first)
    for _ in range(100):
        if {g.name: g.status for g in await env.index.registry.all()}[first] == "DROPPED":
            break
        await asyncio.sleep(0.2)
    assert {g.name: g.status for g in await env.index.registry.all()}[first] == "DROPPED"
    assert not (env.index.root / first).exists()


async def test_one_full_build_at_a_time_and_its_documents_counted(env: Env) -> None:
    """A second full build while one runs is refused (`rebuild_under_way`, naming the one
    building) and leaves nothing behind, unless it is the builder's own (it waits); the live
    generation records its documents."""
    for n in range(3):
        await add_product(env.pool, env.seller, f"Walnut desk lamp {n}")
    assert await env.builder.start.remote()
    first = env.builder.full_build.remote()
    for _ in range(200):  # until the first one has begun
        if await env.builder.building.remote() is not None:
            break
        await asyncio.sleep(0.05)
    building = await env.builder.building.remote()
    assert building is not None
    with pytest.raises(RebuildUnderWay) as second:
        await env.builder.full_build.remote()
    assert second.value.data["generation"] == building
    # the builder's own builds (a catalog load, a stale format) wait their turn instead
    after = env.builder.full_build.remote(wait=True)
    report = await first
    assert report.generation == building
    assert (await after).previous == building  # built next, and swapped in after it
    assert await env.builder.building.remote() is None
    building = (await after).generation
    made = {g.name: g for g in await env.index.registry.all()}
    assert made[building].status == "LIVE" and made[building].documents == report.documents
    assert made[report.generation].status == "PREVIOUS"
    assert report.documents == 3
    assert [g.status for g in made.values()].count("BUILDING") == 0


async def test_a_rebuild_that_ranks_judged_queries_worse_is_not_swapped_in(
        env: Env, tmp_path: Path) -> None:
    """With judged queries configured (AISLE_INDEX_GATE_JUDGMENTS), a rebuilt generation must
    rank them no worse than the live one. Here the catalog changed under the index without
    an event (as a bad migration or analyzer change would): the rebuild loses the judged
    product, fails its gate, is marked FAILED, and the live generation stays."""
    a = await add_product(env.pool, env.seller, "Walnut desk lamp")
    await add_product(env.pool, env.seller, "Steel desk")
    judgments = tmp_path / "judgments.csv"
    judgments.write_text(f"query,docid,rating\nwalnut lamp,E{a},3\n")
    ray.kill(env.builder)
    cfg = BuilderConfig(env.dsn, None, str(tmp_path), SHARDS,
                        gate_judgments=f"icecat:{judgments}")
    env.builder = IndexBuilder.remote(cfg)  # type: ignore[attr-defined]
    assert await env.builder.start.remote()
    live = await env.index.registry.live()
    good = await env.builder.full_build.remote()  # as good as the live one: swapped in
    assert (await env.builder.stats.remote()).last_gate == {
        "generation": good.generation, "ndcg": 1.0, "live": live, "live_ndcg": 1.0}
    await env.pool.execute("UPDATE products SET title = 'Oak chair' WHERE product_id = $1", a)
    with pytest.raises(GenerationRefused, match="judged icecat queries fell") as refused:
        await env.builder.full_build.remote()
    assert refused.value.code == "generation_refused"  # the API's 409 and the job's record
    assert [p for p in refused.value.data["problems"] if "judged" in p]
    status = {g.name: g.status for g in await env.index.registry.all()}
    assert await env.index.registry.live() == good.generation
    assert sorted(status.values()).count("FAILED") == 1
    assert await env.titles("walnut lamp") == {a: "Walnut desk lamp"}  # still served


async def test_status_answers_during_the_first_build(ray_cluster: None, fresh_dsn: str,
                                                    tmp_path: Path) -> None:
    """An operator's GET /api/v1/internal/search/status waited for the first build (minutes
    on a large catalog) and answered 503 after 5 s each time."""
    builder = ray.remote(**BUILDER_OPTIONS)(HeldFirstBuild).remote(
        BuilderConfig(fresh_dsn, None, str(tmp_path), SHARDS))
    try:
        status = await asyncio.wait_for(builder.status.remote(), 30.0)
        assert status.backend == "tantivy" and status.generations == []
        with pytest.raises(TimeoutError):  # no live generation yet: start still waits
            await asyncio.wait_for(builder.start.remote(), 0.5)
        await builder.go.remote()
        assert await builder.start.remote()
        status = await builder.status.remote()
        assert [g.status for g in status.generations] == ["LIVE"]
    finally:
        ray.kill(builder)
        pool = await create_pool(fresh_dsn, max_size=1)
        index = sharded_index(SHARDS, tmp_path, fresh_dsn, GenerationRegistry(pool, "tantivy"))
        for gen in (await index.registry.all()):
            await index.drop_generation(gen.name)
        await pool.close()
