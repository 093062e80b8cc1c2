"""Ranker experiments over HTTP: an A/B split keeps each session in one arm and counts its
searches and events per arm; an interleaving credits clicks to the team that placed the
result; a shadow ranker is measured but never changes what is shown; a guardrail stops an arm
that breaches it; shoppers' events are validated."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import redis.asyncio as aioredis

from adapters.experiment_metrics import ExperimentMetrics
from adapters.postgres.ranker_registry import RankerRegistry
from adapters.settings import Settings
from ranking.learned_features import LEARNED_FEATURES, LEARNED_FEATURES_VERSION
from tests.conftest import INTERNAL_TOKEN
from tests.e2e.conftest import Seller, until_searchable
from tests.integration.test_ranker_lifecycle import PASSING, reversing_model

INTERNAL = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
API = "/api/v1/internal/experiments"


async def search(client: httpx.AsyncClient, session: str | None = None,
                 **params: Any) -> dict[str, Any]:
    headers = {"X-Session-Id": session} if session else {}
    r = await client.get("/api/v1/products/search", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def words(client: httpx.AsyncClient, seller: Seller,
                category_ids: dict[str, int]) -> str:
    """Eight products sharing a made-up word, of different ratings, prices and title
    lengths (so formulas order them differently)."""
    tag = "xp" + secrets.token_hex(3)
    for i in range(8):
        body = {"title": f"{tag} lamp " + " ".join(["desk"] * (i % 4)) + f" model {i}",
                "description": f"a {tag} lamp", "brand": f"Brand{i % 3}",
                "category_id": category_ids["Headphones"],
                "variants": [{"sku": f"S-{secrets.token_hex(6)}", "attributes": {},
                              "price_cents": 1_000 + 700 * i}]}
        r = await client.post("/api/v1/seller/products", json=body, headers=seller.auth)
        assert r.status_code == 201, r.text
    await until_searchable(client, tag, 8)
    return tag


async def start(client: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    r = await client.post(API, json={"created_by": "test", **body}, headers=INTERNAL)
    assert r.status_code == 201, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture
async def stopped(client: httpx.AsyncClient) -> AsyncIterator[list[str]]:
    """Experiments a test started, stopped after it whatever happened."""
    names: list[str] = []
    yield names
    for name in names:
        await client.post(f"{API}/{name}/stop", json={"by": "test"}, headers=INTERNAL)


async def show(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    r = await client.get(f"{API}/{name}", headers=INTERNAL)
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


async def click(client: httpx.AsyncClient, found: dict[str, Any], at: int = 0,
                kind: str = "click") -> dict[str, Any]:
    r = await client.post("/api/v1/events", json={
        "type": kind, "search_id": found["search_id"],
        "product_id": found["results"][at]["product_id"], "position": at + 1})
    assert r.status_code == 202, r.text
    return r.json()  # type: ignore[no-any-return]


async def eventually_counted(client: httpx.AsyncClient, name: str,
                             requests: int) -> dict[str, Any]:
    """The experiment once its arms' counters (written in the background) add up."""
    deadline = time.monotonic() + 10
    while True:
        found = await show(client, name)
        if sum(a["requests"] for a in found["arms"]) >= requests or time.monotonic() > deadline:
            return found
        await asyncio.sleep(0.1)


async def test_ab_split_keeps_sessions_in_one_arm_and_counts_per_arm(
        client: httpx.AsyncClient, words: str, stopped: list[str], settings: Settings) -> None:
    name = "ab-" + secrets.token_hex(3)
    await start(client, name=name, kind="ab", arms=[
        {"name": "control", "ranker": "formula"}, {"name": "treatment", "ranker": "text"}])
    stopped.append(name)
    rankers = {"control": "formula", "treatment": "text"}
    arm_of: dict[str, str] = {}
    clicks = {"control": 0, "treatment": 0}
    carts = {"control": 0, "treatment": 0}
    for i in range(24):
        session = f"sess-{name}-{i}"
        for repeat in range(3):
            found = await search(client, session, q=words)
            exp = found["ranker"]["experiment"]
            assert exp is not None and exp["name"] == name
            arm = exp["arm"]
            assert arm_of.setdefault(session, arm) == arm  # sticky
            assert found["ranker"]["requested"] == rankers[arm]  # the arm's ranker ordered it
            if repeat == 0:
                answer = await click(client, found)
                assert answer == {"accepted": True, "experiment": name, "arm": arm,
                                  "team": None}
                clicks[arm] += 1
                if i % 3 == 0:
                    await click(client, found, kind="add_to_cart")
                    carts[arm] += 1
                if i % 4 == 0:  # the same click again: recorded, credited once
                    await click(client, found)
                if i % 5 == 0:  # a product the search did not show: credited to no arm
                    r = await client.post("/api/v1/events", json={
                        "type": "click", "search_id": found["search_id"], "product_id": "7",
                        "position": 1})
                    assert r.status_code == 202 and r.json()["arm"] is None, r.text
    assert set(arm_of.values()) == {"control", "treatment"}  # 24 sessions reach both arms
    # what no ranker orders is no arm's, and says what ordered it (not counted below)
    found = await search(client, f"sess-{name}-0", q=words, sort="price_asc")
    assert found["ranker"] == {"requested": "default", "kind": "sort", "version": None,
                               "fallback": False, "experiment": None}
    found = await search(client, f"sess-{name}-0", q="")
    assert (found["ranker"]["kind"], found["ranker"]["experiment"]) == ("index", None)
    # without a session, or asking for a ranker by name: not in the experiment
    assert (await search(client, q=words))["ranker"]["experiment"] is None
    assert (await search(client, "someone", q=words, ranker="text"))["ranker"][
        "experiment"] is None
    found = await eventually_counted(client, name, 72)
    by_arm = {a["name"]: a for a in found["arms"]}
    for arm in ("control", "treatment"):
        sessions = sum(1 for v in arm_of.values() if v == arm)
        assert by_arm[arm]["requests"] == 3 * sessions
        assert by_arm[arm]["clicks"] == clicks[arm]
        assert by_arm[arm]["add_to_carts"] == carts[arm]
        assert by_arm[arm]["ctr"] == pytest.approx(clicks[arm] / (3 * sessions), abs=1e-4)
        assert by_arm[arm]["errors"] == 0 and by_arm[arm]["zero_result_rate"] == 0
        assert isinstance(by_arm[arm]["p99_ms"], (int, float))
    # stopped: every search goes back to production's ranker
    before = await search(client, f"sess-{name}-0", q=words)  # shown while it ran
    assert before["ranker"]["experiment"]["name"] == name
    counted = {a["name"]: a["requests"] for a in (
        await eventually_counted(client, name, 73))["arms"]}  # that search's count written
    r = await client.post(f"{API}/{name}/stop", json={"by": "test"}, headers=INTERNAL)
    assert r.status_code == 200 and r.json()["status"] == "stopped"
    assert (await search(client, "sess-x", q=words))["ranker"]["experiment"] is None
    # a click after the stop is recorded, not credited, at once (it was credited for up to
    # a second, by replicas that had not read the stop yet): the figures stay as they were
    assert (await click(client, before))["arm"] is None
    # so do its searches' counters: a replica that has not read the stop yet counts one more
    redis = aioredis.from_url(settings.redis_url)
    try:
        await ExperimentMetrics(redis).count(name, "control", 12.0)
    finally:
        await redis.aclose()
    final = {a["name"]: a for a in (await show(client, name))["arms"]}
    assert {arm: final[arm]["clicks"] for arm in final} == clicks
    assert {arm: final[arm]["requests"] for arm in final} == counted


async def test_interleaving_credits_the_team_that_placed_the_click(
        client: httpx.AsyncClient, words: str, stopped: list[str]) -> None:
    name = "il-" + secrets.token_hex(3)
    await start(client, name=name, kind="interleave", arms=[
        {"name": "formula", "ranker": "formula"}, {"name": "price", "ranker": "weighted"}])
    stopped.append(name)
    teams = {"a": 0, "b": 0}
    for i in range(10):
        found = await search(client, f"s-{name}-{i}", q=words)
        assert found["ranker"]["kind"] == "interleaved"
        assert [a["requested"] for a in found["ranker"]["arms"]] == ["formula", "weighted"]
        assert found["ranker"]["experiment"]["arm"] == "interleaved"
        again = await search(client, f"s-{name}-{i}", q=words)  # a reload: the same list
        assert [r["product_id"] for r in again["results"]] == \
            [r["product_id"] for r in found["results"]]
        answer = await click(client, found)
        assert answer["team"] in ("a", "b")
        assert answer["arm"] == ("formula" if answer["team"] == "a" else "price")
        teams[answer["team"]] += 1
    found = await eventually_counted(client, name, 40)
    by_arm = {a["name"]: a for a in found["arms"]}
    assert by_arm["formula"]["interleaving_wins"] == teams["a"]
    assert by_arm["price"]["interleaving_wins"] == teams["b"]
    assert by_arm["formula"]["requests"] == by_arm["price"]["requests"] == 20


async def test_a_session_keeps_its_arms_ranker_past_the_reranked_depth(
        client: httpx.AsyncClient, words: str, stopped: list[str], unrelated: str,
        pool: asyncpg.Pool) -> None:
    """A page past the re-ranked depth (offset >= 200) is neither re-ranked nor counted, but
    its session's arm still decides what the index answers: a learned arm's matches are
    joined by semantic candidates on every page, a formula arm's are the words' only. So a
    session's total is the same on its first page and past the depth."""
    added = await RankerRegistry(pool).add(
        "lightgbm", LEARNED_FEATURES_VERSION, LEARNED_FEATURES, reversing_model().to_bytes(),
        PASSING.to_json(), "test")
    name = "deep-" + secrets.token_hex(3)
    await start(client, name=name, kind="ab", arms=[
        {"name": "control", "ranker": "formula"}, {"name": "learned", "ranker": added.version}])
    stopped.append(name)
    first: dict[str, dict[str, Any]] = {}
    session_of: dict[str, str] = {}
    searched = 0
    for i in range(40):
        session = f"sess-{name}-{i}"
        searched += 1
        found = await search(client, session, q=words, page_size=100)
        arm = found["ranker"]["experiment"]["arm"]
        if arm not in first:
            first[arm], session_of[arm] = found, session
        if len(first) == 2:
            break
    assert set(first) == {"control", "learned"}
    assert first["control"]["total"] == 8  # the words' matches
    assert first["learned"]["total"] > 8  # and the catalog's closest products
    for arm, found in first.items():
        deep = await search(client, session_of[arm], q=words, page=3, page_size=100)
        assert deep["total"] == found["total"], arm
        assert deep["results"] == []
        # what the index ordered: no arm's figures
        assert (deep["ranker"]["kind"], deep["ranker"]["experiment"]) == ("index", None)
    await eventually_counted(client, name, searched)
    await asyncio.sleep(0.5)  # counters are written in the background
    counted = await show(client, name)
    assert sum(a["requests"] for a in counted["arms"]) == searched  # the first pages only


async def test_a_shadow_ranker_is_measured_but_never_shown(
        client: httpx.AsyncClient, words: str, stopped: list[str]) -> None:
    name = "sh-" + secrets.token_hex(3)
    # both arms show the formula; the shadow (plain text relevance) orders every search
    await start(client, name=name, kind="ab", shadow="text", shadow_sample=1.0, arms=[
        {"name": "one", "ranker": "formula"}, {"name": "two", "ranker": "formula"}])
    stopped.append(name)
    plain = [r["product_id"] for r in (await search(client, q=words, ranker="formula"))[
        "results"]]
    for i in range(6):
        found = await search(client, f"s-{name}-{i}", q=words)
        assert found["ranker"]["experiment"]["name"] == name
        assert [r["product_id"] for r in found["results"]] == plain
    deadline = time.monotonic() + 10
    while (found := await show(client, name))["shadow_stats"]["requests"] < 6:
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.1)
    shadow = found["shadow_stats"]
    assert shadow["requests"] == 6 and shadow["errors"] == 0
    assert 0 <= shadow["top10_agreement"] <= 8  # 8 products: at most 8 of a top 10 shared


async def test_a_guardrail_stops_an_arm_that_breaches_it(
        client: httpx.AsyncClient, words: str, stopped: list[str], settings: Settings) -> None:
    name = "gr-" + secrets.token_hex(3)
    # no search answers within 1 microsecond: both arms breach after 3 searches each
    await start(client, name=name, arms=[{"name": "a", "ranker": "formula"},
                                         {"name": "b", "ranker": "text"}],
                guardrails={"max_p99_ms": 0.001, "min_requests": 3, "max_error_rate": 0.5})
    stopped.append(name)
    for i in range(30):
        await search(client, f"s-{name}-{i}", q=words)
    deadline = time.monotonic() + 10  # counters are written in the background
    while True:
        found = await show(client, name)  # checks the guardrails before it answers
        if all(arm["stopped"] for arm in found["arms"]):
            break
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.2)
    for arm in found["arms"]:
        assert "p99" in arm["stopped"] and arm["requests"] >= 3, arm
    # no arm left: the experiment is over, and the next one may start
    assert found["status"] == "stopped" and "guardrails" in (found["stop_reason"] or ""), found
    deadline = time.monotonic() + 5  # every replica reads the stop within a second
    while (await search(client, f"s-{name}-0", q=words))["ranker"]["experiment"] is not None:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.2)
    # each arm's figures are its counters when its guardrail stopped it: a search counted
    # later (a replica that had not read the stop) changes nothing shown
    redis = aioredis.from_url(settings.redis_url)
    try:
        await ExperimentMetrics(redis).count(name, "a", 12.0)
    finally:
        await redis.aclose()
    assert (await show(client, name))["arms"] == found["arms"]


async def test_experiments_are_validated_and_one_runs_at_a_time(
        client: httpx.AsyncClient, stopped: list[str]) -> None:
    r = await client.post(API, json={"name": "bad", "created_by": "t", "kind": "interleave",
                                     "arms": [{"name": "a", "ranker": "formula"},
                                              {"name": "b", "ranker": "text"},
                                              {"name": "c", "ranker": "weighted"}]},
                          headers=INTERNAL)
    assert r.status_code == 422 and "arms" in r.json()["error"]["fields"], r.text
    r = await client.post(API, json={"name": "bad", "created_by": "t",
                                     "arms": [{"name": "a", "ranker": "formula"},
                                              {"name": "b", "ranker": "lgbm_999999"}]},
                          headers=INTERNAL)
    assert r.status_code == 422 and "arms.1.ranker" in r.json()["error"]["fields"], r.text
    r = await client.post(API, json={"name": "bad", "created_by": "t",
                                     "arms": [{"name": "a", "ranker": "formula"},
                                              {"name": "b", "ranker": "bm25_title"}]},
                          headers=INTERNAL)
    assert r.status_code == 422, r.text
    assert "baseline" in r.json()["error"]["fields"]["arms.1.ranker"], r.text  # not "one of"
    for typo, field in (({"arms": [{"name": "a", "ranker": "formula"},
                                   {"name": "b", "ranker": "text", "wieght": 5}]}, "wieght"),
                        ({"guardrail": {"max_error_rate": 0.001}}, "guardrail"),
                        ({"shadow": "text"}, "shadow_sample")):  # a shadow that never runs
        r = await client.post(API, json={"name": "bad", "created_by": "t", "arms": [
            {"name": "a", "ranker": "formula"}, {"name": "b", "ranker": "text"}], **typo},
            headers=INTERNAL)
        assert r.status_code == 422, r.text  # never started with a field left unread
        assert any(field in k for k in r.json()["error"]["fields"]), r.text
    arms = [{"name": "a", "ranker": "formula"}, {"name": "b", "ranker": "text"}]
    name = "one-" + secrets.token_hex(3)
    await start(client, name=name, arms=arms)
    stopped.append(name)
    r = await client.post(API, json={"name": name + "x", "created_by": "t", "arms": arms},
                          headers=INTERNAL)
    assert r.status_code == 409 and r.json()["error"]["code"] == "experiment_running"
    r = await client.post(API, json={"name": "x", "created_by": "t", "arms": arms})
    assert r.status_code == 401


async def test_events_are_validated_and_recorded_without_an_experiment(
        client: httpx.AsyncClient, words: str) -> None:
    found = await search(client, q=words)
    answer = await click(client, found, at=1)
    assert answer == {"accepted": True, "experiment": None, "arm": None, "team": None}
    for body, field in (
            ({"type": "view", "search_id": found["search_id"], "product_id": "1"}, "type"),
            ({"type": "click", "search_id": "nope", "product_id": "1"}, "search_id"),
            ({"type": "click", "search_id": found["search_id"], "product_id": "x"},
             "product_id"),
            ({"type": "click", "search_id": found["search_id"], "product_id": "1",
              "position": 0}, "position"),
            ({"type": "click", "search_id": found["search_id"], "product_id": "1",
              "position": "3"}, "position"),
            ({"type": "click", "search_id": found["search_id"], "product_id": "1",
              "extra": 1}, "extra")):
        r = await client.post("/api/v1/events", json=body)
        assert r.status_code == 422, r.text
        assert any(field in k for k in r.json()["error"]["fields"]), r.text
    r = await client.get("/api/v1/products/search", params={"q": words},
                         headers={"X-Session-Id": "bad session!"})
    assert r.status_code == 422 and "X-Session-Id" in r.json()["error"]["fields"]
    # a cookie the shopper cannot mend is no session, not a refused search
    for cookie in ("abc%20def", "x" * 129):
        client.cookies.set("aisle_session", cookie)
        try:
            r = await client.get("/api/v1/products/search", params={"q": words})
        finally:
            client.cookies.delete("aisle_session")
        assert r.status_code == 200 and r.json()["results"], r.text


def rankers_cli(app_url: str, *args: str, refused: bool = False, url_last: bool = False
                ) -> str:
    """The command's output (refused: its error, which must be one line, no traceback).
    `url_last`: --url after the subcommand's arguments (either place works)."""
    root = Path(__file__).resolve().parents[2]
    where = [*args, "--url", app_url] if url_last else ["--url", app_url, *args]
    done = subprocess.run(
        [sys.executable, str(root / "scripts" / "rankers.py"), *where],
        capture_output=True, text=True, timeout=60, cwd=root,
        env={**os.environ, "AISLE_INTERNAL_TOKEN": INTERNAL_TOKEN, "PYTHONPATH": str(root)})
    if refused:
        assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
        return done.stderr
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


async def test_experiments_from_the_command_line(
        app_url: str, client: httpx.AsyncClient, words: str, stopped: list[str]) -> None:
    name = "cli-" + secrets.token_hex(3)
    stopped.append(name)
    out = await asyncio.to_thread(
        rankers_cli, app_url, "experiment", "start", name, "--arm", "control=formula:3",
        "--arm", "treatment=text", "--shadow", "weighted", "--shadow-sample", "0.5",
        "--max-p99-ms", "2500")
    assert out.startswith("started: ") and "control=formula:3, treatment=text:1" in out
    for i in range(8):
        await click(client, await search(client, f"s-{name}-{i}", q=words))
    await eventually_counted(client, name, 8)
    out = await asyncio.to_thread(rankers_cli, app_url, "experiment", "show", name)
    assert "p99 <= 2500.0 ms" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines()[3:5]}
    assert set(rows) == {"control", "treatment"}
    assert sum(int(r[2]) for r in rows.values()) == 8  # requests
    assert sum(int(r[6]) for r in rows.values()) == 8  # clicks
    assert "shadow weighted:" in out
    out = await asyncio.to_thread(rankers_cli, app_url, "experiment", "stop", name)
    assert out.startswith("stopped: ") and " stopped " in out
    assert name in await asyncio.to_thread(rankers_cli, app_url, "experiment", "list",
                                           url_last=True)
    # what the service refuses is said in one line: its status, message and fields
    err = await asyncio.to_thread(rankers_cli, app_url, "experiment", "stop", name,
                                  refused=True)
    assert err.startswith("rankers: POST ") and "HTTP 409" in err, err
    err = await asyncio.to_thread(rankers_cli, app_url, "show", "lgbm_999999", refused=True)
    assert "HTTP 404" in err, err
    err = await asyncio.to_thread(rankers_cli, "http://127.0.0.1:9", "list", refused=True)
    assert err.startswith("rankers: no answer from http://127.0.0.1:9"), err
