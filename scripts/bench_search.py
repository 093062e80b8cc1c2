"""Search throughput and latency against the framework's ceiling, on a real catalog.

For each --datasets entry (esci, icecat, synthetic:N), starts scripts/demo with that catalog in
its own data dir (or uses --url), builds a realistic query mix from the catalog itself
(keywords from titles, brand / price / category / color filters, facets, every sort, deep
pages, natural-language filters), and runs it closed-loop at --concurrency for --seconds; then
the same load against GET /api/v1/noop of the same app (the Serve + HTTP ceiling here), and
against the same no-op awaiting once (Serve's floor for any handler that does I/O). Prints
requests/s, p50/p99 and the ratios. With --rebuild, also times a full index rebuild (docs/s).

    scripts/bench_search [--datasets esci,icecat,synthetic:1000000] [--concurrency 8,32]
                         [--caches cold,warm] [--seconds 20] [--rebuild] [--no-plain]
                         [--rankers default,formula]

--plain (the default; --no-plain skips it): also runs the same search mix against one plain
process (tooling/plain_search.py: uvicorn + FastAPI over copies of the same tantivy shards; no
Ray, Redis or PostgreSQL; BM25, filters, sorts, exact facets, no query understanding,
re-ranking or live price/stock), in the same run, and prints CPU per request of the whole
server process tree and requests/s of each with their ratios (issue 15's yardstick). Its load
runs between the two halves of aisle's (A P A: this machine's speed moves by a third over a
few minutes, and a load minutes after the other met another machine); it idles, started once,
while aisle is measured. Each side's CPU is its own: aisle's processes (Ray's, PostgreSQL and
Redis included) for aisle, the plain process alone for it (aisle's idle CPU meanwhile is not
the comparator's cost).

--concurrency 8,32 and --caches cold,warm (the defaults): every load once per number of
connections and per cache state. `cold` sends only requests this server has not answered
before in the run (a moving window of unseen requests): what is cached per request misses
(query understanding, pages); caches with coarser keys can still hit (facet counts are per
words and filters, not sort or page; query vectors per words; prices per product for 60 s),
and the cheaper parts of the mix are used up first, so a long cold load drifts to rarer
requests. `warm` replays a pool of --pool requests, each answered once before the measured
window (every cache hit). `mixed` is the seeded mix as drawn, repeats and all (what earlier
sessions measured). The plain comparator gets the same treatment (its own unseen requests
drawn the same way, the same pool).

--rankers: the search mix once per ranker named (the request's `ranker` parameter): `default`
is what shoppers get (the production model: scripts/demo trains and promotes one on its first
start with a judged catalog), `formula` the hand-written ranker; ratios are to the first. With
only `formula` the demo is started with --ranker formula (no training). With several, each
ranker's --seconds run in two halves, in the order given and then reversed (A B B A; one row
per ranker for both halves): whichever load runs first meets caches the next finds full
(prices per product for 60 s, query understanding, facet counts), which made the first ranker
look up to 1.7x dearer cold; the order evens out a drift over the run, while the very first
half still meets the coldest caches (halved for the first ranker, not removed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx
from eval_relevance import REPO, running_service  # scripts/ is on sys.path: our own folder

from tooling.load import (
    PLAIN_PROCESS,
    closed_loop,
    combined,
    cpu_rows,
    internal_headers,
    served_cpu_ms,
    stage_rows,
)
from tooling.plain_search import newest_generation

STOP = {"for", "and", "with", "the", "of", "in", "a", "to", "&", "-", "/", "by"}


async def sample_catalog(client: httpx.AsyncClient) -> dict[str, Any]:
    titles: list[str] = []
    body: dict[str, Any] = {}
    for sort in ("newest", "rating", "price_asc", "price_desc"):
        for page in (1, 3):
            r = await client.get("/api/v1/products/search",
                                 params={"sort": sort, "page": page, "page_size": 100})
            r.raise_for_status()
            body = r.json()
            titles += [x["title"] for x in body["results"]]
    words = [w for t in titles for w in t.lower().split()
             if w.isalpha() and len(w) > 2 and w not in STOP]
    facets = body["facets"]
    return {"titles": titles, "words": words or ["shoes"],
            "brands": [b["name"] for b in facets["brands"]] or ["Acme"],
            "categories": [c["id"] for c in facets["categories"]],
            "colors": [c["value"] for c in facets["attributes"].get("color", [])]}


def query_mix(cat: dict[str, Any], rnd: random.Random) -> Callable[[], dict[str, Any]]:
    def kw(n: int) -> str:
        if rnd.random() < 0.5 and cat["titles"]:  # a real title's first words
            t = [w for w in rnd.choice(cat["titles"]).split() if w.lower() not in STOP]
            return " ".join(t[:n])
        return " ".join(rnd.choice(cat["words"]) for _ in range(n))

    def make() -> dict[str, Any]:
        r = rnd.random()
        n = rnd.choice([1, 2, 2, 3])
        if r < 0.35:
            return {"q": kw(n)}
        if r < 0.50:
            return {"q": kw(n), "brand": rnd.choice(cat["brands"])}
        if r < 0.60:
            lo = rnd.choice([0, 10, 25, 50])
            return {"q": kw(1), "price_min": lo, "price_max": lo + rnd.choice([25, 50, 200])}
        if r < 0.68 and cat["categories"]:
            return {"category": rnd.choice(cat["categories"]),
                    "sort": rnd.choice(["rating", "price_asc", "newest"])}
        if r < 0.76:
            return {"q": kw(n), "sort": rnd.choice(["price_asc", "price_desc", "rating",
                                                    "newest"])}
        if r < 0.84:
            return {"q": kw(1), "page": rnd.randint(3, 20)}
        if r < 0.90 and cat["colors"]:
            return {"q": kw(1), "color": rnd.choice(cat["colors"])}
        if r < 0.96:
            return {"q": f"{kw(1)} under ${rnd.choice([20, 50, 100])}"}
        return {"q": kw(1), "rating_min": 4, "in_stock": "true"}
    return make


def request_key(params: Mapping[str, object]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in params.items()))


def mode_mix(cat: dict[str, Any], mode: str, seed: int, seen: set[tuple[tuple[str, str], ...]],
             pool: int) -> tuple[Callable[[], dict[str, Any]], list[dict[str, Any]]]:
    """The requests of one load in cache state `mode` ("cold", "warm", "mixed") and the
    requests to answer before its measured window (warm: the pool). `seen`: the requests the
    server has answered in this run (cold draws only others, and adds what it sends)."""
    if mode == "mixed":
        drawn = query_mix(cat, random.Random(42))  # the same sequence as earlier sessions'

        def recorded() -> dict[str, Any]:
            params = drawn()
            seen.add(request_key(params))  # a later cold load must not send it again
            return params
        return recorded, []
    mix = query_mix(cat, random.Random(seed))
    if mode == "warm":
        reqs = [mix() for _ in range(pool)]
        seen.update(request_key(r) for r in reqs)
        pick = random.Random(seed + 1)
        return (lambda: pick.choice(reqs)), reqs

    def unseen() -> dict[str, Any]:
        for _ in range(100_000):
            params = mix()
            if (key := request_key(params)) not in seen:
                seen.add(key)
                return params
        raise SystemExit("--caches cold: the mix ran out of unseen requests")
    return unseen, []


async def answer_each(url: str, path: str, requests: list[dict[str, Any]],
                      concurrency: int) -> None:
    """Send each request once (concurrency at a time): the warm pool's first pass."""
    queue = list(requests)
    async with httpx.AsyncClient(base_url=url, timeout=60,
                                 headers=internal_headers()) as client:
        async def worker() -> None:
            while queue:
                await client.get(path, params=queue.pop())
        await asyncio.gather(*(worker() for _ in range(concurrency)))


def ranked_by(r: httpx.Response) -> str:
    """What ordered a search, as its answer says."""
    if r.status_code != 200:
        return f"HTTP {r.status_code}"
    ranker = r.json()["ranker"]
    return (f"{ranker['kind']}:{ranker['version'] or ranker['requested']}"
            + (" (fallback)" if ranker.get("fallback") else ""))


async def bench(url: str, dataset: str, a: argparse.Namespace, notes: list[str]) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        cat = await sample_catalog(client)
        total = (await client.get("/api/v1/products/search", params={"page_size": 1})).json()
        rebuild = None
        if a.rebuild:
            token = os.environ["AISLE_INTERNAL_TOKEN"]
            r = await client.post("/api/v1/internal/search/rebuild",
                                  params={"workers": a.rebuild_workers, "wait": "true"},
                                  headers={"Authorization": f"Bearer {token}"}, timeout=3600)
            r.raise_for_status()
            rebuild = r.json()
    async with contextlib.AsyncExitStack() as stack:
        plain_url = (await stack.enter_async_context(plain_process(
            a, generation_of(a, dataset))) if a.plain else None)
        return await loads(url, dataset, a, notes, cat, total, rebuild, plain_url)


async def loads(url: str, dataset: str, a: argparse.Namespace, notes: list[str],
                cat: dict[str, Any], total: dict[str, Any], rebuild: dict[str, Any] | None,
                plain_url: str | None) -> list[str]:
    rankers = a.rankers.split(",")
    seen: set[tuple[tuple[str, str], ...]] = set()  # what this server has answered
    plain_seen: set[tuple[tuple[str, str], ...]] = set()  # and the plain process
    rows: list[str] = []
    comparison: list[str] = []
    for concurrency in (int(c) for c in str(a.concurrency).split(",")):
        cells = []
        plain_cells: list[dict[str, Any]] = []
        for mode in a.caches.split(","):
            parts: list[list[dict[str, Any]]] = [[] for _ in rankers]
            mixes = []
            for i, ranker in enumerate(rankers):
                # the same requests for every ranker when mixed or warm; cold: unseen ones,
                # drawn from the same mix with a seed of each ranker's own
                mix, first = mode_mix(cat, mode, 42 + concurrency + (
                    1000 * i if mode == "cold" else 0), seen, a.pool)
                mixes.append(mix)
                await answer_each(url, "/api/v1/products/search",
                                  [{**r, "ranker": ranker} for r in first], concurrency)
            if plain_url is not None:  # the same requests as the first ranker's
                plain_mix, first = mode_mix(cat, mode, 42 + concurrency, plain_seen, a.pool)
                await answer_each(plain_url, "/api/v1/products/search", first, concurrency)
            # several rankers: each one's load in two halves, in the order given and then
            # reversed (A B B A), so that none always runs before the others fill the caches
            # (prices per product, query understanding, facets, vectors); the plain process
            # in the middle (A P A, A B P B A): the machine's speed drifts by a third over
            # minutes (other tenants), and a drift over the load then weighs on both alike
            halves = 2 if len(rankers) > 1 or plain_url is not None else 1
            order: list[int | None] = [*range(len(rankers)), *reversed(range(len(rankers)))][
                :len(rankers) * halves]
            if plain_url is not None:
                order.insert(len(rankers), None)
            plain_part: dict[str, Any] | None = None
            for i in order:
                if i is None:
                    assert plain_url is not None
                    plain_part = await closed_loop(
                        plain_url, lambda mix=plain_mix: ("/api/v1/products/search", mix()),
                        concurrency, a.seconds, a.warmup)
                    continue

                def request(mix: Callable[[], dict[str, Any]] = mixes[i],
                            ranker: str = rankers[i]) -> tuple[str, dict[str, Any]]:
                    return "/api/v1/products/search", {**mix(), "ranker": ranker}

                parts[i].append(await closed_loop(
                    url, request, concurrency, a.seconds / halves,
                    a.warmup, tag=ranked_by))
            cells.append((mode, [combined(*p) for p in parts]))
            if plain_part is not None:
                plain_cells.append(plain_part)
        noop = await closed_loop(url, lambda: ("/api/v1/noop", {}), concurrency, a.seconds,
                                 a.warmup)
        # the same no-op awaiting once: Serve's floor for any handler that does I/O
        awaits = await closed_loop(url, lambda: ("/api/v1/noop", {"await": "true"}),
                                   concurrency, a.seconds, a.warmup)

        def ratio(r: dict[str, Any], noop: dict[str, Any] = noop) -> float:
            return r["rps"] / noop["rps"] if noop["rps"] else 0.0

        for mode, searches in cells:
            search = searches[0]
            rows += [f"| {dataset} ({total['total']:,} docs) | {concurrency} | {mode} | "
                     f"search mix, ranker={ranker}"
                     + (f" ({s['rps'] / search['rps']:.2f}x {rankers[0]})" if i else "")
                     + f" | {s['rps']:,.0f} | {s['p50']:.1f} | {s['p99']:.1f} | "
                     f"{s['errors']} | {ratio(s):.2f} |"
                     for i, (ranker, s) in enumerate(zip(rankers, searches, strict=True))]
            notes.append(f"\n{dataset}, {concurrency} connections, caches {mode}: what ordered "
                         "the searches (the answers' `ranker`: kind, version; `fallback`: the "
                         "chosen model could not rank)\n\n"
                         + "\n".join(f"- ranker={r}: " + ", ".join(
                             f"{k} {n}" for k, n in sorted(s["tags"].items()))
                             for r, s in zip(rankers, searches, strict=True)))
        rows += [f"| {dataset} | {concurrency} | | no-op ceiling | {noop['rps']:,.0f} | "
                 f"{noop['p50']:.1f} | {noop['p99']:.1f} | {noop['errors']} | 1.00 |",
                 f"| {dataset} | {concurrency} | | no-op that awaits once | "
                 f"{awaits['rps']:,.0f} | {awaits['p50']:.1f} | {awaits['p99']:.1f} | "
                 f"{awaits['errors']} | {ratio(awaits):.2f} |"]
        notes.append(f"\n{dataset}, {concurrency} connections: where a search's time went "
                     "(the answers' Server-Timing stages)\n\n" + "\n".join(stage_rows(
                         *((f"{r}, {mode}", s["stages"], s["n"]) for mode, searches in cells
                           for r, s in zip(rankers, searches, strict=True)))))
        notes.append(f"\n{dataset}, {concurrency} connections: CPU per request while each "
                     "load ran (ms, by process)\n\n"
                     + "\n".join(cpu_rows(*((f"search {r}, {mode}", s) for mode, searches in cells
                                             for r, s in zip(rankers, searches, strict=True)),
                                           ("no-op", noop), ("no-op, awaits", awaits),
                                           seconds=a.seconds)))
        if plain_cells:
            for (mode, searches), plain in zip(cells, plain_cells, strict=True):
                search = searches[0]
                aisle_ms = served_cpu_ms(search["cpu"], search["n"])
                plain_ms = served_cpu_ms(plain["cpu"], plain["n"], only=PLAIN_PROCESS)
                rows.append(f"| {dataset} | {concurrency} | {mode} | plain process, same mix | "
                            f"{plain['rps']:,.0f} | {plain['p50']:.1f} | {plain['p99']:.1f} | "
                            f"{plain['errors']} | |")
                comparison.append(
                    f"| {concurrency} | {mode} | {aisle_ms:.2f} | {plain_ms:.2f} | "
                    f"**{aisle_ms / plain_ms if plain_ms else 0:.1f}x** | "
                    f"{search['rps']:,.0f} | {plain['rps']:,.0f} | "
                    f"**{search['rps'] / plain['rps'] if plain['rps'] else 0:.2f}x** | "
                    f"{search['p50']:.1f} / {search['p99']:.1f} | "
                    f"{plain['p50']:.1f} / {plain['p99']:.1f} |")
    if comparison:
        notes.append(
            f"\n{dataset}: aisle (ranker={rankers[0]}) against one plain process, the same "
            "mix (CPU: ms per search of all server processes)\n\n"
            "| connections | caches | aisle CPU ms | plain CPU ms | **aisle/plain CPU** | "
            "aisle searches/s | plain searches/s | **throughput ratio** | aisle p50 / p99 ms "
            "| plain p50 / p99 ms |\n|---:|---|---:|---:|---:|---:|---:|---:|---|---|\n"
            + "\n".join(comparison))
    if rebuild:
        rows.append(f"| {dataset} | | | full rebuild | {rebuild['docs_per_s']:,} docs/s "
                    f"({rebuild['documents']:,} docs in {rebuild['seconds']} s, "
                    f"{a.rebuild_workers} workers) | | | | |")
    return rows


def generation_of(a: argparse.Namespace, dataset: str) -> Path:
    """The index generation the plain process copies: --plain-index, else the newest in the
    data dir this script gave the demo."""
    root = (Path(a.plain_index) if a.plain_index is not None
            else REPO / ".aisle-data" / f"bench-{dataset.replace(':', '-')}" / "index")
    found = newest_generation(root)
    if found is None:
        raise SystemExit(f"--plain: no index generation under {root} (pass --plain-index)")
    return found


@contextlib.asynccontextmanager
async def plain_process(a: argparse.Namespace, generation: Path) -> AsyncIterator[str]:
    """tooling.plain_search on a copy of `generation`, for the whole run (idle between its
    loads): its URL."""
    url = f"http://127.0.0.1:{a.plain_port}"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tooling.plain_search", str(generation), "--port",
        str(a.plain_port), cwd=REPO)
    try:
        async with httpx.AsyncClient(base_url=url, timeout=5) as client:
            for _ in range(600):
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/api/v1/noop")).status_code == 200:
                        break
                await asyncio.sleep(0.1)
            else:
                raise SystemExit("the plain process did not start")
        yield url
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/bench_search", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", default="esci,icecat")
    p.add_argument("--concurrency", default="8,32", help="comma list, e.g. 8,32")
    p.add_argument("--caches", default="cold,warm",
                   help="comma list of cold, warm, mixed (see above)")
    p.add_argument("--pool", type=int, default=200, help="requests replayed when warm")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--warmup", type=float, default=3)
    p.add_argument("--rebuild", action="store_true", help="also time a full index rebuild")
    p.add_argument("--rebuild-workers", type=int, default=2)
    p.add_argument("--url", default=None, help="a running service (one dataset)")
    p.add_argument("--port", type=int, default=8792)
    p.add_argument("--plain", action=argparse.BooleanOptionalAction, default=None,
                   help="also measure one plain process on the same index (see above; the "
                        "default unless --url is given without --plain-index)")
    p.add_argument("--plain-index", default=None,
                   help="its generation dir, or the demo's data dir (its newest generation)")
    p.add_argument("--plain-port", type=int, default=8799)
    p.add_argument("--rankers", default="default",
                   help="comma list: default (the production ranker), formula, a version")
    a = p.parse_args()
    if a.plain is None:
        a.plain = a.url is None or a.plain_index is not None
    rows: list[str] = []
    notes: list[str] = []
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    os.environ.setdefault("AISLE_INTERNAL_TOKEN", "bench-" + secrets.token_hex(12))
    for dataset in a.datasets.split(","):
        url = a.url or f"http://127.0.0.1:{a.port}"
        ctx: contextlib.AbstractContextManager[None] = (
            contextlib.nullcontext() if a.url else running_service(
                dataset, url, REPO / ".aisle-data" / f"bench-{dataset.replace(':', '-')}",
                3600, ["--ranker", "formula"] if a.rankers == "formula" else []))
        with ctx:
            rows += asyncio.run(bench(url, dataset, a, notes))
    print(f"\nsearch: closed loop, {a.concurrency} concurrent clients (each count in turn), "
          f"{a.seconds:g} s measured after {a.warmup:g} s warm-up, {os.cpu_count()} cores "
          "shared by everything; "
          f"load average (1, 5, 15 min) before the run: {load_before}")
    print("| catalog | connections | caches | load | requests/s | p50 ms | p99 ms | errors "
          "| search/no-op |")
    print("|---|---:|---|---|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    print("\n".join(notes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
