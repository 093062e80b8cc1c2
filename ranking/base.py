"""The `Ranker` interface and `rank`, which orders a candidate set with any ranker.

A ranker scores feature rows (`ranking.features.FEATURES` columns, each in [0, 1]); higher is
better. The weighted formula and learned models (LightGBM, later) implement the same interface,
so the serving side only ever calls `rank(get_ranker(name), text_scores, docs, now_s)`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ranking.features import FEATURES, feature_matrix


@runtime_checkable
class Ranker(Protocol):
    @property
    def name(self) -> str:
        """Identifies the model in logs, metrics and A/B assignments."""
        ...

    def score(self, features: np.ndarray) -> np.ndarray:
        """One score per row of `features` (n x len(FEATURES)), higher is better."""
        ...


def check_features(features: np.ndarray) -> np.ndarray:
    """`features` as a float64 (n, len(FEATURES)) array, or ValueError."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[1] != len(FEATURES):
        raise ValueError(f"features must have shape (n, {len(FEATURES)}), got {f.shape}")
    return f


def order_of(scores: np.ndarray) -> np.ndarray:
    """Indices, best score first. Stable: equal scores keep the input order (so a ranker that
    scores everything alike returns the index's order). A NaN score ranks last."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    s = np.where(np.isnan(s), -np.inf, s)
    return np.argsort(-s, kind="stable").astype(np.int64)


def order(ranker: Ranker, features: np.ndarray) -> np.ndarray:
    """`ranker`'s order of the candidates whose feature rows are `features` (see order_of)."""
    f = check_features(features)
    scores = np.asarray(ranker.score(f), dtype=np.float64).reshape(-1)
    if scores.shape[0] != f.shape[0]:
        raise ValueError(f"ranker {ranker.name!r} returned {scores.shape[0]} scores "
                         f"for {f.shape[0]} documents")
    return order_of(scores)


def rank(ranker: Ranker, text_scores: np.ndarray, docs: Sequence[Mapping[str, Any]],
         now_s: float) -> np.ndarray:
    """Indices into `docs`, best first (see order_of)."""
    return order(ranker, feature_matrix(text_scores, docs, now_s))
