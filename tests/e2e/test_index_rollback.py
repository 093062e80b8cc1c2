"""Index rollback for operators: the previous generation, kept current (every change since the
rebuild is written to it too), goes live again in one call, and back; generations older than
it are dropped (files and shard actors)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.conftest import INTERNAL_TOKEN
from tests.e2e.conftest import Seller
from tests.e2e.test_search_api import eventually, product

INTERNAL = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


async def generations(client: httpx.AsyncClient) -> dict[str, list[str]]:
    status = (await client.get("/api/v1/internal/search/status", headers=INTERNAL)).json()
    out: dict[str, list[str]] = {}
    for g in status["generations"]:
        out.setdefault(g["status"], []).append(g["name"])
    return out


async def rebuild(client: httpx.AsyncClient) -> dict[str, Any]:
    r = await client.post("/api/v1/internal/search/rebuild", headers=INTERNAL,
                          params={"wait": "true"}, timeout=300)
    assert r.status_code == 200, r.text
    return dict(r.json())


async def test_rollback_serves_the_previous_generation_kept_current(
        client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int]) -> None:
    await rebuild(client)
    built = await rebuild(client)  # two rebuilds: the oldest of the three is retired
    gens = await generations(client)
    assert gens["LIVE"] == [built["generation"]] and gens["PREVIOUS"] == [built["previous"]]
    assert gens.get("RETIRED")  # dropped a minute later (tests/integration/test_search_builder)
    # a product written after the rebuild reaches the previous generation too
    tag = "rb" + built["generation"][-6:]
    r = await client.post("/api/v1/seller/products", headers=seller.auth, json=product(
        tag, "Rollback lamp", "Acme", 2_500, "Black", category_ids["Headphones"]))
    assert r.status_code == 201, r.text
    assert (await eventually(client, lambda b: b["total"] == 1, q=tag))["total"] == 1

    back = await client.post("/api/v1/internal/search/rollback", headers=INTERNAL)
    assert back.status_code == 200, back.text
    assert back.json() == {"live": built["previous"], "previous": built["generation"]}
    found = await eventually(client, lambda b: b["total"] == 1, q=tag)  # not stale
    assert found["total"] == 1 and found["results"][0]["title"].startswith("Rollback lamp")
    assert (await generations(client))["LIVE"] == [built["previous"]]

    again = await client.post("/api/v1/internal/search/rollback", headers=INTERNAL)
    assert again.json() == {"live": built["generation"], "previous": built["previous"]}
    assert (await eventually(client, lambda b: b["total"] == 1, q=tag))["total"] == 1
