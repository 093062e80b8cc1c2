"""The shoppers' cart API over HTTP: a cart per token (cookie or header), holds that reserve
stock at once and give it back on removal, a coupon, checkout that sells the holds at the
quoted price, and the errors (a 4xx naming the field, nothing held or written)."""

from __future__ import annotations

import asyncio
import secrets
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.postgres.pricing_repo.accepted_quotes import accept_quote
from adapters.settings import Settings
from domain.pricing import read_quote
from tests.conftest import INTERNAL_TOKEN
from tests.integration.conftest import check_invariants, make_catalog

AUTH = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


async def _variant(pool: asyncpg.Pool, price: int, units: int) -> int:
    v = secrets.randbits(60)
    await make_catalog(pool, {v: {"WH_01": units}})
    await pool.execute("UPDATE product_variants SET price_cents = $2 WHERE variant_id = $1",
                       v, price)
    return v


async def _available(client: httpx.AsyncClient, v: int) -> int:
    r = await client.get(f"/api/v1/inventory/{v}", headers=AUTH)
    assert r.status_code == 200, r.text
    return int(r.json()["available"])


async def _coupon(pool: asyncpg.Pool, cents_off: int) -> str:
    """A new cart coupon: `cents_off` off, once per customer, for a day."""
    code = "C" + secrets.token_hex(4).upper()
    await pool.execute(
        """INSERT INTO coupons (code, scope, kind, amount, per_customer_limit, global_limit,
                                expires_at)
           VALUES ($1, 'cart', 'fixed', $2, 1, 10, now() + interval '1 day')""",
        code, cents_off)
    return code


async def _new_cart(app_url: str) -> httpx.AsyncClient:
    """A shopper: a client with its own cookie jar, and a cart."""
    shopper = httpx.AsyncClient(base_url=app_url, timeout=30)
    r = await shopper.post("/api/v1/cart")
    assert r.status_code == 201, r.text
    assert shopper.cookies.get("aisle_cart") == r.json()["cart_token"]
    return shopper


async def _add(shopper: httpx.AsyncClient, v: int, quantity: int = 1,
               key: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return await shopper.post("/api/v1/cart/items", headers=headers,
                              json={"variant_id": v, "quantity": quantity})


async def test_add_holds_stock_at_once_and_remove_gives_it_back(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    v = await _variant(pool, 2_500, 10)
    shopper = await _new_cart(app_url)
    try:
        r = await _add(shopper, v, 3, key="add-1")
        assert r.status_code == 200, r.text
        cart = r.json()
        [line] = cart["lines"]
        assert (line["variant_id"], line["quantity"]) == (str(v), 3)
        assert line["expires_at"] > cart["quote"]["priced_at"][:19]  # a hold for a while
        assert cart["quote"]["total_cents"] == 7_500
        assert await _available(client, v) == 7  # held now, not at checkout
        again = await _add(shopper, v, 3, key="add-1")  # a retry of the same add
        assert again.status_code == 200 and again.json()["lines"][0]["quantity"] == 3
        assert await _available(client, v) == 7  # held once
        w, empty = await _variant(pool, 1_000, 4), await _variant(pool, 1_000, 0)
        for other in (w, empty):  # the key with another add: refused, whatever its stock
            r = await _add(shopper, other, 1, key="add-1")
            assert r.status_code == 422 and "Idempotency-Key" in r.json()["error"]["fields"]
        assert await _available(client, w) == 4
        assert [ln["variant_id"] for ln in (await shopper.get("/api/v1/cart")).json()[
            "lines"]] == [str(v)]
        more = await _add(shopper, v, 2)
        assert more.json()["lines"][0]["quantity"] == 5 and await _available(client, v) == 5
        gone = await shopper.delete(f"/api/v1/cart/items/{v}")
        assert gone.status_code == 200 and gone.json()["lines"] == []
        assert await _available(client, v) == 10
        await check_invariants(pool)
    finally:
        await shopper.aclose()


async def test_a_shopper_never_sees_or_changes_another_shoppers_cart(
        app_url: str, pool: asyncpg.Pool) -> None:
    v = await _variant(pool, 1_000, 5)
    alice, bob = await _new_cart(app_url), await _new_cart(app_url)
    try:
        assert (await _add(alice, v, 2)).status_code == 200
        mine = (await bob.get("/api/v1/cart")).json()
        theirs = (await alice.get("/api/v1/cart")).json()
        assert mine["lines"] == [] and mine["cart_id"] != theirs["cart_id"]
        # bob removing alice's variant touches only his own (empty) cart
        r = await bob.delete(f"/api/v1/cart/items/{v}")
        assert r.status_code == 422 and "variant_id" in r.json()["error"]["fields"]
        assert (await alice.get("/api/v1/cart")).json()["lines"][0]["quantity"] == 2
        # a token that is no cart's, and none at all
        async with httpx.AsyncClient(base_url=app_url) as stranger:
            r = await stranger.get("/api/v1/cart",
                                   headers={"X-Cart-Token": secrets.token_urlsafe(24)})
            assert r.status_code == 404 and r.json()["error"]["code"] == "cart_not_found"
            assert (await stranger.get("/api/v1/cart")).status_code == 404
            r = await stranger.get("/api/v1/cart", headers={"X-Cart-Token": "short"})
            assert r.status_code == 422, r.text
            # the token works as a header too (clients without cookies)
            token = alice.cookies["aisle_cart"]
            r = await stranger.get("/api/v1/cart", headers={"X-Cart-Token": token})
            assert r.json()["lines"][0]["variant_id"] == str(v)
    finally:
        await alice.aclose()
        await bob.aclose()


@pytest.mark.parametrize(("body", "field"), [
    ({"variant_id": 1, "quantity": 0}, "quantity"),
    ({"variant_id": 1, "quantity": 21}, "quantity"),
    ({"variant_id": 1, "quantity": "2"}, "quantity"),  # a number, not a string
    ({"variant_id": 1, "quantity": 1.5}, "quantity"),
    ({"variant_id": "x"}, "variant_id"),
    ({"quantity": 1}, "variant_id"),
    ({"variant_id": 1, "quantity": 1, "extra": 1}, "extra"),
])
async def test_bad_adds_name_the_field_and_hold_nothing(
        app_url: str, pool: asyncpg.Pool, body: dict[str, Any], field: str) -> None:
    shopper = await _new_cart(app_url)
    try:
        r = await shopper.post("/api/v1/cart/items", json=body)
        assert r.status_code == 422, r.text
        assert any(field in k for k in r.json()["error"]["fields"]), r.text
        assert (await shopper.get("/api/v1/cart")).json()["lines"] == []
    finally:
        await shopper.aclose()


async def test_short_stock_and_unknown_variants_are_refused_whole(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    v = await _variant(pool, 1_000, 2)
    shopper = await _new_cart(app_url)
    try:
        r = await _add(shopper, v, 3)
        assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_stock"
        assert r.json()["error"]["items"][0]["variant_id"] == str(v)
        r = await _add(shopper, secrets.randbits(60), 1)
        assert r.status_code == 404, r.text
        assert (await shopper.get("/api/v1/cart")).json()["lines"] == []
        assert await _available(client, v) == 2
        held = await pool.fetchval("SELECT count(*) FROM shopper_cart_holds h JOIN "
                                   "shopper_carts c USING (cart_id) WHERE c.token_hash = "
                                   "sha256(convert_to($1, 'UTF8'))",
                                   shopper.cookies["aisle_cart"])
        assert held == 0
        # every last unit held by this cart: it is still priced (the holds are its own)
        r = await _add(shopper, v, 2)
        assert r.status_code == 200 and r.json()["quote"]["total_cents"] == 2_000, r.text
    finally:
        await shopper.aclose()


async def test_coupon_then_checkout_sells_the_holds_at_the_quote_once(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    a, b = await _variant(pool, 4_000, 5), await _variant(pool, 1_500, 5)
    code = await _coupon(pool, 500)
    shopper = await _new_cart(app_url)
    try:
        await _add(shopper, a, 2)
        await _add(shopper, b, 1)
        bad = await shopper.put("/api/v1/cart/coupon", json={"code": "NOPE1234"})
        assert bad.status_code == 422 and "coupon" in bad.json()["error"]["fields"], bad.text
        cart = (await shopper.put("/api/v1/cart/coupon", json={"code": code.lower()})).json()
        assert cart["coupon"] == code
        assert (cart["quote"]["subtotal_cents"], cart["quote"]["discount_cents"],
                cart["quote"]["total_cents"]) == (9_500, 500, 9_000)
        r = await shopper.post("/api/v1/cart/checkout")
        assert r.status_code == 200, r.text
        order = r.json()
        assert order["total_cents"] == 9_000 and len(order["lines"]) == 2
        again = await shopper.post("/api/v1/cart/checkout")
        assert again.json() == order  # the same order, not a second one
        assert await pool.fetchval("SELECT times_used FROM coupons WHERE code = $1", code) == 1
        sold = await pool.fetch("SELECT variant_id, sold, reserved FROM stock "
                                "WHERE variant_id = ANY($1::bigint[]) ORDER BY variant_id",
                                [a, b])
        assert {r["variant_id"]: (r["sold"], r["reserved"]) for r in sold} == {
            a: (2, 0), b: (1, 0)}
        late = await _add(shopper, a, 1)
        assert late.status_code == 409 and late.json()["error"]["code"] == "cart_checked_out"
        assert (await shopper.get("/api/v1/cart")).json()["status"] == "CHECKED_OUT"
        bought = shopper.cookies.get("aisle_cart")
        fresh = await shopper.post("/api/v1/cart")  # a new cart for the next order
        assert fresh.status_code == 201 and fresh.json()["lines"] == []
        # a client that keeps the token itself gets its open cart back, as with the cookie
        # (it got a new one); with a checked-out cart's token, a new one
        async with httpx.AsyncClient(base_url=app_url, timeout=30) as app:
            mine = {"X-Cart-Token": fresh.json()["cart_token"]}
            same = await app.post("/api/v1/cart", headers=mine)
            assert same.status_code == 200, same.text
            assert same.json()["cart_id"] == fresh.json()["cart_id"]
            new = await app.post("/api/v1/cart", headers={"X-Cart-Token": bought})
            assert new.status_code == 201 and new.json()["cart_id"] not in (
                fresh.json()["cart_id"], order["cart_id"])
            # a token naming no cart (a client's empty store) asks for a new one, not a 422;
            # a stale header does not hide the open cart of the cookie
            for stale in ("", "null", bought):
                made = await shopper.post("/api/v1/cart", headers={"X-Cart-Token": stale})
                assert made.status_code == 200, made.text
                assert made.json()["cart_id"] == fresh.json()["cart_id"]
        async with httpx.AsyncClient(base_url=app_url, timeout=30) as blank:
            empty = await blank.post("/api/v1/cart", headers={"X-Cart-Token": ""})
            assert empty.status_code == 201, empty.text
        await check_invariants(pool)
    finally:
        await shopper.aclose()


async def test_a_checkout_buys_only_at_the_total_the_shopper_was_shown(
        app_url: str, pool: asyncpg.Pool) -> None:
    """The price changes (or another tab adds a line) between the cart shown and the click:
    a checkout that says which total it was shown buys nothing and answers the new total;
    the next, at that total, buys."""
    v = await _variant(pool, 1_599, 5)
    shopper = await _new_cart(app_url)
    try:
        shown = (await _add(shopper, v, 1)).json()["quote"]["total_cents"]
        assert shown == 1_599
        await pool.execute("UPDATE product_variants SET price_cents = 2599 "
                           "WHERE variant_id = $1", v)  # as a seller's PUT would
        r = await shopper.post("/api/v1/cart/checkout", json={"expected_total_cents": shown})
        assert r.status_code == 409, r.text
        err = r.json()["error"]
        assert err["code"] == "cart_changed" and err["total_cents"] == 2_599
        assert "expected_total_cents" in err["fields"] and "25.99" in err["message"]
        cart = (await shopper.get("/api/v1/cart")).json()
        assert cart["status"] == "OPEN" and cart["quote"]["total_cents"] == 2_599
        assert await pool.fetchval("SELECT sold FROM stock WHERE variant_id = $1", v) == 0
        bad = await shopper.post("/api/v1/cart/checkout", json={"expected_total_cents": -1})
        assert bad.status_code == 422 and "expected_total_cents" in bad.text
        r = await shopper.post("/api/v1/cart/checkout", json={"expected_total_cents": 2_599})
        assert r.status_code == 200 and r.json()["total_cents"] == 2_599, r.text
        assert await pool.fetchval("SELECT sold FROM stock WHERE variant_id = $1", v) == 1
        # a repeat answers the order, whatever it sends
        again = await shopper.post("/api/v1/cart/checkout", json={"expected_total_cents": 1})
        assert again.status_code == 200 and again.json() == r.json()
    finally:
        await shopper.aclose()


async def test_a_price_a_checkout_accepted_is_the_one_shown_while_it_stands(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool,
        settings: Settings) -> None:
    """A checkout accepted a price, then stopped before it sold anything (its replica died):
    while the cart is as it was, that price stands and checkout charges it, so the cart shows
    it, not a price made since (a shopper sending the total shown was told cart_changed for
    good)."""
    v = await _variant(pool, 1_000, 5)
    shopper = await _new_cart(app_url)
    try:
        cart = (await _add(shopper, v)).json()
        made = await client.post("/api/v1/quotes",
                                 json={"items": [{"variant_id": v, "quantity": 1}]})
        assert made.status_code == 201, made.text
        accepted = read_quote(made.json()["quote_token"], settings.quote_key(),
                              datetime.now(UTC))
        async with pool.acquire() as conn:
            await accept_quote(conn, accepted, f"shopcart:{cart['cart_id']}")
        await pool.execute("UPDATE product_variants SET price_cents = 1500 "
                           "WHERE variant_id = $1", v)
        shown = (await shopper.get("/api/v1/cart")).json()["quote"]["total_cents"]
        assert shown == 1_000
        r = await shopper.post("/api/v1/cart/checkout", json={"expected_total_cents": shown})
        assert r.status_code == 200 and r.json()["total_cents"] == 1_000, r.text
    finally:
        await shopper.aclose()


async def test_a_coupon_that_stops_applying_prices_the_cart_without_it(
        app_url: str, pool: asyncpg.Pool) -> None:
    """A line removed takes the cart below the coupon's minimum spend: the cart is priced
    without the coupon and says why (it had no price at all, and could not be checked out);
    checkout refuses the coupon until it is removed, then buys at the price shown."""
    a, b = await _variant(pool, 6_999, 5), await _variant(pool, 2_299, 5)
    code = await _coupon(pool, 500)
    await pool.execute("UPDATE coupons SET min_spend_cents = 5000 WHERE code = $1", code)
    shopper = await _new_cart(app_url)
    try:
        await _add(shopper, a, 1)
        await _add(shopper, b, 1)
        cart = (await shopper.put("/api/v1/cart/coupon", json={"code": code})).json()
        assert cart["quote"]["total_cents"] == 9_298 - 500 and "coupon_error" not in cart
        cart = (await shopper.delete(f"/api/v1/cart/items/{a}")).json()
        assert cart["coupon"] == code and "minimum spend" in cart["coupon_error"]
        assert cart["quote"]["total_cents"] == 2_299 and cart["quote"]["coupon"] is None
        assert "quote_error" not in cart
        r = await shopper.post("/api/v1/cart/checkout", json={"expected_total_cents": 2_299})
        assert r.status_code == 422 and "coupon" in r.json()["error"]["fields"], r.text
        cart = (await shopper.delete("/api/v1/cart/coupon")).json()
        assert cart["coupon"] is None and "coupon_error" not in cart
        r = await shopper.post("/api/v1/cart/checkout", json={"expected_total_cents": 2_299})
        assert r.status_code == 200 and r.json()["total_cents"] == 2_299, r.text
    finally:
        await shopper.aclose()


async def test_checkout_of_an_empty_cart_is_refused(app_url: str) -> None:
    shopper = await _new_cart(app_url)
    try:
        r = await shopper.post("/api/v1/cart/checkout")
        assert r.status_code == 422 and "cart" in r.json()["error"]["fields"], r.text
    finally:
        await shopper.aclose()


async def _sold(pool: asyncpg.Pool, vs: list[int]) -> dict[int, int]:
    rows = await pool.fetch("SELECT variant_id, sum(sold) AS s FROM stock "
                            "WHERE variant_id = ANY($1::bigint[]) GROUP BY 1", vs)
    return {r["variant_id"]: int(r["s"]) for r in rows}


async def test_a_removal_racing_checkout_comes_first_or_finds_the_cart_checked_out(
        app_url: str, pool: asyncpg.Pool) -> None:
    a, b = await _variant(pool, 1_000, 20), await _variant(pool, 2_000, 20)
    ordered = {a: 0, b: 0}
    for _ in range(6):
        shopper = await _new_cart(app_url)
        try:
            assert (await _add(shopper, a)).status_code == 200
            assert (await _add(shopper, b)).status_code == 200
            out, gone = await asyncio.gather(shopper.post("/api/v1/cart/checkout"),
                                             shopper.delete(f"/api/v1/cart/items/{b}"))
            assert out.status_code == 200, out.text  # never a half-done checkout, never 500
            lines = {int(x["variant_id"]) for x in out.json()["lines"]}
            if gone.status_code == 200:  # the removal came first: the order leaves b out
                assert lines == {a} and out.json()["total_cents"] == 1_000
            else:
                assert gone.status_code == 409, gone.text
                assert gone.json()["error"]["code"] == "cart_checked_out"
                assert lines == {a, b} and out.json()["total_cents"] == 3_000
            for v in lines:
                ordered[v] += 1
        finally:
            await shopper.aclose()
    assert await _sold(pool, [a, b]) == {v: n for v, n in ordered.items()}  # sold = ordered
    await check_invariants(pool)


async def test_a_checkout_after_a_hold_was_lost_prices_the_cart_as_it_is_then(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    a, b = await _variant(pool, 1_000, 5), await _variant(pool, 2_000, 5)
    code = await _coupon(pool, 100)
    shopper = await _new_cart(app_url)
    try:
        await _add(shopper, a)
        cart = (await _add(shopper, b)).json()
        assert (await shopper.put("/api/v1/cart/coupon", json={"code": code})).status_code == 200
        [hold] = next(x["holds"] for x in cart["lines"] if x["variant_id"] == str(b))
        lost = await client.delete(f"/api/v1/reservations/{hold}", headers=AUTH)
        assert lost.status_code == 200, lost.text  # released behind the cart's back
        first = await shopper.post("/api/v1/cart/checkout")
        assert first.status_code == 409, first.text  # b's hold is gone: not sold
        # said in a shopper's words (it named the internal reservation), and b's line is
        # gone from the cart, which shows what it has: a, sold, to finish
        assert first.json()["error"]["code"] == "hold_expired", first.text
        assert "check out again" in first.json()["error"]["message"]
        assert [x["variant_id"] for x in (await shopper.get("/api/v1/cart")).json()[
            "lines"]] == [str(a)]
        # a was sold by that try: its line stays (the next checkout finishes the order), past
        # its hold's expiry too
        kept = await shopper.delete(f"/api/v1/cart/items/{a}")
        assert kept.status_code == 409 and kept.json()["error"]["code"] == "line_sold"
        await pool.execute("UPDATE shopper_cart_holds SET expires_at = now() - interval '1 h' "
                           "WHERE variant_id = $1", a)
        assert str(a) in {x["variant_id"] for x in (await shopper.get("/api/v1/cart")).json()[
            "lines"]}
        assert (await shopper.delete(f"/api/v1/cart/items/{b}")).status_code == 422
        again = await shopper.post("/api/v1/cart/checkout")
        assert again.status_code == 200, again.text
        order = again.json()
        assert [x["variant_id"] for x in order["lines"]] == [str(a)]
        assert order["total_cents"] == 900  # what it sells, not the first price; coupon on
        assert (await shopper.post("/api/v1/cart/checkout")).json() == order
        assert await _sold(pool, [a, b]) == {a: 1, b: 0}
        # the first try's use of the coupon was given back: one use, for the order
        assert await pool.fetchval("SELECT times_used FROM coupons WHERE code = $1", code) == 1
        assert await pool.fetchval("SELECT count(*) FROM coupon_redemptions WHERE code = $1",
                                   code) == 1
        await check_invariants(pool)
    finally:
        await shopper.aclose()


async def test_a_checkout_whose_every_hold_ran_out_gives_its_coupon_use_back(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """Nothing of the cart could be sold (its one hold closed behind its back): 409
    hold_expired, the cart empty, and the price the checkout accepted void, so the coupon's
    use it redeemed is given back (the cart kept it, and retention keeps such a cart)."""
    a = await _variant(pool, 1_000, 5)
    code = await _coupon(pool, 100)
    shopper = await _new_cart(app_url)
    try:
        cart = (await _add(shopper, a)).json()
        assert (await shopper.put("/api/v1/cart/coupon", json={"code": code})).status_code == 200
        [hold] = cart["lines"][0]["holds"]
        assert (await client.delete(f"/api/v1/reservations/{hold}",
                                    headers=AUTH)).status_code == 200
        r = await shopper.post("/api/v1/cart/checkout")
        assert r.status_code == 409 and r.json()["error"]["code"] == "hold_expired", r.text
        assert "what was sold" not in r.json()["error"]["message"]
        assert (await shopper.get("/api/v1/cart")).json()["lines"] == []
        assert await pool.fetchval("SELECT times_used FROM coupons WHERE code = $1", code) == 0
        assert await _sold(pool, [a]) == {a: 0}
    finally:
        await shopper.aclose()


async def test_a_change_waits_for_the_one_under_way_then_is_refused(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    v = await _variant(pool, 1_000, 5)
    shopper = await _new_cart(app_url)
    try:
        cart = (await _add(shopper, v)).json()
        # another change holds the cart (a replica in the middle of one)
        await pool.execute("UPDATE shopper_carts SET busy_token = 'other', busy_until = now() "
                           "+ interval '30 seconds' WHERE cart_id = $1", cart["cart_id"])
        r = await shopper.delete(f"/api/v1/cart/items/{v}")
        assert r.status_code == 409 and r.json()["error"]["code"] == "cart_busy", r.text
        assert await _available(client, v) == 4  # nothing done
        # that replica died: its lease runs out, and the cart is changed again
        await pool.execute("UPDATE shopper_carts SET busy_until = now() - interval '1 second' "
                           "WHERE cart_id = $1", cart["cart_id"])
        assert (await shopper.delete(f"/api/v1/cart/items/{v}")).status_code == 200
        assert await _available(client, v) == 5
        assert await pool.fetchval("SELECT busy_token FROM shopper_carts WHERE cart_id = $1",
                                   cart["cart_id"]) is None  # given back
    finally:
        await shopper.aclose()


async def test_an_add_whose_shopper_hangs_up_is_the_carts_whole_or_not_at_all(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """A shopper who leaves mid-add (a closed tab, a client timeout): the units held are
    recorded in the cart, where they can be seen and given back, never held by no cart
    until they expire."""
    v = await _variant(pool, 1_000, 500)
    hung_up = 0
    for i in range(40):
        shopper = await _new_cart(app_url)
        try:
            await shopper.post("/api/v1/cart/items", json={"variant_id": v, "quantity": 1},
                               timeout=0.005 + 0.0015 * i)  # 5 to 64 ms
        except httpx.TimeoutException:
            hung_up += 1
        finally:
            await shopper.aclose()
    assert hung_up > 0
    reserved = held = -1
    for _ in range(100):  # the adds under way when their shoppers left finish
        r = (await client.get(f"/api/v1/inventory/{v}", headers=AUTH)).json()
        reserved = sum(w["reserved"] for w in r["warehouses"].values())
        held = await pool.fetchval("SELECT coalesce(sum(quantity), 0) FROM shopper_cart_holds "
                                   "WHERE variant_id = $1", v)
        if reserved == held:
            break
        await asyncio.sleep(0.1)
    assert reserved == held > 0, (reserved, held, hung_up)
    await check_invariants(pool)


async def test_an_add_whose_shopper_leaves_while_it_waits_for_the_cart_is_dropped(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """Only a change that holds the cart runs to its end without its shopper: one still
    waiting for another change to finish is dropped when the shopper leaves (a retry would
    otherwise add twice)."""
    v = await _variant(pool, 1_000, 5)
    shopper = await _new_cart(app_url)
    try:
        cart = (await shopper.get("/api/v1/cart")).json()
        await pool.execute("UPDATE shopper_carts SET busy_token = 'other', busy_until = now() "
                           "+ interval '30 seconds' WHERE cart_id = $1", cart["cart_id"])
        with pytest.raises(httpx.TimeoutException):
            await shopper.post("/api/v1/cart/items", json={"variant_id": v, "quantity": 1},
                               timeout=1.0)
        # the other change ends: a waiting add still there would take the cart now
        await pool.execute("UPDATE shopper_carts SET busy_token = NULL, busy_until = NULL "
                           "WHERE cart_id = $1", cart["cart_id"])
        await asyncio.sleep(6.0)  # past the 5 s an add waits for the cart
        assert await _available(client, v) == 5
        assert (await shopper.get("/api/v1/cart")).json()["lines"] == []
    finally:
        await shopper.aclose()
