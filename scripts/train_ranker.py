"""scripts/train_ranker --dataset esci|icecat [--url URL | --start] [--folds 5] [--promote]

Trains a LightGBM LambdaMART ranker on the dataset's judged queries and registers it.

1. Feature logging: every judged query through the real search path (`explain=true`), as
   scripts/log_features does (the service must hold that dataset's catalog alone).
2. Query-grouped k-fold cross-validation THROUGH THE SEARCH API: for each fold a model is
   trained without that fold's queries, registered (archived, "cv fold i/k"), and the fold's
   queries are searched with `ranker=<that version>`; their nDCG@10 is the model's CV score.
   The ranker in production (`ranker=default`: a model, or the formula) is measured on the
   same queries at the same time.
3. The model trained on every query is registered as a candidate with its metadata: feature
   list and version, training-data hash, CV nDCG@10, production's, per-query deltas.
4. `--promote`: promoted through the offline gate (scripts/rankers promote does the same).

The internal token comes from $AISLE_INTERNAL_TOKEN (with --start a fresh one is made).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import getpass
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
from eval_relevance import (  # scripts/ is on sys.path: our own folder
    REPO,
    TIMEOUT,
    default_data_dir,
    fetch,
    judgments_path,
    running_service,
    score_run,
)
from log_features import collect

from ranking.gate import FORMULA, DatasetMetrics, ModelMetrics
from ranking.judgments import DATASETS, Judgments, read_judgments
from ranking.lgbm import LgbmRanker, TrainingSet, fold_of, train

API = "/api/v1/internal/rankers"


class Service:
    """The internal ranker API of a running aisle."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.client = httpx.Client(base_url=url, timeout=TIMEOUT,
                                   headers={"Authorization": f"Bearer {token}"})

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        r = self.client.request(method, path, json=body)
        if r.status_code >= 400:
            raise SystemExit(f"{method} {path}: HTTP {r.status_code}: {r.text[:600]}")
        return r.json()

    def production(self) -> str:
        found: str | None = self.call("GET", API)["production"]
        return found or FORMULA

    def register(self, model: LgbmRanker, data: TrainingSet, metrics: ModelMetrics | None,
                 note: str, stage: str = "candidate") -> str:
        body = {"kind": "lightgbm", "feature_set": data.feature_version,
                "features": list(data.feature_names), "note": note, "stage": stage,
                "artifact_b64": base64.b64encode(model.to_bytes()).decode(),
                "metrics": metrics.to_json() if metrics else {},
                "created_by": os.environ.get("AISLE_USER") or getpass.getuser()}
        version: str = self.call("POST", API, body)["version"]
        return version


def ndcg_by_query(url: str, judgments: Judgments, queries: Sequence[str],
                  ranker: str) -> dict[str, float]:
    found = asyncio.run(fetch(url, list(queries), ranker, 10, 4))
    return score_run(ranker, {q: judgments[q] for q in queries}, found, 10).ndcg


def cross_validate(service: Service, data: TrainingSet, judgments: Judgments, folds: int,
                   say: Callable[[str], None]) -> dict[str, float]:
    """Query -> nDCG@10 through the API of the fold model that did not see the query."""
    out: dict[str, float] = {}
    queries = sorted(judgments)
    for fold in range(folds):
        held = [q for q in queries if fold_of(q, folds) == fold]
        if not held:
            continue
        model = train(data.subset(set(queries) - set(held)))
        version = service.register(model, data, None, f"cv fold {fold + 1}/{folds}",
                                   stage="archived")
        got = ndcg_by_query(service.url, judgments, held, version)
        out.update(got)
        say(f"  fold {fold + 1}/{folds}: {len(held)} queries, {version}, "
            f"nDCG@10 {sum(got.values()) / len(got):.4f}")
    return out


def run(dataset: str, url: str, token: str, judgments: Judgments, folds: int,
        promote: bool, out: Path | None, say: Callable[[str], None] = print) -> str:
    service = Service(url, token)
    say(f"{dataset}: logging features of {len(judgments)} judged queries through {url}")
    names, version, rows = asyncio.run(collect(url, token, judgments))
    table = pa.Table.from_pylist(rows)
    data = TrainingSet.from_table(table.replace_schema_metadata({"feature_version": version}))
    say(f"  {len(rows)} candidates, {len(names)} features ({version})")
    production = service.production()
    say(f"{dataset}: production is {production}; {folds}-fold cross-validation through the API")
    cv = cross_validate(service, data, judgments, folds, say)
    base = ndcg_by_query(url, judgments, sorted(judgments), "default")
    per_query = {q: (cv.get(q, 0.0), base.get(q, 0.0)) for q in sorted(judgments)}
    metrics = ModelMetrics(
        {dataset: DatasetMetrics(sum(v[0] for v in per_query.values()) / len(per_query),
                                 sum(v[1] for v in per_query.values()) / len(per_query),
                                 production, per_query)},
        data.digest(), folds)
    model = train(data)
    registered = service.register(model, data, metrics, f"trained on {dataset} "
                                  f"({len(judgments)} queries)")
    d = metrics.datasets[dataset]
    say(f"{dataset}: registered {registered}: CV nDCG@10 {d.ndcg:.4f} vs production "
        f"({production}) {d.baseline_ndcg:.4f}; {len(d.harmed())} queries harmed by > 0.1")
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(model.to_bytes())
        out.with_suffix(".json").write_text(json.dumps(
            {"version": registered, "feature_set": data.feature_version,
             "features": list(data.feature_names), "metrics": metrics.to_json()}, indent=1))
    if promote:
        r = service.client.post(f"{API}/{registered}/promote",
                                json={"by": os.environ.get("AISLE_USER") or getpass.getuser()})
        if r.status_code == 200:
            say(f"{dataset}: {registered} is in production")
        else:
            say(f"{dataset}: {registered} not promoted: {r.json()['error']}")
    return registered


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/train_ranker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--start", action="store_true", help="run scripts/demo for it")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--promote", action="store_true", help="promote it if it passes the gate")
    p.add_argument("--out", type=Path, default=None, help="also write the artifact here")
    p.add_argument("--data-dir", type=Path, default=None, help="folder of <dataset>/judgments.csv")
    p.add_argument("--service-data-dir", type=Path, default=None)
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    token = os.environ.get("AISLE_INTERNAL_TOKEN", "")
    if not token:
        if not a.start:
            print("train_ranker: set AISLE_INTERNAL_TOKEN", file=sys.stderr)
            return 1
        token = os.environ["AISLE_INTERNAL_TOKEN"] = "train-" + os.urandom(8).hex()
    judgments = read_judgments(judgments_path(a.data_dir or default_data_dir(), a.dataset),
                               a.dataset)
    url = a.url.rstrip("/")
    service_dir = a.service_data_dir or REPO / ".aisle-data" / f"eval-{a.dataset}"
    with (running_service(a.dataset, url, service_dir, 1800) if a.start
          else contextlib.nullcontext()):
        run(a.dataset, url, token, judgments, a.folds, a.promote, a.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
