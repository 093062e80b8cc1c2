"""scripts/bench_ranker [--concurrency 16] [--seconds 10] [--candidates 200] [--dsn URL]

Re-ranking latency through the Ranker deployment (serve/ranker.py: `@serve.batch`, models
loaded from the registry), at --concurrency searches in flight, each asking for the order of
--candidates rows:

  learned   a LightGBM LambdaMART model over the learned features (ranking/learned_features,
            trained here on synthetic judgments with the production parameters and rounds of
            ranking/lgbm.py), registered in PostgreSQL and loaded by the replica as in service
  formula   the seed's weighted formula through the same deployment (the cheapest ranker:
            what the deployment itself costs)
  in-proc   the same learned model scored in this process, one call at a time (the floor)

Prints calls/s, p50 and p99 per path, and the learned path's p99 against issue 14's 20 ms;
for the deployment's paths also the handler's part of each call (`RankReply`: from reaching
the Ranker's handler to its batch being scored, and the batch's scoring): the rest of a
call's time is the handle's transport, Serve's handling in the replica before the handler,
and the caller's event loop.
A fresh Ray cluster and Serve app (one Ranker replica, as the demo runs); PostgreSQL: an
embedded server in a temporary directory unless --dsn names one (a scratch database is made
there and dropped).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import ray
from ray import serve
from ray.serve.handle import DeploymentHandle

from adapters.embedded import EmbeddedPostgres
from adapters.postgres import connect, create_pool
from adapters.postgres.migrate import migrate
from adapters.postgres.ranker_registry import RankerRegistry
from adapters.postgres.scratch import temp_database
from ranking import FEATURES
from ranking.learned_features import LEARNED_FEATURES, LEARNED_FEATURES_VERSION
from ranking.lgbm import GAIN_LEVELS, LgbmRanker, TrainingSet, train
from serve.ranker import RankerDeployment, RankReply
from serve.ray_env import serve_env
from tooling.load import percentile


def synthetic_model(seed: int = 7) -> LgbmRanker:
    """A model of production's size: 300 queries x 60 candidates whose gain depends on a few
    features (so the trees split on many of them, as a real model's do)."""
    rnd = np.random.default_rng(seed)
    n_q, per = 300, 60
    x = rnd.random((n_q * per, len(LEARNED_FEATURES)))
    signal = x[:, 3] * 2 + x[:, 6] + x[:, 13] * 1.5 - x[:, 16] + rnd.normal(0, 0.3, len(x))
    cuts = np.quantile(signal, [0.5, 0.75, 0.9])
    gains = [GAIN_LEVELS[min(int(np.searchsorted(cuts, s)), len(GAIN_LEVELS) - 1)]
             for s in signal]
    rows = [{"query": f"q{i // per}", "external_id": f"e{i}", "rank": i % per, "gain": g,
             **dict(zip(LEARNED_FEATURES, x[i].tolist(), strict=True))}
            for i, g in enumerate(gains)]
    table = pa.Table.from_pylist(rows).replace_schema_metadata(
        {"feature_version": LEARNED_FEATURES_VERSION})
    return train(TrainingSet.from_table(table))


async def closed(call: Callable[[], Awaitable[object]], concurrency: int,
                 seconds: float) -> tuple[int, list[float], list[float]]:
    """Calls answered, their latencies (ms), and the replica's part of each (ms, for the
    calls answered with a `RankReply`)."""
    latencies: list[float] = []
    inside: list[float] = []
    stop = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < stop:
            t = time.perf_counter()
            reply = await call()
            latencies.append((time.perf_counter() - t) * 1000)
            if isinstance(reply, RankReply):
                inside.append(reply.queued_ms + reply.scored_ms)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies), latencies, inside


async def run(dsn: str, a: argparse.Namespace) -> None:
    conn = await connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    model = synthetic_model()
    pool = await create_pool(dsn, max_size=2)
    record = await RankerRegistry(pool).add(
        "lightgbm", LEARNED_FEATURES_VERSION, LEARNED_FEATURES, model.to_bytes(), {},
        "bench_ranker", "synthetic, production-sized")
    await pool.close()
    app = (RankerDeployment.options(user_config={"batch_wait_timeout_s": a.batch_wait})
           if a.batch_wait is not None else RankerDeployment).bind(dsn)
    handle = serve.run(app, name="bench_ranker", route_prefix=None)
    rnd = random.Random(1)
    learned = [np.random.default_rng(i).random((a.candidates, len(LEARNED_FEATURES)))
               for i in range(64)]
    formula = [np.random.default_rng(i).random((a.candidates, len(FEATURES)))
               for i in range(64)]
    first: RankReply = await handle.rank.remote(record.version, learned[0])
    assert first.order is not None and sorted(first.order) == list(range(a.candidates)), first

    def through(h: DeploymentHandle, name: str,
                inputs: list[np.ndarray]) -> Callable[[], Awaitable[object]]:
        async def call() -> object:
            return await h.rank.remote(name, rnd.choice(inputs))
        return call

    async def in_process() -> object:
        return model.score(rnd.choice(learned))

    paths: list[tuple[str, Callable[[], Awaitable[object]], int]] = []
    for transport in a.transports.split(","):
        if transport not in ("actor", "grpc"):
            raise SystemExit(f"--transports: actor or grpc, not {transport!r}")
        h = handle if transport == "actor" else handle.options(_by_reference=False)
        suffix = "" if transport == "actor" else f" ({transport})"
        paths += [(f"learned{suffix}", through(h, record.version, learned), a.concurrency),
                  (f"formula{suffix}", through(h, "default", formula), a.concurrency)]
    rows = []
    for label, call, concurrency in (*paths, ("in-proc", in_process, 1)):
        await closed(call, concurrency, min(3.0, a.seconds))  # warm-up
        n, lat, inside = await closed(call, concurrency, a.seconds)
        rows.append((label, concurrency, n / a.seconds, percentile(lat, 50),
                     percentile(lat, 99),
                     f"{percentile(inside, 50):.2f} / {percentile(inside, 99):.2f}"
                     if inside else ""))
    wait = a.batch_wait if a.batch_wait is not None else "default"
    print(f"\nRanker deployment (batch wait {wait}"
          f" s), {a.candidates} candidates x {len(LEARNED_FEATURES)} features, "
          f"{a.seconds:g} s per path, model {record.version} "
          f"({len(model.to_bytes()) // 1024} KB artifact)")
    print("| path | in flight | calls/s | p50 ms | p99 ms | in the handler: p50 / p99 ms |\n"
          "|---|---:|---:|---:|---:|---:|")
    for label, concurrency, rate, p50, p99, inside in rows:
        print(f"| {label} | {concurrency} | {rate:.0f} | {p50:.2f} | {p99:.2f} | {inside} |")
    p99 = rows[0][4]
    print(f"\nlearned p99 {p99:.2f} ms at {a.concurrency} in flight: "
          f"{'under' if p99 < 20 else 'OVER'} issue 14's 20 ms; "
          f"{p99 / rows[1][4]:.2f}x the formula's through the same deployment")


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/bench_ranker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--concurrency", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--candidates", type=int, default=200)
    p.add_argument("--transports", default="actor", help="comma list: actor, grpc")
    p.add_argument("--batch-wait", type=float, default=None,
                   help="the replica's batch_wait_timeout_s (default: the deployment's)")
    p.add_argument("--dsn", default=None, help="a PostgreSQL server (a scratch database is "
                                               "made in it and dropped)")
    a = p.parse_args()
    serve_env(os.environ)  # the Serve settings the demo runs with (before Ray starts)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory(prefix="bench-ranker-") as tmp:
        embedded = None if a.dsn else EmbeddedPostgres(Path(tmp) / "pg")
        server = a.dsn or (embedded.url if embedded else "")

        async def go() -> None:
            async with temp_database(server) as dsn:
                await run(dsn, a)

        try:
            asyncio.run(go())
        finally:
            serve.shutdown()
            ray.shutdown()
            if embedded is not None:
                embedded.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
