"""Seller accounts over HTTP: the platform makes a seller (its first key shown once), issues,
rotates and revokes keys, edits the profile product pages show; shoppers read the profile."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import INTERNAL_TOKEN
from tests.e2e.test_pdp_api import restock
from tests.e2e.test_seller_api import body

INTERNAL = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


def _key(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def _works(client: httpx.AsyncClient, key: str) -> bool:
    r = await client.get("/api/v1/seller/products", headers=_key(key))
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


async def test_a_seller_is_made_and_its_keys_rotated_and_revoked(
        app_url: str, client: httpx.AsyncClient, pool: asyncpg.Pool,
        category_ids: dict[str, int]) -> None:
    r = await client.post("/api/v1/internal/sellers", headers=INTERNAL,
                          json={"name": "  Acme Audio ", "rating": 4.2})
    assert r.status_code == 201, r.text
    made = r.json()
    sid, first = made["seller_id"], made["api_key"]
    assert made["name"] == "Acme Audio" and made["rating"] == 4.2
    assert [k["key_id"] for k in made["keys"]] == [made["key_id"]]
    assert first.startswith(made["keys"][0]["prefix"])  # a prefix, never the key
    assert "api_key" not in (await client.get(f"/api/v1/internal/sellers/{sid}",
                                              headers=INTERNAL)).json()
    # the key works on the seller API: a product made with it is the seller's
    tag = "acme" + secrets.token_hex(4)
    p = await client.post("/api/v1/seller/products", headers=_key(first),
                          json={**body(category_ids["Headphones"]), "title": f"Speaker {tag}"})
    assert p.status_code == 201 and p.json()["seller_id"] == sid, p.text
    pid, vid = p.json()["product_id"], p.json()["variants"][0]["variant_id"]
    await pool.execute("INSERT INTO warehouses (warehouse_id, name, region) "
                       "VALUES ('WH_01', 'one', 'eu') ON CONFLICT DO NOTHING")
    await restock(client, vid, 5)
    await _until(lambda: _page_seller(client, pid), "Acme Audio")  # indexed, page cached

    # a second key: both work (rotation with overlap); then a rotation: only the new one
    second = (await client.post(f"/api/v1/internal/sellers/{sid}/keys", headers=INTERNAL)
              ).json()
    assert await _works(client, first) and await _works(client, second["api_key"])
    r = await client.post(f"/api/v1/internal/sellers/{sid}/keys", headers=INTERNAL,
                          params={"revoke_others": "true"})
    assert r.status_code == 201, r.text
    third = r.json()
    assert sorted(third["revoked"]) == sorted([made["key_id"], second["key_id"]])
    assert not await _works(client, first) and not await _works(client, second["api_key"])
    assert await _works(client, third["api_key"])
    # revoke the last one: nothing works; revoking again changes nothing
    for _ in range(2):
        r = await client.delete(f"/api/v1/internal/sellers/{sid}/keys/{third['key_id']}",
                                headers=INTERNAL)
        assert r.status_code == 200 and not any(k["active"] for k in r.json()["keys"])
    assert not await _works(client, third["api_key"])

    # the profile: edited by the platform, read by shoppers and shown on product pages
    r = await client.patch(f"/api/v1/internal/sellers/{sid}", headers=INTERNAL,
                           json={"name": "Acme Sound", "rating": 4.8})
    assert r.status_code == 200 and r.json()["name"] == "Acme Sound"
    public = (await client.get(f"/api/v1/sellers/{sid}")).json()
    assert public == {"seller_id": sid, "name": "Acme Sound", "rating": 4.8}
    # the product page (cached before the rename) and search follow the profile: the outbox
    # announces
    # the seller's products
    await _until(lambda: _page_seller(client, pid), "Acme Sound")
    assert pid in await _until(lambda: _search_ids(client, tag), None, want_in=pid)
    fourth = (await client.post(f"/api/v1/internal/sellers/{sid}/keys", headers=INTERNAL)
              ).json()["api_key"]
    holding = httpx.AsyncClient(base_url=app_url, timeout=30)  # a cart holding a unit
    assert (await holding.post("/api/v1/cart")).status_code == 201
    assert (await holding.post("/api/v1/cart/items",
                               json={"variant_id": vid, "quantity": 1})).status_code == 200
    r = await client.patch(f"/api/v1/internal/sellers/{sid}", headers=INTERNAL,
                           json={"status": "SUSPENDED"})
    assert r.json()["status"] == "SUSPENDED"
    cart = (await holding.get("/api/v1/cart")).json()  # why it has no price: which line
    assert cart["quote"] is None and f"variant {vid}: no such variant for sale" in cart[
        "quote_error"], cart
    assert (await holding.delete(f"/api/v1/cart/items/{vid}")).status_code == 200
    await holding.aclose()
    assert (await client.get(f"/api/v1/sellers/{sid}")).status_code == 404
    # a suspended seller's key is told why it stopped working (not "invalid API key")
    r = await client.get("/api/v1/seller/products", headers=_key(fourth))
    assert r.status_code == 403 and r.json()["error"]["code"] == "seller_suspended", r.text
    assert (await client.get("/api/v1/seller/products", headers=_key(third["api_key"]))
            ).status_code == 401  # a revoked key stays just invalid
    # the cached page goes when the outbox's announcement reaches the page cache (not at once)
    assert await _until(lambda: _page_gone(client, pid), True)
    assert pid not in await _until(lambda: _search_ids(client, tag), None, want_out=pid)
    # nor can a shopper's cart hold its units (as its page and search, it is not for sale)
    assert await _add_to_new_cart(app_url, vid) == 404
    held = (await client.get(f"/api/v1/inventory/{vid}", headers=INTERNAL)).json()
    assert [w["reserved"] for w in held["warehouses"].values()] == [0], held
    r = await client.patch(f"/api/v1/internal/sellers/{sid}", headers=INTERNAL,
                           json={"status": "ACTIVE"})
    assert r.json()["status"] == "ACTIVE"
    assert await _add_to_new_cart(app_url, vid) == 200
    assert (await client.get(f"/api/v1/sellers/{sid}")).status_code == 200
    assert await _works(client, fourth)
    for null in ({"name": None}, {"status": None}, {"name": None, "rating": 4.0}):
        r = await client.patch(f"/api/v1/internal/sellers/{sid}", headers=INTERNAL, json=null)
        assert r.status_code == 422 and set(r.json()["error"]["fields"]) == (
            {k for k, v in null.items() if v is None}), r.text
    r = await client.get(f"/api/v1/internal/sellers/{sid}", headers=INTERNAL)
    assert (r.json()["name"], r.json()["rating"]) == ("Acme Sound", 4.8)  # nothing written
    assert pid in await _until(lambda: _search_ids(client, tag), None, want_in=pid)
    # revoking a key the seller does not have: 404, as for an unknown seller
    for path in (f"{sid}/keys/k0000000000000000", "1/keys/k0000000000000000",
                 f"{sid}/keys/k-initial"):  # made through the API: it never had that key
        r = await client.delete(f"/api/v1/internal/sellers/{path}", headers=INTERNAL)
        assert r.status_code == 404, (path, r.text)


async def _add_to_new_cart(app_url: str, variant_id: str) -> int:
    async with httpx.AsyncClient(base_url=app_url, timeout=30) as shopper:
        assert (await shopper.post("/api/v1/cart")).status_code == 201
        r = await shopper.post("/api/v1/cart/items",
                               json={"variant_id": variant_id, "quantity": 1})
        if r.status_code != 200:
            assert r.json()["error"]["code"] == "unknown_variant", r.text
        return r.status_code


async def _page_seller(client: httpx.AsyncClient, pid: str) -> object:
    r = await client.get(f"/api/v1/products/{pid}")
    return r.json()["seller"]["name"] if r.status_code == 200 else None


async def _page_gone(client: httpx.AsyncClient, pid: str) -> bool:
    return (await client.get(f"/api/v1/products/{pid}")).status_code in (404, 410)


async def _search_ids(client: httpx.AsyncClient, q: str) -> object:
    r = await client.get("/api/v1/products/search", params={"q": q})
    return [x["product_id"] for x in r.json()["results"]] if r.status_code == 200 else []


async def _until(read: Callable[[], Awaitable[object]], value: object,
                 want_in: str | None = None, want_out: str | None = None) -> Any:
    """What `read` gives once it equals `value` (or holds / lacks an id), within 20 s."""
    got: object = None
    for _ in range(200):
        got = await read()
        if want_in is not None and isinstance(got, list) and want_in in got:
            return got
        if want_out is not None and isinstance(got, list) and want_out not in got:
            return got
        if want_in is None and want_out is None and got == value:
            return got
        await asyncio.sleep(0.1)
    raise AssertionError(f"never happened; last: {got!r}")


async def test_a_legacy_key_is_revoked_by_a_rotation(client: httpx.AsyncClient,
                                                     seller: object) -> None:
    from tests.e2e.conftest import Seller
    assert isinstance(seller, Seller)
    sid = seller.seller_id
    account = (await client.get(f"/api/v1/internal/sellers/{sid}", headers=INTERNAL)).json()
    assert [k["key_id"] for k in account["keys"]] == ["k-initial"]
    assert await _works(client, seller.key)
    new = (await client.post(f"/api/v1/internal/sellers/{sid}/keys", headers=INTERNAL,
                             params={"revoke_others": "true"})).json()
    assert new["revoked"] == ["k-initial"]
    assert not await _works(client, seller.key) and await _works(client, new["api_key"])


async def test_a_bad_rotation_flag_names_it(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/internal/sellers/1/keys", headers=INTERNAL,
                          params={"revoke_others": "yes please"})
    assert r.status_code == 422 and "revoke_others" in str(r.json()["error"]["fields"])


@pytest.mark.parametrize(("method", "path", "json", "field"), [
    ("post", "/api/v1/internal/sellers", {"name": ""}, "name"),
    ("post", "/api/v1/internal/sellers", {"name": "x", "rating": 6}, "rating"),
    ("post", "/api/v1/internal/sellers", {"name": "a\x00b"}, "name"),
    ("post", "/api/v1/internal/sellers", {"name": "x", "api_key": "mine"}, "api_key"),
    ("patch", "/api/v1/internal/sellers/1", {}, "body"),
    ("patch", "/api/v1/internal/sellers/1", {"status": "GONE"}, "status"),
])
async def test_bad_input_names_the_field(client: httpx.AsyncClient, method: str, path: str,
                                         json: dict[str, object], field: str) -> None:
    r = await client.request(method.upper(), path, json=json, headers=INTERNAL)
    assert r.status_code == 422, r.text
    assert any(field in k for k in r.json()["error"]["fields"]), r.text


async def test_accounts_need_the_internal_token_and_known_sellers(
        client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/internal/sellers", json={"name": "x"})
    assert r.status_code == 401 and "<internal token>" in r.json()["error"]["message"], r.text
    r = await client.post("/api/v1/internal/sellers", json={"name": "x"},
                          headers={"Authorization": "Basic abc"})
    assert r.status_code == 401 and "<internal token>" in r.json()["error"]["message"], r.text
    for method, path in (("get", "/api/v1/internal/sellers/12345"),
                         ("post", "/api/v1/internal/sellers/12345/keys"),
                         ("delete", "/api/v1/internal/sellers/12345/keys/k0123456789abcdef"),
                         ("get", "/api/v1/sellers/12345")):
        r = await client.request(method.upper(), path, headers=INTERNAL)
        assert r.status_code == 404, (path, r.text)
