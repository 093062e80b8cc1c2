"""Pre-warm the product-page cache for a flash sale: each product's metadata (kept 10 min)
and price snapshot (kept 1 min, and never past a deal's start or end) are read from
PostgreSQL and written to Redis now, replacing what is there. Talks to a running service's
internal API.

    AISLE_INTERNAL_TOKEN=... scripts/prewarm --products 123,456 [--top 1000]
                             [--url http://127.0.0.1:8000]

Run it shortly before the sale starts: price snapshots expire after a minute, so for a sale
that starts with a deal the prices are loaded again (once per product and replica) when the
deal starts; the metadata stays.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx

from tooling.cli import answered, run


def product_ids(text: str) -> list[int]:
    try:
        ids = [int(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("comma-separated product ids") from None
    if any(i < 1 for i in ids):
        raise argparse.ArgumentTypeError("product ids are positive")
    return ids


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/prewarm", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--products", type=product_ids, default=[], help="id,id,...")
    p.add_argument("--top", type=int, default=0,
                   help="also the N products most sold, then most reviewed")
    a = p.parse_args()
    if not a.products and a.top == 0:
        p.error("name --products, or --top N")
    token = os.environ.get("AISLE_INTERNAL_TOKEN")
    if not token:
        p.error("set AISLE_INTERNAL_TOKEN (scripts/demo prints it)")
    with httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=600) as client:
        r = client.post("/api/v1/internal/cache/prewarm", params={"wait": "true"},
                        json={"product_ids": a.products, "top": a.top})
    print(json.dumps(answered(r), indent=2))  # an error: one line on stderr, exit 1
    return 0


if __name__ == "__main__":
    sys.exit(run("prewarm", main))
