"""Retention: what only grows is pruned once nobody can ask for it, and nothing else is
(real PostgreSQL, real Ray partitions making the rows)."""

from __future__ import annotations

import asyncpg
import pytest

from actors.inventory_client import InventoryClient
from adapters.postgres import cart_decisions
from adapters.postgres.jobs import JobStore
from adapters.postgres.outbox import OutboxConsumer, OutboxEvent
from adapters.postgres.retention import PRUNE_LOCK, Pruned, PruneUnderWay, prune
from adapters.settings import MIN_RETENTION_DAYS
from tests.integration.conftest import check_invariants, make_catalog
from tests.integration.test_cart_decisions import spread

KEEP_S = 14 * 86400


async def age(db: asyncpg.Pool, table: str, column: str, key: str, ids: list[str],
              days: int = 15) -> None:
    await db.execute(f"UPDATE {table} SET {column} = now() - make_interval(days => $2) "
                     f"WHERE {key} = ANY($1::text[])", ids, days)


async def test_prune_removes_what_nobody_can_ask_for_and_keeps_the_rest(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    a, b = spread(client, 2)
    await make_catalog(db, {a: {"WH_01": 50}, b: {"WH_01": 50}})
    old_sold = (await client.commit((await client.reserve([(a, 1, None)], key="k1"))
                                    ["reservation_id"]))["reservation_id"]
    old_open = (await client.reserve([(a, 1, None)], key="k2"))["reservation_id"]
    old_cart = (await client.reserve([(a, 1, None), (b, 1, None)], key="k3"))["reservation_id"]
    await client.release(old_cart)
    deciding = (await client.reserve([(a, 1, None), (b, 1, None)], key="k4"))["reservation_id"]
    async with db.acquire() as conn:  # decided, its slots not closed yet (a partition down)
        assert await cart_decisions.decide(conn, {deciding: "RELEASED"}) == {
            deciding: "RELEASED"}
    new_sold = (await client.commit((await client.reserve([(b, 1, None)], key="k5"))
                                    ["reservation_id"]))["reservation_id"]
    rows = {r["reservation_id"]: (r["cart_id"], r["status"]) for r in await db.fetch(
        "SELECT reservation_id, cart_id, status FROM reservations")}
    old = [rid for rid, (cart, _) in rows.items()
           if cart in (old_sold, old_open, old_cart, deciding)]
    assert len(old) == 6
    await age(db, "reservations", "updated_at", "reservation_id", old)
    await age(db, "cart_decisions", "decided_at", "cart_id", [old_cart, deciding])
    ops = [r["op_key"] for r in await db.fetch("SELECT op_key FROM inventory_ops")]
    old_ops = [k for k in ops if "k5" not in k and new_sold not in k]
    assert old_ops and len(old_ops) < len(ops)
    await age(db, "inventory_ops", "created_at", "op_key", old_ops)
    # a key outlives its outcome by a reservation's longest life (its reservation's pruning)
    for scope_key, days in (("old", 22), ("kept", 20), ("new", 1)):
        await db.execute("INSERT INTO idempotency_keys (scope, key, fingerprint, created_at) "
                         "VALUES ('s', $1, 'f', now() - make_interval(days => $2))",
                         scope_key, days)
    jobs = JobStore(db)
    ended, running, recent = [await jobs.start("index.rebuild", {}) for _ in range(3)]
    await jobs.succeed(ended.job_id, {})
    await jobs.fail(recent.job_id, "x")
    await age(db, "jobs", "finished_at", "job_id", [ended.job_id])
    await age(db, "jobs", "created_at", "job_id", [ended.job_id, running.job_id])

    # the outbox: every event old; with no consumer nothing is pruned, then what one consumed
    for i in range(6):
        await db.execute("INSERT INTO outbox (event_type, aggregate_id) "
                         "VALUES ('product.updated', $1)", i + 1)
    events = await db.fetch("SELECT event_id, txid::text AS txid FROM outbox "
                            "ORDER BY txid, event_id")
    assert len(events) >= 4
    await db.execute("UPDATE outbox SET created_at = now() - interval '15 days'")
    first = await prune(db, KEEP_S, batch=2)  # batch after batch: 3 reservations
    assert first.outbox == 0 and first.failed == {}
    consumer = OutboxConsumer(db, "test-consumer")
    await consumer.begin(await consumer.start_point())
    middle = events[len(events) // 2]
    async with db.acquire() as conn:
        await consumer.commit(conn, OutboxEvent(middle["event_id"], "x", 0, None,
                                                int(middle["txid"])))
    second = await prune(db, KEEP_S)

    # closed and old: the committed one-slot cart, and the released two-slot cart (2 rows)
    assert first.reservations == 3
    assert first.cart_decisions == 1  # old_cart's; `deciding` still has open slots
    assert first.inventory_ops == len(old_ops)
    assert first.idempotency_keys == 1 and first.jobs == 1
    assert second == Pruned(shopper_carts=0, reservations=0, inventory_ops=0, cart_decisions=0,
                            idempotency_keys=0, outbox=len(events) // 2 + 1, jobs=0)
    left = {r["cart_id"] for r in await db.fetch("SELECT cart_id FROM reservations")}
    assert left == {old_open, deciding, new_sold}
    assert {r["cart_id"] for r in await db.fetch("SELECT cart_id FROM cart_decisions")} == {
        deciding}
    assert {r["job_id"] for r in await db.fetch("SELECT job_id FROM jobs")} == {
        running.job_id, recent.job_id}
    assert sorted(r["key"] for r in await db.fetch("SELECT key FROM idempotency_keys")) == [
        "kept", "new"]
    assert len(await db.fetch("SELECT 1 FROM outbox")) == len(events) - len(events) // 2 - 1
    # what is still open is still served, and still closes
    assert (await client.get(old_open))["status"] == "OPEN"
    assert (await client.commit(old_open))["status"] == "COMMITTED"
    await check_invariants(db)


async def test_one_pruner_at_a_time_and_never_under_the_longest_reservation(
        db: asyncpg.Pool) -> None:
    async with db.acquire() as holder:
        await holder.execute("SELECT pg_advisory_lock($1)", PRUNE_LOCK)
        with pytest.raises(PruneUnderWay):
            await prune(db, KEEP_S)
        await holder.execute("SELECT pg_advisory_unlock($1)", PRUNE_LOCK)
    assert (await prune(db, KEEP_S)).total == 0
    with pytest.raises(ValueError, match="retention under"):
        await prune(db, (MIN_RETENTION_DAYS - 1) * 86400)


async def test_abandoned_carts_go_with_their_run_out_holds_and_orders_stay(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    (a,) = spread(client, 1)
    await make_catalog(db, {a: {"WH_01": 50}})

    async def reserved(key: str, then: str | None = None) -> str:
        rid = str((await client.reserve([(a, 1, None)], key=key))["reservation_id"])
        if then == "release":
            await client.release(rid)  # as its expiry would
        elif then == "commit":
            await client.commit(rid)
        return rid

    ran_out, live = await reserved("c1", "release"), await reserved("c2")
    sold, ordered = await reserved("c3", "commit"), await reserved("c4", "commit")
    unrecorded = await reserved("c5", "commit")  # sold, the cart never told (answer lost)
    priced = await reserved("c6", "release")
    # cart: (its hold's reservation, expiry, sold as the cart recorded it), updated days ago
    carts = {"abandoned": (ran_out, "-1 day", False), "recent": (None, "", False),
             "order": (ordered, "-1 day", True), "selling": (sold, "-1 day", True),
             "holding": (live, "+1 day", False), "busy": (None, "", False),
             "unrecorded": (unrecorded, "-1 day", False), "priced": (priced, "-1 day", False)}
    for n, (cart, (rid, expires, committed)) in enumerate(carts.items()):
        await db.execute(
            "INSERT INTO shopper_carts (cart_id, token_hash, status, updated_at, busy_until) "
            "VALUES ($1, $2, $3, now() - make_interval(days => $4), "
            "CASE WHEN $5 THEN now() + interval '1 minute' END)", cart, bytes([n]),
            "CHECKED_OUT" if cart == "order" else "OPEN", 1 if cart == "recent" else 15,
            cart == "busy")
        if rid:
            await db.execute(
                "INSERT INTO shopper_cart_holds (reservation_id, cart_id, variant_id, quantity,"
                f" expires_at, committed_at) VALUES ($1, $2, $3, 1, now() + interval "
                f"'{expires}', CASE WHEN $4 THEN now() END)", rid, cart, a, committed)
    # a checkout of "priced" accepted its price, then stopped
    await db.execute("INSERT INTO accepted_quotes (quote_id, reservation_id, total_cents, "
                     "payload) VALUES ('q-priced', 'shopcart:priced', 100, '{}')")
    closed = [r["reservation_id"] for r in await db.fetch(
        "SELECT reservation_id FROM reservations WHERE status <> 'OPEN'")]
    await age(db, "reservations", "updated_at", "reservation_id", closed)

    pruned = await prune(db, KEEP_S)

    assert pruned.shopper_carts == 1 and pruned.failed == {}
    assert {r["cart_id"] for r in await db.fetch("SELECT cart_id FROM shopper_carts")} == (
        set(carts) - {"abandoned"})
    assert {r["reservation_id"] for r in await db.fetch(
        "SELECT reservation_id FROM shopper_cart_holds")} == {
        ordered, sold, live, unrecorded, priced}
    # the abandoned cart's run-out reservation went in the same pass, and so did those its
    # cart records as sold (an order's, an unfinished checkout's: never read again); one the
    # cart holds unsold stays (a checkout may still commit it), with the open one
    left = {r["cart_id"] for r in await db.fetch("SELECT cart_id FROM reservations")}
    assert left == {live, unrecorded, priced}
    await check_invariants(db)
