"""Seller write API over HTTP through Ray Serve, against real PostgreSQL."""

from __future__ import annotations

import json
import secrets
from typing import Any

import asyncpg
import httpx
import pytest

from tests.e2e.conftest import Seller


def body(category_id: int, **over: Any) -> dict[str, Any]:
    tag = secrets.token_hex(4)
    b: dict[str, Any] = {
        "title": "Sony WH-1000XM5 Wireless Headphones",
        "description": "Noise cancelling.\nThirty hours of battery.",
        "category_id": category_id,
        "brand": "Sony",
        "variants": [
            {
                "sku": f"WH5-BLK-{tag}",
                "attributes": {"color": "Black"},
                "price_cents": 34999,
                "compare_price_cents": 39999,
                "weight_grams": 250,
            },
            {"sku": f"WH5-SLV-{tag}", "attributes": {"color": "Silver"}, "price_cents": 34999},
        ],
        "images": [
            {"url": "https://cdn.example.com/wh5/front.jpg", "position": 0, "alt_text": "Front"},
            {
                "url": "https://cdn.example.com/wh5/silver.jpg",
                "position": 1,
                "variant_sku": f"WH5-SLV-{tag}",
            },
        ],
    }
    b.update(over)
    return b


async def counts(pool: asyncpg.Pool, seller: Seller) -> tuple[int, ...]:
    """What a write could leave behind, anywhere: rows of every catalog table, last event."""
    row = await pool.fetchrow(
        """SELECT (SELECT count(*) FROM products) AS products,
                  (SELECT count(*) FROM product_variants) AS variants,
                  (SELECT count(*) FROM product_images) AS images,
                  (SELECT count(*) FROM product_versions) AS versions,
                  (SELECT coalesce(max(event_id), 0) FROM outbox) AS last_event,
                  (SELECT coalesce(sum(version), 0) FROM products WHERE seller_id = $1) AS v""",
        seller.seller_id,
    )
    assert row is not None
    return tuple(row.values())


async def create(
    client: httpx.AsyncClient, seller: Seller, payload: dict[str, Any]
) -> dict[str, Any]:
    r = await client.post("/api/v1/seller/products", json=payload, headers=seller.auth)
    assert r.status_code == 201, r.text
    return dict(r.json())


async def test_create_returns_stored_product_with_ids_and_writes_outbox(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int], pool: asyncpg.Pool
) -> None:
    payload = body(category_ids["Headphones"], external_id="SONY-XM5")
    r = await client.post("/api/v1/seller/products", json=payload, headers=seller.auth)
    assert r.status_code == 201, r.text
    p = r.json()
    assert p["version"] == 1 and r.headers["ETag"] == '"1"'
    assert r.headers["Location"] == f"/api/v1/seller/products/{p['product_id']}"
    assert p["external_id"] == "SONY-XM5" and p["seller_id"] == str(seller.seller_id)
    assert p["category_path"] == ["Electronics", "Audio", "Headphones"]
    assert [v["sku"] for v in p["variants"]] == [v["sku"] for v in payload["variants"]]
    assert all(v["variant_id"].isdigit() for v in p["variants"])
    assert p["variants"][0]["compare_price_cents"] == 39999
    silver = p["variants"][1]["variant_id"]
    assert [(i["position"], i["variant_id"]) for i in p["images"]] == [(0, None), (1, silver)]
    event = await pool.fetchrow(
        "SELECT event_type, aggregate_version, payload FROM outbox WHERE aggregate_id = $1",
        int(p["product_id"]),
    )
    assert event is not None
    assert (event["event_type"], event["aggregate_version"]) == ("product.created", 1)
    assert event["payload"]["product_id"] == p["product_id"]
    got = await client.get(f"/api/v1/seller/products/{p['product_id']}", headers=seller.auth)
    assert got.status_code == 200 and got.json() == p


async def test_update_bumps_version_keeps_previous_and_matches_variants_by_sku(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int], pool: asyncpg.Pool
) -> None:
    payload = body(category_ids["Headphones"])
    p = await create(client, seller, payload)
    black, silver = p["variants"]
    payload["title"] = "Sony WH-1000XM5 (2025 edition)"
    payload["variants"] = [
        {**payload["variants"][0], "price_cents": 29999, "compare_price_cents": None},
        {
            "sku": "WH5-BLU-" + secrets.token_hex(4),
            "attributes": {"color": "Blue"},
            "price_cents": 31999,
        },
    ]
    payload["images"] = payload["images"][:1]
    r = await client.put(
        f"/api/v1/seller/products/{p['product_id']}",
        json=payload,
        headers={**seller.auth, "If-Match": '"1"'},
    )
    assert r.status_code == 200, r.text
    u = r.json()
    assert u["version"] == 2 and r.headers["ETag"] == '"2"'
    assert u["title"] == "Sony WH-1000XM5 (2025 edition)"
    by_sku = {v["sku"]: v for v in u["variants"]}
    assert by_sku[black["sku"]]["variant_id"] == black["variant_id"]  # same SKU, same id
    assert by_sku[black["sku"]]["price_cents"] == 29999
    assert by_sku[silver["sku"]]["status"] == "INACTIVE"  # left out: retired, not deleted
    assert by_sku[silver["sku"]]["variant_id"] == silver["variant_id"]
    assert len(u["images"]) == 1
    snap = await pool.fetchval(
        "SELECT snapshot FROM product_versions WHERE product_id = $1 AND version = 1",
        int(p["product_id"]),
    )
    assert snap["product"]["title"] == "Sony WH-1000XM5 Wireless Headphones"
    assert {v["sku"] for v in snap["variants"]} == {black["sku"], silver["sku"]}
    types = [
        r["event_type"]
        for r in await pool.fetch(
            "SELECT event_type FROM outbox WHERE aggregate_id = $1 ORDER BY event_id",
            int(p["product_id"]),
        )
    ]
    assert types == ["product.created", "product.updated"]
    history = await pool.fetch(
        "SELECT variant_id, old_cents, new_cents, reason FROM price_history "
        "WHERE variant_id = ANY($1::bigint[])",
        [int(black["variant_id"]), int(silver["variant_id"])])
    assert [tuple(h) for h in history] == [  # the price moved for black only
        (int(black["variant_id"]), black["price_cents"], 29999, "seller")]


async def test_version_in_body_is_accepted(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int]
) -> None:
    payload = body(category_ids["Audio"])
    p = await create(client, seller, payload)
    r = await client.put(
        f"/api/v1/seller/products/{p['product_id']}",
        json={**payload, "version": 1, "brand": "Sony Group"},
        headers=seller.auth,
    )
    assert r.status_code == 200, r.text
    assert r.json()["brand"] == "Sony Group" and r.json()["version"] == 2


async def test_stale_update_gets_409_with_current_version_and_changes_nothing(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int], pool: asyncpg.Pool
) -> None:
    payload = body(category_ids["Headphones"])
    p = await create(client, seller, payload)
    url = f"/api/v1/seller/products/{p['product_id']}"
    first = await client.put(
        url, json={**payload, "title": "First writer"}, headers={**seller.auth, "If-Match": "1"}
    )
    assert first.status_code == 200
    before = await counts(pool, seller)
    stale = await client.put(
        url, json={**payload, "title": "Second writer"}, headers={**seller.auth, "If-Match": "1"}
    )
    assert stale.status_code == 409
    err = stale.json()["error"]
    assert err["code"] == "version_conflict" and err["current_version"] == 2
    assert await counts(pool, seller) == before
    assert (await client.get(url, headers=seller.auth)).json()["title"] == "First writer"
    missing = await client.put(url, json=payload, headers=seller.auth)
    assert missing.status_code == 428
    assert missing.json()["error"]["code"] == "version_required"


async def test_delete_marks_deleted_and_hides_product(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int], pool: asyncpg.Pool
) -> None:
    p = await create(client, seller, body(category_ids["Audio"]))
    url = f"/api/v1/seller/products/{p['product_id']}"
    r = await client.delete(url, headers=seller.auth)
    assert r.status_code == 200, r.text
    assert r.json() == {"product_id": p["product_id"], "status": "DELETED", "version": 2}
    status = await pool.fetchval(
        "SELECT status FROM products WHERE product_id = $1", int(p["product_id"])
    )
    assert status == "DELETED"  # marked, not removed
    assert (await client.get(url, headers=seller.auth)).status_code == 404
    assert (await client.delete(url, headers=seller.auth)).status_code == 404
    listed = (await client.get("/api/v1/seller/products", headers=seller.auth)).json()["items"]
    assert p["product_id"] not in {x["product_id"] for x in listed}
    last = await pool.fetchval(
        "SELECT event_type FROM outbox WHERE aggregate_id = $1 ORDER BY event_id DESC LIMIT 1",
        int(p["product_id"]),
    )
    assert last == "product.deleted"


async def test_list_pages_through_a_sellers_products_only(
    client: httpx.AsyncClient, seller: Seller, other_seller: Seller, category_ids: dict[str, int]
) -> None:
    mine = {
        (await create(client, seller, body(category_ids["Audio"])))["product_id"] for _ in range(5)
    }
    await create(client, other_seller, body(category_ids["Audio"]))
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (
            await client.get("/api/v1/seller/products", params=params, headers=seller.auth)
        ).json()
        seen += [x["product_id"] for x in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert set(seen) == mine and len(seen) == 5
    assert seen == sorted(seen, key=int, reverse=True)  # newest first, no repeats


async def test_authentication_and_ownership(
    client: httpx.AsyncClient, seller: Seller, other_seller: Seller, category_ids: dict[str, int]
) -> None:
    payload = body(category_ids["Audio"])
    assert (await client.post("/api/v1/seller/products", json=payload)).status_code == 401
    bad = await client.post(
        "/api/v1/seller/products",
        json=payload,
        headers={"Authorization": "Bearer ak_not-a-real-key"},
    )
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    basic = await client.get("/api/v1/seller/products", headers={"Authorization": "Basic abc"})
    assert basic.status_code == 401 and "<api key>" in basic.json()["error"]["message"]
    p = await create(client, seller, payload)
    url = f"/api/v1/seller/products/{p['product_id']}"
    theirs = {**other_seller.auth, "If-Match": "1"}
    assert (await client.put(url, json=payload, headers=theirs)).status_code == 403
    assert (await client.delete(url, headers=theirs)).status_code == 403
    assert (await client.get(url, headers=other_seller.auth)).status_code == 403
    assert (await client.get(url, headers=seller.auth)).json()["version"] == 1  # untouched


BAD_INPUTS: list[tuple[str, Any, int, str]] = [
    (
        "negative price",
        lambda b: b["variants"][0].update(price_cents=-1),
        422,
        "variants.0.price_cents",
    ),
    (
        "price as float",
        lambda b: b["variants"][0].update(price_cents=12.5),
        422,
        "variants.0.price_cents",
    ),
    ("unknown category", lambda b: b.update(category_id=987654), 422, "category_id"),
    ("malformed category", lambda b: b.update(category_id="shoes"), 422, "category_id"),
    (
        "duplicate sku in body",
        lambda b: b["variants"][1].update(sku=b["variants"][0]["sku"]),
        422,
        "variants.1.sku",
    ),
    (
        "too many variants",
        lambda b: b.update(
            variants=[
                {"sku": f"MANY-{i}-{secrets.token_hex(3)}", "price_cents": 100} for i in range(101)
            ]
        ),
        422,
        "variants",
    ),
    ("no variants", lambda b: b.update(variants=[]), 422, "variants"),
    ("control char in title", lambda b: b.update(title="Sony\x07Headphones"), 422, "title"),
    ("newline in title", lambda b: b.update(title="Sony\nHeadphones"), 422, "title"),
    ("blank title", lambda b: b.update(title="   "), 422, "title"),
    ("title too long", lambda b: b.update(title="x" * 501), 422, "title"),
    ("unknown field", lambda b: b.update(colour="red"), 422, "colour"),
    ("a version on a new product", lambda b: b.update(version=5), 422, "version"),
    (
        "compare below price",
        lambda b: b["variants"][0].update(compare_price_cents=1),
        422,
        "variants.0.compare_price_cents",
    ),
    (
        "image not a url",
        lambda b: b["images"][0].update(url="javascript:alert(1)"),
        422,
        "images.0.url",
    ),
    (
        "image of unknown variant",
        lambda b: b["images"][0].update(variant_sku="NOPE"),
        422,
        "images.0.variant_sku",
    ),
    ("bad sku", lambda b: b["variants"][0].update(sku="has space"), 422, "variants.0.sku"),
]


@pytest.mark.parametrize(
    ("case", "mutate", "status", "field"), BAD_INPUTS, ids=[c[0] for c in BAD_INPUTS]
)
async def test_bad_input_is_rejected_naming_the_field_and_writes_nothing(
    client: httpx.AsyncClient,
    seller: Seller,
    category_ids: dict[str, int],
    pool: asyncpg.Pool,
    case: str,
    mutate: Any,
    status: int,
    field: str,
) -> None:
    payload = body(category_ids["Headphones"])
    mutate(payload)
    before = await counts(pool, seller)
    r = await client.post("/api/v1/seller/products", json=payload, headers=seller.auth)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == "validation_failed" and field in err["fields"], err
    assert await counts(pool, seller) == before


async def test_rejected_update_changes_nothing(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int], pool: asyncpg.Pool
) -> None:
    payload = body(category_ids["Headphones"])
    p = await create(client, seller, payload)
    before = await counts(pool, seller)
    bad = {**payload, "category_id": 987654, "title": "Changed"}
    r = await client.put(
        f"/api/v1/seller/products/{p['product_id']}",
        json=bad,
        headers={**seller.auth, "If-Match": "1"},
    )
    assert r.status_code == 422 and "category_id" in r.json()["error"]["fields"]
    assert await counts(pool, seller) == before
    again = (
        await client.get(f"/api/v1/seller/products/{p['product_id']}", headers=seller.auth)
    ).json()
    assert again == p


async def test_sku_of_another_product_conflicts_and_writes_nothing(
    client: httpx.AsyncClient,
    seller: Seller,
    other_seller: Seller,
    category_ids: dict[str, int],
    pool: asyncpg.Pool,
) -> None:
    taken = (await create(client, other_seller, body(category_ids["Audio"])))["variants"][0]["sku"]
    payload = body(category_ids["Audio"])
    payload["variants"][1]["sku"] = taken
    payload["images"] = payload["images"][:1]
    before = await counts(pool, seller)
    r = await client.post("/api/v1/seller/products", json=payload, headers=seller.auth)
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "duplicate_sku" and "variants.1.sku" in err["fields"]
    assert await counts(pool, seller) == before


async def test_a_sku_is_free_again_once_its_variant_is_off_sale(
    client: httpx.AsyncClient, seller: Seller, other_seller: Seller,
    category_ids: dict[str, int],
) -> None:
    """A deleted product's SKUs, and a variant's a write left out, can be used by a new
    product; the old variant brought back on sale (a restore) is then refused naming it."""
    gone = await create(client, other_seller, body(category_ids["Audio"]))
    r = await client.delete(f"/api/v1/seller/products/{gone['product_id']}",
                            headers=other_seller.auth)
    assert r.status_code == 200, r.text
    again = body(category_ids["Audio"])
    again["variants"][0]["sku"] = gone["variants"][0]["sku"]
    r = await client.post("/api/v1/seller/products", json=again, headers=seller.auth)
    assert r.status_code == 201, r.text

    first = await create(client, seller, body(category_ids["Audio"]))
    pid, (kept, dropped) = first["product_id"], first["variants"]
    payload = body(category_ids["Audio"])
    payload["variants"] = [{k: kept[k] for k in ("sku", "attributes", "price_cents")}]
    payload["images"] = payload["images"][:1]
    r = await client.put(f"/api/v1/seller/products/{pid}", json={**payload, "version": 1},
                         headers=seller.auth)
    assert r.status_code == 200, r.text
    other = body(category_ids["Audio"])
    other["variants"][1]["sku"] = dropped["sku"]
    other["images"] = other["images"][:1]
    r = await client.post("/api/v1/seller/products", json=other, headers=other_seller.auth)
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/v1/seller/products/{pid}/versions/1/restore",
                          headers={**seller.auth, "If-Match": '"2"'})
    assert r.status_code == 409, r.text
    err = r.json()["error"]
    assert err["code"] == "duplicate_sku" and "variants.1.sku" in err["fields"], err
    current = (await client.get(f"/api/v1/seller/products/{pid}", headers=seller.auth)).json()
    assert current["version"] == 2
    assert [v["sku"] for v in current["variants"] if v["status"] == "ACTIVE"] == [kept["sku"]]


async def test_duplicate_external_id_conflicts(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int]
) -> None:
    await create(client, seller, body(category_ids["Audio"], external_id="MY-1"))
    r = await client.post(
        "/api/v1/seller/products",
        json=body(category_ids["Audio"], external_id="MY-1"),
        headers=seller.auth,
    )
    assert r.status_code == 409 and r.json()["error"]["code"] == "duplicate_external_id"


async def test_unreadable_bodies(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int], pool: asyncpg.Pool
) -> None:
    headers = {**seller.auth, "Content-Type": "application/json"}
    before = await counts(pool, seller)
    latin1 = b'{"title": "Caf\xe9", "category_id": 1, "variants": []}'
    r = await client.post("/api/v1/seller/products", content=latin1, headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_encoding"
    r = await client.post("/api/v1/seller/products", content=b'{"title": ', headers=headers)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    assert r.json()["error"]["fields"]["body"].startswith("body is not valid JSON: "), r.text
    assert "{'error'" not in r.text and "at character" in r.text  # said plainly, and where
    valid = body(category_ids["Audio"])  # JSON sent as text: the content type is what's wrong
    r = await client.post("/api/v1/seller/products", content=json.dumps(valid),
                          headers={**seller.auth, "Content-Type": "text/plain"})
    assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_media_type")
    assert "text/plain" in r.json()["error"]["fields"]["Content-Type"], r.text
    huge = body(category_ids["Audio"], description="x" * (2 << 20))
    r = await client.post("/api/v1/seller/products", json=huge, headers=seller.auth)
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"
    assert await counts(pool, seller) == before


async def test_unicode_titles_are_kept(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int]
) -> None:
    p = await create(client, seller, body(category_ids["Audio"], title="Kopfhörer – 静音 🎧"))
    assert p["title"] == "Kopfhörer – 静音 🎧"


async def test_auth_is_checked_before_the_body(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/seller/products", json={"title": 5})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


async def test_versions_and_missing_products(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int], pool: asyncpg.Pool
) -> None:
    payload = body(category_ids["Audio"])
    p = await create(client, seller, payload)
    url = f"/api/v1/seller/products/{p['product_id']}"
    for bad in ('W/"1"', '"1', "one", "1, 2"):
        r = await client.put(url, json=payload, headers={**seller.auth, "If-Match": bad})
        assert r.status_code == 422 and "If-Match" in r.json()["error"]["fields"], bad
    r = await client.delete(url, headers={**seller.auth, "If-Match": '"7"'})
    assert r.status_code == 409 and r.json()["error"]["current_version"] == 1
    missing = "/api/v1/seller/products/123456789"
    assert (await client.get(missing, headers=seller.auth)).status_code == 404
    r = await client.put(missing, json=payload, headers={**seller.auth, "If-Match": "1"})
    assert r.status_code == 404
    assert (await client.get(url, headers=seller.auth)).json()["version"] == 1


async def test_text_that_grows_under_normalization_or_hides_is_rejected(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int], pool: asyncpg.Pool
) -> None:
    before = await counts(pool, seller)
    cases = {
        "title": "\u0958" * 500,  # 500 characters that NFC turns into 1,000
        "brand": "\u200b\u200b",  # only zero-width spaces
    }
    for field, value in cases.items():
        r = await client.post(
            "/api/v1/seller/products",
            headers=seller.auth,
            json=body(category_ids["Audio"], **{field: value}),
        )
        assert r.status_code == 422 and field in r.json()["error"]["fields"], r.text
    raw = json.dumps(body(category_ids["Audio"])).replace('"title": "', '"title": "a\\ud800', 1)
    r = await client.post(
        "/api/v1/seller/products",
        content=raw.encode(),
        headers={**seller.auth, "Content-Type": "application/json"},
    )
    assert r.status_code in (400, 422), r.text
    sku = body(category_ids["Audio"])
    sku["variants"][0]["sku"] = "NL1\n"
    r = await client.post("/api/v1/seller/products", json=sku, headers=seller.auth)
    assert r.status_code == 422 and "variants.0.sku" in r.json()["error"]["fields"]
    assert await counts(pool, seller) == before


async def test_concurrent_creates_with_crossed_skus_never_fail_with_500(
    client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int]
) -> None:
    import asyncio

    async def pair() -> list[int]:
        x, y = f"X-{secrets.token_hex(4)}", f"Y-{secrets.token_hex(4)}"
        a = body(category_ids["Audio"], images=[])
        b = body(category_ids["Audio"], images=[])
        a["variants"][0]["sku"], a["variants"][1]["sku"] = x, y
        b["variants"][0]["sku"], b["variants"][1]["sku"] = y, x
        rs = await asyncio.gather(
            client.post("/api/v1/seller/products", json=a, headers=seller.auth),
            client.post("/api/v1/seller/products", json=b, headers=seller.auth),
        )
        return sorted(r.status_code for r in rs)

    outcomes = await asyncio.gather(*(pair() for _ in range(10)))
    assert all(o == [201, 409] for o in outcomes), outcomes
