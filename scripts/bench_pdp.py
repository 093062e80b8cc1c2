"""Product page (PDP) throughput and latency against the framework's ceiling.

Starts scripts/demo with --dataset (default esci) in its own data dir (or uses --url),
collects product ids from search, and requests product pages closed-loop at --concurrency
for --seconds after --warmup seconds, the products drawn from a Zipf distribution over them
(rank k has weight 1/k^s; which product has which rank is shuffled): like a shop, a few
products get most views, so most requests find them in Redis (the seed's ~95 % hit ratio).
Then the same load against GET /api/v1/noop of the same app. Prints requests/s, p50/p99,
errors, the cache hit ratio (X-Cache header of the measured requests) and PDP / no-op, and
the CPU each process used per request (from /proc) while the PDP load ran.

    scripts/bench_pdp [--dataset esci] [--concurrency 16] [--seconds 20] [--warmup 10]
                      [--zipf-s 1.5] [--products 5000] [--url http://127.0.0.1:8000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
from eval_relevance import REPO, running_service  # scripts/ is on sys.path: our own folder

from tooling.load import closed_loop, cpu_rows, tag_rows


async def product_ids(client: httpx.AsyncClient, limit: int) -> list[str]:
    ids: dict[str, None] = {}
    for sort in ("newest", "rating", "price_asc", "price_desc"):
        for page in range(1, 101):
            r = await client.get("/api/v1/products/search",
                                 params={"sort": sort, "page": page, "page_size": 100})
            r.raise_for_status()
            results = r.json()["results"]
            ids.update((x["product_id"], None) for x in results)
            if len(ids) >= limit or len(results) < 100:
                break
        if len(ids) >= limit:
            break
    return list(ids)[:limit]


def zipf_mix(ids: list[str], s: float, draws: int = 1_000_000,
             seed: int = 42) -> Callable[[], str]:
    """Product ids drawn with weight 1/rank^s, ranks given to the products at random."""
    rng = np.random.default_rng(seed)
    ranked = [ids[i] for i in rng.permutation(len(ids))]
    weights = 1.0 / np.arange(1, len(ranked) + 1) ** s
    picks = itertools.cycle(rng.choice(len(ranked), size=draws, p=weights / weights.sum()))
    return lambda: ranked[next(picks)]


async def load(url: str, path: Callable[[], str], concurrency: int, seconds: float,
               warmup: float) -> dict[str, Any]:
    out = await closed_loop(url, lambda: (path(), {}), concurrency, seconds, warmup,
                            tag=lambda r: r.headers.get("x-cache", "-"))
    cache = out["tags"]
    looked = sum(n for k, n in cache.items() if k in ("local", "hit", "miss", "bypass"))
    hits = cache.get("local", 0) + cache.get("hit", 0)  # the process's copy, or Redis
    return {**out, "hit_ratio": hits / looked if looked else None, "cache": cache}


async def bench(url: str, a: argparse.Namespace) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        ids = await product_ids(client, a.products)
    if not ids:
        raise SystemExit("search returned no products")
    mix = zipf_mix(ids, a.zipf_s)
    pdp = await load(url, lambda: f"/api/v1/products/{mix()}", a.concurrency, a.seconds,
                     a.warmup)
    noop = await load(url, lambda: "/api/v1/noop", a.concurrency, a.seconds, a.warmup)
    ratio = pdp["rps"] / noop["rps"] if noop["rps"] else 0.0
    hit = f"{pdp['hit_ratio']:.1%}" if pdp["hit_ratio"] is not None else "-"
    rows = [
        f"\nPDP: {a.url or a.dataset}, {len(ids):,} products, Zipf s={a.zipf_s:g}; closed loop, "
        f"{a.concurrency} concurrent clients, {a.seconds:g} s measured after {a.warmup:g} s "
        f"warm-up, {os.cpu_count()} cores shared by everything",
        "| load | requests/s | p50 ms | p99 ms | errors | cache hit ratio | PDP/no-op |",
        "|---|---:|---:|---:|---:|---:|---:|",
        f"| PDP (Zipf mix) | {pdp['rps']:,.0f} | {pdp['p50']:.1f} | {pdp['p99']:.1f} | "
        f"{pdp['errors']} | {hit} | **{ratio:.2f}** |",
        f"| no-op ceiling | {noop['rps']:,.0f} | {noop['p50']:.1f} | {noop['p99']:.1f} | "
        f"{noop['errors']} | | 1.00 |",
        f"\nX-Cache of the measured PDP requests: {pdp['cache']}",
        "\nThe PDP requests by X-Cache (the p99 is the slowest 1 %: which kinds are they?):",
        *tag_rows(pdp, "X-Cache"),
        "\nCPU per request while each load ran (ms of CPU per request, by process):",
        *cpu_rows(("PDP", pdp), ("no-op", noop), seconds=a.seconds)]
    return rows


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/bench_pdp", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", default="esci")
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--warmup", type=float, default=10)
    p.add_argument("--zipf-s", type=float, default=1.5,
                   help="Zipf exponent: larger, fewer products get more of the views")
    p.add_argument("--products", type=int, default=5000, help="product ids taken from search")
    p.add_argument("--url", default=None, help="a running service")
    p.add_argument("--port", type=int, default=8794)
    a = p.parse_args()
    os.environ.setdefault("AISLE_INTERNAL_TOKEN", "bench-" + secrets.token_hex(12))
    url = a.url or f"http://127.0.0.1:{a.port}"
    ctx: contextlib.AbstractContextManager[None] = (
        contextlib.nullcontext() if a.url else running_service(
            a.dataset, url, REPO / ".aisle-data" / f"bench-pdp-{a.dataset.replace(':', '-')}",
            3600))
    with ctx:
        rows = asyncio.run(bench(url, a))
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
