"""scripts/rankers list|show|evaluate|promote|rollback  (the ranker registry of a running aisle)

    scripts/rankers list
    scripts/rankers show lgbm_7
    scripts/rankers evaluate lgbm_7 --dataset esci   # the model and production, through the API
    scripts/rankers promote lgbm_7 [--force --reason "..."]
    scripts/rankers rollback [--reason "..."]
    scripts/rankers experiment start NAME --arm control=default --arm treatment=lgbm_7 \
        [--kind ab|interleave] [--shadow lgbm_8 --shadow-sample 0.1] \
        [--max-error-rate 0.02 --max-p99-ms 1000 --min-requests 100]
    scripts/rankers experiment list | show NAME | stop NAME [--reason "..."]

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
import math
import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from ranking.experiments import EXPERIMENT_NAME
from ranking.gate import FORMULA, DatasetMetrics, ModelMetrics, recorded
from ranking.judgments import DATASETS, read_judgments
from ranking.registry import RANKER_NAME
from tooling.cli import NotJson, ServiceRefused, answer
from tooling.ranker_training import (
    API,
    RankerService,
    cross_validated,
    ndcg_by_query,
    production_by_query,
    who,
)
from tooling.relevance import EvalError, judgments_path


def _cv(m: dict[str, Any]) -> str:
    metrics = recorded(m.get("metrics") or {})
    if metrics is None:  # a record from before metrics were checked
        return "(metrics unreadable: evaluate it again)"
    return " ".join(f"{k} {d.ndcg:.4f} (prod {d.baseline_ndcg:.4f})"
                    for k, d in sorted(metrics.datasets.items())) or "-"


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
        metrics = recorded(m["metrics"])
        if metrics is None:
            print("  its metrics do not read as metrics now: evaluate it again")
        for name, d in (metrics.datasets if metrics else {}).items():
            harmed = d.harmed()
            print(f"  {name}: {len(harmed)} of {len(d.per_query)} queries harmed by > 0.1"
                  + "".join(f"\n    {q!r}: {delta:+.3f}" for q, delta in harmed[:10])
                  + (f"\n    and {len(harmed) - 10} more" if len(harmed) > 10 else ""))
    for c in m["history"]:
        print(f"  {c['at'][:19]} {c['from']} -> {c['to']} by {c['by']}"
              f"{' (forced)' if c['forced'] else ''}{': ' + c['reason'] if c['reason'] else ''}")
    return 0


def cmd_evaluate(s: RankerService, a: argparse.Namespace) -> int:
    judgments = read_judgments(judgments_path(a.data_dir, a.dataset), a.dataset)
    m = s.call("GET", f"{API}/{a.version}")
    if m["stage"] == "production":  # measured against itself, its record would be lost
        print(f"rankers: {a.version} is production: evaluate measures a model against "
              f"production; its record stays as it was when it was promoted", file=sys.stderr)
        return 1
    queries = sorted(judgments)
    mine = ndcg_by_query(s.url, judgments, queries, a.version)
    if not any(mine.values()):
        print(f"rankers: no judged {a.dataset} product is found by any search of {s.url}: "
              f"is it serving the {a.dataset} catalog? Nothing recorded.", file=sys.stderr)
        return 1
    metrics = recorded(m["metrics"]) or ModelMetrics({})  # unreadable: measured anew
    before = cross_validated(m, a.dataset)  # kept: its own figures stay its score
    cv = before or mine
    # like with like: cross-validated figures against production's own (when it has them),
    # figures through the API against production's through the API
    if before is not None:
        production, prod = production_by_query(s, judgments, queries, a.dataset)
    else:
        production = s.production()
        prod = ndcg_by_query(s.url, judgments, queries, "default")
    per_query = {q: (cv.get(q, 0.0), prod[q]) for q in queries}
    d = DatasetMetrics(sum(v[0] for v in per_query.values()) / len(queries),
                       sum(prod.values()) / len(queries), production, per_query)
    updated = ModelMetrics({**metrics.datasets, a.dataset: d}, metrics.training_data,
                           metrics.folds, metrics.cv_fold)
    s.call("PUT", f"{API}/{a.version}/metrics", {"metrics": updated.to_json()})
    print(f"{a.dataset}: {a.version} nDCG@10 {sum(mine.values()) / len(queries):.4f} through "
          f"the API{' (in-sample)' if before else ''}; its score "
          f"{'(cross-validated) ' if before else ''}{d.ndcg:.4f}; production ({production}) "
          f"{d.baseline_ndcg:.4f}; {len(d.harmed())} queries harmed by > 0.1")
    return 0


def cmd_promote(s: RankerService, a: argparse.Namespace) -> int:
    r = s.client.post(f"{API}/{a.version}/promote",
                      json={"by": who(), "force": a.force, "reason": a.reason})
    body = answer(r)
    if r.status_code != 200:  # the refusal on stderr, the reasons and harmed queries under it
        err = body["error"]
        print(f"rankers: refused: {err['message']}", file=sys.stderr)
        for reason in err.get("reasons", []):
            print(f"  - {reason}", file=sys.stderr)
        for name, harmed in (err.get("harmed") or {}).items():
            for q, delta in harmed[:20]:
                print(f"  {name} {q!r}: {delta:+.3f}", file=sys.stderr)
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


def cmd_archive(s: RankerService, a: argparse.Namespace) -> int:
    m = s.call("POST", f"{API}/{a.version}/archive", {"by": who(), "reason": a.reason})
    print(f"{m['version']} is {m['stage']}")
    return 0


def _arm(text: str) -> dict[str, Any]:
    """NAME=RANKER[:WEIGHT]"""
    name, sep, rest = text.partition("=")
    ranker, _, weight = rest.partition(":")
    if not sep or not name or not ranker:
        raise argparse.ArgumentTypeError(f"{text!r}: an arm is NAME=RANKER[:WEIGHT]")
    try:
        return {"name": name, "ranker": ranker, "weight": int(weight or 1)}
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: the weight is a whole number") from exc


def _experiment_line(e: dict[str, Any]) -> str:
    arms = ", ".join(f"{a['name']}={a['ranker']}:{a['weight']}"
                     + (" (stopped)" if a["stopped"] else "") for a in e["arms"])
    shadow = f"; shadow {e['shadow']} x{e['shadow_sample']:g}" if e["shadow"] else ""
    return f"{e['name']:<20} {e['kind']:<10} {e['status']:<8} {arms}{shadow}"


def cmd_experiment(s: RankerService, a: argparse.Namespace) -> int:
    base = "/api/v1/internal/experiments"
    if a.action == "list":
        found = s.call("GET", base)["experiments"]
        for e in found:
            print(_experiment_line(e))
        if not found:
            print("no experiments (scripts/rankers experiment start NAME --arm ... --arm ...)")
        return 0
    if not a.name:
        print(f"experiment {a.action}: name the experiment", file=sys.stderr)
        return 2
    if a.action == "start":
        if len(a.arm or []) < 2:
            print("experiment start: at least two --arm NAME=RANKER[:WEIGHT]", file=sys.stderr)
            return 2
        e = s.call("POST", base, {
            "name": a.name, "kind": a.kind, "arms": a.arm, "shadow": a.shadow,
            "shadow_sample": (0.1 if a.shadow_sample is None else a.shadow_sample)
            if a.shadow else 0.0, "created_by": who(),
            "guardrails": {"max_error_rate": a.max_error_rate, "max_p99_ms": a.max_p99_ms,
                           "min_requests": a.min_requests}})
        print("started: " + _experiment_line(e))
        return 0
    if a.action == "stop":
        e = s.call("POST", f"{base}/{a.name}/stop", {"by": who(), "reason": a.reason})
        print("stopped: " + _experiment_line(e))
        return 0
    e = s.call("GET", f"{base}/{a.name}")
    print(_experiment_line(e))
    g = e["guardrails"]
    print(f"  guardrails: error rate <= {g['max_error_rate']}, p99 <= {g['max_p99_ms']} ms "
          f"(after {g['min_requests']} searches)")
    print(f"  {'arm':<14} {'ranker':<12} {'requests':>8} {'zero%':>6} {'errors':>6} "
          f"{'p99 ms':>7} {'clicks':>6} {'carts':>6} {'CTR':>6} {'wins':>5}")
    for arm in e["arms"]:
        print(f"  {arm['name']:<14} {arm['ranker']:<12} {arm['requests']:>8} "
              f"{100 * arm['zero_result_rate']:>6.1f} {arm['errors']:>6} "
              f"{arm['p99_ms'] if arm['p99_ms'] is not None else '-':>7} {arm['clicks']:>6} "
              f"{arm['add_to_carts']:>6} {arm['ctr']:>6.3f} {arm['interleaving_wins']:>5}"
              + (f"  STOPPED: {arm['stopped']}" if arm["stopped"] else ""))
    if e.get("shadow_stats"):
        sh = e["shadow_stats"]
        p99 = "-" if sh["p99_ms"] is None else f"{sh['p99_ms']} ms"
        agreement = ("-" if sh["top10_agreement"] is None
                     else f"{sh['top10_agreement']} of 10")
        print(f"  shadow {e['shadow']}: {sh['requests']} searches, {sh['errors']} errors, "
              f"p99 {p99}, its top 10 shares with what was shown {agreement} (mean)"
              + (f"  STOPPED: {e['shadow_stopped']}" if e["shadow_stopped"] else ""))
    return 0


def _finite(text: str) -> float:
    """A number (argparse names the option when this refuses: nan and inf are not)."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


_finite.__name__ = "finite number"  # what argparse calls it: "invalid finite number value"


def _named(pattern: str, what: str) -> Callable[[str], str]:
    """An argparse type: a name as the registry spells them (`pattern`). It goes into a URL
    path, where "lgbm_6?x=1" or "../rankers/lgbm_6/archive" named another resource."""
    def parse(text: str) -> str:
        if not re.fullmatch(pattern, text):
            raise argparse.ArgumentTypeError(f"{what}, got {text!r}")
        return text
    return parse


_version = _named(RANKER_NAME, "a version is 1 to 40 of a-z, 0-9 and _")
_experiment = _named(EXPERIMENT_NAME, "an experiment's name is a-z or 0-9, then up to 39 of "
                                      "a-z, 0-9, _ and -")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/rankers", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    # --url after the subcommand too (`scripts/rankers list --url ...`)
    url = argparse.ArgumentParser(add_help=False)
    url.add_argument("--url", default=argparse.SUPPRESS,
                     help=f"the service (default {p.get_default('url')})")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", parents=[url])
    sub.add_parser("show", parents=[url]).add_argument("version", type=_version)
    ev = sub.add_parser("evaluate", parents=[url])
    ev.add_argument("version", type=_version)
    ev.add_argument("--dataset", required=True, choices=DATASETS)
    ev.add_argument("--data-dir", type=Path, default=None)
    pr = sub.add_parser("promote", parents=[url])
    pr.add_argument("version", type=_version)
    pr.add_argument("--force", action="store_true")
    pr.add_argument("--reason", default=None)
    rb = sub.add_parser("rollback", parents=[url])
    rb.add_argument("--reason", default=None)
    ar = sub.add_parser("archive", parents=[url], help="retire a model (not production)")
    ar.add_argument("version", type=_version)
    ar.add_argument("--reason", default=None)
    ex = sub.add_parser("experiment", parents=[url],
                        help="ranker experiments: A/B, interleaving, shadow")
    ex.add_argument("action", choices=("start", "list", "show", "stop"))
    ex.add_argument("name", nargs="?", type=_experiment)
    ex.add_argument("--kind", choices=("ab", "interleave"), default="ab")
    ex.add_argument("--arm", type=_arm, action="append",
                    help="NAME=RANKER[:WEIGHT] (ranker: default, formula, a model version)")
    ex.add_argument("--shadow", default=None, help="a ranker to measure unseen")
    ex.add_argument("--shadow-sample", type=_finite, default=None,
                    help="the share of searches the shadow scores (with --shadow; 0.1)")
    ex.add_argument("--max-error-rate", type=_finite, default=0.02)
    ex.add_argument("--max-p99-ms", type=_finite, default=1000.0)
    ex.add_argument("--min-requests", type=int, default=100)
    ex.add_argument("--reason", default=None)
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    if a.cmd == "promote" and a.force and not (a.reason or "").strip():
        p.error("--force needs --reason (it is recorded with the promotion)")
    if a.cmd == "experiment" and a.shadow_sample is not None and not a.shadow:
        p.error("--shadow-sample needs --shadow (the ranker it samples)")
    token = os.environ.get("AISLE_INTERNAL_TOKEN", "")
    if not token:
        print("rankers: set AISLE_INTERNAL_TOKEN (the service's internal token)", file=sys.stderr)
        return 1
    s = RankerService(a.url.rstrip("/"), token)
    command = {"list": cmd_list, "show": cmd_show, "evaluate": cmd_evaluate,
               "promote": cmd_promote, "rollback": cmd_rollback, "archive": cmd_archive,
               "experiment": cmd_experiment}[a.cmd]
    try:
        return command(s, a)
    except BrokenPipeError:  # `scripts/rankers list | head`: the reader has enough
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # nothing more to say
        return 0
    # a reason, not a traceback (OSError: a judgments file that is not there)
    except (ServiceRefused, EvalError, ValueError, NotJson, OSError) as exc:
        print(f"rankers: {exc}", file=sys.stderr)
        return 1
    except httpx.HTTPError as exc:
        print(f"rankers: no answer from {a.url}: {exc!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
