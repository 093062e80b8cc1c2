"""The one percentile definition every bench_* script reports with (nearest rank)."""

import math

from tooling.load import percentile


def test_nearest_rank() -> None:
    xs = [float(x) for x in range(100, 0, -1)]  # unsorted on purpose
    assert (percentile(xs, 50), percentile(xs, 99), percentile(xs, 100)) == (50.0, 99.0, 100.0)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))
