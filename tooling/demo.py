"""`scripts/demo`: run aisle with a sample catalog, in the foreground.

Starts (embedded or configured) PostgreSQL and Redis, applies migrations, loads the catalog
unless it is loaded already, starts Ray and the Serve app, prints `aisle ready on ...` and a
curl to try, and stops everything it started on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import signal
import sys
import threading
import time
from pathlib import Path

import httpx

from adapters.embedded import Infrastructure
from adapters.loading import load_catalog
from adapters.postgres import connect
from adapters.postgres.demo_setup import first_leaf_category, set_seller_key
from adapters.postgres.migrate import migrate
from adapters.settings import Settings
from domain.errors import ConfigError
from domain.sellers import new_api_key
from serve.haproxy_ingress import environment as haproxy_environment
from serve.haproxy_ingress import remove_state as remove_haproxy_state
from serve.proxy_setup import CALLBACK as PROXY_CALLBACK
from serve.proxy_setup import ENV as PROXY_ENV
from serve.ray_env import serve_env
from tooling.cli import whole_number

DEMO_SELLER_ID = 1
DASHBOARD_PORT = 8265  # Ray's own default
# a stopping Gateway replica stays reachable this long behind HAProxy (Serve's default 30 s
# is for a cluster's reloads; on one machine HAProxy drops it within a second): so Ctrl-C
# stops the demo in seconds, not 30
DRAIN_S = 2.0


# the sample search printed at start: one that finds something in that catalog
SAMPLE_QUERY = {"esci": "running+shoes+under+%2450", "icecat": "wireless+mouse+under+%2450"}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/demo", description=__doc__)
    p.add_argument("--port", type=whole_number(1, 65535, "a port"), default=None,
                   help="HTTP port (default 8000)")
    p.add_argument("--dataset", default="esci", help="esci | icecat | synthetic:N | PATH")
    p.add_argument("--data-dir", type=Path, default=None, help="where embedded servers keep data")
    p.add_argument("--ranker", choices=("learned", "formula"), default="learned",
                   help="learned (default): on the first start with esci or icecat, train a "
                        "ranker on the dataset's judged queries and put it in production; "
                        "formula: keep the seed's weighted formula")
    p.add_argument("--ingress", choices=("haproxy", "proxy"), default="haproxy",
                   help="haproxy (default): Ray Serve's HAProxy ingress straight to the "
                        "Gateway replicas, the client's address forwarded "
                        "(serve/haproxy_ingress.py; less CPU per search, docs/benchmarks.md; "
                        "unparsable HTTP gets HAProxy's HTML 400); proxy: Serve's HTTP proxy "
                        "actor (also what runs where no HAProxy binary is found)")
    p.add_argument("--dashboard", action="store_true",
                   help=f"also run Ray's dashboard (port {DASHBOARD_PORT}): actors, Serve "
                        "replicas, logs; off by default (it costs CPU while idle)")
    return p.parse_args(argv)


def train_default_ranker(url: str, dataset: str, token: str) -> None:
    """First start with a judged catalog: a LightGBM ranker trained on its dev judgments,
    cross-validated through the API, promoted through the offline gate. When the gate
    refuses it only for the queries it harms while it is above the formula on every dataset,
    it is promoted anyway for the demo (forced, the reason recorded: `scripts/rankers show`).
    Later starts find it in the registry."""
    from ranking.judgments import DATASETS, read_judgments
    from tooling.ranker_training import RankerService, train_and_register
    from tooling.relevance import EvalError, judgments_path

    if dataset not in DATASETS:
        return
    path = judgments_path(None, dataset)
    if not path.is_file():
        print(f"no judgments for {dataset} at {path}: the formula ranks", flush=True)
        return
    service = RankerService(url, token)
    if service.production() != "formula":
        return
    print(f"first start: training the default ranker on {dataset}'s judged queries "
          "(LightGBM, 5-fold cross-validation through the API; a minute or two) ...",
          flush=True)
    try:
        done = train_and_register(dataset, service, read_judgments(path, dataset),
                                  say=lambda m: print("  " + m, flush=True))
    except EvalError as exc:  # the demo still starts, ranked by the formula
        print(f"  no ranker trained ({exc}); the formula ranks", flush=True)
        return
    d = done.metrics.datasets[dataset]
    if done.promoted:
        return
    ok, body = service.promote(done.version)
    if not ok and d.ndcg > d.baseline_ndcg:
        reasons = "; ".join(body.get("error", {}).get("reasons") or [])
        ok, body = service.promote(done.version, force=True, reason=(
            f"demo first start: above the formula (CV {d.ndcg:.4f} vs {d.baseline_ndcg:.4f}) "
            f"but the gate said: {reasons}"))
    print(f"  {done.version} is in production" if ok else
          f"  {done.version} stays a candidate ({body}); the formula ranks", flush=True)


async def prepare_database(dsn: str, dataset: str, seller_key: str) -> tuple[str, int | None]:
    """Migrate, load the catalog (once), set the demo seller's key. Returns (load summary,
    a leaf category id for the example curl)."""
    conn = await connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    result = await load_catalog(dsn, dataset)
    summary = (f"catalog {dataset}: already loaded" if result.skipped else
               f"catalog {dataset}: loaded {result.products} products, {result.variants} "
               f"variants in {result.seconds:.1f} s")
    conn = await connect(dsn)
    try:
        await set_seller_key(conn, DEMO_SELLER_ID, "Demo Seller", seller_key, 4.8)
        leaf = await first_leaf_category(conn)
    finally:
        await conn.close()
    return summary, leaf


def wait_healthy(url: str, timeout_s: float = 3600.0) -> None:
    """Until /health answers 200: the first index build of a large catalog takes minutes
    (about 3 for synthetic:1000000 on 2 cores), so say what is awaited every 30 s."""
    start = time.monotonic()
    said = start
    while time.monotonic() - start < timeout_s:
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() - said >= 30:
            said = time.monotonic()
            print(f"waiting for the app to become healthy (the first search index build): "
                  f"{said - start:.0f} s", flush=True)
        time.sleep(0.5)
    raise RuntimeError(f"the app at {url} did not become healthy in {timeout_s:.0f} s")


def on_signal(stop: threading.Event) -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:  # one line naming the variable, not a traceback
        print(f"scripts/demo: {exc}", file=sys.stderr)
        return 2
    if args.port is not None:
        settings = settings.replace(http_port=args.port)
    if args.data_dir is not None:
        settings = settings.replace(data_dir=args.data_dir)
    notes: list[str] = []
    if settings.internal_token is None:
        settings = settings.replace(internal_token=secrets.token_urlsafe(24))
        notes.append(f"internal API token (AISLE_INTERNAL_TOKEN): {settings.internal_token}")
    seller_key = settings.demo_seller_key or new_api_key()
    if settings.demo_seller_key is None:
        notes.append(f"demo seller API key (AISLE_DEMO_SELLER_KEY): {seller_key}")

    stop = threading.Event()
    on_signal(stop)

    logging.basicConfig(level=logging.WARNING)
    with Infrastructure(settings) as infra:
        settings = infra.settings
        assert settings.database_url is not None
        print(f"postgres: {settings.database_url}\nredis: {settings.redis_url}", flush=True)
        summary, leaf = asyncio.run(prepare_database(settings.database_url, args.dataset,
                                                     seller_key))
        print(summary, flush=True)
        if stop.is_set():
            return 0
        import ray
        from ray import serve

        from serve import build_app

        ingress: dict[str, str] | None = None
        if args.ingress == "haproxy":  # read by Serve's controller and replicas: before Ray
            ingress = haproxy_environment(drain_s=DRAIN_S, side_host=settings.http_host)
            if ingress is None:
                print("no HAProxy binary here (ray[serve] bundles one on Linux): Serve's "
                      "proxy serves HTTP", flush=True)
            for name, value in (ingress or {}).items():
                os.environ.setdefault(name, value)
        started = ray.init(include_dashboard=args.dashboard, dashboard_host="127.0.0.1",
                           dashboard_port=DASHBOARD_PORT, log_to_driver=False,
                           configure_logging=False)
        on_signal(stop)  # ray.init installs its own SIGTERM handler; ours must win
        node_id = ray.get_runtime_context().get_node_id()
        try:
            serve.start(http_options={"host": settings.http_host, "port": settings.http_port})
            serve.run(build_app(settings), name="aisle", route_prefix="/", blocking=False)
            url = f"http://127.0.0.1:{settings.http_port}"
            wait_healthy(url)
            if args.ranker == "learned":
                assert settings.internal_token is not None
                train_default_ranker(url, args.dataset, settings.internal_token)
            for note in notes:
                print(note)
            print(f"aisle ready on {url}")
            print(f"shop:  open {url}/ in a browser (search, product pages, cart, checkout)")
            sample = SAMPLE_QUERY.get(args.dataset, SAMPLE_QUERY["esci"])
            print(f"try:  curl -s '{url}/api/v1/products/search?q={sample}"
                  "&page_size=3' | head -c 600; echo")
            print(f"      curl -s {url}/api/v1/categories | head -c 400; echo")
            print(f"      curl -s -X POST {url}/api/v1/seller/products "
                  f"-H 'Authorization: Bearer {seller_key}' -H 'Content-Type: application/json' "
                  f"""-d '{{"title": "Demo mug", "category_id": {leaf or 1}, "brand": "Aisle", """
                  f""""variants": [{{"sku": "MUG-1", "price_cents": 1299}}]}}'""")
            print(f"API docs: {url}/docs")
            port = next((n.get("MetricsExportPort") for n in ray.nodes() if n.get("Alive")),
                        None)
            if port:  # Ray's Prometheus endpoint: aisle's series are ray_aisle_*
                print(f"metrics (Prometheus): http://127.0.0.1:{port}/metrics  (alerts and "
                      "a Grafana dashboard: config/prometheus, config/grafana; "
                      "docs/operations.md)")
            print(f"Ray's dashboard: http://{started.dashboard_url}  (it asks for Ray's "
                  "token: ~/.ray/auth_token, or $RAY_AUTH_TOKEN)" if started.dashboard_url
                  else f"Ray's dashboard: off (scripts/demo --dashboard serves it on "
                       f"http://127.0.0.1:{DASHBOARD_PORT})")
            print("Ctrl-C stops everything", flush=True)
            stop.wait()
            print("stopping ...", flush=True)
            serve.shutdown()
        finally:
            ray.shutdown()
            if ingress is not None:  # Serve leaves HAProxy's files under /tmp/haproxy-serve
                remove_haproxy_state(node_id)
    print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault(PROXY_ENV, PROXY_CALLBACK)  # before Ray starts: its proxy reads it
    # Serve's control loop and metrics export at a cheaper pace idle; a replica's requests,
    # user code and handle calls on one event loop
    serve_env(os.environ)
    # a demo's new database gets one inventory partition per core (at least 2), not the
    # service's 8: each idle partition actor costs ~0.8 % of a core in Ray's own threads
    # (docs/benchmarks.md, bench_idle: 16.8 % idle with 8 on 2 cores, 12.4 % with 2); the
    # map of an existing data dir stays, and `scripts/inventory_partitions --set N` rescales
    os.environ.setdefault("AISLE_INVENTORY_PARTITIONS", str(max(2, os.cpu_count() or 2)))
    # two Gateway replicas where there are two cores: a Gateway runs the index searches in
    # its own process (local shard reads), under one GIL; one replica kept the demo at
    # 0.19-0.27x the plain process's searches/s, two at 0.33-0.38x (docs/benchmarks.md)
    os.environ.setdefault("AISLE_GATEWAY_REPLICAS", str(min(2, os.cpu_count() or 1)))
    raise SystemExit(main())
