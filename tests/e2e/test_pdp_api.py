"""Product pages over HTTP: the seed's shape with prices, stock, buy box and related products;
seller and price changes visible within a second; 404s and bad ids; pre-warming."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from adapters.postgres import pricing_repo
from serve.stages import parse_header as parse_server_timing
from tests.conftest import INTERNAL_TOKEN
from tests.e2e.conftest import Seller

INTERNAL = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


def body(title: str, brand: str, category: int, price: int, sku: str | None = None,
         **over: Any) -> dict[str, Any]:
    """Two variants (SKUs `sku` and `sku-w`), a product image and one of the white variant."""
    sku = sku or f"P-{secrets.token_hex(6)}"
    return {"title": title, "description": f"{title}, described.", "category_id": category,
            "brand": brand,
            "variants": [{"sku": sku, "attributes": {"color": "Black", "size": "M"},
                          "price_cents": price, "compare_price_cents": price + 2_000},
                         {"sku": sku + "-w", "attributes": {"color": "White", "size": "L"},
                          "price_cents": price + 1_000}],
            "images": [{"url": "https://cdn.example.com/a.jpg"},
                       {"url": "https://cdn.example.com/w.jpg", "variant_sku": sku + "-w"}],
            **over}


async def create(client: httpx.AsyncClient, seller: Seller, b: dict[str, Any]) -> dict[str, Any]:
    r = await client.post("/api/v1/seller/products", json=b, headers=seller.auth)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


async def restock(client: httpx.AsyncClient, variant_id: str, units: int) -> None:
    r = await client.patch(f"/api/v1/inventory/{variant_id}", headers=INTERNAL, json={
        "operation": "ADJUST", "quantity_delta": units, "warehouse_id": "WH_01",
        "reason": "restock"})
    assert r.status_code == 200, r.text


async def pdp(client: httpx.AsyncClient, product_id: str) -> httpx.Response:
    return await client.get(f"/api/v1/products/{product_id}")


async def until(client: httpx.AsyncClient, product_id: str,
                check: Callable[[dict[str, Any]], bool], within_s: float) -> dict[str, Any]:
    """Polls the page until `check` holds; fails when it does not within `within_s`."""
    deadline = time.monotonic() + within_s
    while True:
        r = await pdp(client, product_id)
        if r.status_code == 200 and check(r.json()):
            return r.json()  # type: ignore[no-any-return]
        assert time.monotonic() < deadline, f"not within {within_s} s: {r.text[:500]}"
        await asyncio.sleep(0.02)


@pytest.fixture
async def shop(client: httpx.AsyncClient, seller: Seller, pool: asyncpg.Pool,
               category_ids: dict[str, int]) -> dict[str, Any]:
    """A category of its own with a product page and related candidates: same brand in stock,
    same brand out of stock, another brand in stock; all searchable before the first view."""
    tag = "pdp" + secrets.token_hex(3)
    cat = await pool.fetchval(
        "INSERT INTO categories (parent_id, name, path, depth) VALUES ($1, $2, $3, 2) "
        "RETURNING category_id", category_ids["Audio"], f"Speakers {tag}",
        ["Electronics", "Audio", f"Speakers {tag}"])
    await pool.execute("INSERT INTO warehouses (warehouse_id, name, region) "
                       "VALUES ('WH_01', 'one', 'eu') ON CONFLICT DO NOTHING")
    brand = f"Acme {tag}"
    main = await create(client, seller, body(f"Bluetooth speaker {tag}", brand, cat, 4_999))
    # "other" matches the page's title better than "same": only the brand puts "same" first
    same = await create(client, seller, body(f"Speaker mini {tag}", brand, cat, 2_999))
    empty = await create(client, seller, body(f"Bluetooth speaker max {tag}", brand, cat, 9_999))
    other = await create(client, seller, body(f"Bluetooth speaker {tag} for Acme fans", "Other",
                                              cat, 3_999))
    for p in (main, same, other):
        await restock(client, p["variants"][0]["variant_id"], 60)
    ids = {main["product_id"], same["product_id"], empty["product_id"], other["product_id"]}
    deadline = time.monotonic() + 30
    while True:  # searchable, and the index knows which are in stock
        r = await client.get("/api/v1/products/search", params={"q": tag, "in_stock": "true"})
        found = {x["product_id"] for x in r.json()["results"]}
        if found == ids - {empty["product_id"]}:
            break
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(0.1)
    return {"main": main, "same": same, "empty": empty, "other": other, "tag": tag,
            "category": cat, "seller": seller}


async def test_product_page_has_the_seed_shape(client: httpx.AsyncClient,
                                               shop: dict[str, Any]) -> None:
    main = shop["main"]
    pid = main["product_id"]
    r = await pdp(client, pid)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-cache"] in ("miss", "hit")
    page = r.json()
    assert {"product_id", "title", "description", "category_path", "variants", "seller",
            "reviews_summary", "related_products", "external_id", "price", "badges",
            "deals", "buy_box"} <= set(page)
    assert page["product_id"] == pid and page["title"] == main["title"]
    assert page["external_id"] == main["external_id"]
    assert page["category_path"] == ["Electronics", "Audio", f"Speakers {shop['tag']}"]
    assert page["seller"] == {"id": str(shop["seller"].seller_id), "name": "Test Seller",
                              "rating": 4.5}
    assert page["reviews_summary"] == {"avg": None, "count": 0, "distribution": {
        "5": 0, "4": 0, "3": 0, "2": 0, "1": 0}}
    black, white = page["variants"]
    assert black["variant_id"] == main["variants"][0]["variant_id"]
    assert black["attributes"] == {"color": "Black", "size": "M"} and black["color"] == "Black"
    assert black["price"] == {"amount": 49.99, "currency": "USD", "was": 69.99}
    assert black["inventory"] == {"status": "IN_STOCK", "quantity_hint": "50+"}
    assert black["images"] == ["https://cdn.example.com/a.jpg"]
    assert black["buy_box"]["winner"]["seller"]["id"] == str(shop["seller"].seller_id)
    assert white["inventory"] == {"status": "OUT_OF_STOCK", "quantity_hint": "0"}
    assert white["buy_box"]["winner"] is None
    assert white["price"] == {"amount": 59.99, "currency": "USD", "was": None}
    assert white["images"] == ["https://cdn.example.com/w.jpg", "https://cdn.example.com/a.jpg"]
    assert page["price"] == black["price"] and "Deal" in page["badges"]
    assert page["buy_box"]["variant_id"] == black["variant_id"]
    # same brand first, another brand of the category after; never itself, never sold out
    related = page["related_products"]
    assert related[:2] == [shop["same"]["product_id"], shop["other"]["product_id"]]
    assert pid not in related and shop["empty"]["product_id"] not in related
    again = await pdp(client, pid)  # this Gateway's own copy of the page
    assert again.headers["x-cache"] == "local" and again.json() == page


async def test_internal_callers_see_where_a_page_took_its_time(
        client: httpx.AsyncClient, shop: dict[str, Any]) -> None:
    """A page loaded for an internal caller names its parts in `Server-Timing` (PostgreSQL's
    and the index's within the cache's); a shopper's page carries no such header."""
    r = await client.get(f"/api/v1/products/{shop['other']['product_id']}", headers=INTERNAL)
    assert r.status_code == 200 and r.headers["x-cache"] == "miss", r.headers
    stages = parse_server_timing(r.headers["server-timing"])
    assert {"page_cache", "page_db", "page_related", "page_stock"} <= set(stages), stages
    # inside the load (the related products are searched while the prices are read)
    assert max(stages["page_db"], stages["page_related"]) <= stages["page_cache"]
    shopper = await pdp(client, shop["same"]["product_id"])
    assert shopper.status_code == 200 and "server-timing" not in shopper.headers


async def test_a_deal_shows_the_price_before_it(client: httpx.AsyncClient, pool: asyncpg.Pool,
                                                shop: dict[str, Any]) -> None:
    pid = shop["other"]["product_id"]
    await pool.execute(
        """INSERT INTO deals (name, scope, scope_value, kind, amount, starts_at, ends_at)
           VALUES ('Flash', 'product', $1, 'fixed', 1000, now() - interval '1 minute',
                   now() + interval '1 hour')""", pid)
    page = (await pdp(client, pid)).json()
    # a category made just now (each test makes one): its path, though the tree was read
    # by an earlier test moments ago
    assert page["category_path"] == ["Electronics", "Audio", f"Speakers {shop['tag']}"]
    black = page["variants"][0]
    assert black["price"]["amount"] == 29.99
    assert black["buy_box"]["winner"]["deal_id"] == page["deals"][0]["deal_id"]
    assert page["deals"][0]["name"] == "Flash" and page["deals"][0]["kind"] == "fixed"


async def test_seller_update_and_price_change_show_within_a_second(
        client: httpx.AsyncClient, pool: asyncpg.Pool, shop: dict[str, Any]) -> None:
    main, seller = shop["main"], shop["seller"]
    pid = main["product_id"]
    await pdp(client, pid)
    assert (await pdp(client, pid)).headers["x-cache"] == "local"  # kept 5 s in the tests
    b = body(f"Bluetooth speaker renamed {shop['tag']}", f"Acme {shop['tag']}",
             shop["category"], 4_999, sku=main["variants"][0]["sku"])
    r = await client.put(f"/api/v1/seller/products/{pid}", json=b,
                         headers=seller.auth | {"If-Match": f'"{main["version"]}"'})
    assert r.status_code == 200, r.text
    page = await until(client, pid, lambda p: p["title"] == b["title"], 1.0)
    assert page["version"] == main["version"] + 1

    variant = int(main["variants"][0]["variant_id"])
    async with pool.acquire() as conn:
        await pricing_repo.record_price_change(conn, variant, 4_999, 3_999, "seller")
    page = await until(client, pid, lambda p: p["variants"][0]["price"]["amount"] == 39.99, 1.0)
    assert page["variants"][0]["price"] == {"amount": 39.99, "currency": "USD", "was": 69.99}
    assert page["price"]["amount"] == 39.99


async def test_a_seller_reads_its_own_write_at_once(
        client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int]) -> None:
    """The page right after an acknowledged PUT shows it (not the copy cached before), on
    every try; the index builder's invalidation comes later."""
    made = await create(client, seller, body("Read your writes lamp", "Acme",
                                             category_ids["Headphones"], 2_999))
    pid, version, sku = made["product_id"], made["version"], made["variants"][0]["sku"]
    for n in range(5):
        for _ in range(2):  # cached: in Redis and in the Gateways' copies
            assert (await pdp(client, pid)).status_code == 200
        title = f"Read your writes lamp, edition {n}"
        r = await client.put(f"/api/v1/seller/products/{pid}", headers=seller.auth | {
            "If-Match": f'"{version}"'}, json=body(title, "Acme", category_ids["Headphones"],
                                                  2_999, sku=sku))
        assert r.status_code == 200, r.text
        version = r.json()["version"]
        page = (await pdp(client, pid)).json()
        assert (page["title"], page["version"]) == (title, version), n


async def test_not_found_unavailable_and_bad_ids(client: httpx.AsyncClient, seller: Seller,
                                                 shop: dict[str, Any]) -> None:
    r = await pdp(client, str(secrets.randbits(62)))
    assert r.status_code == 404 and r.json()["error"]["code"] == "product_not_found"
    for bad in ("abc", "0", "-5", str(2**63)):
        r = await pdp(client, bad)
        assert r.status_code == 422, (bad, r.text)
        assert r.json()["error"]["code"] == "validation_failed"
        assert "product_id" in r.json()["error"]["fields"]
    draft = await create(client, seller, body("Draft speaker", "Acme", shop["category"], 999,
                                              status="DRAFT"))
    r = await pdp(client, draft["product_id"])
    assert r.status_code == 404 and r.json()["error"]["code"] == "product_not_found"

    p = shop["same"]
    pid = p["product_id"]
    assert (await pdp(client, pid)).status_code == 200
    b = body(p["title"], p["brand"], shop["category"], 2_999, sku=p["variants"][0]["sku"],
             status="INACTIVE")
    r = await client.put(f"/api/v1/seller/products/{pid}", json=b,
                         headers=seller.auth | {"If-Match": '"1"'})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 1.0
    while (r := await pdp(client, pid)).status_code == 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert r.status_code == 404 and r.json()["error"]["code"] == "product_unavailable"
    # back on sale: the cached "unavailable" goes with the update
    b["status"] = "ACTIVE"
    r = await client.put(f"/api/v1/seller/products/{pid}", json=b,
                         headers=seller.auth | {"If-Match": '"2"'})
    assert r.status_code == 200, r.text
    await until(client, pid, lambda page: page["version"] == 3, 1.0)

    r = await client.delete(f"/api/v1/seller/products/{pid}", headers=seller.auth)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 1.0
    while (r := await pdp(client, pid)).status_code == 200:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.02)
    assert r.status_code == 404 and r.json()["error"]["code"] == "product_not_found"


async def builder_idle(client: httpx.AsyncClient) -> None:
    """Until the index builder has consumed every event: it writes a batch to the index
    first and drops the batch's page keys after, so a product can be searchable while its
    keys are still to be dropped (a prewarm then would be undone)."""
    deadline = time.monotonic() + 30
    while True:
        r = await client.get("/api/v1/internal/search/status", headers=INTERNAL)
        assert r.status_code == 200, r.text
        if r.json()["pending_events"] == 0:
            return
        assert time.monotonic() < deadline, r.text
        await asyncio.sleep(0.1)


async def test_prewarm_and_cache_stats(client: httpx.AsyncClient, shop: dict[str, Any]) -> None:
    ids = [shop["main"]["product_id"], shop["other"]["product_id"]]
    await builder_idle(client)
    unknown = str(secrets.randbits(62))
    r = await client.post("/api/v1/internal/cache/prewarm", json={"product_ids": [*ids, unknown]})
    assert r.status_code == 401
    r = await client.post("/api/v1/internal/cache/prewarm", headers=INTERNAL,
                          params={"wait": "true"}, json={"product_ids": [*ids, unknown], "top": 3})
    assert r.status_code == 200, r.text
    assert r.json()["warmed"] >= 2 and r.json()["not_available"] == [unknown]
    r = await client.post("/api/v1/internal/cache/prewarm", headers=INTERNAL,
                          json={"product_ids": [2**63]})  # past BIGINT: used to answer 500
    assert r.status_code == 422 and "product_ids.0" in r.json()["error"]["fields"], r.text
    for nothing in ({}, {"product_ids": [], "top": 0}):  # a job that would warm nothing
        r = await client.post("/api/v1/internal/cache/prewarm", headers=INTERNAL, json=nothing)
        assert r.status_code == 422 and "product_ids" in r.text, r.text
    before = (await client.get("/api/v1/internal/cache/stats", headers=INTERNAL)).json()
    for pid in ids:
        assert (await pdp(client, pid)).headers["x-cache"] == "hit"
    after = (await client.get("/api/v1/internal/cache/stats", headers=INTERNAL)).json()
    assert after["hits"] == before["hits"] + 4 and after["loads"] == before["loads"]
    assert after["redis"] == "up"
