"""aisle's metrics, through Ray's own (`ray.util.metrics`): every process records its series and
Ray exports them on each node's Prometheus endpoint (`ray.nodes()[i]["MetricsExportPort"]`,
`/metrics`), with the prefix `ray_`. The seed's monitoring table, and what operators need
beside it:

| series (without `ray_`) | kind | tags | the seed's row |
|---|---|---|---|
| `aisle_http_requests_total` | counter | route, method, status (2xx..5xx) | error rate (5xx) |
| `aisle_http_request_ms` | histogram | route | search / PDP p99 latency |
| `aisle_searches_total` | counter | results (`zero`, `some`) | zero-result rate |
| `aisle_search_stage_ms` | histogram | stage (index, rerank, prices...) | |
| `aisle_cache_lookups_total` | counter | cache, result (`hit`, `miss`) | cache hit ratio |
| `aisle_index_lag_seconds` | gauge | | index lag (age of the oldest unindexed event) |
| `aisle_index_lag_events` | gauge | | |
| `aisle_index_documents_total` | counter | | builder throughput |
| `aisle_inventory_ops_total` | counter | op, outcome | inventory operations |
| `aisle_inventory_accuracy` | gauge | partition | inventory accuracy (memory vs ledger) |
| `aisle_rate_limited_total` | counter | scope | |
| `aisle_breaker_open` | gauge | dependency | breaker states |

Search stages: index, embed, features, rerank (the chosen ranker's order: through the Ranker
deployment for learned models), documents, prices, stock, facets: where search latency goes.
Routes are the route templates (`/api/v1/products/{product_id}`), never raw paths, so the
series stay few. A metric object is made once per process, on first use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TypeVar

from ray.util.metrics import Counter, Gauge, Histogram

SERIES = ("aisle_http_requests_total", "aisle_http_request_ms", "aisle_searches_total",
          "aisle_search_stage_ms",
          "aisle_cache_lookups_total", "aisle_index_lag_seconds", "aisle_index_lag_events",
          "aisle_index_documents_total", "aisle_inventory_ops_total",
          "aisle_rate_limited_total", "aisle_breaker_open", "aisle_inventory_accuracy")
LATENCY_MS: list[float] = [5, 10, 25, 50, 100, 200, 300, 500, 1000, 2000, 5000]
_made: dict[str, Counter | Gauge | Histogram] = {}
M = TypeVar("M", Counter, Gauge, Histogram)


def _once(name: str, kind: type[M], make: Callable[[], M]) -> M:
    """The process's metric `name`, made by `make` on first use."""
    found = _made.get(name)
    if not isinstance(found, kind):
        found = _made[name] = make()
    return found


def _counter(name: str, description: str, tags: Sequence[str] = ()) -> Counter:
    return _once(name, Counter, lambda: Counter(name, description=description,
                                                tag_keys=tuple(tags)))


def _gauge(name: str, description: str, tags: Sequence[str] = ()) -> Gauge:
    return _once(name, Gauge, lambda: Gauge(name, description=description,
                                            tag_keys=tuple(tags)))


def _histogram(name: str, description: str, boundaries: list[float],
               tags: Sequence[str] = ()) -> Histogram:
    return _once(name, Histogram, lambda: Histogram(
        name, description=description, boundaries=boundaries, tag_keys=tuple(tags)))


def http_request(route: str, method: str, status: int, ms: float) -> None:
    tags = {"route": route, "method": method, "status": f"{status // 100}xx"}
    _counter("aisle_http_requests_total", "HTTP requests answered by the Gateway",
             ("route", "method", "status")).inc(1.0, tags=tags)
    _histogram("aisle_http_request_ms", "Gateway time per HTTP request (ms)", LATENCY_MS,
               ("route",)).observe(ms, tags={"route": route})


STAGE_MS: list[float] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000]


def search_answered(total: int, stages_ms: Mapping[str, float] = {}) -> None:
    _counter("aisle_searches_total", "searches answered, by whether any product matched",
             ("results",)).inc(1.0, tags={"results": "zero" if total == 0 else "some"})
    h = _histogram("aisle_search_stage_ms", "wall time of each stage of a search (ms)",
                   STAGE_MS, ("stage",))
    for stage, ms in stages_ms.items():
        h.observe(ms, tags={"stage": stage})


def cache_lookups(cache: str, hits: int, misses: int) -> None:
    c = _counter("aisle_cache_lookups_total", "cache lookups by cache and result",
                 ("cache", "result"))
    if hits:
        c.inc(float(hits), tags={"cache": cache, "result": "hit"})
    if misses:
        c.inc(float(misses), tags={"cache": cache, "result": "miss"})


def rate_limited(scope: str, n: int) -> None:
    if n:
        _counter("aisle_rate_limited_total", "requests refused by a rate limit (429)",
                 ("scope",)).inc(float(n), tags={"scope": scope})


def breakers(open_: Mapping[str, bool]) -> None:
    g = _gauge("aisle_breaker_open", "1 while the breaker in front of a dependency is open",
               ("dependency",))
    for dependency, is_open in open_.items():
        g.set(1.0 if is_open else 0.0, tags={"dependency": dependency})


def index_lag(events: int, oldest_s: float) -> None:
    _gauge("aisle_index_lag_events", "outbox events not yet in the search index").set(
        float(events))
    _gauge("aisle_index_lag_seconds", "age of the oldest outbox event not yet indexed (s)").set(
        float(oldest_s))


def documents_indexed(n: int) -> None:
    if n:
        _counter("aisle_index_documents_total",
                 "search documents written by the index builder").inc(float(n))


def inventory_ops(counts: Mapping[tuple[str, str], int]) -> None:
    c = _counter("aisle_inventory_ops_total", "inventory operations decided, by outcome",
                 ("op", "outcome"))
    for (op, outcome), n in counts.items():
        if n:
            c.inc(float(n), tags={"op": op, "outcome": outcome})


def inventory_accuracy(partition: int, ratio: float) -> None:
    _gauge("aisle_inventory_accuracy", "share of a partition's sampled variants whose stock "
           "in memory equals their PostgreSQL rows", ("partition",)).set(
        ratio, tags={"partition": str(partition)})
