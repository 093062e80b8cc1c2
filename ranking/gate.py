"""What a model's record says about its quality, and the offline gate promotion applies.

A model is measured per dataset against the ranker in production when it is measured (a
version, or "formula" while no learned model is in production), query by query, through the
search API. `gate` passes a model only if, on every dataset it was measured on, its nDCG@10
is above production's, and it harms at most MAX_HARMED_SHARE of the queries by more than
HARM (the harmed queries are listed either way).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

MAX_HARMED_SHARE = 0.10
HARM = 0.1
FORMULA = "formula"  # what production is while no learned model is promoted


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

    def to_json(self) -> dict[str, object]:
        return {"training_data": self.training_data, "folds": self.folds,
                "datasets": {name: {"ndcg": d.ndcg, "baseline_ndcg": d.baseline_ndcg,
                                    "baseline": d.baseline,
                                    "per_query": {q: list(v) for q, v in d.per_query.items()}}
                             for name, d in self.datasets.items()}}

    @staticmethod
    def from_json(data: Mapping[str, object]) -> ModelMetrics:
        """ValueError naming what is wrong when `data` is not metrics as `to_json` writes."""
        sets = data.get("datasets") or {}
        if not isinstance(sets, Mapping):
            raise ValueError("metrics.datasets must be an object")
        out = {}
        for name, d in sets.items():
            try:
                per: dict[str, tuple[float, float]] = {}
                for q, v in d["per_query"].items():
                    if len(v) != 2:
                        raise ValueError(f"per_query[{q!r}] must be [model, production]")
                    per[str(q)] = (float(v[0]), float(v[1]))
                out[str(name)] = DatasetMetrics(float(d["ndcg"]), float(d["baseline_ndcg"]),
                                                str(d["baseline"]), per)
                numbers = [out[str(name)].ndcg, out[str(name)].baseline_ndcg,
                           *(x for pair in per.values() for x in pair)]
                if not all(math.isfinite(x) for x in numbers):
                    raise ValueError("every figure must be a finite number")
            except (KeyError, TypeError, IndexError, AttributeError, ValueError) as exc:
                raise ValueError(
                    f"datasets.{name}: needs ndcg, baseline_ndcg (numbers), baseline (a "
                    f"ranker) and per_query (query -> [model, production]): {exc!r}") from exc
        folds = data.get("folds", 0)
        return ModelMetrics(out, str(data.get("training_data", "")),
                            int(folds) if isinstance(folds, int) else 0)


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
