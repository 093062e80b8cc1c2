"""scripts/eval_relevance --dataset esci|icecat [--url URL] [--rankers bm25_title,default]
                         [--start | --fresh-starts N]

Search quality through the public search API: nDCG@10 of each ranker over the dataset's judged
queries (../shared/data/<dataset>/judgments.csv, or --data-dir, or $AISLE_SHARED_DATA).

For every judged query and ranker: GET {url}/api/v1/products/search?q=<query>&page_size=10
&ranker=<name>; the top 10 `results[i]["external_id"]` (esci: asin, icecat: products.id) are
scored with linear-gain nDCG@10 (ranking.metrics): unjudged results gain 0, gains are icecat
rating / 3 and esci Exact 1, Substitute 0.1, Complement 0.01, Irrelevant 0 (ranking.judgments).
`bm25_title` (plain BM25 over titles, the baseline) is always evaluated; every other ranker is
compared with it query by query.

The service must serve that dataset's catalog alone (other catalogs in the same database add
unjudged results). Either run it yourself, e.g. `scripts/demo --dataset icecat --data-dir
.aisle-data/eval-icecat`, or pass --start: this script then runs `scripts/demo --dataset
<dataset> --port <port of --url> --data-dir <--service-data-dir>` (its output goes to stderr),
waits until /health answers (the service is ready: its index and the query model built with
it are loaded), evaluates at once, and stops it (SIGTERM). The first start loads the catalog
into that directory; later starts reuse it. With DATABASE_URL or ES_URL set, the demo uses
those servers instead: they must hold only this catalog.

--fresh-starts N: N starts, each from an empty data dir (its own embedded PostgreSQL and
Redis: the catalog loaded and indexed anew), evaluated right after ready. Prints each start's
nDCG@10, the spread (max - min) per ranker, and the queries whose results differ between
starts: the same catalog must give the same answers on every start (spread 0).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from ranking.judgments import DATASETS, Judgments, read_judgments
from tooling.relevance import (
    REPO,
    SHARED_DATA_ENV,
    EvalError,
    RankerRun,
    fetch,
    judgments_path,
    score_run,
)

BASELINE = "bm25_title"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def parse_rankers(text: str) -> tuple[str, ...]:
    """Comma-separated names, baseline first (added when missing), duplicates dropped."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    return tuple(dict.fromkeys([BASELINE, *names]))


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="scripts/eval_relevance", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset", required=True, choices=DATASETS)
    p.add_argument("--url", default="http://127.0.0.1:8000", help="the aisle HTTP API")
    p.add_argument("--rankers", type=parse_rankers, default=parse_rankers("default"),
                   help=f"comma-separated ranker names ({BASELINE} is always included; "
                        f"default: {BASELINE},default)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"folder holding <dataset>/judgments.csv (default ${SHARED_DATA_ENV}, "
                        "else ../shared/data next to the repo)")
    p.add_argument("--k", type=int, default=10, help="cut-off and page_size (default 10)")
    p.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    p.add_argument("--per-query", action="store_true", help="also print nDCG per query")
    p.add_argument("--start", action="store_true",
                   help="run scripts/demo with the dataset for the evaluation, then stop it")
    p.add_argument("--service-data-dir", type=Path, default=None,
                   help="--start: the demo's --data-dir (default .aisle-data/eval-<dataset>)")
    p.add_argument("--start-timeout", type=float, default=900.0,
                   help="--start: seconds to wait for the service to be ready")
    p.add_argument("--fresh-starts", type=int, default=0, metavar="N",
                   help="N starts from empty data dirs (embedded servers), evaluated right "
                        "after ready; reports the spread between them")
    args = p.parse_args(list(argv))
    if args.k < 1 or args.concurrency < 1 or args.fresh_starts < 0:
        p.error("--k and --concurrency must be >= 1, --fresh-starts >= 0")
    if args.fresh_starts and args.start:
        p.error("--fresh-starts starts the service itself: drop --start")
    args.url = args.url.rstrip("/")
    if args.service_data_dir is None:
        args.service_data_dir = REPO / ".aisle-data" / f"eval-{args.dataset}"
    return args


def format_report(dataset: str, judgments: Judgments, runs: Sequence[RankerRun], k: int,
                  url: str) -> str:
    base = next((r for r in runs if r.name == BASELINE), None)
    head = f"nDCG@{k}"
    lines = [f"{dataset}: {len(judgments)} judged queries, nDCG@{k} of the top {k} results "
             f"(linear gains, unjudged = 0), via {url}"]
    width = max(len("ranker"), *(len(r.name) for r in runs))
    lines.append(f"{'ranker':<{width}}  queries  {head:>8}  {'vs ' + BASELINE:>14}  "
                 f"{'better/worse':>12}  zero-result queries")
    for r in runs:
        if base is None or r is base:
            diff, wins = "—", "—"
        else:
            delta = {q: r.ndcg[q] - base.ndcg[q] for q in r.ndcg}
            better = sum(1 for d in delta.values() if d > 1e-9)
            worse = sum(1 for d in delta.values() if d < -1e-9)
            diff, wins = f"{r.mean - base.mean:+.4f}", f"{better}/{worse}"
        lines.append(f"{r.name:<{width}}  {len(r.ndcg):>7}  {r.mean:>8.4f}  {diff:>14}  "
                     f"{wins:>12}  {len(r.zero_result)}")
    hopeless = sum(1 for judged in judgments.values() if max(judged.values(), default=0) <= 0)
    if hopeless:
        lines.append(f"note: {hopeless} queries have no relevant judged product and score 0 "
                     f"under every ranker (best possible mean "
                     f"{(len(judgments) - hopeless) / len(judgments):.4f})")
    return "\n".join(lines)


def format_per_query(runs: Sequence[RankerRun]) -> str:
    width = max(len(q) for q in runs[0].ndcg) if runs and runs[0].ndcg else 5
    lines = [f"{'query':<{width}}  " + "  ".join(f"{r.name:>10}" for r in runs)]
    for q in sorted(runs[0].ndcg if runs else ()):
        lines.append(f"{q:<{width}}  " + "  ".join(f"{r.ndcg[q]:>10.4f}" for r in runs))
    return "\n".join(lines)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/health", timeout=5.0).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def running_service(dataset: str, url: str, data_dir: Path, timeout_s: float,
                    demo_args: Sequence[str] = ()) -> Iterator[None]:
    """scripts/demo serving `dataset` on the port of `url` (with `demo_args`), until the
    block ends."""
    parts = urlsplit(url)
    if parts.hostname not in LOCAL_HOSTS:
        raise EvalError(f"--start serves on this machine; --url {url} is not local")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if _healthy(url):
        raise EvalError(f"something already answers on {url}: stop it, or pass another "
                        "--url port, or drop --start to evaluate that service")
    for var in ("DATABASE_URL", "ES_URL"):
        if os.environ.get(var):
            print(f"warning: {var} is set: the demo uses that server, which must hold only "
                  f"the {dataset} catalog", file=sys.stderr)
    cmd = [str(REPO / "scripts" / "demo"), "--dataset", dataset, "--port", str(port),
           "--data-dir", str(data_dir), *demo_args]
    print(f"starting: {' '.join(cmd)}", file=sys.stderr, flush=True)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=sys.stderr, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout_s
        while not _healthy(url):  # ready: evaluated at once, as a shopper would search
            if proc.poll() is not None:
                raise EvalError(f"scripts/demo exited with status {proc.returncode} before "
                                "it was ready (its output is above)")
            if time.monotonic() > deadline:
                raise EvalError(f"the service on {url} was not ready within "
                                f"{timeout_s:.0f} s")
            time.sleep(0.5)
        yield
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # the demo stops Ray and what it started
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


Results = dict[str, dict[str, list[str]]]  # ranker -> query -> external ids


def evaluate(args: argparse.Namespace, judgments: Judgments) -> tuple[list[RankerRun], Results]:
    queries = sorted(judgments)
    runs, found = [], {}
    for ranker in args.rankers:
        results = asyncio.run(fetch(args.url, queries, ranker, args.k, args.concurrency))
        runs.append(score_run(ranker, judgments, results, args.k))
        found[ranker] = results
    return runs, found


def format_spread(starts: Sequence[tuple[list[RankerRun], Results]], k: int) -> str:
    """Each start's nDCG per ranker, the spread (max - min), and how many queries got other
    results in some start than in the first."""
    names = [r.name for r in starts[0][0]]
    width = max(len("ranker"), *(len(n) for n in names))
    cols = "  ".join(f"{'start ' + str(i + 1):>8}" for i in range(len(starts)))
    lines = [f"{len(starts)} fresh starts, nDCG@{k} right after ready",
             f"{'ranker':<{width}}  {cols}  {'spread':>8}  queries differing"]
    for n, name in enumerate(names):
        means = [runs[n].mean for runs, _ in starts]
        first = starts[0][1][name]
        differ = sorted(q for q in first if any(found[name][q] != first[q]
                                                for _, found in starts[1:]))
        lines.append(f"{name:<{width}}  " + "  ".join(f"{m:>8.4f}" for m in means)
                     + f"  {max(means) - min(means):>8.4f}  {len(differ)}"
                     + (f"  (e.g. {', '.join(repr(q) for q in differ[:5])})" if differ else ""))
    return "\n".join(lines)


def fresh_starts(args: argparse.Namespace, judgments: Judgments
                 ) -> list[tuple[list[RankerRun], Results]]:
    for var in ("DATABASE_URL", "REDIS_URL", "ES_URL"):
        if os.environ.get(var):
            raise EvalError(f"--fresh-starts starts from empty embedded servers: unset {var}")
    out = []
    for i in range(args.fresh_starts):
        data_dir = Path(tempfile.mkdtemp(prefix=f"eval-{args.dataset}-{i + 1}-",
                                         dir=REPO / ".aisle-data" if (REPO / ".aisle-data")
                                         .is_dir() else None))
        try:
            print(f"start {i + 1}/{args.fresh_starts}: {data_dir}", file=sys.stderr, flush=True)
            with running_service(args.dataset, args.url, data_dir, args.start_timeout):
                out.append(evaluate(args, judgments))
        finally:
            shutil.rmtree(data_dir, ignore_errors=True)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    path = judgments_path(args.data_dir, args.dataset)
    try:
        if not path.is_file():
            raise EvalError(f"no judgments at {path} (pass --data-dir or set {SHARED_DATA_ENV})")
        judgments = read_judgments(path, args.dataset)
        if not judgments:
            raise EvalError(f"{path} holds no judgments")
        if args.fresh_starts:
            starts = fresh_starts(args, judgments)
            for n, (runs, _) in enumerate(starts, start=1):
                print(f"start {n}: " + format_report(args.dataset, judgments, runs, args.k,
                                                     args.url))
            print(format_spread(starts, args.k))
            return 0
        with contextlib.ExitStack() as stack:
            if args.start:
                stack.enter_context(running_service(args.dataset, args.url,
                                                    args.service_data_dir,
                                                    args.start_timeout))
            runs, _ = evaluate(args, judgments)
    except (EvalError, ValueError) as exc:
        print(f"eval_relevance: {exc}", file=sys.stderr)
        return 1
    print(format_report(args.dataset, judgments, runs, args.k, args.url))
    if args.per_query:
        print()
        print(format_per_query(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
