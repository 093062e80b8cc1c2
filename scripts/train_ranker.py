"""scripts/train_ranker --dataset esci|icecat|both [--url URL | --start] [--folds 5] [--promote]

Trains a LightGBM LambdaMART ranker on the dataset's judged queries and registers it.
`--dataset both`: one model on the judged queries of both catalogs, each searched through its
own service (`--url` is esci's and `--icecat-url` icecat's; with --start both are started),
cross-validated per dataset (each fold's model never saw that fold's queries of either), and
registered in both services with both datasets' figures (the gate then asks for a gain on
each).

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
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from eval_relevance import running_service  # scripts/ is on sys.path: our own folder

from ranking.judgments import DATASETS, read_judgments
from tooling.cli import run, whole_number
from tooling.ranker_training import RankerService, train_many
from tooling.relevance import REPO, EvalError, judgments_path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/train_ranker", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=(*DATASETS, "both"))
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--icecat-url", default="http://127.0.0.1:8001",
                   help="with --dataset both: the service holding the icecat catalog")
    p.add_argument("--start", action="store_true", help="run scripts/demo for it")
    p.add_argument("--folds", type=whole_number(2, 20, "folds"), default=5,
                   help="2 to 20 (default 5; one fold trains on nothing)")
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
    datasets = DATASETS if a.dataset == "both" else (a.dataset,)
    urls = {name: (a.icecat_url if a.dataset == "both" and name == "icecat" else a.url)
            .rstrip("/") for name in datasets}
    with contextlib.ExitStack() as services:
        if a.start:
            for name in datasets:
                service_dir = ((a.service_data_dir / name if len(datasets) > 1
                                else a.service_data_dir) if a.service_data_dir
                               else REPO / ".aisle-data" / f"eval-{name}")
                # the demo trains no ranker of its own (it would race this one, and change
                # production while it is measured)
                services.enter_context(running_service(name, urls[name], service_dir, 1800,
                                                       ("--ranker", "formula")))
        sources = {name: (RankerService(urls[name], token), read_judgments(
            judgments_path(a.data_dir, name), name))
            for name in datasets}
        done = train_many(sources, a.folds, a.promote, a.out)
    return 0 if done.promoted or not a.promote else 2


if __name__ == "__main__":
    # a refusal, a wrong catalog or token, an --out that cannot be written: one line
    raise SystemExit(run("train_ranker", main, (EvalError, RuntimeError, OSError, ValueError)))
