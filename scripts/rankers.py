"""scripts/rankers list|show|evaluate|promote|rollback  (the ranker registry of a running aisle)

    scripts/rankers list
    scripts/rankers show lgbm_7
    scripts/rankers evaluate lgbm_7 --dataset esci   # the model and production, through the API
    scripts/rankers promote lgbm_7 [--force --reason "..."]
    scripts/rankers rollback [--reason "..."]

`promote` goes through the offline gate: the model's cross-validated nDCG@10 must be above
production's on every dataset it was measured on, and it may harm at most 10 % of the queries
by more than 0.1 (they are listed). `--force` promotes anyway and is recorded with the reason.
A promotion or rollback reaches every Gateway within about a second, with no restart.
`evaluate` measures production again on the judged queries (after production changed, the
gate asks for it) and the model itself (in-sample when it was trained on them: the CV figures
from training stay the model's score). --url (default http://127.0.0.1:8000) and
$AISLE_INTERNAL_TOKEN name the service.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ranking.gate import FORMULA, DatasetMetrics, ModelMetrics
from ranking.judgments import DATASETS, read_judgments
from tooling.ranker_training import API, RankerService, ndcg_by_query, who
from tooling.relevance import default_data_dir, judgments_path


def _cv(m: dict[str, Any]) -> str:
    sets = (m.get("metrics") or {}).get("datasets") or {}
    return " ".join(f"{k} {v['ndcg']:.4f} (prod {v['baseline_ndcg']:.4f})"
                    for k, v in sorted(sets.items())) or "-"


def cmd_list(s: RankerService, a: argparse.Namespace) -> int:
    found = s.call("GET", API)
    print(f"production: {found['production'] or FORMULA + ' (no learned model)'}")
    print(f"{'version':<12} {'stage':<10} {'created':<20} {'by':<10} CV nDCG@10")
    for m in found["models"]:
        print(f"{m['version']:<12} {m['stage']:<10} {m['created_at'][:19]:<20} "
              f"{m['created_by'][:10]:<10} {_cv(m)}  {m['note'] or ''}")
    return 0


def cmd_show(s: RankerService, a: argparse.Namespace) -> int:
    m = s.call("GET", f"{API}/{a.version}")
    print(f"{m['version']}: {m['stage']}, {m['kind']} over {m['feature_set']} "
          f"({len(m['features'])} features), sha256 {m['checksum'][:16]}..., "
          f"by {m['created_by']} at {m['created_at']}")
    print(f"  training data {m['metrics'].get('training_data', '-')}, "
          f"{m['metrics'].get('folds', 0)} folds; CV nDCG@10: {_cv(m)}")
    if m["metrics"].get("datasets"):
        metrics = ModelMetrics.from_json(m["metrics"])
        for name, d in metrics.datasets.items():
            harmed = d.harmed()
            print(f"  {name}: {len(harmed)} of {len(d.per_query)} queries harmed by > 0.1"
                  + "".join(f"\n    {q!r}: {delta:+.3f}" for q, delta in harmed[:10]))
    for c in m["history"]:
        print(f"  {c['at'][:19]} {c['from']} -> {c['to']} by {c['by']}"
              f"{' (forced)' if c['forced'] else ''}{': ' + c['reason'] if c['reason'] else ''}")
    return 0


def cmd_evaluate(s: RankerService, a: argparse.Namespace) -> int:
    m = s.call("GET", f"{API}/{a.version}")
    judgments = read_judgments(judgments_path(a.data_dir or default_data_dir(), a.dataset),
                               a.dataset)
    queries = sorted(judgments)
    production = s.production()
    prod = ndcg_by_query(s.url, judgments, queries, "default")
    mine = ndcg_by_query(s.url, judgments, queries, a.version)
    metrics = ModelMetrics.from_json(m["metrics"]) if m["metrics"].get("datasets") else \
        ModelMetrics({})
    before = metrics.datasets.get(a.dataset)
    cv = {q: v[0] for q, v in before.per_query.items()} if before else mine
    per_query = {q: (cv.get(q, 0.0), prod[q]) for q in queries}
    d = DatasetMetrics(sum(v[0] for v in per_query.values()) / len(queries),
                       sum(prod.values()) / len(queries), production, per_query)
    updated = ModelMetrics({**metrics.datasets, a.dataset: d}, metrics.training_data,
                           metrics.folds)
    s.call("PUT", f"{API}/{a.version}/metrics", {"metrics": updated.to_json()})
    print(f"{a.dataset}: {a.version} nDCG@10 {sum(mine.values()) / len(queries):.4f} through "
          f"the API{' (in-sample)' if before else ''}; its score "
          f"{'(cross-validated) ' if before else ''}{d.ndcg:.4f}; production ({production}) "
          f"{d.baseline_ndcg:.4f}; {len(d.harmed())} queries harmed by > 0.1")
    return 0


def cmd_promote(s: RankerService, a: argparse.Namespace) -> int:
    r = s.client.post(f"{API}/{a.version}/promote",
                      json={"by": who(), "force": a.force, "reason": a.reason})
    body = r.json()
    if r.status_code != 200:
        err = body["error"]
        print(f"refused: {err['message']}")
        for reason in err.get("reasons", []):
            print(f"  - {reason}")
        for name, harmed in (err.get("harmed") or {}).items():
            for q, delta in harmed[:20]:
                print(f"  {name} {q!r}: {delta:+.3f}")
        return 1
    gate = body["gate"]
    print(f"{a.version} is in production (was {body['previous'] or FORMULA})"
          + ("" if gate["ok"] else f"; FORCED past the gate: {'; '.join(gate['reasons'])}"))
    return 0


def cmd_rollback(s: RankerService, a: argparse.Namespace) -> int:
    body = s.call("POST", f"{API}/rollback", {"by": who(), "reason": a.reason})
    print(f"rolled back {body['rolled_back']}; production is "
          f"{body['production'] or FORMULA + ' (no learned model)'}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/rankers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list")
    sub.add_parser("show").add_argument("version")
    ev = sub.add_parser("evaluate")
    ev.add_argument("version")
    ev.add_argument("--dataset", required=True, choices=DATASETS)
    ev.add_argument("--data-dir", type=Path, default=None)
    pr = sub.add_parser("promote")
    pr.add_argument("version")
    pr.add_argument("--force", action="store_true")
    pr.add_argument("--reason", default=None)
    rb = sub.add_parser("rollback")
    rb.add_argument("--reason", default=None)
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    token = os.environ.get("AISLE_INTERNAL_TOKEN", "")
    if not token:
        print("rankers: set AISLE_INTERNAL_TOKEN (the service's internal token)", file=sys.stderr)
        return 1
    s = RankerService(a.url.rstrip("/"), token)
    return {"list": cmd_list, "show": cmd_show, "evaluate": cmd_evaluate,
            "promote": cmd_promote, "rollback": cmd_rollback}[a.cmd](s, a)


if __name__ == "__main__":
    raise SystemExit(main())
