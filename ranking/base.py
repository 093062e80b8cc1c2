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


def rank(ranker: Ranker, text_scores: np.ndarray, docs: Sequence[Mapping[str, Any]],
         now_s: float) -> np.ndarray:
    """Indices into `docs`, best first. Stable: equal scores keep the input order (so a
    ranker that scores everything alike returns the index's order). A NaN score ranks last."""
    features = feature_matrix(text_scores, docs, now_s)
    scores = np.asarray(ranker.score(features), dtype=np.float64).reshape(-1)
    if scores.shape[0] != len(docs):
        raise ValueError(f"ranker {ranker.name!r} returned {scores.shape[0]} scores "
                         f"for {len(docs)} documents")
    scores = np.where(np.isnan(scores), -np.inf, scores)
    return np.argsort(-scores, kind="stable").astype(np.int64)
