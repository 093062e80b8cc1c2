"""Long internal operations run as background jobs: an index rebuild whose caller hangs up
finishes anyway (it used to end FAILED), and any caller can follow a job by its id."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tests.conftest import INTERNAL_TOKEN

INTERNAL = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


async def finished(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    for _ in range(600):
        r = await client.get(f"/api/v1/internal/jobs/{job_id}", headers=INTERNAL)
        assert r.status_code == 200, r.text
        if r.json()["status"] != "running":
            return dict(r.json())
        await asyncio.sleep(0.2)
    raise AssertionError(f"job {job_id} still running")


async def test_a_rebuild_goes_on_when_its_caller_hangs_up(client: httpx.AsyncClient) -> None:
    before = (await client.get("/api/v1/internal/jobs", headers=INTERNAL,
                               params={"kind": "index.rebuild"})).json()["jobs"]
    with pytest.raises(httpx.TimeoutException):
        await client.post("/api/v1/internal/search/rebuild", headers=INTERNAL,
                          params={"wait": "true"}, timeout=0.3)
    jobs = []
    for _ in range(50):
        jobs = (await client.get("/api/v1/internal/jobs", headers=INTERNAL,
                                 params={"kind": "index.rebuild"})).json()["jobs"]
        if len(jobs) > len(before):
            break
        await asyncio.sleep(0.1)
    assert len(jobs) == len(before) + 1
    # a second rebuild meanwhile is refused: at once (409) once the builder has begun, or
    # by the builder (its job fails saying so); never a second generation building
    again = await client.post("/api/v1/internal/search/rebuild", headers=INTERNAL)
    if again.status_code == 409:
        assert again.json()["error"]["code"] == "rebuild_under_way", again.text
    else:
        assert again.status_code == 202, again.text
        second = await finished(client, again.json()["job_id"])
        assert second["status"] == "failed" and second["error"].startswith(
            "rebuild_under_way: generation g"), second
    job = await finished(client, jobs[0]["job_id"])
    assert job["status"] == "succeeded", job["error"]
    assert job["kind"] == "index.rebuild" and job["result"]["documents"] >= 0
    status = (await client.get("/api/v1/internal/search/status", headers=INTERNAL)).json()
    assert job["result"]["generation"] in json.dumps(status)  # built, and it is live now
    [live] = [g for g in status["generations"] if g["status"] == "LIVE"]
    assert live["documents"] == job["result"]["documents"]  # what it was built with
    assert (await client.get("/health")).status_code == 200


async def test_a_prewarm_is_a_job_followed_by_its_id(client: httpx.AsyncClient) -> None:
    r = await client.post("/api/v1/internal/cache/prewarm", headers=INTERNAL,
                          json={"product_ids": [], "top": 2})
    assert r.status_code == 202, r.text
    started = r.json()
    assert started["kind"] == "cache.prewarm" and started["job_id"].startswith("j")
    job = await finished(client, started["job_id"])
    assert job["status"] == "succeeded" and "warmed" in job["result"], job
    missing = await client.get("/api/v1/internal/jobs/j" + "0" * 20, headers=INTERNAL)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "job_not_found"
    bad = await client.get("/api/v1/internal/jobs/nope", headers=INTERNAL)
    assert bad.status_code == 422


async def test_jobs_of_an_unknown_kind_are_refused(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/internal/jobs", headers=INTERNAL, params={"kind": "bogus"})
    assert r.status_code == 422 and "kind" in str(r.json()["error"]["fields"]), r.text


async def test_an_operator_prunes_now_and_finds_the_job(client: httpx.AsyncClient) -> None:
    refused = await client.post("/api/v1/internal/retention/prune")
    assert refused.status_code == 401, refused.text
    r = await client.post("/api/v1/internal/retention/prune", headers=INTERNAL,
                          params={"wait": "true"})
    assert r.status_code == 200, r.text
    assert r.json()["retention_days"] == 14
    assert set(r.json()["pruned"]) == {"shopper_carts", "reservations", "inventory_ops",
                                       "cart_decisions", "idempotency_keys", "outbox", "jobs"}
    assert all(n >= 0 for n in r.json()["pruned"].values())
    jobs = (await client.get("/api/v1/internal/jobs", headers=INTERNAL,
                             params={"kind": "retention.prune"})).json()["jobs"]
    assert jobs[0]["status"] == "succeeded" and jobs[0]["result"] == r.json()
