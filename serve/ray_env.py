"""Ray Serve settings aisle starts Ray with: set by scripts/demo before Ray starts (an
operator's own values win), by cluster.yaml's `ray start` commands, and (ONE_LOOP, which
changes where code runs) by the test session's cluster.

QUIET: Serve's controller runs its control loop every 0.1 s, and every replica and handle
exports its cached metrics every 0.1 s, busy or not. Measured idle (scripts/bench_idle, esci,
2 cores, docs/benchmarks.md session 18): the demo 12.3 % of one core with Serve's defaults,
9.0 % with these (the controller 2.55 -> 0.87 %, the two Gateways 1.55 -> 1.23, the Ranker
0.57 -> 0.40); Serve with one no-op deployment 7.8 -> 5.1 % (in one run). What they cost: the
controller notices a dead replica, applies a new deployment version (a ranker's
`user_config`) and takes autoscaling decisions up to 0.4 s later (Serve counts autoscaling
delays in loop periods, so their length in seconds holds); Serve's own request metrics reach
Ray's metrics agent once a second instead of ten times (Prometheus scrapes every 15 s).
aisle's metrics are its own.

ONE_LOOP: by default a Serve replica runs its user code on an event loop in a thread of its
own and routes its handles' calls (the Gateway's to the Ranker) on a third loop, so every
request and every call hops between threads, each hop waiting for the GIL and a turn of a
busy loop. With both off, a replica's requests, its user code and its handle calls share the
replica's main loop (the two flags `RAY_SERVE_THROUGHPUT_OPTIMIZED` sets, without its other
changes: logs, garbage collection). Measured in A/B pairs on the demo (docs/benchmarks.md
session 22): a Gateway's CPU per search -6 to -14 % and searches/s +10 to +19 %. What it
costs: the slowest requests wait behind more work (product pages at 1M products, 8
connections: p99 +13-14 ms; the search's p99 did not rise), and user code that blocks the
loop blocks the replica's own work too (health checks, metrics pushes); aisle's handlers
hand blocking work to threads, except reads of small shards, milliseconds each
(adapters/search/local_reads.py).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

QUIET: Mapping[str, str] = {
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",  # Serve's default 0.1
    "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",  # Serve's default 100
}
ONE_LOOP: Mapping[str, str] = {
    "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0",  # Serve's default 1
    "RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP": "0",  # Serve's default 1
}
SERVE_ENV: Mapping[str, str] = {**QUIET, **ONE_LOOP}


def serve_env(environ: MutableMapping[str, str],
              settings: Mapping[str, str] = SERVE_ENV) -> None:
    """`settings`' values where `environ` sets none (before Ray starts: its processes
    inherit them)."""
    for name, value in settings.items():
        environ.setdefault(name, value)
