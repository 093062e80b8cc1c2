"""scripts/ranker_cv_spread --features FILE --dataset esci|icecat [--seeds 7,11,13,17,19]

How far a learned ranker's cross-validated nDCG@10 can be trusted: offline query-grouped
5-fold CV (ranking.lgbm.cross_validate, the folds and parameters train_ranker uses) on a
feature log (scripts/log_features), once per LightGBM seed (the only thing changed), then
the per-query spread of the first seed's figure: standard error and a bootstrap 95 %
interval over queries. A target closer to the measured mean than about two standard errors
cannot be told apart from it on these queries.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ranking.judgments import DATASETS, read_judgments
from ranking.lgbm import PARAMS, TrainingSet, cross_validate
from tooling.relevance import default_data_dir, judgments_path


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/ranker_cv_spread", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", type=Path, required=True, help="scripts/log_features output")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--data-dir", type=Path, default=None, help="folder of <dataset>/judgments.csv")
    p.add_argument("--seeds", default="7,11,13,17,19")
    p.add_argument("--target", type=float, default=None, help="a target to compare with")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    data = TrainingSet.from_parquet(a.features)
    judged = read_judgments(judgments_path(a.data_dir or default_data_dir(), a.dataset),
                            a.dataset)
    seeds = [int(s) for s in a.seeds.split(",")]
    print(f"{a.dataset}: {len(judged)} judged queries, {len(data.gains)} logged candidates")
    print("| seed | CV nDCG@10 | index order |\n|---:|---:|---:|")
    means, first = [], None
    for seed in seeds:
        report = cross_validate(data, judged, params={**PARAMS, "seed": seed})
        means.append(report.mean)
        first = first or report
        print(f"| {seed} | {report.mean:.4f} | {report.baseline_mean:.4f} |")
    assert first is not None
    per_query = np.array(list(first.ndcg.values()), dtype=np.float64)
    se = float(per_query.std(ddof=1) / np.sqrt(len(per_query)))
    rng = np.random.default_rng(0)
    boots = [float(rng.choice(per_query, len(per_query)).mean()) for _ in range(5000)]
    lo, hi = np.percentile(boots, [2.5, 97.5])
    print(f"\nover seeds: mean {statistics.fmean(means):.4f}, min {min(means):.4f}, "
          f"max {max(means):.4f}")
    print(f"seed {seeds[0]} over queries: sd {per_query.std(ddof=1):.3f}, standard error "
          f"{se:.4f}, bootstrap 95% interval [{lo:.4f}, {hi:.4f}]")
    diff = per_query - np.array([first.baseline[q] for q in first.ndcg], dtype=np.float64)
    print(f"gain over the index's order (paired): {diff.mean():+.4f}, standard error "
          f"{diff.std(ddof=1) / np.sqrt(len(diff)):.4f}")
    if a.target is not None:
        gap = a.target - statistics.fmean(means)
        print(f"target {a.target:.4f}: {gap:+.4f} from the seeds' mean = {gap / se:+.2f} "
              f"standard errors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
