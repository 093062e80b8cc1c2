"""Ranking: features, rankers (weighted formula; learned models later), offline evaluation.

A public contract for ML engineers: this package never imports Ray (numpy only).

    from ranking import get_ranker, rank
    order = rank(get_ranker("default"), text_scores, docs, now_s)  # indices, best first
"""

from ranking.base import Ranker, order, order_of, rank
from ranking.features import FEATURES, feature_matrix
from ranking.judgments import Judgments, judgment_gain, parse_judgments, read_judgments
from ranking.metrics import dcg_at_k, ndcg_at_k, ndcg_of_ids
from ranking.registry import (
    RankerFactory,
    get_ranker,
    ranker_names,
    register,
    runs_in_process,
    unregister,
)
from ranking.weighted import DEFAULT_WEIGHTS, TextOnlyRanker, WeightedRanker

__all__ = [
    "DEFAULT_WEIGHTS",
    "FEATURES",
    "Judgments",
    "Ranker",
    "RankerFactory",
    "TextOnlyRanker",
    "WeightedRanker",
    "dcg_at_k",
    "feature_matrix",
    "get_ranker",
    "judgment_gain",
    "ndcg_at_k",
    "ndcg_of_ids",
    "order",
    "order_of",
    "parse_judgments",
    "rank",
    "ranker_names",
    "read_judgments",
    "register",
    "runs_in_process",
    "unregister",
]
