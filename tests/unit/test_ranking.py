"""Ranking features, rankers, registry and nDCG on small hand-computed examples."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from ranking import (
    DEFAULT_WEIGHTS,
    FEATURES,
    Ranker,
    TextOnlyRanker,
    WeightedRanker,
    dcg_at_k,
    feature_matrix,
    get_ranker,
    ndcg_at_k,
    ndcg_of_ids,
    rank,
    ranker_names,
    register,
    runs_in_process,
    unregister,
)
from ranking.features import RECENCY_HALF_LIFE_DAYS, SALES_VELOCITY_HALF

NOW = 1_750_000_000.0
DAY = 86_400.0
NAN = float("nan")


def doc(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"rating_avg": 4.0, "rating_count": 100, "in_stock": True,
                            "created_at": int(NOW - 30 * DAY), "sales_velocity": 2.0,
                            "seller_rating": 4.5}
    base.update(fields)
    return base


def col(name: str) -> int:
    return FEATURES.index(name)


# --- features ---------------------------------------------------------------------------------

def test_features_shape_and_range() -> None:
    rng = np.random.default_rng(7)
    docs = [doc(rating_avg=float(rng.uniform(0, 5)), rating_count=int(rng.integers(0, 10**5)),
                sales_velocity=float(rng.exponential(20)),
                seller_rating=float(rng.uniform(0, 5)),
                created_at=int(NOW - rng.uniform(-10, 3000) * DAY),
                in_stock=bool(rng.integers(0, 2))) for _ in range(200)]
    f = feature_matrix(rng.exponential(5, size=200), docs, NOW)
    assert f.shape == (200, len(FEATURES))
    assert f.dtype == np.float64
    assert np.all((f >= 0) & (f <= 1))
    assert f[:, col("text_relevance")].max() == 1.0


def test_empty_candidate_set() -> None:
    assert feature_matrix(np.array([]), [], NOW).shape == (0, len(FEATURES))
    assert rank(get_ranker("default"), np.array([]), [], NOW).tolist() == []


def test_scores_and_docs_must_match() -> None:
    with pytest.raises(ValueError, match="2 text scores for 1 documents"):
        feature_matrix(np.array([1.0, 2.0]), [doc()], NOW)


def test_missing_and_nan_values_never_give_nan() -> None:
    docs = [
        {},
        {"rating_avg": NAN, "rating_count": NAN, "sales_velocity": NAN, "seller_rating": NAN,
         "created_at": NAN, "in_stock": None},
        {"rating_avg": None, "rating_count": None, "sales_velocity": math.inf,
         "seller_rating": -math.inf, "created_at": None, "in_stock": False},
        {"rating_avg": "4.5", "rating_count": "x", "sales_velocity": -3.0, "seller_rating": 9.0,
         "created_at": NOW + 10 * DAY, "in_stock": True},
    ]
    f = feature_matrix(np.array([NAN, math.inf, -1.0, 2.0]), docs, NOW)
    assert np.all(np.isfinite(f))
    assert np.all((f >= 0) & (f <= 1))
    assert f[:, col("text_relevance")].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert f[:, col("rating")].tolist() == pytest.approx([0.7] * 4)  # no reviews: the prior
    assert f[:, col("seller_quality")].tolist() == pytest.approx([0.7, 0.7, 0.7, 1.0])
    assert f[:, col("recency")].tolist() == [0.0, 0.0, 0.0, 1.0]  # future: as new
    assert f[:, col("stock")].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert f[:, col("sales_velocity")].tolist() == [0.0] * 4
    for name in ranker_names():
        assert np.all(np.isfinite(get_ranker(name).score(f)))


def test_text_relevance_min_max_over_the_candidates() -> None:
    f = feature_matrix(np.array([2.0, 8.0, 4.0]), [doc()] * 3, NOW)
    assert f[:, col("text_relevance")].tolist() == [0.0, 1.0, 1 / 3]
    same = feature_matrix(np.array([3.0, 3.0]), [doc()] * 2, NOW)
    assert same[:, col("text_relevance")].tolist() == [1.0, 1.0]
    zero = feature_matrix(np.array([0.0, 0.0]), [doc()] * 2, NOW)
    assert zero[:, col("text_relevance")].tolist() == [0.0, 0.0]


def test_sales_velocity_saturates() -> None:
    v = [0.0, SALES_VELOCITY_HALF, 1e6]
    f = feature_matrix(np.ones(3), [doc(sales_velocity=x) for x in v], NOW)
    got = f[:, col("sales_velocity")]
    assert got[0] == 0.0
    assert got[1] == pytest.approx(0.5)
    assert 0.999 < got[2] < 1.0


def test_recency_half_life() -> None:
    ages = [0.0, RECENCY_HALF_LIFE_DAYS, 2 * RECENCY_HALF_LIFE_DAYS]
    f = feature_matrix(np.ones(3), [doc(created_at=NOW - a * DAY) for a in ages], NOW)
    assert f[:, col("recency")].tolist() == pytest.approx([1.0, 0.5, 0.25])


def test_bayesian_rating_prefers_many_reviews() -> None:
    one_perfect = doc(rating_avg=5.0, rating_count=1)
    many_good = doc(rating_avg=4.7, rating_count=10_000)
    f = feature_matrix(np.ones(2), [one_perfect, many_good], NOW)
    assert f[0, col("rating")] == pytest.approx((3.5 * 10 + 5.0) / 11 / 5)
    assert f[1, col("rating")] == pytest.approx((3.5 * 10 + 4.7 * 10_000) / 10_010 / 5)
    assert f[1, col("rating")] > f[0, col("rating")]
    # with enough reviews the average itself shows through; more reviews, more trust
    assert f[1, col("rating")] == pytest.approx(4.7 / 5, abs=0.001)
    low = feature_matrix(np.ones(2), [doc(rating_avg=1.0, rating_count=1),
                                      doc(rating_avg=1.0, rating_count=1000)], NOW)
    assert low[0, col("rating")] > low[1, col("rating")]


# --- rankers -------------------------------------------------------------------------------

def test_seed_weights() -> None:
    assert dict(DEFAULT_WEIGHTS) == {"text_relevance": 0.3, "sales_velocity": 0.25,
                                     "rating": 0.2, "seller_quality": 0.1, "recency": 0.05,
                                     "stock": 0.1}
    assert dict(WeightedRanker().weights) == dict(DEFAULT_WEIGHTS)


def test_weighted_formula_by_hand() -> None:
    features = np.array([[1.0, 0.5, 0.8, 0.9, 0.25, 1.0],
                         [0.5, 1.0, 0.6, 0.7, 1.0, 0.0]])
    expected = [0.3 * 1.0 + 0.25 * 0.5 + 0.2 * 0.8 + 0.1 * 0.9 + 0.05 * 0.25 + 0.1 * 1.0,
                0.3 * 0.5 + 0.25 * 1.0 + 0.2 * 0.6 + 0.1 * 0.7 + 0.05 * 1.0 + 0.1 * 0.0]
    assert expected == pytest.approx([0.7875, 0.64])
    assert WeightedRanker().score(features).tolist() == pytest.approx(expected)
    only_stock = WeightedRanker({"stock": 2.0})
    assert only_stock.score(features).tolist() == [2.0, 0.0]


def test_weighted_end_to_end_by_hand() -> None:
    d = doc(sales_velocity=SALES_VELOCITY_HALF, rating_avg=3.5, rating_count=0,
            seller_rating=5.0, created_at=NOW - RECENCY_HALF_LIFE_DAYS * DAY, in_stock=True)
    f = feature_matrix(np.array([4.0]), [d], NOW)
    assert f[0].tolist() == pytest.approx([1.0, 0.5, 0.7, 1.0, 0.5, 1.0])
    assert WeightedRanker().score(f)[0] == pytest.approx(0.3 + 0.125 + 0.14 + 0.1 + 0.025 + 0.1)


@pytest.mark.parametrize("weights, message", [
    ({"text_relevance": -0.1, "stock": 1.0}, "must be a finite number >= 0"),
    ({"text_relevance": NAN}, "must be a finite number >= 0"),
    ({"text_relevance": math.inf}, "must be a finite number >= 0"),
    ({"text_relevance": True}, "must be a finite number >= 0"),
    ({"text_relevance": "0.3"}, "must be a finite number >= 0"),
    ({"text_relevance": 0.0, "stock": 0}, "at least one weight must be positive"),
    ({}, "at least one weight must be positive"),
    ({"price": 1.0}, "unknown features"),
])
def test_weights_are_validated(weights: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WeightedRanker(weights)


def test_score_checks_the_feature_shape() -> None:
    with pytest.raises(ValueError, match="shape"):
        WeightedRanker().score(np.ones((3, 5)))
    with pytest.raises(ValueError, match="shape"):
        TextOnlyRanker().score(np.ones(6))


def test_in_stock_outranks_identical_out_of_stock() -> None:
    docs = [doc(in_stock=False), doc(in_stock=True)]
    assert rank(get_ranker("default"), np.array([5.0, 5.0]), docs, NOW).tolist() == [1, 0]


def test_ties_keep_the_input_order() -> None:
    docs = [doc() for _ in range(6)]
    order = rank(get_ranker("default"), np.full(6, 3.0), docs, NOW)
    assert order.tolist() == [0, 1, 2, 3, 4, 5]
    assert order.dtype == np.int64
    mixed = rank(TextOnlyRanker(), np.array([1.0, 3.0, 1.0, 3.0, 2.0]), [doc()] * 5, NOW)
    assert mixed.tolist() == [1, 3, 4, 0, 2]


def test_text_only_keeps_the_index_order() -> None:
    scores = np.array([9.0, 7.5, 7.5, 3.0, 0.0])
    docs = [doc(in_stock=i % 2 == 0, rating_avg=float(i)) for i in range(5)]
    assert rank(get_ranker("text"), scores, docs, NOW).tolist() == [0, 1, 2, 3, 4]


class Constant:
    """A learned-model stand-in: what an ML engineer registers."""

    def __init__(self, values: list[float]) -> None:
        self.name = "constant"
        self.values = values

    def score(self, features: np.ndarray) -> np.ndarray:
        return np.array(self.values)


def test_nan_scores_rank_last_and_wrong_length_fails() -> None:
    assert isinstance(Constant([]), Ranker)
    order = rank(Constant([NAN, 1.0, NAN, 2.0]), np.ones(4), [doc()] * 4, NOW)
    assert order.tolist() == [3, 1, 0, 2]
    with pytest.raises(ValueError, match="returned 1 scores for 2 documents"):
        rank(Constant([1.0]), np.ones(2), [doc()] * 2, NOW)


# --- registry ------------------------------------------------------------------------------

def test_builtin_rankers() -> None:
    assert {"default", "weighted", "text"} <= set(ranker_names())
    assert isinstance(get_ranker("default"), WeightedRanker)
    assert get_ranker("weighted").name == "weighted"
    assert isinstance(get_ranker("text"), TextOnlyRanker)
    assert get_ranker("text").name == "text"
    for name in ranker_names():
        assert isinstance(get_ranker(name), Ranker)


def test_unknown_ranker() -> None:
    with pytest.raises(KeyError, match=r"unknown ranker 'nope'; registered: .*default"):
        get_ranker("nope")


def test_register_and_unregister() -> None:
    register("test-constant", lambda: Constant([0.0]))
    try:
        assert get_ranker("test-constant").name == "constant"
        assert "test-constant" in ranker_names()
        with pytest.raises(ValueError, match="registered already"):
            register("test-constant", TextOnlyRanker)
        assert not runs_in_process("test-constant")  # learned models: the Ranker deployment
        register("test-constant", TextOnlyRanker, replace=True, in_process=True)
        assert isinstance(get_ranker("test-constant"), TextOnlyRanker)
        assert runs_in_process("test-constant")
    finally:
        unregister("test-constant")
    assert "test-constant" not in ranker_names()
    assert not runs_in_process("test-constant")
    assert runs_in_process("default") and runs_in_process("text")  # the formulas
    with pytest.raises(KeyError):
        unregister("test-constant")
    for bad in ("", " x", "a b"):
        with pytest.raises(ValueError, match="without spaces"):
            register(bad, TextOnlyRanker)


# --- metrics -------------------------------------------------------------------------------

def test_dcg_by_hand() -> None:
    expected = 1.0 + 0.5 / math.log2(3) + 0.0 / 2 + 1.0 / math.log2(5)
    assert dcg_at_k([1.0, 0.5, 0.0, 1.0]) == pytest.approx(expected)
    assert dcg_at_k([1.0, 1.0, 1.0], k=2) == pytest.approx(1.0 + 1 / math.log2(3))
    assert dcg_at_k([]) == 0.0
    with pytest.raises(ValueError, match="k must be >= 1"):
        dcg_at_k([1.0], k=0)
    with pytest.raises(ValueError, match="finite and >= 0"):
        dcg_at_k([-1.0])


def test_ndcg_perfect_reversed_and_unjudged() -> None:
    judged = [1.0, 2 / 3, 1 / 3, 0.0]
    assert ndcg_at_k(judged, judged) == pytest.approx(1.0)
    reversed_ = ndcg_at_k(judged[::-1], judged)
    ideal = 1.0 + (2 / 3) / math.log2(3) + (1 / 3) / 2
    assert reversed_ == pytest.approx(((1 / 3) / math.log2(3) + (2 / 3) / 2 + 1.0 / math.log2(5))
                                      / ideal)
    assert reversed_ < 1.0
    # an unjudged result (gain 0) in first place costs what it displaces
    assert ndcg_at_k([0.0, 1.0], [1.0]) == pytest.approx(1 / math.log2(3))
    assert ndcg_at_k([], [1.0]) == 0.0


def test_ndcg_ideal_uses_all_judged_gains_and_cutoff() -> None:
    # two relevant products judged, only one found: the ideal counts both
    assert ndcg_at_k([1.0], [1.0, 1.0]) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    # beyond k nothing counts, in the results or in the ideal
    assert ndcg_at_k([0.0, 1.0], [1.0, 1.0], k=1) == 0.0
    assert ndcg_at_k([1.0, 0.0], [1.0, 1.0], k=1) == 1.0


def test_ndcg_zero_when_nothing_relevant_is_judged() -> None:
    assert ndcg_at_k([0.0, 0.0], [0.0, 0.0, 0.0]) == 0.0
    assert ndcg_at_k([], []) == 0.0


def test_ndcg_of_ids() -> None:
    judged = {"a": 1.0, "b": 0.1, "c": 0.0}
    assert ndcg_of_ids(["a", "b"], judged) == pytest.approx(1.0)
    assert ndcg_of_ids(["x", "a", "b"], judged) == pytest.approx(
        (1 / math.log2(3) + 0.1 / 2) / (1 + 0.1 / math.log2(3)))
    assert ndcg_of_ids(["a", "a", "b"], judged) == pytest.approx(
        (1 + 0.1 / 2) / (1 + 0.1 / math.log2(3)))  # a repeat gains nothing
    assert ndcg_of_ids(["b", "a"], judged, k=1) == pytest.approx(0.1)


@pytest.mark.parametrize("values", [
    [1, 2.5, None, True, False, float("nan"), float("inf"), -float("inf"), 10**30],  # one step
    [1, "2", None, float("inf"), float("nan"), object()],  # anything else: value by value
])
def test_a_column_is_each_finite_number_or_nan(values: list[Any]) -> None:
    from ranking.features import column
    docs = [{"x": v} for v in values] + [{}]
    want = []
    for v in [*values, None]:
        ok = isinstance(v, int | float) and math.isfinite(float(v))
        want.append(float(v) if ok else math.nan)
    got = column(docs, "x")
    assert got.dtype == np.float64 and got.shape == (len(docs),)
    np.testing.assert_array_equal(got, np.array(want))
