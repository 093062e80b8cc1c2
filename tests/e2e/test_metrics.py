"""Ray's Prometheus endpoint after traffic: each of aisle's series (actors/metrics.py) is
there, with the values the traffic implies (read as growth over a scrape taken before it)."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import urllib.request
from collections.abc import Callable, Mapping

import asyncpg
import httpx
import ray

from serve.stages import parse_header
from tests.conftest import INTERNAL_TOKEN
from tests.e2e.conftest import Seller
from tests.integration.conftest import make_catalog

AUTH = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? ([-+0-9.eEinfINFNaN]+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
Series = list[tuple[str, dict[str, str], float]]


def scrape() -> Series:
    out: Series = []
    for node in ray.nodes():
        if not node.get("Alive") or not node.get("MetricsExportPort"):
            continue
        url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as r:
            text = r.read().decode()
        for line in text.splitlines():
            m = _LINE.match(line)
            if m and m.group(1).startswith("ray_aisle_"):
                out.append((m.group(1), dict(_LABEL.findall(m.group(2) or "")),
                            float(m.group(3))))
    return out


def total(series: Series, name: str, **labels: str) -> float:
    """The sum over processes of the series `name` with these labels."""
    return sum(v for n, lab, v in series if n == name
               and all(lab.get(k) == want for k, want in labels.items()))


def present(series: Series, name: str) -> bool:
    return any(n == name for n, _, _ in series)


def labelled(series: Series, name: str, **labels: str) -> bool:
    return any(n == name and all(lab.get(k) == v for k, v in labels.items())
               for n, lab, _ in series)


async def test_the_seed_monitoring_table_is_exported(
        client: httpx.AsyncClient, seller: Seller, category_ids: dict[str, int],
        pool: asyncpg.Pool) -> None:
    before = await asyncio.to_thread(scrape)
    tag = "mx" + secrets.token_hex(3)
    r = await client.post("/api/v1/seller/products", headers=seller.auth, json={
        "title": f"{tag} metric lamp", "category_id": category_ids["Headphones"],
        "variants": [{"sku": f"S-{tag}", "price_cents": 1_000}]})
    assert r.status_code == 201, r.text
    pid = r.json()["product_id"]
    deadline = time.monotonic() + 30
    while (await client.get("/api/v1/products/search", params={"q": tag})).json()[
            "total"] < 1:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.1)
    searches = 0
    for q in (tag, tag, f"zzz{secrets.token_hex(4)}qqq"):  # the last finds nothing
        r = await client.get("/api/v1/products/search", params={"q": q}, headers=AUTH)
        assert r.status_code == 200
        searches += 1
        # where the time went, by stage (internal callers): every search asks the index
        timing = parse_header(r.headers["Server-Timing"])
        assert timing["index"] > 0, r.headers["Server-Timing"]
        assert all(0 <= ms < 30_000 for ms in timing.values()), timing
    # a shopper is not told: which stages a search skipped says what others searched
    r = await client.get("/api/v1/products/search", params={"q": tag})
    assert r.status_code == 200 and "server-timing" not in r.headers
    searches += 1
    for _ in range(3):
        assert (await client.get(f"/api/v1/products/{pid}")).status_code == 200
    assert (await client.get("/api/v1/products/999999999999")).status_code == 404
    v = secrets.randbits(60)
    await make_catalog(pool, {v: {"WH_01": 5}})
    r = await client.patch(f"/api/v1/inventory/{v}", headers=AUTH, json={
        "warehouse_id": "WH_01", "quantity_delta": -2, "operation": "RESERVE"})
    assert r.status_code == 201, r.text

    search_route = "/api/v1/products/search"
    page_route = "/api/v1/products/{product_id}"
    def grew(s: Series, name: str, **labels: str) -> float:
        """How much the series grew since the scrape before the traffic."""
        return total(s, name, **labels) - total(before, name, **labels)

    wants: dict[str, Callable[[Series], bool]] = {
        "search requests (2xx)": lambda s: grew(
            s, "ray_aisle_http_requests_total", route=search_route, status="2xx") >= searches,
        "search latency histogram": lambda s: grew(
            s, "ray_aisle_http_request_ms_count", route=search_route) >= searches,
        "search stages (index)": lambda s: grew(
            s, "ray_aisle_search_stage_ms_count", stage="index") >= searches,
        "search stages (prices, stock)": lambda s: grew(
            s, "ray_aisle_search_stage_ms_count", stage="prices") >= 2
        and grew(s, "ray_aisle_search_stage_ms_count", stage="stock") >= 2,
        "product page 404": lambda s: grew(
            s, "ray_aisle_http_requests_total", route=page_route, status="4xx") >= 1,
        "zero-result searches": lambda s: grew(
            s, "ray_aisle_searches_total", results="zero") >= 1,
        "searches with results": lambda s: grew(
            s, "ray_aisle_searches_total", results="some") >= 2,
        "product cache lookups (Redis)": lambda s: grew(
            s, "ray_aisle_cache_lookups_total", cache="product") >= 1,
        "facet count lookups (Redis)": lambda s: grew(
            s, "ray_aisle_cache_lookups_total", cache="facets") >= 1,
        "product page copies (in-process)": lambda s: grew(
            s, "ray_aisle_cache_lookups_total", cache="page_local") >= 3,
        "documents indexed": lambda s: grew(s, "ray_aisle_index_documents_total") >= 1,
        "index lag": lambda s: present(s, "ray_aisle_index_lag_seconds")
        and 0 <= total(s, "ray_aisle_index_lag_seconds") < 120,
        "inventory reserve ok": lambda s: grew(
            s, "ray_aisle_inventory_ops_total", op="reserve", outcome="ok") >= 1,
        "inventory accuracy": lambda s: present(s, "ray_aisle_inventory_accuracy")
        and min(v for n, _, v in s if n == "ray_aisle_inventory_accuracy") == 1.0,
        "product page latency histogram": lambda s: grew(
            s, "ray_aisle_http_request_ms_count", route=page_route) >= 4,
        "index lag (events)": lambda s: present(s, "ray_aisle_index_lag_events")
        and total(s, "ray_aisle_index_lag_events") >= 0,
        "breakers, each closed": lambda s: all(
            labelled(s, "ray_aisle_breaker_open", dependency=d)
            and total(s, "ray_aisle_breaker_open", dependency=d) == 0
            for d in ("redis", "ranker", "search", "postgres")),
    }
    deadline = time.monotonic() + 60  # Ray exports every few seconds, the Gateway every 5
    while True:
        now = await asyncio.to_thread(scrape)
        missing = [name for name, ok in wants.items() if not ok(now)]
        if not missing:
            break
        assert time.monotonic() < deadline, f"not exported as expected: {missing}"
        await asyncio.sleep(2)
    # the page's first view missed; the two after it were served by the replica's copy
    assert grew(now, "ray_aisle_cache_lookups_total", cache="page_local", result="hit") >= 2


def _metric_names(expr: str) -> set[str]:
    return {m for m in re.findall(r"\b(ray_aisle_[a-z_]+)", expr)}


def test_alerts_and_dashboard_use_only_exported_series() -> None:
    import json
    from pathlib import Path

    import yaml

    from actors.metrics import SERIES

    root = Path(__file__).resolve().parents[2] / "config"
    known = {f"ray_{n}{suffix}" for n in SERIES for suffix in ("", "_bucket", "_count", "_sum")}
    rules = yaml.safe_load((root / "prometheus" / "aisle-alerts.yml").read_text())
    exprs: Mapping[str, str] = {r["alert"]: r["expr"] for g in rules["groups"]
                                for r in g["rules"]}
    assert {"AisleSearchP99High", "AislePdpP99High", "AisleZeroResultRateHigh",
            "AisleCacheHitRatioLow", "AisleIndexLagHigh", "AisleErrorRateHigh",
            "AisleInventoryAccuracyLow"} <= set(exprs)
    for name, expr in exprs.items():
        assert _metric_names(expr) and _metric_names(expr) <= known, (name, expr)
    dash = json.loads((root / "grafana" / "aisle-dashboard.json").read_text())
    for panel in dash["panels"]:
        for target in panel["targets"]:
            assert _metric_names(target["expr"]) <= known, (panel["title"], target["expr"])
