"""The Ranker deployment (learned models are re-ranked there, batched): one call, and many
concurrent calls batched together, each answered with its own order; a search over HTTP
re-ranked there by a learned model, and the same search again answered from the order the
Gateway remembers."""

from __future__ import annotations

import asyncio
import secrets

import asyncpg
import httpx
import numpy as np
from ray import serve

from adapters.postgres.ranker_registry import RankerRegistry
from ranking import FEATURES, get_ranker, order
from ranking.learned_features import LEARNED_FEATURES, LEARNED_FEATURES_VERSION
from serve.stages import parse_header
from tests.conftest import INTERNAL_TOKEN
from tests.e2e.conftest import Seller, until_searchable
from tests.integration.test_ranker_lifecycle import PASSING, reversing_model

AUTH = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


async def test_ranker_deployment_orders_each_request_of_a_batch(app_url: str) -> None:
    handle = serve.get_deployment_handle("Ranker", app_name="aisle")
    rng = np.random.default_rng(7)
    requests = [rng.random((int(rng.integers(1, 40)), len(FEATURES))) for _ in range(50)]
    names = ["text" if i % 2 else "default" for i in range(len(requests))]
    got = await asyncio.gather(*(handle.rank.remote(n, f)
                                 for n, f in zip(names, requests, strict=True)))
    for n, f, reply in zip(names, requests, got, strict=True):
        assert reply.order == [int(i) for i in order(get_ranker(n), f)]
        assert sorted(reply.order) == list(range(len(f)))
        # the replica's own account: its wait for a batch and the batch's scoring
        assert reply.queued_ms >= 0 and reply.scored_ms > 0
    # 50 calls at once cannot all be in the first batch: some waited in the replica
    assert max(r.queued_ms for r in got) > 0


async def test_a_search_is_reranked_by_a_learned_model_in_the_ranker_deployment(
        client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int],
        pool: asyncpg.Pool, unrelated: str) -> None:
    """HTTP search -> Gateway -> the Ranker deployment (over the transport the Gateway is
    configured with: gRPC by default) -> the model's order, not the formula's fallback."""
    tag = "rk" + secrets.token_hex(3)
    for i in range(5):
        r = await client.post("/api/v1/seller/products", headers=seller.auth, json={
            "title": f"{' '.join([tag] * (i + 1))} reading lamp {i}",
            "category_id": category_ids["Headphones"],
            "variants": [{"sku": f"S-{tag}-{i}", "price_cents": 1_000 + i}]})
        assert r.status_code == 201, r.text
    await until_searchable(client, tag, 5)
    model = reversing_model()  # prefers the candidates the index put last
    added = await RankerRegistry(pool).add("lightgbm", LEARNED_FEATURES_VERSION,
                                           LEARNED_FEATURES, model.to_bytes(), PASSING.to_json(),
                                           "test")
    r = await client.get("/api/v1/products/search", headers=AUTH,
                         params={"q": tag, "ranker": added.version, "explain": "true"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["ranker"] == {"requested": added.version, "kind": "learned",
                              "version": added.version, "fallback": False, "experiment": None}
    index_order = [c["product_id"] for c in body["explain"]["candidates"]]
    # the 5 matches, and the catalog's products closest to the query's vector (semantic
    # candidates: a learned model orders this search), which the words' order puts last
    matches = [x["product_id"] for x in (await client.get(
        "/api/v1/products/search", params={"q": tag, "ranker": "formula"})).json()["results"]]
    assert len(matches) == 5 and set(index_order[:5]) == set(matches)
    assert body["total"] == len(index_order)
    # this session's catalog started empty: the products added since (`unrelated` too)
    # have title vectors
    assert len(index_order) > 5
    # the model's order: the index's reversed (by tiers of its steps: neighbours may tie),
    # one of the index's last quarter first, the words' best match not in the first half
    shown = [x["product_id"] for x in body["results"]]
    assert shown[0] in index_order[len(index_order) * 3 // 4:]
    assert index_order[0] not in shown[:len(shown) // 2]
    timing = parse_header(r.headers["Server-Timing"])
    assert timing["ranker"] > 0  # the call went out
    # and the replica's part of that round trip is named beside it
    assert 0 < timing["ranker_queue"] + timing["ranker_score"] <= timing["ranker"]
    # the same search again: the same candidates with the same features, so the Gateway
    # answers with the order it remembers, without calling the Ranker (a row that changed
    # meanwhile, e.g. a stock level landing, is a new key: hence a few tries)
    for _ in range(5):
        again = await client.get("/api/v1/products/search", headers=AUTH,
                                 params={"q": tag, "ranker": added.version, "explain": "true"})
        assert again.status_code == 200, again.text
        assert again.json()["ranker"]["version"] == added.version
        if "ranker" not in parse_header(again.headers["Server-Timing"]):
            break
        await asyncio.sleep(0.2)  # let what may still be landing (stock, statistics) settle
    else:
        raise AssertionError("every repeated search called the Ranker deployment again")
    assert [x["product_id"] for x in again.json()["results"]] == shown
    assert "rerank" in parse_header(again.headers["Server-Timing"])
