"""Features of learned rankers: one row per candidate, one column per name in `LEARNED_FEATURES`
(version `LEARNED_FEATURES_VERSION`; a model records the version it was trained on and is only
served with it). Pure numpy; every input has a documented fallback, never NaN.

Per candidate, from the index (the same statistics every shard uses):
  text_score        the index's text score (BM25 over all fields, boosts, synonyms at half)
  text_score_rel    text_score / the best candidate's (0..1)
  text_rank         the candidate's place in the index's order, 0 = first, as a share (0..1)
  bm25_title, bm25_brand, bm25_category, bm25_description
                    the query's BM25 within each field (domain.search.SIGNALS)
  coverage          share of the query's word groups the document matches in any field
  coverage_title    ... in its title
  phrase_title      1 if the title holds the words typed as one phrase
  brand_match, color_match, category_match
                    1 if the document has the brand / color / a category that query
                    understanding read from the words (0 when it read none)
  dense             cosine of the query's and the title's dense vectors (MiniLM,
                    adapters/text_embedding.py; 0 when the index has no vectors)
  dense_rel         dense minus the best candidate's (<= 0)
Per candidate, from the document:
  log_price         ln(1 + price); price_rel: price / the candidates' median price
  rating, log_reviews, sales_velocity, recency, stock, seller_quality
                    as ranking.features (rating Bayesian-averaged; log_reviews = ln(1 + count));
                    recency as of the start of the UTC day (a feature must not change with
                    the second a search is made: trees split on exact values, and a model
                    trained on features logged a minute apart came out different)
Per query (the same for every candidate; lets trees condition on the query):
  words             word groups in the query
  brand_inferred, color_inferred, category_inferred   what query understanding read
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence

import numpy as np

from ranking.features import (
    bayesian_rating,
    column,
    recency,
    sales_velocity,
    seller_quality,
    stock,
)

LEARNED_FEATURES_VERSION = "lf2"
DAY_S = 86_400
SIGNAL_NAMES: tuple[str, ...] = (  # domain.search.SIGNALS, in its order
    "bm25_title", "bm25_brand", "bm25_category", "bm25_description",
    "coverage", "coverage_title", "phrase_title", "brand_match", "color_match",
    "category_match", "dense",
)
LEARNED_FEATURES: tuple[str, ...] = (
    "text_score", "text_score_rel", "text_rank", *SIGNAL_NAMES, "dense_rel",
    "log_price", "price_rel", "rating", "log_reviews", "sales_velocity", "recency", "stock",
    "seller_quality", "words", "brand_inferred", "color_inferred", "category_inferred",
)


@dataclasses.dataclass(frozen=True)
class QueryContext:
    words: int = 0
    brand_inferred: bool = False
    color_inferred: bool = False
    category_inferred: bool = False


def learned_matrix(query: QueryContext, text_scores: Sequence[float],
                   signals: Sequence[Sequence[float] | None],
                   docs: Sequence[Mapping[str, object]], now_s: float) -> np.ndarray:
    """(len(docs), len(LEARNED_FEATURES)) float64, columns in LEARNED_FEATURES order, rows in
    the index's order (`text_scores[i]`, `signals[i]` and `docs[i]` describe candidate i; a
    missing signal vector counts as zeros)."""
    n = len(docs)
    if len(text_scores) != n or len(signals) != n:
        raise ValueError(f"{len(text_scores)} scores and {len(signals)} signal rows "
                         f"for {n} documents")
    if not math.isfinite(now_s):
        raise ValueError(f"now_s must be finite, got {now_s!r}")
    out = np.zeros((n, len(LEARNED_FEATURES)), dtype=np.float64)
    if n == 0:
        return out
    col = {name: i for i, name in enumerate(LEARNED_FEATURES)}
    s = np.nan_to_num(np.asarray(text_scores, dtype=np.float64), nan=0.0, posinf=0.0,
                      neginf=0.0)
    top = float(s.max())
    out[:, col["text_score"]] = s
    out[:, col["text_score_rel"]] = s / top if top > 0 else 0.0
    out[:, col["text_rank"]] = np.arange(n) / max(n - 1, 1)
    width = len(SIGNAL_NAMES)
    if all(v is not None and len(v) == width for v in signals):  # the usual case
        sig = np.array(signals, dtype=np.float64).reshape(n, width)
    else:
        sig = np.zeros((n, width), dtype=np.float64)
        for i, v in enumerate(signals):
            if v:
                k = min(len(v), width)
                sig[i, :k] = v[:k]
    first = col[SIGNAL_NAMES[0]]
    out[:, first:first + width] = np.nan_to_num(sig, nan=0.0, posinf=0.0, neginf=0.0)
    dense = out[:, col["dense"]]
    out[:, col["dense_rel"]] = dense - float(dense.max())
    price = np.nan_to_num(column(docs, "price"), nan=0.0)
    price = np.maximum(price, 0.0)
    out[:, col["log_price"]] = np.log1p(price)
    median = float(np.median(price[price > 0])) if (price > 0).any() else 0.0
    out[:, col["price_rel"]] = price / median if median > 0 else 1.0
    out[:, col["rating"]] = bayesian_rating(column(docs, "rating_avg"),
                                            column(docs, "rating_count"))
    out[:, col["log_reviews"]] = np.log1p(np.maximum(
        np.nan_to_num(column(docs, "rating_count"), nan=0.0), 0.0))
    out[:, col["sales_velocity"]] = sales_velocity(column(docs, "sales_velocity"))
    out[:, col["recency"]] = recency(column(docs, "created_at"), now_s - now_s % DAY_S)
    out[:, col["stock"]] = stock(docs)
    out[:, col["seller_quality"]] = seller_quality(column(docs, "seller_rating"))
    out[:, col["words"]] = float(query.words)
    out[:, col["brand_inferred"]] = float(query.brand_inferred)
    out[:, col["color_inferred"]] = float(query.color_inferred)
    out[:, col["category_inferred"]] = float(query.category_inferred)
    return out
