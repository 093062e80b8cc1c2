"""The internal inventory API over HTTP: PATCH/GET inventory, cart reservations."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import INTERNAL_TOKEN
from tests.integration.conftest import check_invariants, make_catalog

AUTH = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
ROOT = Path(__file__).resolve().parents[2]


async def _variant(pool: asyncpg.Pool, **stock: int) -> int:
    v = secrets.randbits(60)
    await make_catalog(pool, {v: stock})
    return v


async def _get(client: httpx.AsyncClient, v: int) -> dict[str, Any]:
    r = await client.get(f"/api/v1/inventory/{v}", headers=AUTH)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def _patch(client: httpx.AsyncClient, v: int, body: dict[str, Any],
                 key: str | None = None) -> httpx.Response:
    headers = {**AUTH, **({"Idempotency-Key": key} if key else {})}
    return await client.patch(f"/api/v1/inventory/{v}", json=body, headers=headers)


async def _movements(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM inventory_movements"))


async def test_inventory_api_needs_the_internal_token(client: httpx.AsyncClient,
                                                      pool: asyncpg.Pool) -> None:
    v = await _variant(pool, WH_01=5)
    for r in (await client.get(f"/api/v1/inventory/{v}"),
              await client.patch(f"/api/v1/inventory/{v}", json={"bogus": True}),
              await client.post("/api/v1/reservations", json={},
                                headers={"Authorization": "Bearer not-the-token-xx"}),
              await client.delete("/api/v1/reservations/r0.0")):
        assert r.status_code == 401, r.text
        assert r.json()["error"]["code"] == "unauthorized"
    assert (await _get(client, v))["available"] == 5


async def test_reserve_deduct_release_adjust_through_patch(client: httpx.AsyncClient,
                                                           pool: asyncpg.Pool) -> None:
    v = await _variant(pool, WH_01=10)
    got = await _get(client, v)
    assert (got["status"], got["quantity_hint"], got["available"]) == ("IN_STOCK", "10", 10)
    assert got["warehouses"]["WH_01"]["available"] == 10

    # RESERVE as in the seed: quantity_delta is the change of available
    first = await _patch(client, v, {"warehouse_id": "WH_01", "quantity_delta": -3,
                                     "operation": "RESERVE"}, key="patch-k1")
    assert first.status_code == 201, first.text
    res = first.json()
    assert res["status"] == "OPEN" and res["expires_at"].endswith("Z")
    assert res["lines"] == [{"variant_id": str(v), "warehouse_id": "WH_01", "quantity": 3}]
    again = await _patch(client, v, {"warehouse_id": "WH_01", "quantity_delta": -3,
                                     "operation": "RESERVE"}, key="patch-k1")
    assert again.json() == res  # same key, same outcome, reserved once
    got = await _get(client, v)
    assert got["warehouses"]["WH_01"] | {"version": 0} == {
        "available": 7, "reserved": 3, "sold": 0, "version": 0}

    # DEDUCT with a quantity that is not what the reservation holds: refused, nothing changes
    wrong = await _patch(client, v, {"operation": "DEDUCT", "quantity_delta": -2,
                                     "reservation_id": res["reservation_id"]})
    assert wrong.status_code == 422 and "quantity_delta" in wrong.json()["error"]["fields"]
    done = await _patch(client, v, {"operation": "DEDUCT", "quantity_delta": -3,
                                    "reservation_id": res["reservation_id"]})
    assert done.status_code == 200 and done.json()["status"] == "COMMITTED"
    late = await _patch(client, v, {"operation": "RELEASE",
                                    "reservation_id": res["reservation_id"]})
    assert late.status_code == 409
    assert late.json()["error"]["code"] == "reservation_closed"
    assert late.json()["error"]["status"] == "COMMITTED"

    # ADJUST on a warehouse with no row for this variant creates it
    adj = await _patch(client, v, {"operation": "ADJUST", "warehouse_id": "WH_02",
                                   "quantity_delta": 4, "reason": "restock"}, key="adj-1")
    assert adj.status_code == 200, adj.text
    assert adj.json() == {"variant_id": str(v), "warehouse_id": "WH_02", "available": 4,
                          "reserved": 0, "sold": 0}
    adj_again = await _patch(client, v, {"operation": "ADJUST", "warehouse_id": "WH_02",
                                         "quantity_delta": 4, "reason": "restock"}, key="adj-1")
    assert adj_again.json() == adj.json()
    got = await _get(client, v)
    assert got["available"] == 11 and got["warehouses"]["WH_02"]["available"] == 4
    assert got["warehouses"]["WH_01"]["sold"] == 3
    row = await pool.fetchrow("SELECT available, initial FROM stock WHERE variant_id = $1 "
                              "AND warehouse_id = 'WH_02'", v)
    assert (row["available"], row["initial"]) == (4, 0)

    # shrinking below what is available is a conflict naming the figures
    short = await _patch(client, v, {"operation": "ADJUST", "warehouse_id": "WH_02",
                                     "quantity_delta": -9, "reason": "cycle count"})
    assert short.status_code == 409
    assert short.json()["error"]["items"] == [
        {"variant_id": str(v), "warehouse_id": "WH_02", "requested": 9, "available": 4}]
    await check_invariants(pool)


BAD_PATCHES: list[tuple[dict[str, Any], int, str]] = [
    ({"operation": "RESERVE", "quantity_delta": 0}, 422, "quantity_delta"),
    ({"operation": "RESERVE"}, 422, "quantity_delta"),
    ({"operation": "RESERVE", "quantity_delta": "two"}, 422, "quantity_delta"),
    ({"operation": "RESERVE", "quantity_delta": -2_000_000}, 422, "quantity_delta"),
    ({"operation": "STEAL", "quantity_delta": -1}, 422, "operation"),
    ({"operation": "RESERVE", "quantity_delta": -1, "warehouse_id": "WH_NOPE"}, 422,
     "warehouse_id"),
    ({"operation": "RESERVE", "quantity_delta": -1, "warehouse_id": "bad id!"}, 422,
     "warehouse_id"),
    ({"operation": "RESERVE", "quantity_delta": -1, "extra": 1}, 422, "extra"),
    ({"operation": "ADJUST", "quantity_delta": 5, "warehouse_id": "WH_01"}, 422, "reason"),
    ({"operation": "ADJUST", "quantity_delta": 5, "reason": "x"}, 422, "warehouse_id"),
    ({"operation": "ADJUST", "quantity_delta": 5, "reason": "x", "warehouse_id": "WH_NOPE"},
     422, "warehouse_id"),
    ({"operation": "RELEASE"}, 422, "reservation_id"),
    ({"operation": "DEDUCT", "reservation_id": "r" + "0" * 20 + ".0"}, 404, ""),
    ({"operation": "RELEASE", "reservation_id": "not-a-reservation"}, 404, ""),
    ({"operation": "RESERVE", "quantity_delta": -6}, 409, ""),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_PATCHES)
async def test_bad_patches_are_refused_and_change_nothing(
        client: httpx.AsyncClient, pool: asyncpg.Pool, body: dict[str, Any], status: int,
        field: str) -> None:
    v = await _variant(pool, WH_01=5)
    before = await _movements(pool)
    r = await _patch(client, v, body)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    if field:
        assert field in err["fields"], err
    if status == 409:
        assert err["items"] == [{"variant_id": str(v), "requested": 6, "available": 5}]
    assert await _movements(pool) == before
    assert (await _get(client, v))["available"] == 5


async def test_unknown_variants_are_404(client: httpx.AsyncClient) -> None:
    ghost = secrets.randbits(60)
    r = await client.get(f"/api/v1/inventory/{ghost}", headers=AUTH)
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_variant"
    r = await _patch(client, ghost, {"operation": "RESERVE", "quantity_delta": -1})
    assert r.status_code == 404 and r.json()["error"]["code"] == "unknown_variant"
    r = await client.get("/api/v1/inventory/0", headers=AUTH)
    assert r.status_code == 422 and "variant_id" in r.json()["error"]["fields"]


async def test_cart_reservation_all_or_nothing_then_commit(client: httpx.AsyncClient,
                                                          pool: asyncpg.Pool) -> None:
    a, b = await _variant(pool, WH_01=4), await _variant(pool, WH_01=1, WH_02=1)
    before = await _movements(pool)
    short = await client.post("/api/v1/reservations", headers=AUTH, json={
        "items": [{"variant_id": a, "quantity": 2}, {"variant_id": b, "quantity": 3}]})
    assert short.status_code == 409
    assert short.json()["error"]["items"] == [
        {"variant_id": str(b), "requested": 3, "available": 2}]
    # any partition that had reserved was compensated: stock back where it was
    assert (await _get(client, a))["available"] == 4
    assert (await _get(client, b))["available"] == 2
    assert await pool.fetchval("SELECT count(*) FROM reservations WHERE status = 'OPEN' AND "
                               "lines @> $1::jsonb", f"[[{a}]]") == 0
    assert await _movements(pool) - before in (0, 2)  # nothing, or a reserve and its undo

    # a split across warehouses when the caller names none: most available first
    ok = await client.post("/api/v1/reservations", headers={**AUTH, "Idempotency-Key": "c-1"},
                           json={"items": [{"variant_id": a, "quantity": 2},
                                           {"variant_id": b, "quantity": 2}],
                                 "ttl_seconds": 600})
    assert ok.status_code == 201, ok.text
    cart = ok.json()
    assert sorted((x["variant_id"], x["warehouse_id"], x["quantity"]) for x in cart["lines"]) \
        == sorted([(str(a), "WH_01", 2), (str(b), "WH_01", 1), (str(b), "WH_02", 1)])
    rid = cart["reservation_id"]
    seen = await client.get(f"/api/v1/reservations/{rid}", headers=AUTH)
    assert seen.status_code == 200 and seen.json() == cart
    done = await client.post(f"/api/v1/reservations/{rid}/commit", headers=AUTH)
    assert done.status_code == 200 and done.json()["status"] == "COMMITTED"
    twice = await client.post(f"/api/v1/reservations/{rid}/commit", headers=AUTH)
    assert twice.json() == done.json()  # a retried checkout is not an error
    late = await client.delete(f"/api/v1/reservations/{rid}", headers=AUTH)
    assert late.status_code == 409 and late.json()["error"]["code"] == "reservation_closed"
    assert (await _get(client, b))["status"] == "OUT_OF_STOCK"
    assert (await _get(client, a))["available"] == 2
    await check_invariants(pool)


async def test_cart_release_and_bad_carts(client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    a = await _variant(pool, WH_01=3)
    r = await client.post("/api/v1/reservations", headers=AUTH,
                          json={"items": [{"variant_id": a, "quantity": 3}]})
    assert r.status_code == 201
    assert (await _get(client, a))["status"] == "OUT_OF_STOCK"
    gone = await client.delete(f"/api/v1/reservations/{r.json()['reservation_id']}",
                               headers=AUTH)
    assert gone.status_code == 200 and gone.json()["status"] == "RELEASED"
    assert (await _get(client, a))["available"] == 3
    for body, field in (({"items": []}, "items"),
                        ({"items": [{"variant_id": a, "quantity": 0}]}, "items.0.quantity"),
                        ({"items": [{"variant_id": a, "quantity": 1}], "ttl_seconds": 0},
                         "ttl_seconds"),
                        # one item per variant: a repeat was reserved in turn, 201
                        ({"items": [{"variant_id": a, "quantity": 1},
                                    {"variant_id": a, "quantity": 2}]}, "items.1.variant_id"),
                        ({"items": [{"variant_id": a, "quantity": 1, "warehouse_id": "WH_01"},
                                    {"variant_id": a, "quantity": 1, "warehouse_id": "WH_01"}]},
                         "items.1.variant_id")):
        bad = await client.post("/api/v1/reservations", headers=AUTH, json=body)
        assert bad.status_code == 422 and field in bad.json()["error"]["fields"], bad.text
    mismatch = await client.post(
        "/api/v1/reservations", headers={**AUTH, "Idempotency-Key": "one"},
        json={"items": [{"variant_id": a, "quantity": 1}], "idempotency_key": "two"})
    assert mismatch.status_code == 422
    assert "idempotency_key" in mismatch.json()["error"]["fields"]
    missing = await client.post("/api/v1/reservations/nope/commit", headers=AUTH)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "reservation_not_found"
    assert (await _get(client, a))["available"] == 3
    await check_invariants(pool)


async def test_an_operation_storage_cannot_hold_fails_alone_with_422(
        client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """A NUL in the reason, or an ADJUST past the integer column's range, used to be accepted,
    fail inside the partition's commit, and make the partition rebuild itself until the
    caller got 503 "retry with the same key": now a definite 422 naming the field, and the
    partition goes on serving its other variants."""
    v = await _variant(pool, WH_01=5)
    before = await _movements(pool)
    bad_reason = await _patch(client, v, {"operation": "ADJUST", "warehouse_id": "WH_01",
                                          "quantity_delta": 1, "reason": "count\u0000ed"},
                              key="nul-reason")
    assert bad_reason.status_code == 422, bad_reason.text
    assert "reason" in bad_reason.json()["error"]["fields"]
    near = await _variant(pool, WH_01=2**31 - 10)  # a row near the column's range
    over = await _patch(client, near, {"operation": "ADJUST", "warehouse_id": "WH_01",
                                       "quantity_delta": 11, "reason": "restock"},
                        key="past-int32")
    assert over.status_code == 422, over.text
    assert "quantity_delta" in over.json()["error"]["fields"]
    again = await _patch(client, near, {"operation": "ADJUST", "warehouse_id": "WH_01",
                                        "quantity_delta": 11, "reason": "restock"},
                         key="past-int32")
    assert again.status_code == 422  # the same key, the same definite answer
    room = 2**31 - 1 - (await _get(client, near))["available"]
    assert 0 < room <= 10
    fits = await _patch(client, near, {"operation": "ADJUST", "warehouse_id": "WH_01",
                                       "quantity_delta": room, "reason": "restock"})
    assert fits.status_code == 200 and fits.json()["available"] == 2**31 - 1, fits.text
    ok = await _patch(client, v, {"operation": "ADJUST", "warehouse_id": "WH_01",
                                  "quantity_delta": -1, "reason": "damaged"})
    assert ok.status_code == 200 and ok.json()["available"] == 4
    assert await _movements(pool) > before
    await check_invariants(pool)


async def test_an_idempotency_key_reused_with_another_request_is_refused(
        client: httpx.AsyncClient, pool: asyncpg.Pool) -> None:
    """Used to answer 2xx with the first request's outcome."""
    v = await _variant(pool, WH_01=10)
    w = await _variant(pool, WH_01=10)
    key = f"k-{secrets.token_hex(4)}"
    first = await _patch(client, v, {"operation": "RESERVE", "quantity_delta": -2}, key=key)
    assert first.status_code == 201, first.text
    same = await _patch(client, v, {"operation": "RESERVE", "quantity_delta": -2}, key=key)
    assert same.status_code == 201 and same.json() == first.json()  # a retry
    for other_v, body in ((v, {"operation": "RESERVE", "quantity_delta": -3}),
                          (w, {"operation": "RESERVE", "quantity_delta": -2})):
        r = await _patch(client, other_v, body, key=key)
        assert r.status_code == 422, r.text
        assert r.json()["error"]["code"] == "idempotency_key_reused"
        assert "Idempotency-Key" in r.json()["error"]["fields"]
    cart = {"items": [{"variant_id": v, "quantity": 1}]}
    made = await client.post("/api/v1/reservations", json=cart,
                             headers={**AUTH, "Idempotency-Key": key})
    assert made.status_code == 201, made.text  # another route: another scope
    other = await client.post("/api/v1/reservations", headers={**AUTH, "Idempotency-Key": key},
                              json={"items": [{"variant_id": v, "quantity": 2}]})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert (await _get(client, v))["warehouses"]["WH_01"]["reserved"] == 3
    assert (await _get(client, w))["warehouses"]["WH_01"]["reserved"] == 0


PARTITIONS_PATH = "/api/v1/internal/inventory/partitions"


async def test_partitions_rebalance_online_through_the_api_and_the_script(
        client: httpx.AsyncClient, pool: asyncpg.Pool, app_url: str) -> None:
    """An operator spreads the hash slots over one more partition with
    scripts/inventory_partitions and back through the API; a cart reserved before the moves
    checks out after them, and a new one reserves meanwhile."""
    v, w = await _variant(pool, WH_01=10), await _variant(pool, WH_01=10)
    held = await client.post("/api/v1/reservations", headers=AUTH,
                             json={"items": [{"variant_id": v, "quantity": 2},
                                             {"variant_id": w, "quantity": 1}]})
    assert held.status_code == 201, held.text
    before = (await client.get(PARTITIONS_PATH, headers=AUTH)).json()
    n = before["partitions"]
    assert sum(o["slots"] for o in before["owners"]) == before["slots"] == 16384
    assert (await client.get(PARTITIONS_PATH)).status_code == 401
    for bad in ({"partitions": 0}, {"partitions": 5000}, {"partitions": "many"}, {}):
        r = await client.put(PARTITIONS_PATH, json=bad, headers=AUTH)
        assert r.status_code == 422, r.text
        assert "partitions" in r.json()["error"]["fields"], r.text

    env = {**os.environ, "AISLE_INTERNAL_TOKEN": INTERNAL_TOKEN}
    done = await asyncio.to_thread(
        subprocess.run, [sys.executable, str(ROOT / "scripts/inventory_partitions.py"),
                         "--url", app_url, "--set", str(n + 1)],
        capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{n} -> {n + 1} partitions" in done.stdout, done.stdout
    after = (await client.get(PARTITIONS_PATH, headers=AUTH)).json()
    slots = [o["slots"] for o in after["owners"]]
    assert after["partitions"] == n + 1 and sum(slots) == 16384
    assert max(slots) - min(slots) <= 1  # even
    assert after["moves"] and after["moves"][0]["target"] == n  # the new one took slots

    other = await client.post("/api/v1/reservations", headers=AUTH,
                              json={"items": [{"variant_id": v, "quantity": 1}]})
    assert other.status_code == 201, other.text
    back = await client.put(PARTITIONS_PATH, json={"partitions": n}, headers=AUTH)
    assert back.status_code == 200, back.text
    assert (back.json()["partitions_before"], back.json()["partitions"]) == (n + 1, n)
    assert back.json()["slots_moved"] == slots[n]  # only the retired partition's slots
    done_cart = await client.post(f"/api/v1/reservations/{held.json()['reservation_id']}/commit",
                                  headers=AUTH)
    assert done_cart.status_code == 200 and done_cart.json()["status"] == "COMMITTED"
    assert (await _get(client, v))["available"] == 10 - 2 - 1
    await check_invariants(pool)
