"""Star distributions (1..5) that sum to a review count and average to a given rating.

The shape is the usual marketplace "J": a maximum-entropy spread with the requested mean,
plus a small bump of 1-star reviews. Counts are apportioned by largest remainder, then single
reviews are moved between neighbouring stars until the star total is round(avg * count), the
closest integer total to the requested average.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from adapters.loading.frames import REVIEWS, table

_STARS = np.arange(1, 6, dtype=np.float64)
_ONE_STAR_BUMP = 0.05


def _maxent(mean: np.ndarray) -> np.ndarray:
    """(n, 5) probabilities p_k ∝ exp(b·k) with Σ k·p_k = mean, b found by bisection."""
    lo = np.full(mean.shape, -40.0)
    hi = np.full(mean.shape, 40.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        w = np.exp(mid[:, None] * (_STARS - 3.0))
        m = (w * _STARS).sum(1) / w.sum(1)
        below = m < mean
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    w = np.exp(((lo + hi) / 2)[:, None] * (_STARS - 3.0))
    return w / w.sum(1, keepdims=True)


def _exact_shape(avg: np.ndarray) -> np.ndarray:
    bump = np.minimum(_ONE_STAR_BUMP, (5.0 - avg) / 8.0)
    core = _maxent((avg - bump) / (1.0 - bump))
    core *= (1.0 - bump)[:, None]
    core[:, 0] += bump
    return core


_GRID = np.linspace(1.0, 5.0, 801)
_GRID_SHAPES = _exact_shape(_GRID)


def _shape(avg: np.ndarray) -> np.ndarray:
    """The exact shape interpolated from a grid; the mean of a blend is the blend of means."""
    return np.stack([np.interp(avg, _GRID, _GRID_SHAPES[:, k]) for k in range(5)], axis=1)


def _apportion(p: np.ndarray, count: np.ndarray) -> np.ndarray:
    exact = p * count[:, None]
    dist = np.floor(exact).astype(np.int64)
    left = count - dist.sum(1)
    order = np.argsort(-(exact - dist), axis=1, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(5)[None, :].repeat(len(p), 0), axis=1)
    return dist + (rank < left[:, None])


def _shift(dist: np.ndarray, need: np.ndarray) -> np.ndarray:
    """Move reviews one star up (need > 0) or down (need < 0) until Σ k·n_k hits the target."""
    for _ in range(4):
        for k in (3, 2, 1, 0):  # k -> k+1 adds one star per review moved
            m = np.minimum(np.maximum(need, 0), dist[:, k])
            dist[:, k] -= m
            dist[:, k + 1] += m
            need = need - m
        for k in (4, 3, 2, 1):  # k -> k-1 removes one
            m = np.minimum(np.maximum(-need, 0), dist[:, k])
            dist[:, k] -= m
            dist[:, k - 1] += m
            need = need + m
    return dist


def star_distribution(avg: np.ndarray, count: np.ndarray) -> np.ndarray:
    """(n, 5) int64 counts of 1..5-star reviews; rows sum to `count` exactly."""
    count = np.asarray(count, dtype=np.int64)
    avg = np.clip(np.nan_to_num(np.asarray(avg, dtype=np.float64), nan=3.0), 1.0, 5.0)
    if len(count) == 0:
        return np.zeros((0, 5), dtype=np.int64)
    dist = _apportion(_shape(avg), count)
    target = np.rint(avg * count).astype(np.int64)
    return _shift(dist, target - dist @ np.arange(1, 6))


def reviews_table(product_ids: np.ndarray, avg: np.ndarray, count: np.ndarray,
                  *, avg_from_dist: bool = False) -> pa.Table:
    """reviews_summary rows; zero counts get avg 0. `avg_from_dist`: store the spread's mean."""
    count = np.asarray(count, dtype=np.int64)
    dist = star_distribution(avg, count)
    if avg_from_dist:
        avg = (dist @ np.arange(1, 6)) / np.maximum(count, 1)
    stored = np.where(count > 0, np.round(np.clip(avg, 1.0, 5.0), 2), 0.0)
    return table(REVIEWS, product_id=product_ids, avg_rating=stored, review_count=count,
                 **{f"dist_{k + 1}": dist[:, k] for k in range(5)})
