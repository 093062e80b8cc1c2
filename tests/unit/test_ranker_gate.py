"""The offline gate promotion applies (ranking/gate.py)."""

from __future__ import annotations

from ranking.gate import FORMULA, DatasetMetrics, ModelMetrics, gate


def measured(model: list[float], production: list[float],
             baseline: str = FORMULA) -> DatasetMetrics:
    per_query = {f"q{i}": (m, p) for i, (m, p) in enumerate(zip(model, production,
                                                                  strict=True))}
    return DatasetMetrics(sum(model) / len(model), sum(production) / len(production),
                          baseline, per_query)


def test_a_better_model_that_harms_few_queries_passes() -> None:
    better = measured([0.6] * 19 + [0.3], [0.5] * 19 + [0.5])  # 1 of 20 harmed by 0.2
    verdict = gate(ModelMetrics({"esci": better}), FORMULA)
    assert verdict.ok and verdict.reasons == []
    (q, delta), = verdict.harmed["esci"]
    assert q == "q19" and round(delta, 6) == -0.2


def test_not_better_on_every_dataset_is_refused() -> None:
    good = measured([0.7] * 10, [0.5] * 10)
    worse = measured([0.5] * 10, [0.5] * 10)  # equal is not above
    verdict = gate(ModelMetrics({"esci": good, "icecat": worse}), FORMULA)
    assert not verdict.ok
    assert any(r.startswith("icecat: nDCG@10 0.5000 is not above") for r in verdict.reasons)


def test_harming_more_than_a_tenth_of_the_queries_is_refused_and_they_are_listed() -> None:
    mixed = measured([0.9] * 8 + [0.2] * 2, [0.5] * 10)
    verdict = gate(ModelMetrics({"esci": mixed}), FORMULA)
    assert not verdict.ok
    assert "2 of 10 queries lose more than 0.1" in verdict.reasons[0]
    assert [q for q, _ in verdict.harmed["esci"]] == ["q8", "q9"]


def test_measured_against_another_production_must_be_measured_again() -> None:
    good = measured([0.7] * 10, [0.5] * 10, baseline="lgbm_3")
    verdict = gate(ModelMetrics({"esci": good}), "lgbm_9")
    assert not verdict.ok and "evaluate it again" in verdict.reasons[0]
    assert gate(ModelMetrics({}), FORMULA).ok is False


def test_metrics_survive_json() -> None:
    m = ModelMetrics({"esci": measured([0.6, 0.4], [0.5, 0.5])}, "abc", 5)
    assert ModelMetrics.from_json(m.to_json()) == m


def test_a_cross_validation_folds_model_is_refused_and_says_so() -> None:
    """A fold's model (train_ranker registers five, archived) measured through the search
    API scores the queries it was trained on: never promoted on those figures."""
    fold = ModelMetrics({"esci": measured([0.9] * 10, [0.5] * 10)}, "abc", 0, "3/5")
    verdict = gate(fold, FORMULA)
    assert not verdict.ok and "fold 3/5" in verdict.reasons[0]
    assert ModelMetrics.from_json(fold.to_json()) == fold
    assert "cv_fold" not in ModelMetrics({}).to_json()
    for bad in ("3", "0/5", 3):
        try:
            ModelMetrics.from_json({"cv_fold": bad})
        except ValueError as exc:
            assert "cv_fold" in str(exc)
        else:
            raise AssertionError(f"cv_fold {bad!r} read")
