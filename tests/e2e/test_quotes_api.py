"""Quotes over HTTP: the exact breakdown (list -> deal -> dynamic -> coupon), a signed token that
a reservation carries to pay exactly that, coupons counted once, and the dynamic-pricing pass."""

from __future__ import annotations

import secrets
from typing import Any

import asyncpg
import httpx

from tests.conftest import INTERNAL_TOKEN
from tests.integration.conftest import make_catalog

AUTH = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


async def _variant(pool: asyncpg.Pool, price: int, available: int) -> tuple[int, str]:
    v = secrets.randbits(60)
    brand = "Brand" + secrets.token_hex(4)
    await make_catalog(pool, {v: {"WH_01": available}})
    await pool.execute("UPDATE product_variants SET price_cents = $2 WHERE variant_id = $1",
                       v, price)
    await pool.execute("UPDATE products SET brand = $2 WHERE product_id = $1", v, brand)
    return v, brand


async def _deal(pool: asyncpg.Pool, brand: str, percent_bp: int) -> None:
    await pool.execute(
        """INSERT INTO deals (scope, scope_value, kind, amount, starts_at, ends_at)
           VALUES ('brand', $1, 'percent', $2, now() - interval '1 hour',
                   now() + interval '1 hour')""", brand, percent_bp)


async def _coupon(pool: asyncpg.Pool, **over: Any) -> str:
    code = "C" + secrets.token_hex(4).upper()
    c = {"kind": "fixed", "amount": 500, "global_limit": 10, "per_customer_limit": 1} | over
    await pool.execute(
        """INSERT INTO coupons (code, scope, kind, amount, per_customer_limit, global_limit,
                                expires_at)
           VALUES ($1, 'cart', $2, $3, $4, $5, now() + interval '1 day')""",
        code, c["kind"], c["amount"], c["per_customer_limit"], c["global_limit"])
    return code


async def _quote(client: httpx.AsyncClient, body: dict[str, Any]) -> httpx.Response:
    return await client.post("/api/v1/quotes", json=body)


async def test_quote_breakdown_then_reservation_pays_the_quote(
        client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    v, brand = await _variant(pool, 10_000, 20)
    await _deal(pool, brand, 1_000)  # 10 %
    code = await _coupon(pool)
    r = await _quote(client, {"items": [{"variant_id": v, "quantity": 2}],
                              "coupon": code.lower(), "customer_id": "cust-1"})
    assert r.status_code == 201, r.text
    q = r.json()
    line = q["lines"][0]
    assert [s.get("unit_cents") for s in line["breakdown"][:3]] == [10_000, 9_000, 9_000]
    assert line["breakdown"][3] == {"step": "coupon", "discount_cents": 500, "code": code}
    assert (q["subtotal_cents"], q["discount_cents"], q["total_cents"]) == (18_000, 500, 17_500)
    assert q["quote_token"] and q["expires_at"]

    # the list price changes after the quote: the reservation still pays what was quoted
    await pool.execute("UPDATE product_variants SET price_cents = 12000 WHERE variant_id = $1", v)
    body = {"items": [{"variant_id": v, "quantity": 2}], "quote_token": q["quote_token"]}
    key = {"Idempotency-Key": "checkout-" + secrets.token_hex(4)}
    # a coupon's quote: checkout must name the customer it was quoted for
    for who in ({}, {"customer_id": "someone-else"}):
        r = await client.post("/api/v1/reservations", json=body | who, headers={**AUTH, **key})
        assert r.status_code == 422 and "customer_id" in r.json()["error"]["fields"], r.text
    body["customer_id"] = "cust-1"
    r = await client.post("/api/v1/reservations", json=body, headers={**AUTH, **key})
    assert r.status_code == 201, r.text
    res = r.json()
    assert res["quote"]["total_cents"] == 17_500 and res["quote"]["quote_id"] == q["quote_id"]
    row = await pool.fetchrow("SELECT reservation_id, total_cents FROM accepted_quotes "
                              "WHERE quote_id = $1", q["quote_id"])
    assert row is not None and (row["reservation_id"], row["total_cents"]) == (
        res["reservation_id"], 17_500)
    # a retried checkout: the same reservation, the coupon counted once
    again = await client.post("/api/v1/reservations", json=body, headers={**AUTH, **key})
    assert again.status_code == 201 and again.json()["reservation_id"] == res["reservation_id"]
    assert await pool.fetchval("SELECT times_used FROM coupons WHERE code = $1", code) == 1
    # the same checkout key with another quote is refused (the key is bound to its first
    # request); with a key of its own it is another reservation, never the first one
    q2 = (await _quote(client, {"items": [{"variant_id": v, "quantity": 2}]})).json()
    second = {"items": [{"variant_id": v, "quantity": 2}], "quote_token": q2["quote_token"]}
    reused = await client.post("/api/v1/reservations", headers={**AUTH, **key}, json=second)
    assert reused.status_code == 422, reused.text
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    other = await client.post("/api/v1/reservations", json=second, headers={
        **AUTH, "Idempotency-Key": "checkout-" + secrets.token_hex(4)})
    assert other.status_code == 201, other.text
    assert other.json()["reservation_id"] != res["reservation_id"]
    assert other.json()["quote"]["total_cents"] == 21_600  # new list price, the deal, no coupon
    # the per-customer limit (1) is now reached: a new quote with it is refused, by field
    r = await _quote(client, {"items": [{"variant_id": v, "quantity": 1}], "coupon": code,
                              "customer_id": "cust-1"})
    assert r.status_code == 422 and "coupon" in r.json()["error"]["fields"]


async def test_tampered_expired_or_mismatched_tokens_and_bad_quotes_are_refused(
        client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    v, _ = await _variant(pool, 2_500, 5)
    q = (await _quote(client, {"items": [{"variant_id": v, "quantity": 1}]})).json()
    assert q["total_cents"] == 2_500 and q["coupon"] is None
    head, _, sig = q["quote_token"].partition(".")
    forged = head[:-2] + ("AA" if head[-2:] != "AA" else "BB") + "." + sig
    for token, items in ((forged, [{"variant_id": v, "quantity": 1}]),
                         (q["quote_token"], [{"variant_id": v, "quantity": 2}])):
        r = await client.post("/api/v1/reservations", headers=AUTH,
                              json={"items": items, "quote_token": token})
        assert r.status_code == 422, r.text
        assert "quote_token" in r.json()["error"]["fields"]
    got = (await client.get(f"/api/v1/inventory/{v}", headers=AUTH)).json()
    assert got["available"] == 5 and got["warehouses"]["WH_01"]["reserved"] == 0
    # bad quote requests name the field
    cases = [({"items": []}, "items"),
             ({"items": [{"variant_id": v, "quantity": 0}]}, "items.0.quantity"),
             ({"items": [{"variant_id": v, "quantity": 6}]}, "items.0.quantity"),
             ({"items": [{"variant_id": 12345, "quantity": 1}]}, "items.0.variant_id"),
             # each line alone fits the 5 in stock, together they do not: was quoted 201
             ({"items": [{"variant_id": v, "quantity": 3}, {"variant_id": v, "quantity": 3}]},
              "items.1.variant_id"),
             ({"items": [{"variant_id": v, "quantity": 1}], "coupon": "NOPE123",
               "customer_id": "c"}, "coupon"),
             ({"items": [{"variant_id": v, "quantity": 1}], "coupon": "NOPE123"},
              "customer_id"),
             # PostgreSQL text cannot hold NUL: these used to answer 500
             ({"items": [{"variant_id": v, "quantity": 1}], "coupon": "NO\u0000PE",
               "customer_id": "c"}, "coupon"),
             ({"items": [{"variant_id": v, "quantity": 1}], "coupon": "NOPE123",
               "customer_id": "c\u0000"}, "customer_id")]
    for body, field in cases:
        r = await _quote(client, body)
        assert r.status_code == 422, (body, r.text)
        assert field in r.json()["error"]["fields"], (body, r.json())


async def test_a_coupon_that_runs_out_at_checkout_releases_the_stock(
        client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    v, _ = await _variant(pool, 4_000, 10)
    code = await _coupon(pool, global_limit=1, per_customer_limit=None)
    quotes = [(await _quote(client, {"items": [{"variant_id": v, "quantity": 1}],
                                     "coupon": code, "customer_id": f"c{i}"})).json()
              for i in range(2)]
    assert all(q["total_cents"] == 3_500 for q in quotes)
    codes = []
    for q in quotes:
        r = await client.post("/api/v1/reservations", headers=AUTH, json={
            "items": [{"variant_id": v, "quantity": 1}], "quote_token": q["quote_token"],
            "customer_id": q["customer_id"]})
        codes.append(r.status_code)
    assert codes == [201, 422]
    got = (await client.get(f"/api/v1/inventory/{v}", headers=AUTH)).json()
    assert (got["available"], got["warehouses"]["WH_01"]["reserved"]) == (9, 1)  # 2nd released
    assert await pool.fetchval("SELECT times_used FROM coupons WHERE code = $1", code) == 1


async def test_dynamic_pricing_pass_moves_prices_within_the_rule(
        client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    v, _ = await _variant(pool, 10_000, 500)  # plentiful and not selling: steps down
    await pool.execute(
        """INSERT INTO dynamic_price_rules (variant_id, floor_cents, ceiling_cents, low_stock,
               high_stock, hot_velocity, cold_velocity, step_up_bp, step_down_bp)
           VALUES ($1, 9500, 12000, 5, 100, 10, 0, 500, 400)""", v)
    seen = []
    for _ in range(3):
        r = await client.post("/api/v1/internal/pricing/reprice", headers=AUTH)
        assert r.status_code == 200, r.text
        seen.append(await pool.fetchval(
            "SELECT price_cents FROM product_variants WHERE variant_id = $1", v))
    assert seen == [9_600, 9_500, 9_500]  # -4 %, then held at the floor
    history = await pool.fetch("SELECT old_cents, new_cents, reason FROM price_history "
                               "WHERE variant_id = $1 ORDER BY changed_at", v)
    assert [(h["old_cents"], h["new_cents"], h["reason"]) for h in history] == [
        (10_000, 9_600, "dynamic"), (9_600, 9_500, "dynamic")]
    events = await pool.fetchval("SELECT count(*) FROM outbox WHERE event_type = "
                                 "'price.changed' AND aggregate_id = $1 "
                                 "AND payload->>'reason' = 'dynamic'", v)
    assert events == 2  # one per move (the rule's own row wrote one more, reason: its table)
    q = (await _quote(client, {"items": [{"variant_id": v, "quantity": 1}]})).json()
    assert q["total_cents"] == 9_500
