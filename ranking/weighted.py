"""Hand-set rankers: the seed's weighted formula (the default) and text relevance alone.

Seed formula: Score = TextRelevance x 0.3 + SalesVelocity x 0.25 + Rating x 0.2
                      + SellerQuality x 0.1 + Recency x 0.05 + StockAvailability x 0.1
Weights are used as given (not renormalized): the seed's sum to 1, so scores stay in [0, 1].
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from ranking.base import check_features
from ranking.features import FEATURES

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType({
    "text_relevance": 0.3,
    "sales_velocity": 0.25,
    "rating": 0.2,
    "seller_quality": 0.1,
    "recency": 0.05,
    "stock": 0.1,
})


def _weight(feature: str, value: object) -> float:
    w = math.nan
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        w = float(value)
    if not math.isfinite(w) or w < 0:
        raise ValueError(f"weight of {feature!r} must be a finite number >= 0, got {value!r}")
    return w


class WeightedRanker:
    """score = features @ weights. `weights` maps feature names to non-negative finite numbers;
    features left out weigh 0; at least one weight must be positive."""

    def __init__(self, weights: Mapping[str, float] | None = None, *,
                 name: str = "weighted") -> None:
        given = dict(DEFAULT_WEIGHTS if weights is None else weights)
        unknown = sorted(set(given) - set(FEATURES))
        if unknown:
            raise ValueError(f"unknown features {unknown}; features are {list(FEATURES)}")
        values = {feature: _weight(feature, w) for feature, w in given.items()}
        if not any(w > 0 for w in values.values()):
            raise ValueError("at least one weight must be positive")
        self._name = name
        self._vector = np.array([values.get(f, 0.0) for f in FEATURES], dtype=np.float64)
        self._vector.setflags(write=False)

    @property
    def name(self) -> str:
        return self._name

    @property
    def weights(self) -> Mapping[str, float]:
        return MappingProxyType(dict(zip(FEATURES, self._vector.tolist(), strict=True)))

    def score(self, features: np.ndarray) -> np.ndarray:
        return check_features(features) @ self._vector

    def __repr__(self) -> str:
        return f"WeightedRanker(name={self._name!r}, weights={dict(self.weights)})"


class TextOnlyRanker:
    """Text relevance alone: keeps the index's order (the identity re-rank), for baselines."""

    @property
    def name(self) -> str:
        return "text"

    def score(self, features: np.ndarray) -> np.ndarray:
        return check_features(features)[:, FEATURES.index("text_relevance")].copy()

    def __repr__(self) -> str:
        return "TextOnlyRanker()"
