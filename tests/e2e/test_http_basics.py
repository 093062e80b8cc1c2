"""Categories, warehouses (internal), health and the OpenAPI document over HTTP."""

from __future__ import annotations

import asyncio
import json

import asyncpg
import httpx

from tests.conftest import INTERNAL_TOKEN


async def test_category_tree_has_ids_names_parents_and_paths(
    client: httpx.AsyncClient, category_ids: dict[str, int]
) -> None:
    r = await client.get("/api/v1/categories")
    assert r.status_code == 200
    roots = {n["name"]: n for n in r.json()["categories"]}
    electronics = roots["Electronics"]
    assert electronics["parent_id"] is None and electronics["path"] == ["Electronics"]
    audio = next(c for c in electronics["children"] if c["name"] == "Audio")
    headphones = next(c for c in audio["children"] if c["name"] == "Headphones")
    # other tests add categories below Headphones (search's catalog): whatever runs first
    assert {k: v for k, v in headphones.items() if k != "children"} == {
        "category_id": category_ids["Headphones"],
        "name": "Headphones",
        "parent_id": category_ids["Audio"],
        "path": ["Electronics", "Audio", "Headphones"],
    }
    assert all(c["parent_id"] == category_ids["Headphones"] for c in headphones["children"])


async def test_warehouses_need_the_internal_token(
    client: httpx.AsyncClient, pool: asyncpg.Pool
) -> None:
    await pool.execute(
        """INSERT INTO warehouses (warehouse_id, name, region) VALUES ('WH_T1', 'Test', 'eu')
           ON CONFLICT DO NOTHING"""
    )
    assert (await client.get("/api/v1/warehouses")).status_code == 401
    wrong = await client.get(
        "/api/v1/warehouses", headers={"Authorization": "Bearer wrong-token-123"}
    )
    assert wrong.status_code == 401
    r = await client.get(
        "/api/v1/warehouses", headers={"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    )
    assert r.status_code == 200
    assert {"warehouse_id": "WH_T1", "name": "Test", "region": "eu"} in r.json()["warehouses"]


async def test_health_reports_each_dependency(client: httpx.AsyncClient) -> None:
    r = await client.get("/health")
    assert r.status_code == 200
    assert r.json() == {
        "status": "ok",
        "checks": {"postgres": "ok", "redis": "ok", "ray": "ok", "id_lease": "ok",
                   "search_index": "ok", "index_freshness": "ok", "inventory": "ok"},
    }


async def test_openapi_documents_the_seller_api(client: httpx.AsyncClient) -> None:
    doc = (await client.get("/openapi.json")).json()
    assert "/api/v1/seller/products" in doc["paths"]
    assert "post" in doc["paths"]["/api/v1/seller/products"]
    assert "put" in doc["paths"]["/api/v1/seller/products/{product_id}"]
    assert "ProductIn" in doc["components"]["schemas"]


async def test_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


async def test_benchmark_noop_answers_with_and_without_awaiting(
    client: httpx.AsyncClient,
) -> None:
    """The benchmarks' ceiling: the no-op, and the no-op that awaits once (Serve's floor for
    any handler doing I/O); a malformed flag is a 422 naming it."""
    for params in ({}, {"await": "true"}, {"await": "false"}):
        r = await client.get("/api/v1/noop", params=params)
        assert (r.status_code, r.json()) == (200, {"ok": True})
    bad = await client.get("/api/v1/noop", params={"await": "maybe"})
    assert bad.status_code == 422 and "await" in bad.text


async def test_a_request_the_server_cannot_parse_gets_a_json_400(app_url: str) -> None:
    """Used to be uvicorn's plain text "Invalid HTTP request received."."""
    host, port = app_url.removeprefix("http://").split(":")
    for raw in (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n",
                b"NOT AN HTTP REQUEST\r\n\r\n"):
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(raw)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400"), answer
        assert b"content-type: application/json" in head.lower(), answer
        assert json.loads(body)["error"]["code"] == "bad_request"
