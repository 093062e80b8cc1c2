"""The internal ranker API's refusals: malformed metrics (422 naming `metrics`, nothing
registered or changed), the production model promoted again or archived (409
`in_production`, before any gate), and rollbacks walking back through the promotions."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from ranking.learned_features import LEARNED_FEATURES, LEARNED_FEATURES_VERSION
from tests.conftest import INTERNAL_TOKEN
from tests.integration.test_ranker_lifecycle import reversing_model

API = "/api/v1/internal/rankers"
INTERNAL = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
BAD_METRICS: list[dict[str, Any]] = [
    {"datasets": {"esci": {"ndcg": 0.5, "baseline_ndcg": 0.4, "baseline": "formula",
                           "per_query": {"q": [1]}}}},
    {"datasets": {"esci": {"ndcg": 0.5, "baseline_ndcg": 0.4, "baseline": "formula",
                           "per_query": []}}},
]


def model_body(metrics: dict[str, Any]) -> dict[str, Any]:
    return {"feature_set": LEARNED_FEATURES_VERSION, "features": list(LEARNED_FEATURES),
            "artifact_b64": base64.b64encode(reversing_model().to_bytes()).decode(),
            "metrics": metrics, "created_by": "test"}


async def test_refusals_of_the_ranker_api(client: httpx.AsyncClient) -> None:
    before = (await client.get(API, headers=INTERNAL)).json()
    for metrics in BAD_METRICS:
        r = await client.post(API, headers=INTERNAL, json=model_body(metrics))
        assert r.status_code == 422 and "metrics" in r.json()["error"]["fields"], r.text
    assert len((await client.get(API, headers=INTERNAL)).json()["models"]) == len(
        before["models"])  # nothing registered
    made = []
    for _ in range(2):
        r = await client.post(API, headers=INTERNAL, json=model_body({}))
        assert r.status_code == 201, r.text
        made.append(r.json()["version"])
    a, b = made
    for metrics in BAD_METRICS:
        r = await client.put(f"{API}/{a}/metrics", headers=INTERNAL, json={"metrics": metrics})
        assert r.status_code == 422 and "metrics" in r.json()["error"]["fields"], r.text
    try:
        for version in (b, a):
            r = await client.post(f"{API}/{version}/promote", headers=INTERNAL,
                                  json={"by": "test", "force": True, "reason": "test"})
            assert r.status_code == 200, r.text
        r = await client.post(f"{API}/{a}/promote", headers=INTERNAL, json={"by": "test"})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "in_production"), r.text
        r = await client.post(f"{API}/{a}/archive", headers=INTERNAL, json={"by": "test"})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "in_production"), r.text
        r = await client.post(f"{API}/rollback", headers=INTERNAL, json={"by": "test"})
        assert (r.json()["rolled_back"], r.json()["production"]) == (a, b), r.text
    finally:  # back to what production was, whatever happened
        while (await client.get(API, headers=INTERNAL)).json()["production"] in made:
            r = await client.post(f"{API}/rollback", headers=INTERNAL, json={"by": "test"})
            assert r.status_code == 200, r.text
    shown = (await client.get(f"{API}/{a}", headers=INTERNAL)).json()
    assert shown["stage"] == "archived"
