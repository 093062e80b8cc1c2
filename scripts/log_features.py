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
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.parquet as pq
from eval_relevance import (  # scripts/ is on sys.path: our own folder
    REPO,
    SEARCH_PATH,
    TIMEOUT,
    default_data_dir,
    judgments_path,
    running_service,
)

from ranking.judgments import DATASETS, Judgments, read_judgments


async def explain(client: httpx.AsyncClient, query: str) -> dict[str, Any]:
    r = await client.get(SEARCH_PATH, params={"q": query, "page_size": 10, "explain": "true"})
    if r.status_code != 200:
        raise SystemExit(f"log_features: {query!r}: HTTP {r.status_code}: {r.text[:300]}")
    found: dict[str, Any] = r.json()["explain"]
    return found


async def collect(url: str, token: str, judgments: Judgments,
                  concurrency: int = 4) -> tuple[list[str], str, list[dict[str, Any]]]:
    gate = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=TIMEOUT, headers=headers) as client:
        async def one(q: str) -> tuple[str, dict[str, Any]]:
            async with gate:
                return q, await explain(client, q)
        answers = await asyncio.gather(*(one(q) for q in sorted(judgments)))
    names: list[str] = answers[0][1]["features"] if answers else []
    version = answers[0][1]["version"] if answers else ""
    rows = []
    for q, ans in answers:
        for rank, c in enumerate(ans["candidates"]):
            ext = str(c["external_id"] or "")
            rows.append({"query": q, "external_id": ext, "rank": rank,
                         "gain": judgments[q].get(ext, 0.0),
                         **dict(zip(names, c["values"], strict=True))})
    return names, version, rows


def write(path: Path, names: Sequence[str], version: str, rows: list[dict[str, Any]]) -> None:
    cols = ["query", "external_id", "rank", "gain", *names]
    table = pa.Table.from_pylist(rows, schema=pa.schema(
        [("query", pa.string()), ("external_id", pa.string()), ("rank", pa.int32()),
         ("gain", pa.float64()), *((n, pa.float64()) for n in names)]))
    table = table.select(cols).replace_schema_metadata({"feature_version": version})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


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
    judgments = read_judgments(judgments_path(a.data_dir or default_data_dir(), a.dataset),
                               a.dataset)
    out = a.out or REPO / ".aisle-data" / f"features-{a.dataset}.parquet"
    service_dir = a.service_data_dir or REPO / ".aisle-data" / f"eval-{a.dataset}"
    with (running_service(a.dataset, a.url.rstrip("/"), service_dir, 900) if a.start
          else contextlib.nullcontext()):
        names, version, rows = asyncio.run(collect(a.url.rstrip("/"), token, judgments))
    write(out, names, version, rows)
    judged = sum(1 for r in rows if r["gain"] > 0)
    print(f"{out}: {len(rows)} candidates of {len(judgments)} queries ({judged} with a gain), "
          f"{len(names)} features ({version})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
