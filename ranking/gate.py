"""What a model's record says about its quality, and the offline gate promotion applies.

A model is measured per dataset against the ranker in production when it is measured (a
version, or "formula" while no learned model is in production), query by query, through the
search API. `gate` passes a model only if, on every dataset it was measured on, its nDCG@10
is above production's, and it harms at most MAX_HARMED_SHARE of the queries by more than
HARM (the harmed queries are listed either way).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

MAX_HARMED_SHARE = 0.10
HARM = 0.1
FORMULA = "formula"  # what production is while no learned model is promoted
_FOLD = re.compile(r"[1-9][0-9]*/[1-9][0-9]*")


@dataclasses.dataclass(frozen=True)
class DatasetMetrics:
    ndcg: float  # the model's mean nDCG@10 (cross-validated: each query by a model without it)
    baseline_ndcg: float  # production's on the same queries, measured at the same time
    baseline: str  # what production was then: a version, or FORMULA
    per_query: Mapping[str, tuple[float, float]]  # query -> (model, production)

    def harmed(self, harm: float = HARM) -> list[tuple[str, float]]:
        """Queries the model does worse on by more than `harm`, worst first."""
        out = [(q, m - p) for q, (m, p) in self.per_query.items() if m - p < -harm]
        return sorted(out, key=lambda x: (x[1], x[0]))


@dataclasses.dataclass(frozen=True)
class ModelMetrics:
    datasets: Mapping[str, DatasetMetrics]
    training_data: str = ""  # hash of the logged features the model was trained on
    folds: int = 0
    # "3/5": a model cross-validation trained without that fold's queries (train_ranker
    # registers them, archived, to measure the final model): not a model to ship, and its
    # figures through the search API are mostly on queries it was trained on
    cv_fold: str = ""

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "training_data": self.training_data, "folds": self.folds,
            "datasets": {name: {"ndcg": d.ndcg, "baseline_ndcg": d.baseline_ndcg,
                                "baseline": d.baseline,
                                "per_query": {q: list(v) for q, v in d.per_query.items()}}
                         for name, d in self.datasets.items()}}
        return out | ({"cv_fold": self.cv_fold} if self.cv_fold else {})

    @staticmethod
    def from_json(data: Mapping[str, object]) -> ModelMetrics:
        """ValueError naming what is wrong when `data` is not metrics as `to_json` writes:
        every figure an nDCG in [0, 1], each dataset's means those of its per-query figures
        (a gate decided on numbers nobody measured is no gate)."""
        sets = data.get("datasets", {})
        if not isinstance(sets, Mapping):
            raise ValueError("metrics.datasets must be an object (dataset -> figures)")
        out = {}
        for name, d in sets.items():
            try:
                out[str(name)] = _dataset(d)
            except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
                raise ValueError(
                    f"datasets.{name}: needs ndcg, baseline_ndcg (numbers), baseline (a "
                    f"ranker) and per_query (query -> [model, production]): {exc}") from exc
        folds = data.get("folds", 0)
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 0:
            raise ValueError("metrics.folds must be a whole number, 0 or more")
        training = data.get("training_data", "")
        if not isinstance(training, str):
            raise ValueError("metrics.training_data must be a string (a hash)")
        fold = data.get("cv_fold", "")
        if not isinstance(fold, str) or (fold and not _FOLD.fullmatch(fold)):
            raise ValueError("metrics.cv_fold must be a fold such as \"3/5\" (or absent)")
        return ModelMetrics(out, training, folds, fold)


def recorded(data: Mapping[str, object]) -> ModelMetrics | None:
    """A stored record's metrics, or None when they do not read as metrics now (a record
    written before they were checked as they are: evaluate the model again)."""
    try:
        return ModelMetrics.from_json(data)
    except ValueError:
        return None


def _ndcg(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, got {value!r}")
    if not 0.0 <= float(value) <= 1.0:  # NaN fails too
        raise ValueError(f"{what} must be an nDCG, 0 to 1, got {value!r}")
    return float(value)


def _dataset(d: Mapping[str, object]) -> DatasetMetrics:
    raw = d["per_query"]
    if not isinstance(raw, Mapping) or not raw:
        raise ValueError("per_query must name the queries measured (query -> [model, "
                         "production])")
    per: dict[str, tuple[float, float]] = {}
    for q, v in raw.items():
        if not isinstance(v, (list, tuple)) or len(v) != 2:
            raise ValueError(f"per_query[{q!r}] must be [model, production]")
        per[str(q)] = (_ndcg(v[0], f"per_query[{q!r}][0]"), _ndcg(v[1], f"per_query[{q!r}][1]"))
    ndcg, baseline_ndcg = _ndcg(d["ndcg"], "ndcg"), _ndcg(d["baseline_ndcg"], "baseline_ndcg")
    for what, figure, i in (("ndcg", ndcg, 0), ("baseline_ndcg", baseline_ndcg, 1)):
        mean = sum(pair[i] for pair in per.values()) / len(per)
        if abs(figure - mean) > 1e-6:
            raise ValueError(f"{what} {figure} is not the mean of per_query's ({mean:.6f})")
    baseline = d["baseline"]
    if not isinstance(baseline, str) or not baseline:
        raise ValueError("baseline must name a ranker (a version, or formula)")
    return DatasetMetrics(ndcg, baseline_ndcg, baseline, per)


@dataclasses.dataclass(frozen=True)
class GateResult:
    ok: bool
    reasons: list[str]
    harmed: dict[str, list[tuple[str, float]]]  # dataset -> queries harmed by more than HARM


def gate(metrics: ModelMetrics, production: str, *, max_harmed_share: float = MAX_HARMED_SHARE,
         harm: float = HARM) -> GateResult:
    """May a model with `metrics` replace `production` (a version, or FORMULA)?"""
    reasons: list[str] = []
    harmed: dict[str, list[tuple[str, float]]] = {}
    if metrics.cv_fold:
        reasons.append(f"a cross-validation model (fold {metrics.cv_fold}), trained without "
                       "that fold's queries: its figures through the search API are mostly "
                       "on queries it was trained on; promote the model trained on them all")
    if not metrics.datasets:
        reasons.append("the model was not measured on any dataset")
    for name, d in sorted(metrics.datasets.items()):
        if d.baseline != production:
            reasons.append(f"{name}: measured against {d.baseline}, production is now "
                           f"{production}: evaluate it again")
        if not d.ndcg > d.baseline_ndcg:
            reasons.append(f"{name}: nDCG@10 {d.ndcg:.4f} is not above production's "
                           f"{d.baseline_ndcg:.4f}")
        worse = d.harmed(harm)
        harmed[name] = worse
        if d.per_query and len(worse) > max_harmed_share * len(d.per_query):
            reasons.append(f"{name}: {len(worse)} of {len(d.per_query)} queries lose more "
                           f"than {harm} nDCG@10 (at most {max_harmed_share:.0%} may)")
    return GateResult(not reasons, reasons, harmed)
