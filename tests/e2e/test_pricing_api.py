"""The pricing and promotions API over HTTP: a seller's offer of another seller's product
(its own stock, reserved when it wins the buy box), sellers' and platform deals, coupons and
dynamic pricing rules; each reaching product pages and search through the outbox; every
change audited; bad input a 4xx naming the field with no row, event or stock left behind."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from tests.conftest import INTERNAL_TOKEN
from tests.e2e.conftest import Seller, make_seller
from tests.e2e.test_cart_api import _new_cart
from tests.e2e.test_seller_api import body

INTERNAL = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


def _key(s: Seller) -> dict[str, str]:
    return {"Authorization": f"Bearer {s.key}"}


def _at(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


async def _until(read: Callable[[], Awaitable[object]], want: object, what: str) -> float:
    """Seconds until `read` gives `want` (within 20 s; the test logs how long it took)."""
    start, got = time.monotonic(), None
    while time.monotonic() - start < 20:
        got = await read()
        if got == want:
            took = time.monotonic() - start
            print(f"{what}: {took * 1000:.0f} ms")
            return took
        await asyncio.sleep(0.05)
    raise AssertionError(f"{what}: never {want!r}; last {got!r}")


async def _product(client: httpx.AsyncClient, pool: asyncpg.Pool, owner: Seller,
                   category: int, units: int, tag: str) -> tuple[str, int]:
    """A product of `owner` (variant 0 at 349.99 with `units` in WH_01); its id and the
    first variant's."""
    await pool.execute("INSERT INTO warehouses (warehouse_id, name, region) "
                       "VALUES ('WH_01', 'one', 'eu') ON CONFLICT DO NOTHING")
    r = await client.post("/api/v1/seller/products", headers=_key(owner),
                          json={**body(category), "title": f"Headphones {tag}"})
    assert r.status_code == 201, r.text
    pid, v = r.json()["product_id"], int(r.json()["variants"][0]["variant_id"])
    if units:
        r = await client.patch(f"/api/v1/inventory/{v}", headers=INTERNAL, json={
            "operation": "ADJUST", "warehouse_id": "WH_01", "quantity_delta": units,
            "reason": "restock"})
        assert r.status_code == 200, r.text
    return pid, v


async def _outbid(client: httpx.AsyncClient, pool: asyncpg.Pool, seller: Seller,
                  other_seller: Seller, category_ids: dict[str, int], tag: str
                  ) -> tuple[str, int]:
    """`other_seller`'s product (349.99, 2 units in WH_01) that `seller` offers at 300.00
    with 5 units of its own, winning the buy box: the product's id and its variant's."""
    pid, v = await _product(client, pool, other_seller, category_ids["Headphones"], 2, tag)
    r = await client.put(f"/api/v1/seller/offers/{v}", headers=_key(seller),
                         json={"price_cents": 30_000, "quantity": 5})
    assert r.status_code == 201, r.text
    await _until(lambda: _winner(client, pid, v), (str(seller.seller_id), 300.0),
                 "offer wins on the page")
    return pid, v


async def _winner(client: httpx.AsyncClient, pid: str, v: int) -> object:
    """The product page's buy box for the variant: (seller id, price)."""
    r = await client.get(f"/api/v1/products/{pid}")
    if r.status_code != 200:
        return None
    [var] = [x for x in r.json()["variants"] if x["variant_id"] == str(v)]
    w = var["buy_box"]["winner"]
    return None if w is None else (w["seller"]["id"], w["price"]["amount"])


async def _listed(client: httpx.AsyncClient, tag: str) -> object:
    r = await client.get("/api/v1/products/search", params={"q": tag})
    hits = r.json()["results"] if r.status_code == 200 else []
    return hits[0]["price"]["amount"] if hits else None


async def _stocked(client: httpx.AsyncClient, tag: str) -> object:
    """The first search result's (in_stock, available)."""
    r = await client.get("/api/v1/products/search", params={"q": tag})
    hits = r.json()["results"] if r.status_code == 200 else []
    return (hits[0]["in_stock"], hits[0]["available"]) if hits else None


async def _warehouses(client: httpx.AsyncClient, v: int) -> dict[str, Any]:
    r = await client.get(f"/api/v1/inventory/{v}", headers=INTERNAL)
    assert r.status_code == 200, r.text
    return {w: (f["available"], f["reserved"], f["sold"])
            for w, f in r.json()["warehouses"].items()}


async def _count(pool: asyncpg.Pool, sql: str, *args: object) -> int:
    return int(await pool.fetchval(sql, *args))


async def test_a_third_party_offer_wins_the_buy_box_and_its_stock_is_reserved(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool, seller: Seller,
        other_seller: Seller, category_ids: dict[str, int]) -> None:
    tag = "offer" + secrets.token_hex(4)
    pid, v = await _product(client, pool, other_seller, category_ids["Headphones"], 2, tag)
    await _until(lambda: _winner(client, pid, v), (str(other_seller.seller_id), 349.99),
                 "listing seller's page")
    mine = f"s-{seller.seller_id}"

    # bad input first: nothing is written
    audit_before = await _count(pool, "SELECT count(*) FROM pricing_audit")
    for path, payload, who, status, field in [
        (v, {"price_cents": 0}, seller, 422, "price_cents"),
        (v, {"price_cents": 100, "condition": "mint"}, seller, 422, "condition"),
        (v, {"price_cents": 100, "stock_source": "platform", "quantity": 3}, seller, 422,
         "quantity"),
        (v, {"price_cents": 100, "quantity": -1}, seller, 422, "quantity"),
        (v, {"price_cents": "100"}, seller, 422, "price_cents"),  # a number, not a string
        (v, {"price_cents": 100, "quantity": "5"}, seller, 422, "quantity"),
        (v, {"price_cents": 100}, other_seller, 422, "variant_id"),  # its own product
    ]:
        r = await client.put(f"/api/v1/seller/offers/{path}", headers=_key(who), json=payload)
        assert r.status_code == status and field in str(r.json()["error"]), (payload, r.text)
    r = await client.put("/api/v1/seller/offers/1", headers=_key(seller),
                         json={"price_cents": 100})
    assert r.status_code == 404 and r.json()["error"]["code"] == "variant_not_found"
    r = await client.put(f"/api/v1/seller/offers/{v}", headers={**_key(seller),
                         "If-Match": '"1"'}, json={"price_cents": 100})
    assert r.status_code == 404  # If-Match: an update of an offer that does not exist
    assert await _count(pool, "SELECT count(*) FROM pricing_audit") == audit_before
    assert await _count(pool, "SELECT count(*) FROM offers WHERE variant_id = $1", v) == 0

    # a new seller's first offer sent twice at once: its warehouse is made once, both answer
    third = await make_seller(pool, "Third Seller")
    both = await asyncio.gather(*(client.put(f"/api/v1/seller/offers/{v}", headers=_key(third),
                                             json={"price_cents": 90_000}) for _ in range(2)))
    assert sorted(r.status_code for r in both) in ([200, 201], [201, 201]), [r.text for r in both]
    assert (await client.delete(f"/api/v1/seller/offers/{v}",
                                headers=_key(third))).status_code == 200

    # the offer: cheaper, refurbished, 5 units the seller ships itself
    r = await client.put(f"/api/v1/seller/offers/{v}", headers=_key(seller),
                         json={"price_cents": 30_000, "condition": "refurbished",
                               "quantity": 5})
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["available"], made["warehouse_id"], made["condition"], made["version"]) == (
        5, mine, "refurbished", 1)
    assert r.headers["ETag"] == '"1"'
    # product pages and search follow through the outbox
    took = await _until(lambda: _winner(client, pid, v), (str(seller.seller_id), 300.0),
                        "offer on the product page")
    await _until(lambda: _listed(client, tag), 300.0, "offer in search")
    assert took < 20
    # search counts the offer's units with the listing seller's
    await _until(lambda: _stocked(client, tag), (True, 7), "offer's units in search")
    # its seller suspended: its units leave the listing too (announced), and come back
    for status, want in (("SUSPENDED", (True, 2)), ("ACTIVE", (True, 7))):
        r = await client.patch(f"/api/v1/internal/sellers/{seller.seller_id}",
                               headers=INTERNAL, json={"status": status})
        assert r.status_code == 200, r.text
        await _until(lambda: _stocked(client, tag), want, f"seller {status} in search")

    # a shopper's cart holds the winner's units, not the listing seller's
    shopper = await _new_cart(app_url)
    try:
        r = await shopper.post("/api/v1/cart/items", json={"variant_id": v, "quantity": 3})
        assert r.status_code == 200, r.text
        [line] = r.json()["lines"]
        assert line["seller_id"] == str(seller.seller_id)
        assert r.json()["quote"]["total_cents"] == 90_000
        assert r.json()["quote"]["lines"][0]["seller_id"] == str(seller.seller_id)
        assert await _warehouses(client, v) == {"WH_01": (2, 0, 0), mine: (2, 3, 0)}
        # its seller suspended, the line takes no more of its units (and not the listing
        # seller's); reinstated, the cart checks out as it was
        for status in ("SUSPENDED", "ACTIVE"):
            r = await client.patch(f"/api/v1/internal/sellers/{seller.seller_id}",
                                   headers=INTERNAL, json={"status": status})
            assert r.status_code == 200, r.text
            if status == "SUSPENDED":
                r = await shopper.post("/api/v1/cart/items",
                                       json={"variant_id": v, "quantity": 1})
                assert r.status_code == 409, r.text
                assert r.json()["error"]["code"] == "offer_withdrawn"
                assert await _warehouses(client, v) == {"WH_01": (2, 0, 0),
                                                        mine: (2, 3, 0)}
        order = (await shopper.post("/api/v1/cart/checkout")).json()
        assert order["total_cents"] == 90_000, order
        assert await _warehouses(client, v) == {"WH_01": (2, 0, 0), mine: (2, 0, 3)}
    finally:
        await shopper.aclose()

    # a quote and a reservation through the internal API take the winner's units too
    q = (await client.post("/api/v1/quotes", json={"items": [{"variant_id": v,
                                                              "quantity": 1}]})).json()
    assert q["lines"][0]["seller_id"] == str(seller.seller_id), q
    r = await client.post("/api/v1/reservations", headers=INTERNAL, json={
        "items": [{"variant_id": v, "quantity": 1}], "quote_token": q["quote_token"]})
    assert r.status_code == 201, r.text
    assert [x["warehouse_id"] for x in r.json()["lines"]] == [mine]
    assert (await client.delete(f"/api/v1/reservations/{r.json()['reservation_id']}",
                                headers=INTERNAL)).status_code == 200

    # the seller restates its stock and price (If-Match), reads it, then withdraws it
    r = await client.put(f"/api/v1/seller/offers/{v}", headers={**_key(seller),
                         "If-Match": '"7"'}, json={"price_cents": 29_000, "quantity": 99})
    assert r.status_code == 409 and r.json()["error"]["code"] == "version_conflict"
    assert (await _warehouses(client, v))[mine] == (2, 0, 3)  # the stale write set nothing
    r = await client.put(f"/api/v1/seller/offers/{v}", headers={**_key(seller),
                         "If-Match": '"1"'}, json={"price_cents": 29_000, "quantity": 10})
    assert r.status_code == 200 and (r.json()["version"], r.json()["available"]) == (2, 10)
    listed = (await client.get("/api/v1/seller/offers", headers=_key(seller))).json()
    assert [(o["variant_id"], o["price_cents"]) for o in listed["offers"]] == [(str(v), 29_000)]
    # the listing seller's units are never taken from the offer's warehouse
    r = await client.post("/api/v1/reservations", headers=INTERNAL, json={
        "items": [{"variant_id": v, "quantity": 1, "warehouse_id": mine}],
        "quote_token": (await client.post("/api/v1/quotes", json={"items": [
            {"variant_id": v, "quantity": 1}]})).json()["quote_token"]})
    assert r.status_code == 201 and r.json()["lines"][0]["warehouse_id"] == mine  # its winner
    await client.delete(f"/api/v1/reservations/{r.json()['reservation_id']}", headers=INTERNAL)
    stale = (await client.post("/api/v1/quotes", json={"items": [
        {"variant_id": v, "quantity": 1}]})).json()
    assert (await client.delete(f"/api/v1/seller/offers/{v}",
                                headers=_key(seller))).status_code == 200
    assert (await client.delete(f"/api/v1/seller/offers/{v}",
                                headers=_key(seller))).status_code == 404
    # a quote made at the withdrawn offer reserves nothing (never the listing seller's units)
    r = await client.post("/api/v1/reservations", headers=INTERNAL, json={
        "items": [{"variant_id": v, "quantity": 1}], "quote_token": stale["quote_token"]})
    assert r.status_code == 409 and r.json()["error"]["code"] == "offer_withdrawn", r.text
    r = await client.post("/api/v1/reservations", headers=INTERNAL, json={
        "items": [{"variant_id": v, "quantity": 1, "warehouse_id": mine}],
        "quote_token": (await client.post("/api/v1/quotes", json={"items": [
            {"variant_id": v, "quantity": 1}]})).json()["quote_token"]})
    assert r.status_code == 422 and "items.0.warehouse_id" in r.json()["error"]["fields"]
    await _until(lambda: _winner(client, pid, v), (str(other_seller.seller_id), 349.99),
                 "withdrawn offer leaves the page")
    # its 10 units left in its warehouse are no longer for sale: search shows the listing
    # seller's 2 (as the product page does), not 12
    assert (await _warehouses(client, v))[mine] == (10, 0, 3)
    await _until(lambda: _stocked(client, tag), (True, 2), "withdrawn units leave search")
    audit = (await client.get("/api/v1/seller/pricing/audit", headers=_key(seller))).json()
    assert [(e["entity"], e["action"]) for e in audit["entries"]] == [
        ("offer", "delete"), ("offer", "update"), ("offer", "create")]
    assert audit["entries"][1]["before"]["price_cents"] == 30_000
    assert audit["entries"][1]["after"]["price_cents"] == 29_000
    assert audit["entries"][1]["after"]["available"] == 10  # the units stated
    assert audit["entries"][2]["actor"] == f"seller:{seller.seller_id}"


async def test_two_writes_of_one_offer_at_once_leave_the_units_of_the_one_acknowledged(
        client: httpx.AsyncClient, pool: asyncpg.Pool, seller: Seller,
        other_seller: Seller, category_ids: dict[str, int]) -> None:
    """Two PUTs of the same offer at the same version: one is written (200), the other
    refused (409) without setting any units; the units left are those acknowledged."""
    tag = "race" + secrets.token_hex(4)
    _, v = await _product(client, pool, other_seller, category_ids["Headphones"], 2, tag)
    mine = f"s-{seller.seller_id}"
    r = await client.put(f"/api/v1/seller/offers/{v}", headers=_key(seller),
                         json={"price_cents": 30_000, "quantity": 5})
    assert r.status_code == 201, r.text
    version = r.json()["version"]
    for round_ in range(6):
        wanted = (20 + 2 * round_, 21 + 2 * round_)
        both = await asyncio.gather(*(client.put(
            f"/api/v1/seller/offers/{v}", headers={**_key(seller), "If-Match": f'"{version}"'},
            json={"price_cents": 30_000, "quantity": q}) for q in wanted))
        assert sorted(r.status_code for r in both) == [200, 409], [r.text for r in both]
        [won] = [r.json() for r in both if r.status_code == 200]
        assert won["version"] == version + 1
        version = won["version"]
        assert won["available"] in wanted
        assert (await _warehouses(client, v))[mine] == (won["available"], 0, 0), round_
    assert (await client.delete(f"/api/v1/seller/offers/{v}",
                                headers=_key(seller))).status_code == 200


async def test_the_buy_box_goes_to_the_lowest_price_after_each_sellers_deal(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool, seller: Seller,
        other_seller: Seller, category_ids: dict[str, int]) -> None:
    """The listing seller (349.99) discounts its product by 20 % (279.99): it then sells
    below the offer's 300.00, so it wins the buy box on the page, in search, in a quote and
    in a shopper's cart (its units, at its deal price); its deal over, the offer wins again."""
    tag = "undercut" + secrets.token_hex(4)
    pid, v = await _outbid(client, pool, seller, other_seller, category_ids, tag)
    r = await client.post("/api/v1/seller/deals", headers=_key(other_seller), json={
        "name": "Undercut", "scope": "product", "scope_value": pid, "kind": "percent",
        "amount": 2_000, "starts_at": _at(minutes=-1), "ends_at": _at(days=2)})
    assert r.status_code == 201, r.text
    deal_url = f"/api/v1/seller/deals/{r.json()['deal_id']}"
    await _until(lambda: _winner(client, pid, v), (str(other_seller.seller_id), 279.99),
                 "the discounted listing seller wins on the page")
    await _until(lambda: _listed(client, tag), 279.99, "and in search")
    q = (await client.post("/api/v1/quotes", json={"items": [{"variant_id": v,
                                                              "quantity": 1}]})).json()
    assert (q["lines"][0]["seller_id"], q["total_cents"]) == (str(other_seller.seller_id),
                                                              27_999), q
    shopper = await _new_cart(app_url)
    try:
        r = await shopper.post("/api/v1/cart/items", json={"variant_id": v, "quantity": 1})
        assert r.status_code == 200, r.text
        [line] = r.json()["lines"]
        assert line["seller_id"] is None  # the listing seller's own units
        assert r.json()["quote"]["total_cents"] == 27_999
        assert await _warehouses(client, v) == {"WH_01": (1, 1, 0),
                                                f"s-{seller.seller_id}": (5, 0, 0)}
        assert (await shopper.delete(f"/api/v1/cart/items/{v}")).status_code == 200
    finally:
        await shopper.aclose()
    assert (await client.delete(deal_url, headers=_key(other_seller))).status_code == 200
    await _until(lambda: _winner(client, pid, v), (str(seller.seller_id), 300.0),
                 "the deal over, the offer wins again")
    assert (await client.delete(f"/api/v1/seller/offers/{v}",
                                headers=_key(seller))).status_code == 200


async def test_an_add_to_a_line_whose_seller_lost_the_buy_box_moves_it_to_the_winner(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool, seller: Seller,
        other_seller: Seller, category_ids: dict[str, int]) -> None:
    """A cart holds the offer's unit (300.00); its seller raises the price to 400.00, so the
    listing seller (349.99) wins the buy box. Adding one more holds both units from the
    listing seller, at the price the page shows, and gives the offer's unit back; the same
    add retried with its key changes nothing."""
    tag = "follow" + secrets.token_hex(4)
    pid, v = await _outbid(client, pool, seller, other_seller, category_ids, tag)
    mine = f"s-{seller.seller_id}"
    shopper = await _new_cart(app_url)
    try:
        r = await shopper.post("/api/v1/cart/items", json={"variant_id": v, "quantity": 1})
        assert r.status_code == 200, r.text
        assert r.json()["lines"][0]["seller_id"] == str(seller.seller_id)
        assert await _warehouses(client, v) == {"WH_01": (2, 0, 0), mine: (4, 1, 0)}
        r = await client.put(f"/api/v1/seller/offers/{v}", headers={**_key(seller),
                             "If-Match": '"1"'}, json={"price_cents": 40_000, "quantity": 5})
        assert r.status_code == 200, r.text
        await _until(lambda: _winner(client, pid, v), (str(other_seller.seller_id), 349.99),
                     "the listing seller wins again")
        for _ in range(2):  # the add, then its retry
            r = await shopper.post("/api/v1/cart/items", headers={"Idempotency-Key": tag},
                                   json={"variant_id": v, "quantity": 1})
            assert r.status_code == 200, r.text
            [line] = r.json()["lines"]
            assert (line["seller_id"], line["quantity"]) == (None, 2), line
            assert r.json()["quote"]["total_cents"] == 69_998
            assert await _warehouses(client, v) == {"WH_01": (0, 2, 0), mine: (5, 0, 0)}
        order = await shopper.post("/api/v1/cart/checkout",
                                   json={"expected_total_cents": 69_998})
        assert order.status_code == 200 and order.json()["total_cents"] == 69_998, order.text
        assert await _warehouses(client, v) == {"WH_01": (0, 0, 2), mine: (5, 0, 0)}
    finally:
        await shopper.aclose()
    # the listing seller deletes the product: the offer's seller sees it sells nothing
    async def on_sale() -> list[object]:
        listed = (await client.get("/api/v1/seller/offers", headers=_key(seller))).json()
        return [o["on_sale"] for o in listed["offers"] if o["variant_id"] == str(v)]

    assert await on_sale() == [True]
    r = await client.delete(f"/api/v1/seller/products/{pid}", headers=_key(other_seller))
    assert r.status_code == 200, r.text
    assert await on_sale() == [False]


async def test_an_add_stays_with_the_lines_seller_when_the_cheaper_one_is_short_or_it_withdrew(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool, seller: Seller,
        other_seller: Seller, category_ids: dict[str, int]) -> None:
    """A cart holds 3 of the offer's units (300.00); the listing seller's deal (279.99)
    makes it cheaper, but it has 2 units: an add takes one more from the line's seller. The
    offer withdrawn, an add is refused (409 `offer_withdrawn`), even with the listing seller
    restocked: the line's units are never taken from someone else without being asked."""
    tag = "short" + secrets.token_hex(4)
    pid, v = await _outbid(client, pool, seller, other_seller, category_ids, tag)
    mine = f"s-{seller.seller_id}"
    shopper = await _new_cart(app_url)
    try:
        r = await shopper.post("/api/v1/cart/items", json={"variant_id": v, "quantity": 3})
        assert r.status_code == 200, r.text
        r = await client.post("/api/v1/seller/deals", headers=_key(other_seller), json={
            "name": "Short", "scope": "product", "scope_value": pid, "kind": "percent",
            "amount": 2_000, "starts_at": _at(minutes=-1), "ends_at": _at(days=2)})
        assert r.status_code == 201, r.text
        await _until(lambda: _winner(client, pid, v), (str(other_seller.seller_id), 279.99),
                     "the discounted listing seller wins")
        r = await shopper.post("/api/v1/cart/items", headers={"Idempotency-Key": tag},
                               json={"variant_id": v, "quantity": 1})
        assert r.status_code == 200, r.text
        [line] = r.json()["lines"]
        assert (line["seller_id"], line["quantity"]) == (str(seller.seller_id), 4), line
        assert await _warehouses(client, v) == {"WH_01": (2, 0, 0), mine: (1, 4, 0)}

        r = await client.patch(f"/api/v1/inventory/{v}", headers=INTERNAL, json={
            "operation": "ADJUST", "warehouse_id": "WH_01", "quantity_delta": 18,
            "reason": "restock"})
        assert r.status_code == 200, r.text
        assert (await client.delete(f"/api/v1/seller/offers/{v}",
                                    headers=_key(seller))).status_code == 200
        r = await shopper.post("/api/v1/cart/items", json={"variant_id": v, "quantity": 1})
        assert r.status_code == 409 and r.json()["error"]["code"] == "offer_withdrawn", r.text
        assert await _warehouses(client, v) == {"WH_01": (20, 0, 0), mine: (1, 4, 0)}
        assert (await shopper.delete(f"/api/v1/cart/items/{v}")).status_code == 200
    finally:
        await shopper.aclose()


async def test_deals_by_sellers_and_the_platform(
        client: httpx.AsyncClient, pool: asyncpg.Pool, seller: Seller,
        other_seller: Seller, category_ids: dict[str, int]) -> None:
    tag = "deal" + secrets.token_hex(4)
    pid, v = await _product(client, pool, seller, category_ids["Headphones"], 3, tag)
    await _until(lambda: _listed(client, tag), 349.99, "product in search")
    deal = {"name": "Winter", "scope": "product", "scope_value": pid, "kind": "percent",
            "amount": 2_000, "starts_at": _at(minutes=-1), "ends_at": _at(days=2)}

    deals_before = await _count(pool, "SELECT count(*) FROM deals")
    events_before = await _count(pool, "SELECT count(*) FROM outbox "
                                       "WHERE event_type = 'deal.changed'")
    for who, change, field in [
        (seller, {"ends_at": _at(minutes=-2)}, "ends_at"),  # ends before it starts
        (seller, {"starts_at": _at(days=-3), "ends_at": _at(days=-2)}, "ends_at"),  # over
        (seller, {"ends_at": _at(days=400)}, "ends_at"),  # more than a year
        (seller, {"amount": 10_001}, "amount"),  # percent above 100 %
        (seller, {"amount": 10_000}, "amount"),  # all of it: a deal never gives it away
        (seller, {"kind": "fixed", "amount": 10**9}, "amount"),  # more than its price
        (seller, {"starts_at": "2027-01-01T00:00:00"}, "starts_at"),  # no time zone
        (seller, {"scope": "seller", "scope_value": str(other_seller.seller_id)},
         "scope_value"),
        (other_seller, {}, "scope_value"),  # not a product it sells
        (seller, {"scope": "category", "scope_value": "shoes"}, "scope_value"),
        (seller, {"scope": "category", "scope_value": "999999"}, "scope_value"),  # none such
        (seller, {"scope": "brand", "scope_value": "  "}, "scope_value"),
    ]:
        r = await client.post("/api/v1/seller/deals", headers=_key(who),
                              json={**deal, **change})
        assert r.status_code == 422 and field in str(r.json()["error"]), (change, r.text)
    r = await client.post("/api/v1/internal/pricing/deals", headers=INTERNAL,
                          json={**deal, "scope": "category", "scope_value": "999999999"})
    assert r.status_code == 422 and "scope_value" in r.json()["error"]["fields"]
    assert await _count(pool, "SELECT count(*) FROM deals") == deals_before
    assert await _count(pool, "SELECT count(*) FROM outbox WHERE event_type = "
                              "'deal.changed'") == events_before

    # the seller's deal: 20 % off its product, on the page and in search
    r = await client.post("/api/v1/seller/deals", headers=_key(seller), json=deal)
    assert r.status_code == 201, r.text
    made = r.json()
    assert (made["seller_id"], made["version"]) == (str(seller.seller_id), 1)
    await _until(lambda: _winner(client, pid, v), (str(seller.seller_id), 279.99),
                 "seller deal on the product page")
    await _until(lambda: _listed(client, tag), 279.99, "seller deal in search")
    deal_url = f"/api/v1/seller/deals/{made['deal_id']}"
    # another seller neither sees nor changes it
    assert (await client.get(deal_url, headers=_key(other_seller))).status_code == 404
    assert (await client.delete(deal_url, headers=_key(other_seller))).status_code == 404
    # changes need the version read
    r = await client.put(deal_url, headers=_key(seller), json={**deal, "amount": 5_000})
    assert r.status_code == 428
    r = await client.put(deal_url, headers={**_key(seller), "If-Match": '"3"'},
                         json={**deal, "amount": 5_000})
    assert r.status_code == 409
    r = await client.put(deal_url, headers={**_key(seller), "If-Match": '"1"'},
                         json={**deal, "amount": 5_000})
    assert r.status_code == 200 and r.json()["version"] == 2, r.text
    await _until(lambda: _winner(client, pid, v), (str(seller.seller_id), 174.99),
                 "changed deal on the page")

    # a dynamic pricing rule's floor bounds every deal, and the seller's own price
    r = await client.put(f"/api/v1/internal/pricing/rules/{v}", headers=INTERNAL, json={
        "floor_cents": 30_000, "ceiling_cents": 20_000, "low_stock": 2, "high_stock": 50,
        "hot_velocity": 10, "cold_velocity": 1, "step_up_bp": 500, "step_down_bp": 500})
    assert r.status_code == 422 and "ceiling_cents" in r.json()["error"]["fields"]
    assert (await client.get(f"/api/v1/internal/pricing/rules/{v}",
                             headers=INTERNAL)).status_code == 404
    rule = {"floor_cents": 30_000, "ceiling_cents": 40_000, "low_stock": 2,
            "high_stock": 50, "hot_velocity": 10, "cold_velocity": 1, "step_up_bp": 500,
            "step_down_bp": 500}
    r = await client.put(f"/api/v1/internal/pricing/rules/{v}", headers=INTERNAL, json=rule)
    assert r.status_code == 201 and r.json()["seller_id"] == str(seller.seller_id), r.text
    await _until(lambda: _winner(client, pid, v), (str(seller.seller_id), 300.0),
                 "floor on the page")
    # (search lists the cheapest variant: the other one, which has no rule, at 174.99)
    assert await _listed(client, tag) == 174.99
    own = (await client.get(f"/api/v1/seller/products/{pid}", headers=_key(seller))).json()
    low = {**body(category_ids["Headphones"]), "title": own["title"],
           "variants": [{**{k: x[k] for k in ("sku", "attributes", "price_cents")},
                         "price_cents": 29_999 if i == 0 else x["price_cents"]}
                        for i, x in enumerate(own["variants"])], "images": []}
    r = await client.put(f"/api/v1/seller/products/{pid}",
                         headers={**_key(seller), "If-Match": f'"{own["version"]}"'}, json=low)
    assert r.status_code == 422 and "variants.0.price_cents" in r.json()["error"]["fields"]
    assert (await client.delete(f"/api/v1/internal/pricing/rules/{v}",
                                headers=INTERNAL)).status_code == 200

    # a platform deal on the category applies to every seller; the best deal wins
    r = await client.post("/api/v1/internal/pricing/deals", headers=INTERNAL, json={
        **deal, "scope": "category", "scope_value": str(category_ids["Headphones"]),
        "amount": 6_000})
    assert r.status_code == 201 and r.json()["seller_id"] is None, r.text
    platform_deal = r.json()["deal_id"]
    await _until(lambda: _winner(client, pid, v), (str(seller.seller_id), 140.0),
                 "platform deal on the page")
    assert (await client.delete(f"/api/v1/internal/pricing/deals/{platform_deal}",
                                headers=INTERNAL)).status_code == 200
    assert (await client.delete(deal_url, headers=_key(seller))).status_code == 200
    await _until(lambda: _winner(client, pid, v), (str(seller.seller_id), 349.99),
                 "deals gone from the page")
    audit = (await client.get("/api/v1/internal/pricing/audit", headers=INTERNAL,
                              params={"entity": "deal", "key": made["deal_id"]})).json()
    assert [e["action"] for e in audit["entries"]] == ["delete", "update", "create"]
    assert audit["entries"][1]["before"]["amount"] == 2_000
    rules = (await client.get("/api/v1/internal/pricing/audit", headers=INTERNAL,
                              params={"entity": "rule", "key": str(v)})).json()
    assert [e["action"] for e in rules["entries"]] == ["delete", "create"]


async def test_coupons_are_made_limited_and_ended_by_the_platform(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool, seller: Seller,
        category_ids: dict[str, int]) -> None:
    tag = "coupon" + secrets.token_hex(4)
    _, v = await _product(client, pool, seller, category_ids["Headphones"], 5, tag)
    code = "save" + secrets.token_hex(3)
    coupon = {"code": code, "kind": "fixed", "amount": 1_000, "min_spend_cents": 10_000,
              "per_customer_limit": 1, "global_limit": 100, "expires_at": _at(days=7)}
    before = await _count(pool, "SELECT count(*) FROM coupons")
    for change, field in [({"code": "a!"}, "code"), ({"kind": "percent", "amount": 20_000},
                                                     "amount"),
                          ({"kind": "percent", "amount": 10_000}, "amount"),  # all of it
                          ({"scope": "product"}, "scope_value"),
                          ({"scope": "category", "scope_value": "999999999"}, "scope_value"),
                          ({"scope": "brand", "scope_value": "  "}, "scope_value"),
                          ({"expires_at": _at(days=-1)}, "expires_at"),
                          ({"starts_at": _at(days=8)}, "expires_at"),
                          # no start: it runs from now, at most a year (two were taken)
                          ({"expires_at": _at(days=500)}, "expires_at"),
                          ({"global_limit": 0}, "global_limit")]:
        r = await client.post("/api/v1/internal/pricing/coupons", headers=INTERNAL,
                              json={**coupon, **change})
        assert r.status_code == 422 and field in str(r.json()["error"]), (change, r.text)
        if change.get("amount") == 20_000:  # it said "1 to 10000", and 10000 is refused
            assert "1 to 9999" in r.json()["error"]["fields"]["amount"], r.text
    assert await _count(pool, "SELECT count(*) FROM coupons") == before
    r = await client.post("/api/v1/internal/pricing/coupons", headers=INTERNAL, json=coupon)
    assert r.status_code == 201 and r.json()["code"] == code.upper(), r.text
    assert (await client.post("/api/v1/internal/pricing/coupons", headers=INTERNAL,
                              json=coupon)).status_code == 409
    assert (await client.post("/api/v1/seller/deals", headers=_key(seller),
                              json=coupon)).status_code == 422  # not a seller's to make

    shopper = await _new_cart(app_url)
    try:
        await shopper.post("/api/v1/cart/items", json={"variant_id": v, "quantity": 1})
        r = await shopper.put("/api/v1/cart/coupon", json={"code": code})
        assert r.status_code == 200, r.text
        assert r.json()["quote"]["total_cents"] == 34_999 - 1_000
        # the platform changes its terms: not valid until tomorrow, so the cart loses it
        url = f"/api/v1/internal/pricing/coupons/{code}"
        r = await client.put(url, headers={**INTERNAL, "If-Match": '"1"'},
                             json={k: val for k, val in coupon.items() if k != "code"}
                             | {"starts_at": _at(days=1)})
        assert r.status_code == 200 and r.json()["version"] == 2, r.text
        cart = (await shopper.get("/api/v1/cart")).json()
        # priced without it, saying why
        assert cart["quote"]["total_cents"] == 34_999 and "not valid yet" in cart["coupon_error"]
        # ended now: it stays on record, and no cart can use it
        r = await client.delete(url, headers=INTERNAL)
        assert r.status_code == 200 and r.json()["expires_at"] <= _at(seconds=1)
        r = await shopper.put("/api/v1/cart/coupon", json={"code": code})
        assert r.status_code == 422 and "coupon" in r.json()["error"]["fields"]
    finally:
        await shopper.aclose()
    audit = (await client.get("/api/v1/internal/pricing/audit", headers=INTERNAL,
                              params={"entity": "coupon", "key": code.upper()})).json()
    assert [e["action"] for e in audit["entries"]] == ["delete", "update", "create"]
    assert all(e["actor"] == "platform" for e in audit["entries"])
