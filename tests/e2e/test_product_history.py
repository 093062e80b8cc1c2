"""Catalog history over HTTP: a product's versions listed and read as they were written, and
an old version restored as a new one (through the write path: outbox, search, pages)."""

from __future__ import annotations

import asyncio
from datetime import datetime

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import Seller
from tests.e2e.test_seller_api import body, create


async def _put(client: httpx.AsyncClient, seller: Seller, pid: str, payload: dict[str, object],
               version: int) -> dict[str, object]:
    r = await client.put(f"/api/v1/seller/products/{pid}", json=payload,
                         headers={**seller.auth, "If-Match": f'"{version}"'})
    assert r.status_code == 200, r.text
    got: dict[str, object] = r.json()
    return got


async def test_versions_are_listed_read_and_restored_as_a_new_version(
        client: httpx.AsyncClient, seller: Seller, other_seller: Seller,
        category_ids: dict[str, int], pool: asyncpg.Pool) -> None:
    original = body(category_ids["Headphones"])
    p = await create(client, seller, original)
    pid = p["product_id"]
    v2 = {**original, "title": "Renamed headphones", "variants": original["variants"][:1],
          "images": []}
    await asyncio.sleep(0.3)  # each version written at its own moment
    await _put(client, seller, pid, v2, 1)
    v3 = {**v2, "brand": "Other brand"}
    await asyncio.sleep(0.3)
    await _put(client, seller, pid, v3, 2)

    base = f"/api/v1/seller/products/{pid}/versions"
    listed = (await client.get(base, headers=seller.auth)).json()
    assert listed["current_version"] == 3
    assert [(v["version"], v["title"], v["current"]) for v in listed["versions"]] == [
        (3, "Renamed headphones", True), (2, "Renamed headphones", False),
        (1, original["title"], False)]
    # when each was written: version 1 with the product, each later one by its PUT
    written = [datetime.fromisoformat(v["written_at"]) for v in listed["versions"]]
    assert written[2] < written[1] < written[0], written
    created = await pool.fetchval("SELECT created_at FROM products WHERE product_id = $1",
                                  int(pid))
    assert written[2] == created

    first = (await client.get(f"{base}/1", headers=seller.auth)).json()
    assert first["version"] == 1 and not first["current"]
    was = first["product"]
    assert (was["title"], was["brand"]) == (original["title"], original["brand"])
    assert [v["sku"] for v in was["variants"]] == [v["sku"] for v in original["variants"]]
    assert [(i["url"], i["variant_sku"]) for i in was["images"]] == [
        (i["url"], i.get("variant_sku")) for i in original["images"]]
    now = (await client.get(f"{base}/3", headers=seller.auth)).json()
    assert now["current"] and now["product"]["brand"] == "Other brand"

    # restore v1 as v4: same contents, same variant ids (matched by SKU), the silver variant
    # that v2 retired is active again
    r = await client.post(f"{base}/1/restore", headers={**seller.auth, "If-Match": '"3"'})
    assert r.status_code == 200, r.text
    restored = r.json()
    assert (restored["version"], restored["restored_from"]) == (4, 1)
    assert r.headers["ETag"] == '"4"'
    assert (restored["title"], restored["brand"]) == (original["title"], original["brand"])
    assert {v["variant_id"]: v["status"] for v in restored["variants"]} == {
        v["variant_id"]: "ACTIVE" for v in p["variants"]}
    assert len(restored["images"]) == 2
    after = (await client.get(base, headers=seller.auth)).json()
    assert [v["version"] for v in after["versions"]] == [4, 3, 2, 1]


@pytest.mark.parametrize(("path", "headers", "status"), [
    ("/versions/9", {}, 404),  # no such version
    ("/versions/0", {}, 422),  # not a version number
    ("/versions/1/restore", {}, 428),  # no If-Match
    ("/versions/1/restore", {"If-Match": '"7"'}, 409),  # stale
])
async def test_history_errors(client: httpx.AsyncClient, seller: Seller,
                              category_ids: dict[str, int], path: str,
                              headers: dict[str, str], status: int) -> None:
    p = await create(client, seller, body(category_ids["Headphones"]))
    url = f"/api/v1/seller/products/{p['product_id']}{path}"
    r = await (client.post if path.endswith("restore") else client.get)(
        url, headers={**seller.auth, **headers})
    assert r.status_code == status, r.text
    after = (await client.get(f"/api/v1/seller/products/{p['product_id']}",
                              headers=seller.auth)).json()
    assert after["version"] == 1  # nothing written


async def test_another_sellers_history_is_not_theirs(
        client: httpx.AsyncClient, seller: Seller, other_seller: Seller,
        category_ids: dict[str, int]) -> None:
    p = await create(client, seller, body(category_ids["Headphones"]))
    base = f"/api/v1/seller/products/{p['product_id']}/versions"
    assert (await client.get(base, headers=other_seller.auth)).status_code == 403
    r = await client.post(f"{base}/1/restore", headers={**other_seller.auth, "If-Match": '"1"'})
    assert r.status_code == 403
    assert (await client.get(base)).status_code == 401
