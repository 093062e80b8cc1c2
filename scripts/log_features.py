"""scripts/log_features --dataset esci|icecat [--url URL] [--out FILE] [--start]

Feature logging for learned rankers: every judged query of the dataset goes through the real
search path (`GET /api/v1/products/search?explain=true`, internal token from
$AISLE_INTERNAL_TOKEN), and each candidate the search re-ranks is written with its learned
features (ranking.learned_features) and its judged gain (0 when unjudged), as a parquet file:
columns query, external_id, rank (the index's order), gain, then one column per feature, and
the feature version in the file's metadata. `--start` runs scripts/demo with the dataset for it
(as scripts/eval_relevance --start).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from eval_relevance import running_service  # scripts/ is on sys.path: our own folder

from ranking.judgments import DATASETS, read_judgments
from tooling.cli import run
from tooling.ranker_training import collect, judged
from tooling.relevance import REPO, EvalError, judgments_path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/log_features", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--out", type=Path, default=None,
                   help="parquet file (default .aisle-data/features-<dataset>.parquet)")
    p.add_argument("--data-dir", type=Path, default=None, help="folder of <dataset>/judgments.csv")
    p.add_argument("--start", action="store_true", help="run scripts/demo for it, then stop it")
    p.add_argument("--service-data-dir", type=Path, default=None)
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    token = os.environ.get("AISLE_INTERNAL_TOKEN", "")
    if not token:
        if not a.start:
            print("log_features: set AISLE_INTERNAL_TOKEN (the service's internal token)",
                  file=sys.stderr)
            return 1
        token = os.environ["AISLE_INTERNAL_TOKEN"] = "features-" + os.urandom(8).hex()
    judgments = read_judgments(judgments_path(a.data_dir, a.dataset),
                               a.dataset)
    out = a.out or REPO / ".aisle-data" / f"features-{a.dataset}.parquet"
    service_dir = a.service_data_dir or REPO / ".aisle-data" / f"eval-{a.dataset}"
    # the demo trains no ranker of its own: logging needs none, and it would compete
    with (running_service(a.dataset, a.url.rstrip("/"), service_dir, 900,
                          ("--ranker", "formula")) if a.start
          else contextlib.nullcontext()):
        logged = asyncio.run(collect(a.url.rstrip("/"), token, judgments))
    found = judged(a.dataset, a.url, logged)
    logged.write(out)
    print(f"{out}: {len(logged.rows)} candidates of {len(judgments)} queries ({found} with a "
          f"gain), {len(logged.names)} features ({logged.version})")
    return 0


if __name__ == "__main__":
    # a refusal, a wrong catalog or token, an --out that cannot be written: one line
    raise SystemExit(run("log_features", main, (EvalError, RuntimeError, OSError)))
