"""Offline relevance metrics.

DCG uses linear gains: DCG@k = sum over ranks i = 0..k-1 of gain_i / log2(i + 2), not the
exponential 2^gain - 1 form. Our gains are already on a 0..1 scale chosen per dataset (icecat
rating / 3; esci Exact 1, Substitute 0.1, Complement 0.01), so they are used as they are.
nDCG@k divides by the DCG@k of the ideal order of all judged gains of the query; an unjudged
result has gain 0; a query with no positive judged gain scores 0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np


def _gains(gains: Sequence[float], what: str) -> np.ndarray:
    g = np.asarray(gains, dtype=np.float64).reshape(-1)
    if g.size and (not np.all(np.isfinite(g)) or float(g.min()) < 0):
        raise ValueError(f"{what} must be finite and >= 0")
    return g


def _check_k(k: int) -> None:
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")


def dcg_at_k(gains: Sequence[float], k: int = 10) -> float:
    """Linear-gain DCG of the first `k` gains, in rank order."""
    _check_k(k)
    g = _gains(gains, "gains")[:k]
    discounts = np.log2(np.arange(g.size, dtype=np.float64) + 2.0)
    return float(np.sum(g / discounts))


def ndcg_at_k(ranked_gains: Sequence[float], all_gains: Sequence[float], k: int = 10) -> float:
    """DCG@k of `ranked_gains` (the results, best first; 0 for unjudged ones) over the DCG@k of
    `all_gains` (every judged gain of the query) sorted best first; 0 when that ideal is 0."""
    _check_k(k)
    ideal = dcg_at_k(np.sort(_gains(all_gains, "all_gains"))[::-1].tolist(), k)
    if ideal <= 0 or not math.isfinite(ideal):
        return 0.0
    return dcg_at_k(ranked_gains, k) / ideal


def ndcg_of_ids(ranked_ids: Sequence[str], judged: Mapping[str, float], k: int = 10) -> float:
    """nDCG@k of a result list given as document ids; ids missing from `judged` have gain 0,
    and so does a repeat of an id already listed (a duplicate cannot earn its gain twice)."""
    seen: set[str] = set()
    gains: list[float] = []
    for doc_id in ranked_ids[:k]:
        gains.append(0.0 if doc_id in seen else judged.get(doc_id, 0.0))
        seen.add(doc_id)
    return ndcg_at_k(gains, list(judged.values()), k)
