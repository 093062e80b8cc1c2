"""The internal ranker API's refusals: malformed metrics (422 naming `metrics`, nothing
registered or changed), the production model promoted again, archived or its metrics written
over (409 `in_production`, before any gate), and rollbacks walking back through the
promotions."""

from __future__ import annotations

import asyncio
import base64
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa

from ranking.gate import ModelMetrics
from ranking.learned_features import LEARNED_FEATURES, LEARNED_FEATURES_VERSION
from ranking.lgbm import GAIN_LEVELS, LgbmRanker, TrainingSet, train
from tests.conftest import INTERNAL_TOKEN
from tests.e2e.test_experiments import rankers_cli
from tests.integration.test_ranker_lifecycle import reversing_model

API = "/api/v1/internal/rankers"
ROOT = Path(__file__).resolve().parents[2]
INTERNAL = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
BAD_METRICS: list[dict[str, Any]] = [
    {"datasets": {"esci": {"ndcg": 0.5, "baseline_ndcg": 0.4, "baseline": "formula",
                           "per_query": {"q": [1]}}}},
    {"datasets": {"esci": {"ndcg": 0.5, "baseline_ndcg": 0.4, "baseline": "formula",
                           "per_query": []}}},
    # hand-written figures passed the gate: no queries measured, or not their mean
    {"datasets": {"esci": {"ndcg": 0.99, "baseline_ndcg": 0.0, "baseline": "formula",
                           "per_query": {}}}},
    {"datasets": {"esci": {"ndcg": 0.99, "baseline_ndcg": 0.5, "baseline": "formula",
                           "per_query": {"q": [0.6, 0.5]}}}},
    {"datasets": {"esci": {"ndcg": 0.6, "baseline_ndcg": "0.5", "baseline": "formula",
                           "per_query": {"q": [0.6, 0.5]}}}},
    {"datasets": []}, {"folds": -3},
]
GOOD_METRICS = {"datasets": {"esci": {"ndcg": 0.6, "baseline_ndcg": 0.5, "baseline": "formula",
                                      "per_query": {"q": [0.6, 0.5]}}}, "folds": 5}


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
        # its record is what it was promoted on: not written over (the CLI refused, the API
        # did not)
        r = await client.put(f"{API}/{a}/metrics", headers=INTERNAL,
                             json={"metrics": GOOD_METRICS})
        assert (r.status_code, r.json()["error"]["code"]) == (409, "in_production"), r.text
        assert (await client.get(f"{API}/{a}", headers=INTERNAL)).json()["metrics"] == (
            ModelMetrics({}).to_json())
        r = await client.put(f"{API}/{b}/metrics", headers=INTERNAL,
                             json={"metrics": GOOD_METRICS})
        assert r.status_code == 200 and r.json()["metrics"]["folds"] == 5, r.text
        r = await client.post(f"{API}/rollback", headers=INTERNAL, json={"by": "test"})
        assert (r.json()["rolled_back"], r.json()["production"]) == (a, b), r.text
    finally:  # back to what production was, whatever happened
        while (await client.get(API, headers=INTERNAL)).json()["production"] in made:
            r = await client.post(f"{API}/rollback", headers=INTERNAL, json={"by": "test"})
            assert r.status_code == 200, r.text
    shown = (await client.get(f"{API}/{a}", headers=INTERNAL)).json()
    assert shown["stage"] == "archived"
    # a cross-validation fold's model: the gate refuses it, whatever metrics are written
    r = await client.post(API, headers=INTERNAL, json=model_body({"cv_fold": "2/5"}))
    assert r.status_code == 201, r.text
    fold = r.json()["version"]
    r = await client.put(f"{API}/{fold}/metrics", headers=INTERNAL,
                         json={"metrics": GOOD_METRICS})
    assert r.status_code == 200 and r.json()["metrics"]["cv_fold"] == "2/5", r.text
    r = await client.post(f"{API}/{fold}/promote", headers=INTERNAL, json={"by": "test"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "gate_refused"), r.text
    assert any("fold 2/5" in reason for reason in r.json()["error"]["reasons"]), r.text


async def test_models_searches_cannot_score_are_refused(client: httpx.AsyncClient) -> None:
    """A model over another feature set registers (history) but is never promoted, not even
    forced (searches would fall back to the formula while the registry named it); the
    current feature set with other columns, or an artifact trained on other columns, does
    not register; `force` is true or false, not "yes"."""
    before = len((await client.get(API, headers=INTERNAL)).json()["models"])
    reordered = model_body({}) | {"features": list(LEARNED_FEATURES)[::-1]}
    r = await client.post(API, headers=INTERNAL, json=reordered)
    assert r.status_code == 422 and "features" in r.json()["error"]["fields"], r.text
    other = model_body({}) | {"feature_set": "lf0", "features": list(LEARNED_FEATURES)[::-1]}
    r = await client.post(API, headers=INTERNAL, json=other)  # the artifact names its columns
    assert r.status_code == 422 and "artifact_b64" in r.json()["error"]["fields"], r.text
    assert len((await client.get(API, headers=INTERNAL)).json()["models"]) == before
    old = (await client.post(API, headers=INTERNAL, json=model_body(GOOD_METRICS) | {
        "feature_set": "lf0"})).json()["version"]
    r = await client.post(f"{API}/{old}/promote", headers=INTERNAL,
                          json={"by": "test", "force": True, "reason": "test"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "features_not_served"), r.text
    good = (await client.post(API, headers=INTERNAL, json=model_body(GOOD_METRICS))).json()
    assert good["metrics"] == ModelMetrics.from_json(GOOD_METRICS).to_json()
    for force in ("yes", 1, "on"):
        r = await client.post(f"{API}/{good['version']}/promote", headers=INTERNAL,
                              json={"by": "test", "force": force})
        assert r.status_code == 422 and "force" in r.json()["error"]["fields"], r.text
    assert (await client.get(API, headers=INTERNAL)).json()["production"] != good["version"]


def noisy_model(rounds: int) -> LgbmRanker:
    """A model of 5 x `rounds` trees over random features and grades (big, not good)."""
    rnd = random.Random(7)
    rows = [{"query": f"q{q}", "external_id": f"{q}-{r}", "rank": r,
             "gain": GAIN_LEVELS[rnd.randrange(len(GAIN_LEVELS))],
             **{name: rnd.random() for name in LEARNED_FEATURES}}
            for q in range(30) for r in range(20)]
    table = pa.Table.from_pylist(rows).replace_schema_metadata(
        {"feature_version": LEARNED_FEATURES_VERSION})
    return train(TrainingSet.from_table(table), rounds=rounds)


async def test_a_model_over_a_megabyte_registers(client: httpx.AsyncClient) -> None:
    """5 x 150 trees: ~1.2 MB of model, ~1.6 MB of base64 (the body limit of other writes is
    1 MiB: such a model got 413)."""
    artifact = noisy_model(150).to_bytes()
    body = model_body({}) | {"artifact_b64": base64.b64encode(artifact).decode()}
    assert len(body["artifact_b64"]) > 1 << 20
    r = await client.post(API, headers=INTERNAL, json=body, timeout=120)
    assert r.status_code == 201, r.text[:300]
    shown = (await client.get(f"{API}/{r.json()['version']}", headers=INTERNAL)).json()
    assert shown["checksum"] == r.json()["checksum"] and shown["stage"] == "candidate"
    r = await client.post("/api/v1/seller/products", json={"x": "y" * (2 << 20)},
                          headers=INTERNAL)
    assert r.status_code == 413, r.text[:300]  # elsewhere, the usual limit


async def test_the_rankers_command_archives_and_refuses_on_stderr(
        app_url: str, client: httpx.AsyncClient) -> None:
    """`scripts/rankers archive V`; `promote` refused by the gate says so on stderr (it
    printed to stdout); `evaluate` of the production model is refused (it overwrote the
    record it was promoted on with a comparison against itself); `--force` needs a reason."""
    made = [(await client.post(API, headers=INTERNAL, json=model_body({}))).json()["version"]
            for _ in range(2)]
    a, b = made
    done = await asyncio.to_thread(subprocess.run, [
        sys.executable, "scripts/rankers.py", "--url", app_url, "promote", a],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "AISLE_INTERNAL_TOKEN": INTERNAL_TOKEN})
    assert done.returncode == 1 and done.stdout == "", done.stdout
    assert done.stderr.startswith("rankers: refused:") and "not measured" in done.stderr
    forced = await asyncio.to_thread(subprocess.run, [
        sys.executable, "scripts/rankers.py", "--url", app_url, "promote", a, "--force"],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
        env={**os.environ, "AISLE_INTERNAL_TOKEN": INTERNAL_TOKEN})
    assert forced.returncode == 2 and "--reason" in forced.stderr
    for reason in ({}, {"reason": " "}):  # the API asks for one too (it promoted without)
        r = await client.post(f"{API}/{a}/promote", headers=INTERNAL,
                              json={"by": "test", "force": True, **reason})
        assert r.status_code == 422 and "reason" in r.json()["error"]["fields"], r.text
    assert (await client.get(API, headers=INTERNAL)).json()["production"] not in made
    r = await client.post(f"{API}/{a}/promote", headers=INTERNAL,
                          json={"by": "test", "force": True, "reason": "test"})
    assert r.status_code == 200, r.text
    try:
        said = await asyncio.to_thread(rankers_cli, app_url, "evaluate", a, "--dataset",
                                       "esci", refused=True)
        assert "is production" in said
        shown = (await client.get(f"{API}/{a}", headers=INTERNAL)).json()
        assert shown["metrics"] == {"training_data": "", "folds": 0, "datasets": {}}
        out = await asyncio.to_thread(rankers_cli, app_url, "archive", b, "--reason", "old")
        assert f"{b} is archived" in out
        assert (await client.get(f"{API}/{b}", headers=INTERNAL)).json()["stage"] == "archived"
    finally:
        while (await client.get(API, headers=INTERNAL)).json()["production"] in made:
            r = await client.post(f"{API}/rollback", headers=INTERNAL, json={"by": "test"})
            assert r.status_code == 200, r.text
