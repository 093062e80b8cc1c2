"""Learned rankers: LightGBM LambdaMART over `ranking.learned_features`, trained with
query-grouped k-fold cross-validation (no Ray; ML engineers train and evaluate offline).

    data = TrainingSet.from_parquet("features-esci.parquet")   # scripts/log_features
    report = cross_validate(data, judgments, folds=5)            # per-query nDCG@10
    model = train(data)                                          # on every query
    artifact = model.to_bytes()                                  # what the registry stores

Labels: LambdaMART wants whole-number grades, so each gain (ranking.judgments) becomes its
place among GAIN_LEVELS, and LightGBM's `label_gain` is set to GAIN_LEVELS: its objective then
optimizes the same linear-gain nDCG the evaluation measures (ranking.metrics).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path

import lightgbm as lgb
import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from ranking.base import order_of
from ranking.learned_features import LEARNED_FEATURES, LEARNED_FEATURES_VERSION
from ranking.metrics import ndcg_of_ids

# every gain of ranking.judgments (esci 0, .01, .1, 1; icecat 0, 1/3, 2/3, 1), ascending
GAIN_LEVELS: tuple[float, ...] = (0.0, 0.01, 0.1, 1 / 3, 2 / 3, 1.0)
PARAMS: Mapping[str, object] = {
    "objective": "lambdarank", "metric": "ndcg", "eval_at": [10],
    "learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 20,
    "feature_fraction": 0.8, "bagging_fraction": 0.6, "bagging_freq": 1,
    "lambdarank_truncation_level": 20, "label_gain": list(GAIN_LEVELS),
    "num_threads": 1, "deterministic": True, "force_row_wise": True, "seed": 7,
    "verbosity": -1,
}
# a bag of BAG models of ROUNDS trees, averaged: on 80-odd judged queries one model's early
# splits decide much by chance; five with their own samples, averaged, vary less and rank
# better in cross-validation than one of 200 trees (docs/benchmarks.md, session 17), for the
# same 200 trees to score
ROUNDS = 40
BAG = 5


def grade(gain: float) -> int:
    """The place of `gain` among GAIN_LEVELS (the nearest)."""
    return int(np.argmin([abs(gain - g) for g in GAIN_LEVELS]))


@dataclasses.dataclass(frozen=True)
class TrainingSet:
    """Logged candidates, grouped by query (each query's rows contiguous, in the index's
    order). `features` columns are `feature_names`."""

    queries: list[str]  # per row
    external_ids: list[str]
    gains: np.ndarray
    features: np.ndarray
    feature_names: tuple[str, ...]
    feature_version: str

    @staticmethod
    def from_table(table: pa.Table) -> TrainingSet:
        meta = table.schema.metadata or {}
        version = meta.get(b"feature_version", b"").decode()
        names = tuple(c for c in table.column_names
                      if c not in ("query", "external_id", "rank", "gain"))
        table = table.sort_by([("query", "ascending"), ("rank", "ascending")])
        x = np.column_stack([table.column(n).to_numpy() for n in names]).astype(np.float64)
        return TrainingSet(table.column("query").to_pylist(),
                           [str(e) for e in table.column("external_id").to_pylist()],
                           table.column("gain").to_numpy().astype(np.float64), x, names,
                           version)

    @staticmethod
    def from_parquet(path: str | Path) -> TrainingSet:
        return TrainingSet.from_table(pq.read_table(path))

    def query_rows(self) -> dict[str, np.ndarray]:
        out: dict[str, list[int]] = {}
        for i, q in enumerate(self.queries):
            out.setdefault(q, []).append(i)
        return {q: np.asarray(ix) for q, ix in out.items()}

    def digest(self) -> str:
        """A hash of what a model trains on (the training-data hash in its metadata)."""
        h = hashlib.sha256()
        h.update(json.dumps([self.feature_version, list(self.feature_names)]).encode())
        h.update("\n".join(f"{q}\t{e}" for q, e in zip(self.queries, self.external_ids,
                                                       strict=True)).encode())
        h.update(self.gains.tobytes())
        h.update(np.ascontiguousarray(self.features).tobytes())
        return h.hexdigest()[:16]

    def without(self, names: Collection[str]) -> TrainingSet:
        """The same rows without the feature columns `names` (an ablation)."""
        if isinstance(names, str):
            raise TypeError("without() takes a collection of column names, not one string")
        drop = set(names)
        unknown = sorted(drop - set(self.feature_names))
        if unknown:
            raise ValueError(f"no feature column {', '.join(unknown)}")
        keep = [i for i, n in enumerate(self.feature_names) if n not in drop]
        return dataclasses.replace(self, features=self.features[:, keep],
                                   feature_names=tuple(self.feature_names[i] for i in keep))

    def subset(self, queries: set[str]) -> TrainingSet:
        keep = [i for i, q in enumerate(self.queries) if q in queries]
        return TrainingSet([self.queries[i] for i in keep],
                           [self.external_ids[i] for i in keep], self.gains[keep],
                           self.features[keep], self.feature_names, self.feature_version)


class LgbmRanker:
    """A `ranking.base.Ranker` over LEARNED_FEATURES rows: higher is better."""

    feature_set = LEARNED_FEATURES_VERSION

    def __init__(self, booster: lgb.Booster, name: str = "lgbm",
                 feature_names: Sequence[str] = LEARNED_FEATURES) -> None:
        self._booster = booster
        self._name = name
        self.feature_names = tuple(feature_names)

    @property
    def name(self) -> str:
        return self._name

    def score(self, features: np.ndarray) -> np.ndarray:
        f = np.asarray(features, dtype=np.float64)
        if f.ndim != 2 or f.shape[1] != len(self.feature_names):
            raise ValueError(f"features must have shape (n, {len(self.feature_names)}), "
                             f"got {f.shape}")
        return np.asarray(self._booster.predict(f, num_threads=1), dtype=np.float64)

    def to_bytes(self) -> bytes:
        return str(self._booster.model_to_string()).encode()

    @staticmethod
    def from_bytes(data: bytes, name: str = "lgbm",
                   feature_names: Sequence[str] = LEARNED_FEATURES) -> LgbmRanker:
        """ValueError when `data` is not a LightGBM model over `feature_names`."""
        try:
            booster = lgb.Booster(model_str=data.decode())
        except Exception as exc:  # LightGBM raises its own error types for bad text
            raise ValueError(f"not a LightGBM model: {exc}") from exc
        if booster.num_feature() != len(feature_names):
            raise ValueError(f"model has {booster.num_feature()} features, "
                             f"expected {len(feature_names)}")
        named = booster.feature_name()  # LightGBM's Column_<i> when trained without names
        if (any(not n.startswith("Column_") for n in named)
                and list(named) != list(feature_names)):
            raise ValueError(f"model was trained on {', '.join(named)}; "
                             f"expected {', '.join(feature_names)}")
        return LgbmRanker(booster, name, feature_names)


def train(data: TrainingSet, params: Mapping[str, object] = PARAMS, rounds: int = ROUNDS,
          name: str = "lgbm", bag: int = BAG) -> LgbmRanker:
    """`bag` models of `rounds` trees each, member k seeded `seed + 1000 k` (its own row and
    feature samples), averaged into one LightGBM model (`average`); bag 1: one model."""
    if bag < 1:
        raise ValueError(f"bag must be at least 1, got {bag}")
    rows = data.query_rows()
    order = np.concatenate([rows[q] for q in sorted(rows)]) if rows else np.arange(0)
    labels = np.array([grade(g) for g in data.gains[order]], dtype=np.int32)
    groups = [len(rows[q]) for q in sorted(rows)]
    seed = int(str(params.get("seed", 0)))
    boosters = []
    for k in range(bag):
        ds = lgb.Dataset(data.features[order], label=labels, group=groups,
                         feature_name=list(data.feature_names), free_raw_data=True)
        boosters.append(lgb.train({**params, "seed": seed + 1000 * k}, ds,
                                  num_boost_round=rounds))
    booster = boosters[0] if bag == 1 else average(boosters)
    return LgbmRanker(booster, name, data.feature_names)


_TREE = re.compile(r"^Tree=\d+\n", re.MULTILINE)


def average(boosters: Sequence[lgb.Booster]) -> lgb.Booster:
    """One LightGBM model whose score is the mean of `boosters`' scores (models of the same
    features): every tree of each, its leaf values divided by their number. The result is an
    ordinary model file (its header and parameters the first one's), so the registry, the
    Ranker and LightGBM's own tools read it as any other."""
    texts = [str(b.model_to_string()) for b in boosters]
    head, rest = texts[0].split("\ntree_sizes=", 1)
    tail = rest[rest.index("end of trees"):]
    trees = []
    for text in texts:
        body = text[text.index("\nTree=0\n") + 1:text.index("end of trees")]
        trees += [t for t in _TREE.split(body) if t.strip()]
    blocks = [f"Tree={i}\n{_scaled(t, 1 / len(texts))}" for i, t in enumerate(trees)]
    sizes = " ".join(str(len(b.encode())) for b in blocks)
    return lgb.Booster(model_str=f"{head}\ntree_sizes={sizes}\n\n{''.join(blocks)}{tail}")


def _scaled(tree: str, factor: float) -> str:
    lines = tree.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("leaf_value="):
            values = line[len("leaf_value="):].split()
            lines[i] = "leaf_value=" + " ".join(repr(float(v) * factor) for v in values)
    return "\n".join(lines)


def fold_of(query: str, folds: int, split: int = 0) -> int:
    """A query's fold: a stable hash, so the same query is always held out together. `split`
    picks another assignment of queries to folds (0: the one training reports)."""
    key = query if split == 0 else f"{split}:{query}"
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % folds


def ranked_ids(model: LgbmRanker, data: TrainingSet, rows: np.ndarray, k: int = 10) -> list[str]:
    best = order_of(model.score(data.features[rows]))[:k]
    return [data.external_ids[int(rows[i])] for i in best]


@dataclasses.dataclass(frozen=True)
class CVReport:
    ndcg: dict[str, float]  # query -> nDCG@10 of the model that did not see it
    baseline: dict[str, float]  # query -> nDCG@10 of the index's order of the same candidates
    folds: int

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.ndcg.values()))) if self.ndcg else 0.0

    @property
    def baseline_mean(self) -> float:
        return float(np.mean(list(self.baseline.values()))) if self.baseline else 0.0


def cross_validate(data: TrainingSet, judgments: Mapping[str, Mapping[str, float]],
                   folds: int = 5, params: Mapping[str, object] = PARAMS,
                   rounds: int = ROUNDS, k: int = 10, split: int = 0,
                   bag: int = BAG) -> CVReport:
    """Each query scored by a model trained on the other folds' queries only (folds as
    `fold_of(query, folds, split)`). Queries judged but never logged (no candidates) score 0,
    as they would through the API."""
    rows = data.query_rows()
    ndcg: dict[str, float] = {}
    base: dict[str, float] = {}
    for fold in range(folds):
        held = {q for q in rows if fold_of(q, folds, split) == fold}
        if not held:
            continue
        model = train(data.subset(set(rows) - held), params, rounds, bag=bag)
        for q in held:
            ndcg[q] = ndcg_of_ids(ranked_ids(model, data, rows[q], k), judgments.get(q, {}), k)
            idx_order = [data.external_ids[int(i)] for i in rows[q][:k]]
            base[q] = ndcg_of_ids(idx_order, judgments.get(q, {}), k)
    for q in judgments:
        ndcg.setdefault(q, 0.0)
        base.setdefault(q, 0.0)
    return CVReport(ndcg, base, folds)


@dataclasses.dataclass(frozen=True)
class Comparison:
    """Two feature sets cross-validated on the same judged queries, each run (a LightGBM seed
    and a fold split) alike for both: per query, the mean nDCG@10 over the runs."""

    ndcg: dict[str, float]  # query -> the candidate's mean over runs
    against: dict[str, float]  # query -> the comparator's
    runs: tuple[tuple[float, float], ...]  # per run: (candidate's mean, comparator's mean)

    @property
    def deltas(self) -> npt.NDArray[np.float64]:
        return np.array([self.ndcg[q] - self.against[q] for q in sorted(self.ndcg)],
                        dtype=np.float64)

    @property
    def delta(self) -> float:
        return float(self.deltas.mean()) if self.ndcg else 0.0

    @property
    def standard_error(self) -> float:
        d = self.deltas
        return float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else 0.0

    def moved(self, by: float = 0.01) -> tuple[int, int]:
        """(queries better by more than `by`, queries worse by more than `by`)."""
        d = self.deltas
        return int((d > by).sum()), int((d < -by).sum())


def compare(candidate: TrainingSet, against: TrainingSet,
            judgments: Mapping[str, Mapping[str, float]], seeds: Sequence[int] = (7,),
            splits: int = 1, folds: int = 5, params: Mapping[str, object] = PARAMS,
            rounds: int = ROUNDS, bag: int = BAG) -> Comparison:
    """Does `candidate` (a feature log with a new feature, or without some) rank better than
    `against`? Both are cross-validated with each seed over `splits` fold assignments; the
    difference is paired by query, so what the queries share (how hard each is) cancels, and
    averaging runs damps what one seed or one split of 80-odd queries decides by chance."""
    mine: dict[str, list[float]] = {}
    theirs: dict[str, list[float]] = {}
    runs = []
    for seed in seeds:
        for split in range(splits):
            p = {**params, "seed": seed}
            a = cross_validate(candidate, judgments, folds, p, rounds, split=split, bag=bag)
            b = cross_validate(against, judgments, folds, p, rounds, split=split, bag=bag)
            runs.append((a.mean, b.mean))
            for q in judgments:
                mine.setdefault(q, []).append(a.ndcg[q])
                theirs.setdefault(q, []).append(b.ndcg[q])
    return Comparison({q: float(np.mean(v)) for q, v in mine.items()},
                      {q: float(np.mean(v)) for q, v in theirs.items()}, tuple(runs))
