"""What a candidate's cross-validated figures are held against: a learned production's own
cross-validated figures (its figure through the API is in-sample: it was trained on those
queries), the formula's through the API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from adapters.postgres.ranker_registry import production_before
from ranking.gate import FORMULA, DatasetMetrics, ModelMetrics
from tooling import ranker_training
from tooling.ranker_training import API, cross_validated, production_by_query

QUERIES = ["blue mug", "usb cable", "yoga mat"]


def record(folds: int, per_query: Mapping[str, tuple[float, float]]) -> dict[str, Any]:
    n = len(per_query)
    d = DatasetMetrics(sum(v[0] for v in per_query.values()) / n,
                       sum(v[1] for v in per_query.values()) / n, FORMULA, per_query)
    return {"version": "lgbm_6", "metrics": ModelMetrics({"esci": d}, "abc", folds).to_json()}


class FakeService:
    """The two calls production_by_query makes of a RankerService."""

    url = "http://aisle.invalid"

    def __init__(self, production: str, records: Mapping[str, dict[str, Any]]) -> None:
        self._production = production
        self.records = records

    def production(self) -> str:
        return self._production

    def call(self, method: str, path: str, body: object = None) -> Any:
        assert method == "GET"
        return self.records[path.removeprefix(f"{API}/")]


@pytest.fixture
def through_the_api(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """ndcg_by_query answers 0.9 for every query (an in-sample figure) and logs its calls."""
    asked: list[str] = []

    def fake(url: str, judgments: object, queries: Sequence[str], ranker: str
             ) -> dict[str, float]:
        asked.append(ranker)
        return dict.fromkeys(queries, 0.9)

    monkeypatch.setattr(ranker_training, "ndcg_by_query", fake)
    return asked


def test_a_learned_production_is_held_to_its_cross_validated_figures(
        through_the_api: list[str]) -> None:
    cv = {"blue mug": (0.6, 0.5), "usb cable": (0.7, 0.4), "yoga mat": (0.5, 0.5)}
    service = FakeService("lgbm_6", {"lgbm_6": record(5, cv)})
    production, per = production_by_query(service, {}, QUERIES, "esci")  # type: ignore[arg-type]
    assert (production, per) == ("lgbm_6", {"blue mug": 0.6, "usb cable": 0.7, "yoga mat": 0.5})
    assert through_the_api == []


@pytest.mark.parametrize("production, records", [
    (FORMULA, {}),  # trained on nothing: its figure through the API is out-of-sample
    ("lgbm_2", {"lgbm_2": record(0, {q: (0.6, 0.5) for q in QUERIES})}),  # no CV figures
])
def test_otherwise_production_is_measured_through_the_api(
        through_the_api: list[str], production: str,
        records: Mapping[str, dict[str, Any]]) -> None:
    service = FakeService(production, records)
    found, per = production_by_query(service, {}, QUERIES, "esci")  # type: ignore[arg-type]
    assert (found, per) == (production, dict.fromkeys(QUERIES, 0.9))
    assert through_the_api == ["default"]


def test_queries_judged_since_are_measured_through_the_api(
        through_the_api: list[str]) -> None:
    service = FakeService("lgbm_3", {"lgbm_3": record(5, {"blue mug": (0.6, 0.5)})})
    _, per = production_by_query(service, {}, QUERIES, "esci")  # type: ignore[arg-type]
    assert per == {"blue mug": 0.6, "usb cable": 0.9, "yoga mat": 0.9}
    assert through_the_api == ["default"]


def test_cross_validated_figures_of_a_record() -> None:
    cv = {"blue mug": (0.6, 0.5)}
    assert cross_validated(record(5, cv), "esci") == {"blue mug": 0.6}
    assert cross_validated(record(5, cv), "icecat") is None
    assert cross_validated(record(0, cv), "esci") is None  # evaluated, not cross-validated
    assert cross_validated({"metrics": {}}, "esci") is None


def test_rollbacks_walk_back_through_the_promotions() -> None:
    """Production is a stack of promotions: a second rollback goes further back, it does not
    bring back the model the first one took down."""
    promote_a = [("A", "candidate", "production", False)]
    promote_b = [("A", "production", "archived", False), ("B", "candidate", "production", False)]
    rollback_b = [("B", "production", "archived", True), ("A", "archived", "production", True)]
    assert production_before([]) is None
    assert production_before(promote_a) is None  # rolling back A: the formula
    assert production_before(promote_a + promote_b) == "A"
    assert production_before(promote_a + promote_b + rollback_b) is None  # not B again
    to_formula = [("A", "production", "archived", True)]
    promote_c = [("C", "candidate", "production", False)]
    assert production_before(promote_a + to_formula + promote_c) is None  # not A again
    promote_a_again = [("B", "production", "archived", False),
                       ("A", "archived", "production", False)]
    assert production_before(promote_a + promote_b + promote_a_again) == "B"  # undo that


@pytest.mark.parametrize("metrics", [
    {"datasets": {"esci": {"ndcg": 0.5, "baseline_ndcg": 0.4, "baseline": FORMULA,
                           "per_query": {"q": [1]}}}},
    {"datasets": {"esci": {"ndcg": 0.5, "baseline_ndcg": 0.4, "baseline": FORMULA,
                           "per_query": []}}},
    {"datasets": {"esci": {"ndcg": "high", "baseline_ndcg": 0.4, "baseline": FORMULA,
                           "per_query": {}}}},
    {"datasets": {"esci": 3}},
    {"datasets": {"esci": {"ndcg": float("nan"), "baseline_ndcg": 0.4, "baseline": FORMULA,
                           "per_query": {}}}},
    {"datasets": ["esci"]},
    {"datasets": []},
    {"datasets": {"esci": {"ndcg": 0.99, "baseline_ndcg": 0.0, "baseline": "lgbm_6",
                           "per_query": {}}}},  # no queries measured: nothing to gate on
    {"datasets": {"esci": {"ndcg": 0.99, "baseline_ndcg": 0.5, "baseline": FORMULA,
                           "per_query": {"q": [0.6, 0.5]}}}},  # not the mean of its queries
    {"datasets": {"esci": {"ndcg": -5, "baseline_ndcg": 0.5, "baseline": FORMULA,
                           "per_query": {"q": [-5, 0.5]}}}},
    {"datasets": {"esci": {"ndcg": 2, "baseline_ndcg": 0.5, "baseline": FORMULA,
                           "per_query": {"q": [2, 0.5]}}}},
    {"datasets": {"esci": {"ndcg": True, "baseline_ndcg": 0.5, "baseline": FORMULA,
                           "per_query": {"q": [True, 0.5]}}}},
    {"datasets": {"esci": {"ndcg": 0.6, "baseline_ndcg": "0.5", "baseline": FORMULA,
                           "per_query": {"q": [0.6, 0.5]}}}},
])
def test_malformed_metrics_are_a_value_error(metrics: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="datasets"):
        ModelMetrics.from_json(metrics)


@pytest.mark.parametrize("metrics, word", [
    ({"folds": -3}, "folds"), ({"folds": "x"}, "folds"), ({"folds": True}, "folds"),
    ({"training_data": 5}, "training_data"),
])
def test_malformed_metrics_name_the_field(metrics: dict[str, Any], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        ModelMetrics.from_json(metrics)


def test_measured_metrics_read_back_as_written() -> None:
    written = ModelMetrics.from_json(record(5, {"blue mug": (0.6, 0.5), "yoga mat": (1, 0)})[
        "metrics"])
    assert ModelMetrics.from_json(written.to_json()) == written
    assert written.datasets["esci"].baseline_ndcg == 0.25 and written.folds == 5
