"""Full index rebuild: parallel builder workers scan PostgreSQL into a new generation beside the
live one; it is checked (document count, canary queries) and swapped in atomically; the
previous generation is kept for rollback, current (every change is written to it too).
Talks to a running service's internal API.

    AISLE_INTERNAL_TOKEN=... scripts/rebuild_index [--url http://127.0.0.1:8000] [--workers 4]
    AISLE_INTERNAL_TOKEN=... scripts/rebuild_index --status
    AISLE_INTERNAL_TOKEN=... scripts/rebuild_index --rollback   # the previous one live again
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx

from tooling.cli import answered, run


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/rebuild_index", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--status", action="store_true", help="show generations and lag only")
    p.add_argument("--rollback", action="store_true",
                   help="make the previous generation live again (twice: undone)")
    a = p.parse_args()
    if a.status and a.rollback:
        p.error("--status or --rollback, not both")
    token = os.environ.get("AISLE_INTERNAL_TOKEN")
    if not token:
        p.error("set AISLE_INTERNAL_TOKEN (scripts/demo prints it)")
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=a.url, headers=headers, timeout=3600) as client:
        if a.status:
            r = client.get("/api/v1/internal/search/status")
        elif a.rollback:
            r = client.post("/api/v1/internal/search/rollback")
        else:
            # waits for the report; the rebuild goes on if this is interrupted (its job:
            # GET /api/v1/internal/jobs/{job_id})
            r = client.post("/api/v1/internal/search/rebuild",
                            params={"workers": a.workers, "wait": "true"})
    print(json.dumps(answered(r), indent=2))  # an error: one line on stderr, exit 1
    return 0


if __name__ == "__main__":
    sys.exit(run("rebuild_index", main))
