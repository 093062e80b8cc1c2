"""Pieces of a search's Gateway CPU, timed in-process (deterministic where a whole load on a
shared machine is not), each against its comparator in the same run:

- the route walk: matching `/api/v1/products/search` in the Gateway's route table (every
  request walks it twice: Starlette's routing, and Ray Serve naming the route for its
  metrics), in the table's order against the order before session 21 (shoppers' routers
  after the seller, pricing and inventory ones);
- facet counts: merging two shards' counts and picking the 20 buckets shown (domain.search:
  Facets.add, top_buckets) against adding every bucket one by one and sorting them all, on
  the shards of an index generation (--index: a generation, or the demo's data dir);
- relevance pages: searching the index's shards for 1-3 words of its own titles (pages of
  20 and 200, and product pages' related-products searches: a title's words over titles in
  its category), the first fetch at FIRST_FETCH x the page (now) against 1x (before session
  23: a run of equal scores at the cut cost a second search), the same hits required of both
  (the 1x path also orders only down to the cut's run, so it is a little cheaper than the
  code before was);
- one Redis MGET of 40 stock snapshots (--redis-url), the caller's CPU;
- sets of values matched (tantivy_shard._any_of: brand and category filters, category boosts,
  semantic candidates joined, fetches by id): a term query per value against tantivy's term
  set query, the same answers required;
- semantic candidates (domain.search.Near): a learned ranker's cold search of the shards with
  and without them; their first step with a URL filter, each filter's matches kept per
  searcher against read at every search;
- the query embedding of the learned rankers (adapters/text_embedding.py): tokenizing and
  the model's run on short queries;
- with --url (a running demo) and --redis-url (its Redis): Redis commands per search over
  `--searches` distinct keyword searches (`INFO commandstats`).

    scripts/bench_hot_path --index /tmp/pd [--redis-url redis://127.0.0.1:6379]
                           [--url http://127.0.0.1:8000 --searches 600]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import random
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import redis
import redis.asyncio as aioredis
import tantivy
from starlette.routing import Match

from adapters.search import tantivy_shard
from adapters.search.tantivy_shard import TantivyShard
from domain.query import tokenize
from domain.search import (
    FACET_SIZE,
    Facets,
    Filters,
    IndexQuery,
    Near,
    SignalRequest,
    TextQuery,
    merge,
    normalize_key,
    top_buckets,
)
from domain.search_plan import NEAR_CANDIDATES, facet_query
from serve.api import ROUTE_AREAS, make_api
from tooling.plain_search import newest_generation

_AREA = {m.__name__.rsplit(".", 1)[1]: m for m in ROUTE_AREAS}
BEFORE_ORDER = tuple(_AREA[name] for name in (  # the routers' order before session 21
    "seller", "media", "sellers", "pricing", "catalog", "inventory", "search", "pages", "cart",
    "rankers", "experiments", "operations", "storefront"))
T = TypeVar("T")
WORDS = (
    "black", "white", "wireless", "usb", "cable", "case", "phone", "shoes", "women", "men",
    "kids", "water", "bottle", "led", "light", "kitchen", "knife", "dog", "toy", "cat", "bag",
    "leather", "boots", "lamp", "desk", "chair", "table", "cover", "charger", "stand", "holder",
    "set", "pack", "mini", "large", "small",
)


def per_call_us(fn: Callable[[], object], n: int) -> float:
    fn()
    started = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - started) * 1e6 / n


def sampled(shards: list[TantivyShard], queries: int,
            rnd: random.Random) -> Iterator[dict[str, Any]]:
    """Stored documents spread over the shards, queries // len(shards) from each shard's first
    5,000, drawn with `rnd` one shard at a time (lazily: a caller's own draws between two
    documents come in the same order as when each piece sampled for itself)."""
    for s in shards:
        searcher, _ = s._reader()
        hits = searcher.search(tantivy.Query.all_query(), limit=5_000).hits
        for _, addr in rnd.sample(hits, min(len(hits), queries // len(shards))):
            yield searcher.doc(addr).to_dict()


def now_and_before(constant: str, before: object,
                   run: Callable[[], tuple[float, T]]) -> tuple[tuple[float, T], tuple[float, T]]:
    """`run()` with tantivy_shard's `constant` as it is, then set to `before` (one untimed run
    first warms the searchers and clauses for both); the constant is put back."""
    now = getattr(tantivy_shard, constant)
    try:
        run()
        measured = run()
        setattr(tantivy_shard, constant, before)
        return measured, run()
    finally:
        setattr(tantivy_shard, constant, now)


def route_walk(n: int) -> list[str]:
    now, before = make_api(), make_api()
    position = {id(m.router): i for i, m in enumerate(BEFORE_ORDER)}
    before.router.routes.sort(key=lambda r: position.get(
        id(getattr(r, "original_router", None)), -1))  # FastAPI's own routes stay first
    out = []
    for label, api in (("now", now), ("before session 21", before)):
        scope = {"type": "http", "path": "/api/v1/products/search", "method": "GET",
                 "root_path": "", "query_string": b"", "headers": [], "app": api}
        tried = next(i for i, r in enumerate(api.router.routes, 1)
                     if r.matches(scope)[0] == Match.FULL)

        def walk(api: Any = api, scope: dict[str, Any] = scope) -> None:
            for r in api.router.routes:
                if r.matches(scope)[0] == Match.FULL:
                    return
        out.append(f"| route walk to the search, {label} (entry {tried}) | "
                   f"{per_call_us(walk, n):.1f} us |")
    return out


def facets(generation: Path, n: int) -> list[str]:
    shards = [TantivyShard(p, read_only=True) for p in sorted(generation.glob("shard-*"))]
    parts = []
    for words in ("shoes", "water bottle", "black", "women", "usb", "case", "light", "set"):
        found = []
        for s in shards:
            searcher, view = s._reader()
            q = s._query(IndexQuery(TextQuery(tuple((w,) for w in words.split())), Filters(),
                                    "relevance", 0, 20), searcher, view.clauses)
            found.append(s._facets(searcher, q))
        parts.append(found)

    def before() -> None:
        for found in parts:
            merged = Facets()
            for f in found:
                for mine, theirs in ((merged.brands, f.brands), (merged.categories,
                                                                  f.categories)):
                    for k, c in theirs.items():
                        mine[k] = mine.get(k, 0) + c
                for name, values in f.attributes.items():
                    mv = merged.attributes.setdefault(name, {})
                    for k, c in values.items():
                        mv[k] = mv.get(k, 0) + c
            for counts in (merged.brands, *merged.attributes.values()):
                sorted(counts.items(), key=lambda x: (-x[1], x[0]))[:FACET_SIZE]

    def now() -> None:
        for found in parts:
            merged = Facets()
            for f in found:
                merged.add(f)
            for counts in (merged.brands, *merged.attributes.values()):
                top_buckets(counts, FACET_SIZE)
    k = len(parts)
    return [f"| facets of two shards merged and shown, now | {per_call_us(now, n) / k:.1f} us |",
            f"| the same, every bucket added and sorted (before) | "
            f"{per_call_us(before, n) / k:.1f} us |"]


def relevance_pages(generation: Path, queries: int) -> list[str]:
    shards = [TantivyShard(p, read_only=True) for p in sorted(generation.glob("shard-*"))]
    rnd = random.Random(23)
    wanted: list[IndexQuery] = []
    for d in sampled(shards, queries, rnd):  # titles and categories over each shard
        words = [w for w in tokenize(d["title"][0]) if len(w) > 2]
        if not words:
            continue
        k = rnd.choice((1, 2, 3))
        text = TextQuery(tuple((w,) for w in words[:k]), require_all=False)
        wanted += [IndexQuery(text, Filters(), limit=20, facets=False, slim=True,
                              full_docs=20),
                   IndexQuery(text, Filters(), limit=200, facets=False, slim=True,
                              full_docs=20)]
        if d.get("category_ids"):
            related = TextQuery(tuple((w,) for w in dict.fromkeys(words[:12])),
                                require_all=False, fields="title")
            wanted.append(IndexQuery(related, Filters(
                category_ids=(int(d["category_ids"][0]),), in_stock=True), limit=32,
                facets=False))

    def run() -> tuple[float, list[list[tuple[int, float]]]]:
        started = time.process_time()
        out = [[(h.product_id, h.score) for s in shards for h in s.search(q).hits]
               for q in wanted]
        return (time.process_time() - started) * 1000 / len(wanted), out

    now_fetch = tantivy_shard.FIRST_FETCH
    (now_ms, now_hits), (before_ms, before_hits) = now_and_before("FIRST_FETCH", 1, run)
    same = sum(a == b for a, b in zip(now_hits, before_hits, strict=True))
    return [f"| a relevance search of {len(shards)} shards, first fetch {now_fetch}x the page "
            f"(now; {len(wanted)} searches) | {now_ms * 1000:.0f} us |",
            f"| the same, first fetch 1x (before; the same hits in {same} of {len(wanted)}) | "
            f"{before_ms * 1000:.0f} us |"]


def value_sets(generation: Path, queries: int) -> list[str]:
    """Searches that match "any of these values" (tantivy_shard._any_of): words with a
    brand filter, a category filter, a category boost, 20 semantic candidates joined, and 20
    documents fetched by id; each value a term query (now, up to TERMS_AS_CLAUSES) against
    tantivy's term set query for every set (before session 30), the same answers required."""
    shards = [TantivyShard(p, read_only=True) for p in sorted(generation.glob("shard-*"))]
    rnd = random.Random(37)
    picked = list(sampled(shards, queries, rnd))
    ids = [int(d["product_id"][0]) for d in picked]
    wanted: list[IndexQuery] = []
    for d in picked:
        words = [w for w in tokenize(d["title"][0]) if len(w) > 2][:rnd.choice((1, 2, 3))]
        if not words:
            continue
        text = TextQuery(tuple((w,) for w in words), require_all=False)
        cats = tuple(int(c) for c in d.get("category_ids") or ())[:2]
        if d.get("brand"):
            wanted.append(IndexQuery(text, Filters(brands=(normalize_key(d["brand"][0]),)),
                                     limit=20, facets=False))
        if cats:
            wanted.append(IndexQuery(text, Filters(category_ids=cats), limit=20, facets=False))
            wanted.append(IndexQuery(dataclasses.replace(text, boost_category_ids=cats),
                                     Filters(), limit=20, facets=False))
        wanted.append(IndexQuery(text, Filters(), limit=200, facets=False, slim=True, near=Near(
            bytes(tantivy_shard.DIMENSION), NEAR_CANDIDATES,
            tuple(rnd.sample(ids, NEAR_CANDIDATES)))))
    fetches = [rnd.sample(ids, 20) for _ in range(len(picked))]

    def run() -> tuple[float, list[object]]:
        started = time.process_time()
        out: list[object] = []
        for q in wanted:
            found = [s.search(q) for s in shards]
            out.append(([(h.product_id, h.score) for r in found for h in r.hits],
                        [r.total for r in found]))
        out += [sorted(k for s in shards for k in s.get(f)) for f in fetches]
        return (time.process_time() - started) * 1000 / (len(wanted) + len(fetches)), out

    (now_ms, now_out), (before_ms, before_out) = now_and_before("TERMS_AS_CLAUSES", 0, run)
    same = sum(a == b for a, b in zip(now_out, before_out, strict=True))
    if same != len(now_out):
        raise SystemExit(f"term queries answered {len(now_out) - same} of {len(now_out)} "
                         "searches or fetches differently from the term set query")
    return [f"| searches matching sets of values (brand, category filters, category boosts, "
            f"20 semantic candidates joined) and fetches of 20 ids, over {len(shards)} shards, "
            f"tantivy's term set query (before; {len(now_out)} calls) | "
            f"{before_ms * 1000:.0f} us |",
            f"| the same, a term query per value (now; the same answers in {same} of "
            f"{len(now_out)}) | {now_ms * 1000:.0f} us ({now_ms / before_ms:.2f}x) |"]


def offered_facets(generation: Path, queries: int) -> list[str]:
    """A cold search filtered by one brand: the index's work for the page's candidates and
    their facet counts (before session 26), against that plus the brand facet counted without
    the brand filter (now: domain.search_plan.facet_query, so the shop offers other brands)."""
    shards = [TantivyShard(p, read_only=True) for p in sorted(generation.glob("shard-*"))]
    rnd = random.Random(29)
    pairs: list[tuple[IndexQuery, IndexQuery]] = []
    for d in sampled(shards, queries, rnd):
        words = [w for w in tokenize(d["title"][0]) if len(w) > 2][:2]
        brand = normalize_key(d["brand"][0]) if d.get("brand") else None
        if not words or not brand:
            continue
        filters = Filters(brands=(brand,))
        main = IndexQuery(TextQuery(tuple((w,) for w in words), require_all=False),
                          filters, limit=200, facets=True, slim=True, full_docs=20)
        pairs.append((main, facet_query(main, filters, ("brands", ""))))

    def run(both: bool) -> float:
        started = time.process_time()
        for main, extra in pairs:
            for shard in shards:
                shard.search(main)
                if both:
                    shard.search(extra)
        return (time.process_time() - started) * 1000 / len(pairs)

    run(True)  # searchers and clauses warmed once for both
    before, now = run(False), run(True)
    return [f"| a brand-filtered search of {len(shards)} shards with facets (before; "
            f"{len(pairs)} searches) | {before * 1000:.0f} us |",
            f"| the same and the brand facet without the brand filter (now) | "
            f"{now * 1000:.0f} us ({now / before:.2f}x) |"]


def semantic_candidates(generation: Path, queries: int) -> list[str]:
    """A learned ranker's cold search (200 candidates with their ranking signals, facets):
    the index's work without semantic candidates (before session 27) against with them (now:
    Near's first step on every shard, then the search with the chosen ones joined); and the
    same search without the ranking signals (a formula's), for what making them costs. The
    query vectors are made before timing (the search makes one either way); the signals the
    shards keep are forgotten before each timed run (before session 31 they were kept from
    the warm-up run, so the signals were read, not made)."""
    from adapters.text_embedding import TextEmbedder, to_bytes

    shards = [TantivyShard(p, read_only=True) for p in sorted(generation.glob("shard-*"))]
    rnd = random.Random(31)
    texts: list[TextQuery] = []
    for d in sampled(shards, queries, rnd):
        words = [w for w in tokenize(d["title"][0]) if len(w) > 2][:rnd.choice((1, 2, 3))]
        if words:
            texts.append(TextQuery(tuple((w,) for w in words), require_all=False))
    vectors = TextEmbedder().embed([" ".join(g[0] for g in t.groups) for t in texts])
    asked = [(IndexQuery(t, Filters(), limit=200, facets=True, slim=True, full_docs=20,
                         signals=SignalRequest(vector=to_bytes(v))), to_bytes(v))
             for t, v in zip(texts, vectors, strict=True)]

    def run(near: bool, signals: bool = True) -> tuple[float, int]:
        for s in shards:  # cold: no signals kept
            s._reader()[1].signals.clear()
        joined = 0
        started = time.process_time()
        for main, vector in asked:
            if not signals:
                main = dataclasses.replace(main, signals=None)
            if near:
                first = IndexQuery(main.text, Filters(), limit=0, facets=False,
                                   near=Near(vector, NEAR_CANDIDATES))
                chosen = merge([s.search(first) for s in shards], first).near
                main = dataclasses.replace(main, near=Near(
                    vector, NEAR_CANDIDATES, tuple(h.product_id for h in chosen)))
            joined += sum(s.search(main).near_only for s in shards)
        return (time.process_time() - started) * 1000 / len(asked), joined

    run(True)  # searchers, clauses and every document's vector kept once for both
    (before, _), (now, joined), (plain, _) = run(False), run(True), run(False, signals=False)
    rows = [f"| a search of {len(shards)} shards: 200 candidates, facets, no ranking signals "
            f"(a formula's; {len(asked)} searches) | {plain * 1000:.0f} us |",
            f"| a learned ranker's: the same with the candidates' ranking signals made "
            f"(before session 27) | {before * 1000:.0f} us (+{(before - plain) * 1000:.0f} us) |",
            f"| the same with {NEAR_CANDIDATES} semantic candidates joined (now; "
            f"{joined / len(asked):.1f} per search hold none of the words) | "
            f"{now * 1000:.0f} us ({now / before:.2f}x) |"]
    # Near's first step alone with a URL filter (the catalog's median price as price_max, or
    # a brand of the query's own matches): each filter's matches read at every search (before
    # session 28) against kept per searcher (now: a filter seen before is not read again)
    prices = sorted(float(h.doc.get("price") or 0) for s in shards
                    for h in s.search(IndexQuery(limit=2_000, facets=False, slim=True)).hits)
    median = prices[len(prices) // 2] if prices else 50.0
    firsts = []
    for main, vector in asked:
        one = dataclasses.replace(main, limit=1, signals=None, facets=False)
        top = merge([s.search(one) for s in shards], one).hits
        brand = normalize_key(str(top[0].doc.get("brand") or "")) if top else ""
        for f in (Filters(price_max=median), Filters(brands=(brand,)) if brand else None):
            if f is not None:
                firsts.append(IndexQuery(main.text, f, limit=0, facets=False,
                                         near=Near(vector, NEAR_CANDIDATES)))

    def forget_filters() -> None:  # the filters' matches as if never read
        for s in shards:
            vectors = s._reader()[1].vectors
            if vectors is not None:
                vectors.passing.clear()

    def first_steps(kept: bool) -> tuple[float, list[list[int]]]:
        chosen = []
        spent = 0.0
        for q in firsts:
            if not kept:  # outside the timing
                forget_filters()
            started = time.process_time()
            chosen.append([h.product_id for h in merge([s.search(q) for s in shards], q).near])
            spent += time.process_time() - started
        return spent * 1000 / len(firsts), chosen

    forget_filters()  # a fresh start for the kept ones
    (kept, a), (each, b) = first_steps(True), first_steps(False)
    if a != b:
        raise SystemExit("kept filter matches chose other products than fresh reads")
    distinct = len({q.filters for q in firsts})
    return [
        *rows,
        f"| Near's first step with a URL filter (price_max = median, or the top match's "
        f"brand), its matches read at every search (before; {len(firsts)} searches) | "
        f"{each * 1000:.0f} us |",
        f"| the same, each filter's matches kept per searcher (now; {distinct} distinct "
        f"filters, the same products chosen) | {kept * 1000:.0f} us ({kept / each:.2f}x) |"]


async def one_mget(url: str, n: int) -> list[str]:
    r = aioredis.from_url(url)
    keys = [f"aisle:bench-hot-path:{i}" for i in range(40)]
    try:
        await r.mset({k: b'{"status":"IN_STOCK","quantity_hint":"50+","available":70}'
                      for k in keys})
        for _ in range(100):
            await r.mget(keys)
        started = time.process_time()
        for _ in range(n):
            await r.mget(keys)
        us = (time.process_time() - started) * 1e6 / n
    finally:
        await r.delete(*keys)
        await r.aclose()
    return [f"| one Redis MGET of 40 snapshots (the caller's CPU) | {us:.1f} us |"]


def embedding(n: int) -> list[str]:
    import numpy as np

    from adapters.text_embedding import TextEmbedder
    e = TextEmbedder()
    e.embed(["warm up"])
    qs = ["wireless headphones", "black leather boots women", "usb c cable 6ft",
          "kitchen knife set", "dog chew toy large", "led desk lamp"]
    i = iter(range(10**9))
    tok = e._tokenizer
    enc = tok.encode_batch([qs[0]])
    ids = np.array([x.ids for x in enc], dtype=np.int64)
    feed = {"input_ids": ids, "attention_mask": np.array([x.attention_mask for x in enc],
                                                         dtype=np.int64),
            "token_type_ids": np.zeros_like(ids)}
    return [f"| query embedding, whole (short queries) | "
            f"{per_call_us(lambda: e.embed([qs[next(i) % len(qs)]]), n):.0f} us |",
            f"| its tokenizing | "
            f"{per_call_us(lambda: tok.encode_batch([qs[next(i) % len(qs)]]), n):.0f} us |",
            f"| its model run, {ids.shape[1]} tokens | "
            f"{per_call_us(lambda: e._session.run(None, feed), n):.0f} us |"]


async def commands_per_search(url: str, redis_url: str, searches: int) -> list[str]:
    r = redis.Redis.from_url(redis_url)

    def calls() -> dict[str, int]:
        return {k.removeprefix("cmdstat_"): v["calls"]
                for k, v in r.info("commandstats").items()}
    rnd = random.Random(5)
    qs = list(dict.fromkeys(" ".join(rnd.sample(WORDS, rnd.choice([1, 2, 3])))
                            for _ in range(searches * 5)))[:searches]
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        before = calls()
        todo = list(qs)

        async def worker() -> None:
            while todo:
                got = await client.get("/api/v1/products/search", params={"q": todo.pop()})
                got.raise_for_status()
        await asyncio.gather(*(worker() for _ in range(8)))
        after = calls()
    r.close()
    d = {k: (after[k] - before.get(k, 0)) / len(qs) for k in after if k != "info"}
    return [f"| Redis {k.upper()} per search ({len(qs)} searches) | {v:.2f} |"
            for k, v in sorted(d.items(), key=lambda x: -x[1]) if v > 0]


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/bench_hot_path", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", type=Path, default=None,
                   help="an index generation, or a data dir holding one (facets)")
    p.add_argument("--redis-url", default=None, help="a Redis to time MGET against")
    p.add_argument("--url", default=None, help="a running demo (Redis commands per search)")
    p.add_argument("--searches", type=int, default=600)
    p.add_argument("--queries", type=int, default=200,
                   help="documents whose titles make the relevance searches (--index)")
    p.add_argument("--repeat", type=int, default=2000)
    a = p.parse_args()
    rows = route_walk(a.repeat)
    if a.index is not None:
        generation = newest_generation(a.index)
        if generation is None:
            raise SystemExit(f"no index generation under {a.index}")
        rows += facets(generation, max(1, a.repeat // 10))
        rows += relevance_pages(generation, a.queries)
        rows += offered_facets(generation, a.queries)
        rows += semantic_candidates(generation, a.queries)
        rows += value_sets(generation, a.queries)
    if a.redis_url:
        rows += asyncio.run(one_mget(a.redis_url, a.repeat))
    rows += embedding(max(1, a.repeat // 10))
    if a.url and a.redis_url:
        rows += asyncio.run(commands_per_search(a.url, a.redis_url, a.searches))
    print("| piece | CPU per call (process time) |\n|---|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
