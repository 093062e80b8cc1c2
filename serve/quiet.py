"""Ray Serve settings that make an idle service cheaper, set by scripts/demo before Ray starts
(an operator's own values win) and by cluster.yaml's `ray start` commands.

Serve's controller runs its control loop every 0.1 s, and every replica and handle exports
its cached metrics every 0.1 s, busy or not. Measured idle (scripts/bench_idle, esci, 2 cores,
docs/benchmarks.md session 18): the demo 12.3 % of one core with Serve's defaults, 9.0 % with
these (the controller 2.55 -> 0.87 %, the two Gateways 1.55 -> 1.23, the Ranker 0.57 ->
0.40); Serve with one no-op deployment 7.8 -> 5.1 % (in one run). What they cost: the
controller notices a dead replica, applies a new deployment version (a ranker's
`user_config`) and takes autoscaling decisions up to 0.4 s later (Serve counts autoscaling
delays in loop periods, so their length in seconds holds); Serve's own request metrics reach
Ray's metrics agent once a second instead of ten times (Prometheus scrapes every 15 s).
aisle's metrics are its own.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

QUIET: Mapping[str, str] = {
    "RAY_SERVE_CONTROL_LOOP_INTERVAL_S": "0.5",  # Serve's default 0.1
    "RAY_SERVE_METRICS_EXPORT_INTERVAL_MS": "1000",  # Serve's default 100
}


def quiet(environ: MutableMapping[str, str]) -> None:
    """QUIET's values where `environ` sets none (before Ray starts: its processes inherit)."""
    for name, value in QUIET.items():
        environ.setdefault(name, value)
