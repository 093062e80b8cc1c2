"""scripts/ranker_cv_spread --features FILE --dataset esci|icecat [--seeds 7,11,13,17,19]
scripts/ranker_cv_spread --features NEW --against OLD --dataset ... [--seeds 7,11,13 --splits 3]
scripts/ranker_cv_spread --features FILE --drop NAME[,NAME...] --dataset D [--seeds ... --splits N]

How far a learned ranker's cross-validated nDCG@10 can be trusted: offline query-grouped
5-fold CV (ranking.lgbm.cross_validate, the folds and parameters train_ranker uses) on a
feature log (scripts/log_features), once per LightGBM seed (the only thing changed), then
the per-query spread of the first seed's figure: standard error and a bootstrap 95 %
interval over queries. A target closer to the measured mean than about two standard errors
cannot be told apart from it on these queries.

Whether a feature change helps (ranking.lgbm.compare): with --against, the log of FILE (say,
logged by a service running a new feature version) against another log of the same judged
queries; with --drop, FILE without those feature columns against FILE whole (or, with both,
against OTHER). Each is cross-validated with every seed over --splits assignments of queries
to folds, and the difference is paired by query: its mean, standard error, and how many
queries moved by more than 0.01 each way; then the difference per run. The standard error is
over queries for these runs only: how the queries fall into folds moves a difference on 80-odd
queries by several times that (docs/benchmarks.md, session 15), so a change is worth keeping
when it is beyond about two standard errors and better in nearly every run of several seeds
and splits.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ranking.judgments import DATASETS, read_judgments
from ranking.lgbm import PARAMS, Comparison, TrainingSet, compare, cross_validate
from tooling.relevance import judgments_path


def seed_list(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"comma-separated whole numbers, got {text!r}") from None
    return seeds


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/ranker_cv_spread", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--features", type=Path, required=True, help="scripts/log_features output")
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--data-dir", type=Path, default=None, help="folder of <dataset>/judgments.csv")
    p.add_argument("--seeds", type=seed_list, default=[7, 11, 13, 17, 19],
                   help="comma-separated whole numbers (default 7,11,13,17,19)")
    p.add_argument("--target", type=float, default=None, help="a target to compare with")
    p.add_argument("--against", type=Path, default=None,
                   help="another feature log of the same queries: compare FILE with it")
    p.add_argument("--drop", default="",
                   help="feature columns to leave out of FILE (compared with FILE whole, or "
                   "with --against's log)")
    p.add_argument("--splits", type=int, default=None,
                   help="assignments of queries to folds per seed, for --against/--drop "
                   "(default 1)")
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    for path in (a.features, a.against):
        if path is not None and not path.is_file():
            p.error(f"no feature log at {path} (scripts/log_features writes one)")
    try:
        data = TrainingSet.from_parquet(a.features)
    except Exception as exc:  # pyarrow's own errors for a file that is not a feature log
        p.error(f"{a.features}: not a feature log: {exc}")
    judged = read_judgments(judgments_path(a.data_dir, a.dataset),
                            a.dataset)
    seeds: list[int] = a.seeds
    drop = [n.strip() for n in a.drop.split(",") if n.strip()]
    if a.drop and not drop:
        p.error("--drop: no column named")
    if a.against is None and not drop:
        if a.splits is not None:
            p.error("--splits is for comparisons (--against or --drop)")
    else:
        if a.target is not None:
            p.error("--target is for one feature log, not a comparison")
        splits = 1 if a.splits is None else a.splits
        if splits < 1:
            p.error("--splits must be at least 1")
        try:
            candidate = data.without(drop)
        except ValueError as e:
            p.error(f"--drop: {e}")
        try:
            against = TrainingSet.from_parquet(a.against) if a.against is not None else data
        except Exception as exc:  # pyarrow's own errors for a file that is not a feature log
            p.error(f"{a.against}: not a feature log: {exc}")
        only = set(candidate.queries) ^ set(against.queries)
        if only:
            print(f"warning: {len(only)} queries are logged in one file only (they score 0 "
                  "where they are missing)", file=sys.stderr)
        return report_comparison(
            compare(candidate, against, judged, seeds, splits),
            f"{a.features.name}{' without ' + ', '.join(drop) if drop else ''}",
            (a.against or a.features).name, len(seeds), splits)
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


def report_comparison(c: Comparison, name: str, against: str, seeds: int, splits: int) -> int:
    runs = np.array(c.runs)
    print(f"{len(c.ndcg)} judged queries, {seeds} seeds x {splits} fold splits = "
          f"{len(c.runs)} runs each")
    print("| features | CV nDCG@10 (mean of runs) | lowest run | highest run |\n"
          "|---|---:|---:|---:|")
    for label, col in ((name, 0), (against, 1)):
        print(f"| {label} | {runs[:, col].mean():.4f} | {runs[:, col].min():.4f} | "
              f"{runs[:, col].max():.4f} |")
    better, worse = c.moved()
    se = c.standard_error
    print(f"\npaired by query: {c.delta:+.4f}, standard error {se:.4f}"
          f"{f' ({c.delta / se:+.1f} SE)' if se > 0 else ''}; queries better by > 0.01: "
          f"{better}, worse: {worse}")
    per_run = runs[:, 0] - runs[:, 1]
    print(f"per run (a seed and a fold split): {per_run.mean():+.4f}, "
          f"sd {per_run.std(ddof=1) if len(per_run) > 1 else 0.0:.4f}, "
          f"range [{per_run.min():+.4f}, {per_run.max():+.4f}], better in "
          f"{int((per_run > 0).sum())} of {len(per_run)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
