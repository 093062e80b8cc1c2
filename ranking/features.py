"""Ranking features: one row per candidate, one column per name in `FEATURES`, each in [0, 1].

The column order of `FEATURES` is the contract every ranker (weighted formula, learned models)
scores against. Inputs are search documents (`domain.search.DOCUMENT_FIELDS`) and the text
scores the index returned for them. A missing, None, NaN or infinite input never yields NaN:
it takes the documented fallback instead.

  text_relevance  min-max over the candidate set: the best 1, the weakest 0, all 1 when equal
                  (negative -> 0; 0 when the max is 0). Relative to the set: BM25 scores are
                  unbounded and differ per query.
  sales_velocity  v / (v + SALES_VELOCITY_HALF) with v = units sold per day (missing -> 0):
                  0 at 0, 0.5 at SALES_VELOCITY_HALF units/day, -> 1 for best sellers.
                  Absolute, so the feature means the same thing in every query.
  rating          Bayesian average (RATING_PRIOR_MEAN * RATING_PRIOR_COUNT + avg * count)
                  / (RATING_PRIOR_COUNT + count), divided by 5: 5.0 from one review (0.73)
                  does not beat 4.7 from 10,000 (0.94); no reviews -> the prior (0.7).
  seller_quality  seller_rating / 5 (0..5 stars); missing -> SELLER_RATING_DEFAULT / 5 (0.7,
                  the same neutral prior as product ratings).
  recency         0.5 ** (age_days / RECENCY_HALF_LIFE_DAYS) from created_at (epoch seconds):
                  1 when new (or dated in the future), 0.5 at 180 days; missing -> 0.
  stock           1 if in_stock else 0 (missing -> 0).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

FEATURES: tuple[str, ...] = (
    "text_relevance", "sales_velocity", "rating", "seller_quality", "recency", "stock",
)

SALES_VELOCITY_HALF = 5.0  # units/day at which sales_velocity is 0.5
RATING_PRIOR_MEAN = 3.5  # stars
RATING_PRIOR_COUNT = 10.0  # pseudo-reviews of the prior
SELLER_RATING_DEFAULT = RATING_PRIOR_MEAN  # stars, for a seller with no rating
RECENCY_HALF_LIFE_DAYS = 180.0
_DAY_S = 86_400.0


def _number(value: Any) -> float:
    """A finite float, or NaN for anything else (None, NaN, inf, non-numbers)."""
    if value is None or isinstance(value, str):
        return math.nan
    try:
        x = float(value)
    except (TypeError, ValueError):
        return math.nan
    return x if math.isfinite(x) else math.nan


_NUMERIC = frozenset({float, int, bool, type(None)})


def column(docs: Sequence[Mapping[str, Any]], field: str) -> np.ndarray:
    """`field` of each document as float64, NaN where it is not a finite number (`_number`)."""
    values = [d.get(field) for d in docs]
    if set(map(type, values)) <= _NUMERIC:  # the usual case, converted in one step
        out = np.array(values, dtype=np.float64)  # None -> NaN
        out[~np.isfinite(out)] = np.nan
        return out
    return np.fromiter((_number(v) for v in values), dtype=np.float64, count=len(values))


def text_relevance(text_scores: np.ndarray) -> np.ndarray:
    """Min-max over the candidates: the best match 1, the weakest 0. (Dividing by the best
    score alone leaves the weakest candidates near the best, so popularity features would
    outweigh text; measured on the ESCI and Icecat judgments, docs/benchmarks.md.)"""
    s = np.asarray(text_scores, dtype=np.float64)
    s = np.where(np.isfinite(s) & (s > 0), s, 0.0)
    if not s.size:
        return s
    top, low = float(s.max()), float(s.min())
    if top <= 0:
        return np.zeros_like(s)
    if top == low:
        return np.ones_like(s)
    return (s - low) / (top - low)


def sales_velocity(velocity: np.ndarray) -> np.ndarray:
    v = np.nan_to_num(np.asarray(velocity, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    v = np.maximum(v, 0.0)
    return v / (v + SALES_VELOCITY_HALF)


def bayesian_rating(avg: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Normalized (0..1) Bayesian-averaged rating; a NaN average counts as no reviews."""
    a = np.asarray(avg, dtype=np.float64)
    n = np.nan_to_num(np.asarray(count, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    n = np.where(np.isnan(a), 0.0, np.maximum(n, 0.0))
    a = np.clip(np.nan_to_num(a, nan=RATING_PRIOR_MEAN), 0.0, 5.0)
    mean = (RATING_PRIOR_MEAN * RATING_PRIOR_COUNT + a * n) / (RATING_PRIOR_COUNT + n)
    return np.clip(mean / 5.0, 0.0, 1.0)


def seller_quality(seller_rating: np.ndarray) -> np.ndarray:
    r = np.nan_to_num(np.asarray(seller_rating, dtype=np.float64), nan=SELLER_RATING_DEFAULT,
                      posinf=SELLER_RATING_DEFAULT, neginf=SELLER_RATING_DEFAULT)
    return np.clip(r / 5.0, 0.0, 1.0)


def recency(created_at_s: np.ndarray, now_s: float) -> np.ndarray:
    created = np.asarray(created_at_s, dtype=np.float64)
    age_days = np.maximum((now_s - created) / _DAY_S, 0.0)
    out = np.power(0.5, age_days / RECENCY_HALF_LIFE_DAYS)
    return np.where(np.isfinite(out), out, 0.0)


def stock(docs: Sequence[Mapping[str, Any]]) -> np.ndarray:
    return np.fromiter((1.0 if d.get("in_stock") is True or d.get("in_stock") == 1 else 0.0
                        for d in docs), dtype=np.float64, count=len(docs))


def feature_matrix(text_scores: np.ndarray, docs: Sequence[Mapping[str, Any]],
                   now_s: float) -> np.ndarray:
    """The (len(docs), len(FEATURES)) float64 matrix of the candidates, columns in FEATURES
    order. `text_scores[i]` is the index's text score of `docs[i]`; `now_s` is epoch seconds."""
    scores = np.asarray(text_scores, dtype=np.float64).reshape(-1)
    if scores.shape[0] != len(docs):
        raise ValueError(f"{scores.shape[0]} text scores for {len(docs)} documents")
    if not math.isfinite(now_s):
        raise ValueError(f"now_s must be finite, got {now_s!r}")
    out = np.empty((len(docs), len(FEATURES)), dtype=np.float64)
    out[:, 0] = text_relevance(scores)
    out[:, 1] = sales_velocity(column(docs, "sales_velocity"))
    out[:, 2] = bayesian_rating(column(docs, "rating_avg"), column(docs, "rating_count"))
    out[:, 3] = seller_quality(column(docs, "seller_rating"))
    out[:, 4] = recency(column(docs, "created_at"), now_s)
    out[:, 5] = stock(docs)
    return out
