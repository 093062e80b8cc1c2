"""`ranking` is a public contract for ML engineers: its exports, and that it never needs Ray."""

from __future__ import annotations

import subprocess
import sys

import ranking

PUBLIC = {
    "order",
    "order_of",
    "DEFAULT_WEIGHTS", "FEATURES", "Judgments", "Ranker", "RankerFactory", "TextOnlyRanker",
    "WeightedRanker", "dcg_at_k", "feature_matrix", "get_ranker", "judgment_gain", "ndcg_at_k",
    "ndcg_of_ids", "parse_judgments", "rank", "ranker_names", "read_judgments", "register",
    "runs_in_process",
    "unregister",
}


def test_public_exports() -> None:
    assert set(ranking.__all__) == PUBLIC
    assert len(ranking.__all__) == len(PUBLIC)
    for name in PUBLIC:
        assert getattr(ranking, name) is not None


def test_feature_order_is_the_contract() -> None:
    assert ranking.FEATURES == ("text_relevance", "sales_velocity", "rating", "seller_quality",
                                "recency", "stock")


def test_importing_ranking_does_not_import_ray() -> None:
    code = ("import sys, ranking, ranking.features, ranking.base, ranking.weighted, "
            "ranking.registry, ranking.metrics, ranking.judgments; "
            "bad = sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')); "
            "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
