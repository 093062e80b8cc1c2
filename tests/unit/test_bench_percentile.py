"""The one percentile definition every bench_* script reports with (nearest rank)."""

import math

from tooling.load import percentile


def test_nearest_rank() -> None:
    xs = [float(x) for x in range(100, 0, -1)]  # unsorted on purpose
    assert (percentile(xs, 50), percentile(xs, 99), percentile(xs, 100)) == (50.0, 99.0, 100.0)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_halves_of_a_load_combine_into_one() -> None:
    """bench_search runs each ranker's load in two halves (A B B A): one result of both."""
    from tooling.load import combined

    def part(lat: list[float], seconds: float, cpu: float, tag: str) -> dict[str, object]:
        return {"latencies": lat, "seconds": seconds, "errors": 1, "tags": {tag: len(lat)},
                "cpu": {"gateway": cpu}, "stages": {"index": [x * 1000 for x in lat]}}

    one = combined(part([0.01] * 90, 3.0, 1.0, "a"), part([0.1] * 10, 7.0, 2.0, "b"))
    # pooled: 100 requests in 10 s (not the mean of 30/s and 1.4/s), percentiles over all
    assert (one["n"], one["rps"], one["errors"]) == (100, 10.0, 2)
    assert (one["p50"], one["p99"]) == (10.0, 100.0)
    assert one["cpu"] == {"gateway": 3.0} and one["tags"] == {"a": 90, "b": 10}
    assert len(one["stages"]["index"]) == 100


def test_a_load_by_tag_names_what_makes_its_tail() -> None:
    """bench_pdp: the requests of each X-Cache kind with their percentiles and stages, kept
    when halves combine."""
    from tooling.load import combined, tag_rows

    def part(fast: int, slow: int) -> dict[str, object]:
        return {"latencies": [0.001] * fast + [0.05] * slow, "seconds": 1.0, "errors": 0,
                "tags": {"hit": fast, "miss": slow}, "cpu": {}, "stages": {},
                "tag_latencies": {"hit": [0.001] * fast, "miss": [0.05] * slow},
                "tag_stages": {"miss": {"page_db": [20.0] * slow}}}

    one = combined(part(95, 3), part(0, 2))
    assert one["p99"] == 50.0 and len(one["tag_latencies"]["miss"]) == 5
    rows = tag_rows(one, "X-Cache")
    assert rows[2] == "| hit | 95 (95.0%) | 1.0 / 1.0 |  |"
    assert rows[3] == "| miss | 5 (5.0%) | 50.0 / 50.0 | page_db 100%, 20.0 / 20.0 |"
