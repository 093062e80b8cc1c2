"""A cart held across several partitions closes whole: a commit racing a release, or a commit
at the cart's deadline, never leaves it half sold and half given back (real PostgreSQL, real
Ray)."""

from __future__ import annotations

import asyncio
import secrets
import time

import asyncpg
import pytest

from actors.inventory_client import InventoryClient
from domain.errors import AisleError, Conflict, ValidationFailed
from domain.inventory import ReservationNotFound
from domain.inventory_api import CartJson
from tests.integration.conftest import check_invariants, make_catalog


def spread(client: InventoryClient, n: int) -> list[int]:
    """n variants, each owned by another partition."""
    vs: list[int] = []
    while len(vs) < n:
        v = secrets.randbits(60)
        if client.owner(v) not in {client.owner(x) for x in vs}:
            vs.append(v)
    return vs


async def settled(client: InventoryClient, cart: str) -> CartJson:
    """The cart once every slot of it is closed alike (partitions expire theirs when due)."""
    for _ in range(60):
        got = await client.get(cart)
        if got["status"] not in ("OPEN", "MIXED"):
            return got
        await asyncio.sleep(0.1)
    return await client.get(cart)


async def sold(db: asyncpg.Pool, vs: list[int]) -> list[int]:
    rows = await db.fetch("SELECT variant_id, sum(sold) AS s FROM stock "
                          "WHERE variant_id = ANY($1) GROUP BY 1", vs)
    by = {r["variant_id"]: int(r["s"]) for r in rows}
    return [by.get(v, 0) for v in vs]


async def test_a_commit_racing_a_release_closes_the_whole_cart_one_way(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    a, b = spread(client, 2)
    await make_catalog(db, {a: {"WH_01": 50}, b: {"WH_01": 50}})
    other = InventoryClient(client.n, client.dsn)  # as another Gateway replica
    outcomes: list[tuple[str, str]] = []
    for i in range(12):
        cart = (await client.reserve([(a, 1, None), (b, 1, None)], key=f"race-{i}"))
        rid = cart["reservation_id"]
        # closes naming a variant start at its slot: each starts where the other does not
        got = await asyncio.gather(
            client.commit(rid, variant_id=a) if i % 2 else client.commit(rid),
            other.release(rid, variant_id=b) if i % 2 else other.release(rid),
            return_exceptions=True)
        won = [g for g in got if not isinstance(g, BaseException)]
        lost = [g for g in got if isinstance(g, BaseException)]
        assert len(won) == 1 and len(lost) == 1, got  # one close wins, the other is told
        assert isinstance(lost[0], Conflict) and lost[0].code == "reservation_closed"
        assert lost[0].data["status"] == won[0]["status"]
        final = await client.get(rid)
        assert final["status"] == won[0]["status"] in ("COMMITTED", "RELEASED")
        outcomes.append((rid, final["status"]))
    committed = sum(s == "COMMITTED" for _, s in outcomes)
    assert await sold(db, [a, b]) == [committed, committed]
    assert await db.fetchval(
        "SELECT count(*) FROM cart_decisions WHERE cart_id = ANY($1)",
        [rid for rid, _ in outcomes]) == len(outcomes)
    await check_invariants(db)


async def test_a_commit_at_the_deadline_either_sells_the_whole_cart_or_none(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    a, b = spread(client, 2)
    await make_catalog(db, {a: {"WH_01": 50}, b: {"WH_01": 50}})
    carts = [await client.reserve([(a, 1, None), (b, 1, None)], key=f"ttl-{i}", ttl_s=1.0)
             for i in range(8)]

    async def commit_at_deadline(i: int, cart: CartJson) -> str:
        assert cart["expires_at_ms"] is not None
        # around the deadline: a little before, at, and a little after it
        await asyncio.sleep(max(0.0, cart["expires_at_ms"] / 1000 - time.time()
                                + (i % 4 - 1.5) * 0.15))
        try:
            return (await client.commit(cart["reservation_id"]))["status"]
        except Conflict as exc:
            assert exc.code == "reservation_closed"
            return str(exc.data["status"])

    told = await asyncio.gather(*(commit_at_deadline(i, c) for i, c in enumerate(carts)))
    finals = [await settled(client, c["reservation_id"]) for c in carts]
    assert [f["status"] for f in finals] == told  # what the caller was told is what happened
    assert set(told) <= {"COMMITTED", "EXPIRED"}
    n = told.count("COMMITTED")
    assert await sold(db, [a, b]) == [n, n]
    await check_invariants(db)


async def test_a_closed_reservation_is_found_after_its_deadline(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    a, b = spread(client, 2)
    await make_catalog(db, {a: {"WH_01": 5}, b: {"WH_01": 5}})
    one = await client.reserve([(a, 1, None)], ttl_s=3.0)
    two = await client.reserve([(a, 1, None), (b, 1, None)], ttl_s=3.0)
    gone = await client.reserve([(b, 1, None)], ttl_s=3.0)
    await client.commit(one["reservation_id"])
    await client.commit(two["reservation_id"])
    await asyncio.sleep(4.0)  # past every deadline: the partitions forget them
    assert (await client.get(one["reservation_id"]))["status"] == "COMMITTED"
    assert (await client.get(two["reservation_id"]))["status"] == "COMMITTED"
    assert (await settled(client, gone["reservation_id"]))["status"] == "EXPIRED"
    await check_invariants(db)


async def test_a_close_naming_a_variant_it_does_not_fit_closes_nothing(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    a, b = spread(client, 2)
    await make_catalog(db, {a: {"WH_01": 5}, b: {"WH_01": 5}})
    cart = await client.reserve([(a, 2, None), (b, 1, None)])
    rid = cart["reservation_id"]
    with pytest.raises(ValidationFailed) as err:
        await client.commit(rid, variant_id=a, quantity=1)
    assert "quantity_delta" in err.value.fields
    assert (await client.get(rid))["status"] == "OPEN"
    assert await db.fetchval("SELECT count(*) FROM cart_decisions WHERE cart_id = $1", rid) == 0
    done = await client.commit(rid, variant_id=a, quantity=2)
    assert done["status"] == "COMMITTED"
    with pytest.raises(AisleError):
        await client.release(rid)
    assert await sold(db, [a, b]) == [2, 1]
    await check_invariants(db)


async def test_a_cart_refused_whole_is_decided_released_and_a_made_up_one_is_not_found(
        db: asyncpg.Pool, client: InventoryClient) -> None:
    a, b = spread(client, 2)
    await make_catalog(db, {a: {"WH_01": 5}, b: {"WH_01": 1}})
    with pytest.raises(AisleError):
        await client.reserve([(a, 2, None), (b, 3, None)], key="short")  # b is short
    [(cart, outcome)] = [(r["cart_id"], r["outcome"]) for r in await db.fetch(
        "SELECT cart_id, outcome FROM cart_decisions WHERE cart_id IN "
        "(SELECT cart_id FROM reservations WHERE lines::text LIKE $1)", f"%{a}%")]
    assert outcome == "RELEASED"
    assert (await client.stock([a]))[str(a)]["available"] == 5  # given back
    with pytest.raises(Conflict) as err:  # a commit of it finds it released, never half sold
        await client.commit(cart)
    assert err.value.data["status"] == "RELEASED"
    # nor is COMMITTED decided for a cart a slot of which was never reserved (released or
    # not: here a first try's undo that could not record a decision)
    await db.execute("DELETE FROM cart_decisions WHERE cart_id = $1", cart)
    with pytest.raises(ReservationNotFound):
        await client.commit(cart)
    assert await db.fetchval("SELECT count(*) FROM cart_decisions WHERE cart_id = $1",
                             cart) == 0
    made_up = cart[:1] + "f" * 20 + cart[21:]
    with pytest.raises(ReservationNotFound):
        await client.commit(made_up)
    assert await db.fetchval("SELECT count(*) FROM cart_decisions WHERE cart_id = $1",
                             made_up) == 0
    assert await sold(db, [a, b]) == [0, 0]
    await check_invariants(db)
