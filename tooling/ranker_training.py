"""The ranker training pipeline against a running aisle (scripts/log_features, train_ranker,
rankers, and the demo's first start):

1. feature logging: every judged query through the real search path (`explain=true`), each
   re-ranked candidate with its learned features and its judged gain (0 when unjudged);
2. query-grouped k-fold cross-validation THROUGH THE SEARCH API: per fold a model trained
   without that fold's queries is registered (archived, "cv fold i/k") and the fold's queries
   are searched with `ranker=<that version>`; production (`ranker=default`: a model, or the
   formula) is measured on the same queries at the same time;
3. the model trained on every query, registered as a candidate with its metadata: feature
   list and version, training-data hash, CV nDCG@10 and production's, per query;
4. optionally promoted through the offline gate (ranking/gate.py).
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq

from ranking.gate import FORMULA, DatasetMetrics, ModelMetrics, recorded
from ranking.judgments import Judgments
from ranking.lgbm import LgbmRanker, TrainingSet, fold_of, train
from tooling.cli import answer, answered
from tooling.relevance import SEARCH_PATH, TIMEOUT, EvalError, fetch, score_run

API = "/api/v1/internal/rankers"


def who() -> str:
    return os.environ.get("AISLE_USER") or getpass.getuser()


@dataclasses.dataclass(frozen=True)
class LoggedFeatures:
    names: list[str]
    version: str
    rows: list[dict[str, Any]]  # query, external_id, rank, gain, then one value per name

    def table(self) -> pa.Table:
        schema = pa.schema([("query", pa.string()), ("external_id", pa.string()),
                            ("rank", pa.int32()), ("gain", pa.float64()),
                            *((n, pa.float64()) for n in self.names)])
        return pa.Table.from_pylist(self.rows, schema=schema).replace_schema_metadata(
            {"feature_version": self.version})

    def training_set(self) -> TrainingSet:
        return TrainingSet.from_table(self.table())

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(self.table(), path)


UNAVAILABLE_RETRIES = 60  # 503 answers retried per query, about a second apart


async def collect(url: str, token: str, judgments: Judgments,
                  concurrency: int = 4) -> LoggedFeatures:
    """Every judged query's re-ranked candidates and their features, through the API."""
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT,
                                 headers={"Authorization": f"Bearer {token}"}) as client:
        async def one(q: str) -> tuple[str, dict[str, Any]]:
            for attempt in range(UNAVAILABLE_RETRIES + 1):
                async with gate:
                    r = await client.get(SEARCH_PATH, params={"q": q, "page_size": 10,
                                                              "explain": "true"})
                if r.status_code != 503 or attempt == UNAVAILABLE_RETRIES:
                    break
                # a replica that became ready after /health's answer (a service just
                # started): what it says is temporary, so ask again, as a shopper would
                wait = r.headers.get("Retry-After", "")
                await asyncio.sleep(min(float(wait), 5.0) if wait.isdigit() else 1.0)
            if r.status_code != 200:
                raise RuntimeError(f"{q!r}: HTTP {r.status_code}: {r.text[:300]}")
            found: dict[str, Any] = r.json()["explain"]
            return q, found
        answers = await asyncio.gather(*(one(q) for q in sorted(judgments)))
    names: list[str] = answers[0][1]["features"] if answers else []
    version = str(answers[0][1]["version"]) if answers else ""
    rows = []
    for q, ans in answers:
        for rank, c in enumerate(ans["candidates"]):
            ext = str(c["external_id"] or "")
            rows.append({"query": q, "external_id": ext, "rank": rank,
                         "gain": judgments[q].get(ext, 0.0),
                         **dict(zip(names, c["values"], strict=True))})
    return LoggedFeatures(names, version, rows)


class RankerService:
    """The internal ranker API of a running aisle."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.token = token
        self.client = httpx.Client(base_url=url, timeout=TIMEOUT,
                                   headers={"Authorization": f"Bearer {token}"})

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return answered(self.client.request(method, path, json=body))

    def production(self) -> str:
        found: str | None = self.call("GET", API)["production"]
        return found or FORMULA

    def register(self, model: LgbmRanker, data: TrainingSet, metrics: ModelMetrics | None,
                 note: str, stage: str = "candidate") -> str:
        body = {"kind": "lightgbm", "feature_set": data.feature_version,
                "features": list(data.feature_names), "note": note, "stage": stage,
                "artifact_b64": base64.b64encode(model.to_bytes()).decode(),
                "metrics": metrics.to_json() if metrics else {}, "created_by": who()}
        version: str = self.call("POST", API, body)["version"]
        return version

    def promote(self, version: str, force: bool = False,
                reason: str | None = None) -> tuple[bool, dict[str, Any]]:
        r = self.client.post(f"{API}/{version}/promote",
                             json={"by": who(), "force": force, "reason": reason})
        return r.status_code == 200, answer(r)


def ndcg_by_query(url: str, judgments: Judgments, queries: Sequence[str],
                  ranker: str) -> dict[str, float]:
    found = asyncio.run(fetch(url, list(queries), ranker, 10, 4))
    return score_run(ranker, {q: judgments[q] for q in queries}, found, 10).ndcg


def cross_validated(record: Mapping[str, object], dataset: str) -> dict[str, float] | None:
    """A registered model's cross-validated nDCG@10 per judged query of `dataset`, from its
    record (`GET /api/v1/internal/rankers/{version}`): None when it has none (a model not
    trained by train_ranker, or not on that dataset)."""
    metrics = record.get("metrics")
    if not isinstance(metrics, Mapping) or not metrics.get("folds"):
        return None
    sets = metrics.get("datasets")
    if not isinstance(sets, Mapping) or dataset not in sets:
        return None
    read = recorded(metrics)
    if read is None:  # recorded before metrics were checked: as if it had none
        return None
    found = read.datasets[dataset]
    return {q: v[0] for q, v in found.per_query.items()}


def production_by_query(service: RankerService, judgments: Judgments, queries: Sequence[str],
                        dataset: str) -> tuple[str, dict[str, float]]:
    """(production, its nDCG@10 per query) to hold a candidate's cross-validated figures
    against. A learned model in production was trained on these judged queries, so its
    figure through the API is in-sample (session 24: 0.83 against its 0.64 cross-validated
    on esci): its own cross-validated figures stand for it. The formula, trained on nothing,
    and a model without such figures are measured through the API."""
    production = service.production()
    per = (cross_validated(service.call("GET", f"{API}/{production}"), dataset)
           if production != FORMULA else None) or {}
    missing = [q for q in queries if q not in per]  # judged since it was trained: in-sample
    measured = ndcg_by_query(service.url, judgments, missing, "default") if missing else {}
    if per and missing:
        print(f"{dataset}: production ({production}) has no cross-validated figure for "
              f"{len(missing)} of {len(queries)} queries: those measured through the API",
              file=sys.stderr)
    return production, {q: per[q] if q in per else measured[q] for q in queries}


def _key(dataset: str, query: str, many: bool) -> str:
    """A query's name in the training set: prefixed by its dataset when several datasets
    train one model (the same words may be judged in both)."""
    return f"{dataset}\x1f{query}" if many else query


def cross_validate(sources: Mapping[str, tuple[RankerService, Judgments]], data: TrainingSet,
                   folds: int, say: Callable[[str], None]) -> dict[str, dict[str, float]]:
    """Per dataset, query -> nDCG@10 through that dataset's search API of the fold model
    that did not see the query (one model per fold, trained on every dataset's other
    queries, registered in each service)."""
    many = len(sources) > 1
    out: dict[str, dict[str, float]] = {name: {} for name in sources}
    everything = {_key(name, q, many) for name, (_, j) in sources.items() for q in j}
    for fold in range(folds):
        held = {name: [q for q in sorted(j) if fold_of(_key(name, q, many), folds) == fold]
                for name, (_, j) in sources.items()}
        if not any(held.values()):
            continue
        keys = {_key(name, q, many) for name, qs in held.items() for q in qs}
        model = train(data.subset(everything - keys))
        for name, (service, judgments) in sources.items():
            if not held[name]:
                continue
            version = service.register(
                model, data, ModelMetrics({}, cv_fold=f"{fold + 1}/{folds}"),
                f"cv fold {fold + 1}/{folds}", stage="archived")
            got = ndcg_by_query(service.url, judgments, held[name], version)
            out[name].update(got)
            say(f"  fold {fold + 1}/{folds} {name}: {len(held[name])} queries, {version}, "
                f"nDCG@10 {sum(got.values()) / len(got):.4f}")
    return out


@dataclasses.dataclass(frozen=True)
class Trained:
    version: str  # as registered in the (first) service
    metrics: ModelMetrics
    promoted: bool
    refusal: list[str]  # why the gate refused it (empty when promoted or not asked)


def train_and_register(dataset: str, service: RankerService, judgments: Judgments,
                       folds: int = 5, promote: bool = False, out: Path | None = None,
                       say: Callable[[str], None] = print) -> Trained:
    return train_many({dataset: (service, judgments)}, folds, promote, out, say)


def judged(dataset: str, url: str, logged: LoggedFeatures) -> int:
    """How many logged candidates are judged products; EvalError when none is (the service
    holds another catalog than `dataset`'s: its figures would all be 0)."""
    found = sum(1 for r in logged.rows if r["gain"] > 0)
    if logged.rows and not found:
        raise EvalError(f"{dataset}: none of the {len(logged.rows)} candidates {url} found is "
                        f"a product judged relevant: does it serve the {dataset} catalog?")
    return found


def train_many(sources: Mapping[str, tuple[RankerService, Judgments]], folds: int = 5,
               promote: bool = False, out: Path | None = None,
               say: Callable[[str], None] = print) -> Trained:
    """One model trained on the judged queries of every dataset in `sources` (each searched
    through its own service, which holds that catalog alone), cross-validated per dataset,
    registered in every service with the metrics of all; promoted in each if asked."""
    many = len(sources) > 1
    tables = []
    names: list[str] = []
    for dataset, (service, judgments) in sources.items():
        say(f"{dataset}: logging features of {len(judgments)} judged queries through "
            f"{service.url}")
        logged = asyncio.run(collect(service.url, service.token, judgments))
        judged(dataset, service.url, logged)
        say(f"  {len(logged.rows)} candidates, {len(logged.names)} features ({logged.version})")
        if names and logged.names != names:
            raise RuntimeError(f"{dataset}: the services log different features")
        names = logged.names
        rows = [{**r, "query": _key(dataset, r["query"], many)} for r in logged.rows]
        tables.append(dataclasses.replace(logged, rows=rows).table())
    data = TrainingSet.from_table(pa.concat_tables(tables))
    label = "+".join(sources)
    productions = {name: service.production() for name, (service, _) in sources.items()}
    say(f"{label}: production is " + ", ".join(f"{p} ({n})" for n, p in productions.items())
        + f"; {folds}-fold cross-validation through the API")
    cv = cross_validate(sources, data, folds, say)
    measured = {}
    for name, (service, judgments) in sources.items():
        productions[name], base = production_by_query(service, judgments, sorted(judgments),
                                                      name)
        per_query = {q: (cv[name].get(q, 0.0), base.get(q, 0.0)) for q in sorted(judgments)}
        n = max(len(per_query), 1)
        measured[name] = DatasetMetrics(sum(v[0] for v in per_query.values()) / n,
                                        sum(v[1] for v in per_query.values()) / n,
                                        productions[name], per_query)
    metrics = ModelMetrics(measured, data.digest(), folds)
    model = train(data)
    versions = {name: service.register(
        model, data, metrics,
        f"trained on {label} ({sum(len(j) for _, j in sources.values())} queries)")
        for name, (service, _) in sources.items()}
    for name, d in metrics.datasets.items():
        say(f"{name}: registered {versions[name]}: CV nDCG@10 {d.ndcg:.4f} vs production "
            f"({d.baseline}) {d.baseline_ndcg:.4f}; {len(d.harmed())} queries harmed by > 0.1")
    first = next(iter(versions.values()))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(model.to_bytes())
        out.with_suffix(".json").write_text(json.dumps(
            {"version": first, "feature_set": data.feature_version,
             "features": list(data.feature_names), "metrics": metrics.to_json()}, indent=1))
    if not promote:
        return Trained(first, metrics, False, [])
    reasons: list[str] = []
    for name, (service, _) in sources.items():
        ok, body = service.promote(versions[name])
        if ok:
            say(f"{name}: {versions[name]} is in production")
        else:
            why = list(body.get("error", {}).get("reasons") or [str(body)])
            say(f"{name}: {versions[name]} not promoted: " + "; ".join(why))
            reasons += why
    return Trained(first, metrics, not reasons, reasons)
