"""Pricing against the real PostgreSQL: coupon limits under concurrent redemption, price
changes with their history and outbox event, and the inputs of a quote."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from adapters.postgres import create_pool
from adapters.postgres import pricing_repo as repo
from adapters.postgres.pricing_repo import price_changes
from domain.errors import Conflict
from domain.inventory import UnknownVariant
from domain.pricing import CouponRejected, Line, buy_box, quote

SELLER, RIVAL = 501, 502
PRODUCT, VARIANT = 9_001, 9_101
NOW = datetime.now(UTC)


@pytest.fixture
async def pg(fresh_dsn: str) -> AsyncIterator[asyncpg.Pool]:
    """A fresh database with one product, and a pool wide enough for real contention."""
    pool = await create_pool(fresh_dsn, min_size=2, max_size=20)
    await pool.execute("INSERT INTO sellers (seller_id, name, rating) "
                       "VALUES ($1, 'Owner', 4.5), ($2, 'Rival', 4.9)", SELLER, RIVAL)
    await pool.execute("""
        INSERT INTO categories (category_id, parent_id, name, path, depth) VALUES
            (1, NULL, 'Electronics', '{Electronics}', 0),
            (2, 1, 'Audio', '{Electronics,Audio}', 1);
        INSERT INTO warehouses (warehouse_id, name, region) VALUES ('WH_01', 'one', 'eu');""")
    await pool.execute("""INSERT INTO products (product_id, seller_id, external_id, title,
                                                category_id, brand)
                          VALUES ($1, $2, 'ext', 'Headphones', 2, 'Sony')""", PRODUCT, SELLER)
    await pool.execute("""INSERT INTO product_variants (variant_id, product_id, sku, price_cents,
                                                        compare_price_cents)
                          VALUES ($1, $2, 'SKU-1', 10000, 12000)""", VARIANT, PRODUCT)
    await pool.execute("INSERT INTO stock (variant_id, warehouse_id, available) "
                       "VALUES ($1, 'WH_01', 3)", VARIANT)
    yield pool
    await pool.close()


async def add_coupon(pool: asyncpg.Pool, code: str, global_limit: int | None = None,
                     per_customer_limit: int | None = None,
                     expires_at: datetime = NOW + timedelta(days=1)) -> None:
    await pool.execute(
        """INSERT INTO coupons (code, scope, kind, amount, global_limit, per_customer_limit,
                                expires_at) VALUES ($1, 'cart', 'percent', 1000, $2, $3, $4)""",
        code, global_limit, per_customer_limit, expires_at)


async def redeem(pool: asyncpg.Pool, code: str, customer: str,
                 reference: str) -> repo.Redemption | Exception:
    try:
        async with pool.acquire() as conn:
            return await repo.redeem_coupon(conn, code, customer, reference)
    except (CouponRejected, Conflict) as exc:
        return exc


async def test_global_limit_is_exact_under_100_concurrent_redemptions(
        pg: asyncpg.Pool) -> None:
    await add_coupon(pg, "FLASH10", global_limit=10)
    results = await asyncio.gather(*(redeem(pg, "flash10", f"c{i}", f"order-{i}")
                                     for i in range(100)))
    wins = [r for r in results if isinstance(r, repo.Redemption)]
    losses = [r for r in results if isinstance(r, CouponRejected)]
    assert len(wins) == 10 and len(losses) == 90
    assert {r.reason for r in losses} == {"limit_reached"}
    assert sorted(r.times_used for r in wins) == list(range(1, 11))
    assert await pg.fetchval("SELECT times_used FROM coupons WHERE code = 'FLASH10'") == 10
    assert await pg.fetchval("SELECT count(*) FROM coupon_redemptions") == 10


async def test_per_customer_limit_is_exact_under_concurrency(pg: asyncpg.Pool) -> None:
    await add_coupon(pg, "TWICE", per_customer_limit=2)
    results = await asyncio.gather(*(redeem(pg, "TWICE", f"c{i % 5}", f"order-{i}")
                                     for i in range(100)))
    wins = Counter(r.customer_id for r in results if isinstance(r, repo.Redemption))
    assert wins == {f"c{i}": 2 for i in range(5)}
    assert {r.reason for r in results if isinstance(r, CouponRejected)} == \
        {"customer_limit_reached"}
    assert await pg.fetchval("SELECT times_used FROM coupons WHERE code = 'TWICE'") == 10
    rows = await pg.fetch("SELECT customer_id, count(*) AS n FROM coupon_redemptions "
                          "GROUP BY 1 ORDER BY 1")
    assert [(r["customer_id"], r["n"]) for r in rows] == [(f"c{i}", 2) for i in range(5)]


async def test_a_retried_redemption_counts_once(pg: asyncpg.Pool) -> None:
    await add_coupon(pg, "ONCE1", global_limit=1)
    results = await asyncio.gather(*(redeem(pg, "ONCE1", "alice", "quote-1") for _ in range(20)))
    assert all(isinstance(r, repo.Redemption) for r in results), results
    assert sorted(r.replayed for r in results if isinstance(r, repo.Redemption)) == \
        [False] + [True] * 19
    assert await pg.fetchval("SELECT times_used FROM coupons WHERE code = 'ONCE1'") == 1
    # the limit is reached, yet the same reference still answers as before; others are refused
    again = await redeem(pg, "ONCE1", "alice", "quote-1")
    assert isinstance(again, repo.Redemption) and again.replayed and again.times_used == 1
    other = await redeem(pg, "ONCE1", "bob", "quote-2")
    assert isinstance(other, CouponRejected) and other.reason == "limit_reached"
    stolen = await redeem(pg, "ONCE1", "bob", "quote-1")
    assert isinstance(stolen, Conflict) and stolen.code == "coupon_reference_conflict"


async def test_expired_and_unknown_coupons_count_nothing(pg: asyncpg.Pool) -> None:
    await add_coupon(pg, "OLD1", expires_at=NOW - timedelta(seconds=1))
    expired = await redeem(pg, "OLD1", "alice", "q")
    assert isinstance(expired, CouponRejected) and expired.reason == "expired"
    async with pg.acquire() as conn:
        with pytest.raises(repo.CouponNotFound):
            await repo.redeem_coupon(conn, "NOPE", "alice", "q")
    assert await pg.fetchval("SELECT times_used FROM coupons WHERE code = 'OLD1'") == 0
    assert await pg.fetchval("SELECT count(*) FROM coupon_redemptions") == 0


async def test_the_database_refuses_more_uses_than_the_global_limit(pg: asyncpg.Pool) -> None:
    await add_coupon(pg, "CAP1", global_limit=1)
    with pytest.raises(asyncpg.CheckViolationError):
        await pg.execute("UPDATE coupons SET times_used = 2 WHERE code = 'CAP1'")


async def test_record_price_change_writes_price_history_and_outbox_together(
        pg: asyncpg.Pool) -> None:
    async with pg.acquire() as conn:
        change = await repo.record_price_change(conn, VARIANT, 10_000, 9_500, "dynamic")
        assert change is not None and change.product_id == PRODUCT
        assert await repo.record_price_change(conn, VARIANT, 9_500, 9_500, "dynamic") is None
        with pytest.raises(Conflict) as err:  # stale: the price is 9500 now
            await repo.record_price_change(conn, VARIANT, 10_000, 8_000, "seller")
        assert err.value.code == "price_changed" and err.value.data["current_cents"] == 9_500
        with pytest.raises(UnknownVariant):
            await repo.record_price_change(conn, 1, 1, 2, "seller")
        # a failure inside the statement (here a CHECK on price_history) leaves nothing behind
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.fetchrow(price_changes._PRICE_CHANGE, VARIANT, 9_500, 9_000, "")
    assert await pg.fetchval("SELECT price_cents FROM product_variants WHERE variant_id = $1",
                             VARIANT) == 9_500
    history = await pg.fetch("SELECT variant_id, old_cents, new_cents, reason FROM price_history")
    assert [tuple(r) for r in history] == [(VARIANT, 10_000, 9_500, "dynamic")]
    events = await pg.fetch("SELECT event_type, aggregate_id, payload FROM outbox")
    assert [(e["event_type"], e["aggregate_id"]) for e in events] == \
        [("price.changed", PRODUCT)]
    assert events[0]["payload"] == {"product_id": str(PRODUCT), "variant_id": str(VARIANT),
                                    "old_cents": 10_000, "new_cents": 9_500,
                                    "reason": "dynamic"}


async def test_two_racing_price_changes_from_one_price_one_wins(pg: asyncpg.Pool) -> None:
    async def change(new: int) -> repo.PriceChange | Exception | None:
        try:
            async with pg.acquire() as conn:
                return await repo.record_price_change(conn, VARIANT, 10_000, new, "seller")
        except Conflict as exc:
            return exc

    results = await asyncio.gather(*(change(9_000 + i) for i in range(10)))
    wins = [r for r in results if isinstance(r, repo.PriceChange)]
    assert len(wins) == 1
    assert await pg.fetchval("SELECT count(*) FROM price_history") == 1
    assert await pg.fetchval("SELECT count(*) FROM outbox") == 1
    assert await pg.fetchval("SELECT price_cents FROM product_variants") == wins[0].new_cents


async def test_load_pricing_feeds_a_quote(pg: asyncpg.Pool) -> None:
    await pg.execute("INSERT INTO offers (variant_id, seller_id, price_cents, available) "
                     "VALUES ($1, $2, 9800, 5)", VARIANT, RIVAL)
    await pg.execute(
        """INSERT INTO deals (scope, scope_value, kind, amount, starts_at, ends_at) VALUES
           ('category', '1', 'percent', 1000, $1, $2),   -- the parent category: applies
           ('brand', 'SONY', 'fixed', 500, $1, $2),      -- any case: applies
           ('seller', '999', 'percent', 9000, $1, $2),   -- another seller: not loaded
           -- and a deal on this product that has not started: not loaded
           ('product', $3, 'percent', 9000, $2, $2::timestamptz + interval '1 day')""",
        NOW - timedelta(hours=1), NOW + timedelta(hours=1), str(PRODUCT))
    await pg.execute(
        """INSERT INTO dynamic_price_rules (variant_id, floor_cents, ceiling_cents, low_stock,
               high_stock, hot_velocity, cold_velocity, step_up_bp, step_down_bp)
           VALUES ($1, 9200, 11000, 5, 100, 10, 1, 500, 500)""", VARIANT)
    async with pg.acquire() as conn:
        inputs = await repo.load_pricing(conn, [VARIANT, VARIANT, 12345], NOW)
    assert list(inputs.variants) == [VARIANT]
    vp = inputs.variants[VARIANT]
    assert vp.item.category_ids == {1, 2} and vp.item.brand == "Sony"
    assert vp.compare_price_cents == 12_000 and vp.rule is not None
    assert sorted((o.seller_id, o.price_cents, o.available, o.seller_rating)
                  for o in vp.offers) == [(SELLER, 10_000, 3, 4.5), (RIVAL, 9_800, 5, 4.9)]
    assert sorted(d.scope for d in inputs.deals) == ["brand", "category"]
    # the owner's offer: 10% off -> 9000, cut back to the floor 9200
    q = quote([Line(vp.item, 1)], inputs.deals, inputs.rules, None, None, NOW)
    assert q.lines[0].unit.dynamic_cents == 9_200 and q.total_cents == 9_200
    # the rival wins the buy box; the owner's rule does not bind the rival's price
    box = buy_box(vp.offers)
    assert box.winner is not None and box.winner.seller_id == RIVAL
    q = quote([Line(vp.item.sold_by(box.winner), 2)], inputs.deals, inputs.rules, None, None,
              NOW)
    assert q.lines[0].unit.dynamic_cents == 8_820 and q.total_cents == 17_640
    # the names shown beside the prices, and when the next deal in scope starts
    assert inputs.seller_names == {SELLER: "Owner", RIVAL: "Rival"}
    assert set(inputs.deal_names) == {d.deal_id for d in inputs.deals}
    assert inputs.next_deal_start == NOW + timedelta(hours=1)
    async with pg.acquire() as conn:  # a product page's: the same, by the product
        assert await repo.load_product_pricing(conn, PRODUCT, NOW) == inputs


async def test_listing_prices_hold_until_a_deal_in_scope_starts(pg: asyncpg.Pool) -> None:
    """Until the first deal they were priced with ends or the next one in scope starts; a
    disabled rule is not loaded; a product off sale has nothing to price."""
    await pg.execute(
        """INSERT INTO deals (name, scope, scope_value, kind, amount, starts_at, ends_at) VALUES
           ('Spring', 'brand', 'sony', 'percent', 1000, $1, $2),
           ('Later', 'product', $3, 'percent', 2000, $4, $2),
           ('Elsewhere', 'brand', 'acme', 'percent', 2000, $5, $2)""",
        NOW - timedelta(hours=1), NOW + timedelta(hours=3), str(PRODUCT),
        NOW + timedelta(minutes=30), NOW + timedelta(minutes=10))
    await pg.execute(
        """INSERT INTO dynamic_price_rules (variant_id, floor_cents, ceiling_cents, low_stock,
               high_stock, hot_velocity, cold_velocity, step_up_bp, step_down_bp, enabled)
           VALUES ($1, 9200, 11000, 5, 100, 10, 1, 500, 500, false)""", VARIANT)
    async with pg.acquire() as conn:
        inputs = await repo.load_product_pricing(conn, PRODUCT, NOW)
        listed = await repo.listings(conn, [VARIANT], NOW)
        shown, until = listed.prices, listed.until
    assert [inputs.deal_names[d.deal_id] for d in inputs.deals] == ["Spring"]
    assert inputs.variants[VARIANT].rule is None
    assert inputs.next_deal_start == NOW + timedelta(minutes=30)  # not the other brand's
    assert shown[PRODUCT][0] == 9_000 and until == NOW + timedelta(minutes=30)
    await pg.execute("UPDATE products SET status = 'INACTIVE'")
    async with pg.acquire() as conn:
        off = await repo.load_product_pricing(conn, PRODUCT, NOW)
    assert (off.variants, off.deals, off.next_deal_start) == ({}, (), None)


async def test_load_coupon_reports_usage(pg: asyncpg.Pool) -> None:
    await add_coupon(pg, "SAVE10", global_limit=5, per_customer_limit=2)
    await redeem(pg, "SAVE10", "alice", "q1")
    await redeem(pg, "SAVE10", "bob", "q2")
    async with pg.acquire() as conn:
        loaded = await repo.load_coupon(conn, " save10 ", "alice")
        assert await repo.load_coupon(conn, "NOPE", "alice") is None
    assert loaded is not None
    coupon, usage = loaded
    assert coupon.global_limit == 5 and (usage.times_used, usage.customer_times_used) == (2, 1)


async def test_reprice_moves_scarce_fast_sellers_up_and_records_it(pg: asyncpg.Pool) -> None:
    await pg.execute(
        """INSERT INTO dynamic_price_rules (variant_id, floor_cents, ceiling_cents, low_stock,
               high_stock, hot_velocity, cold_velocity, step_up_bp, step_down_bp)
           VALUES ($1, 5000, 10300, 5, 100, 4, 1, 200, 200)""", VARIANT)
    await pg.execute(
        """INSERT INTO inventory_movements (variant_id, warehouse_id, kind, quantity,
               available_after, reserved_after, sold_after)
           VALUES ($1, 'WH_01', 'DEDUCT', 3, 3, 0, 3), ($1, 'WH_01', 'DEDUCT', 2, 3, 0, 5)""",
        VARIANT)
    async with pg.acquire() as conn:
        first, more = await repo.reprice(conn, NOW + timedelta(seconds=5))
        second, _ = await repo.reprice(conn, NOW + timedelta(seconds=5))
        third, _ = await repo.reprice(conn, NOW + timedelta(seconds=5))
        later, _ = await repo.reprice(conn, NOW + timedelta(days=2))  # sales out of the window
    assert more is None
    assert [(c.old_cents, c.new_cents) for c in first + second] == [(10_000, 10_200),
                                                                    (10_200, 10_300)]
    assert third == [] and later == []  # at the ceiling; then neither hot nor plentiful
    assert await pg.fetchval("SELECT count(*) FROM price_history WHERE reason = 'dynamic'") == 2
    assert await pg.fetchval("SELECT count(*) FROM outbox WHERE event_type = 'price.changed' "
                             "AND payload->>'reason' = 'dynamic'") == 2
