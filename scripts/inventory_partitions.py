"""Inventory partitions: show them, or rebalance the hash slots over N partition actors while
the service runs (reservations keep flowing: slots move by handoffs between batches).
Talks to a running service's internal API.

    AISLE_INTERNAL_TOKEN=... scripts/inventory_partitions            # owners, slots, moves
    AISLE_INTERNAL_TOKEN=... scripts/inventory_partitions --set 12   # rebalance over 12
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx

from tooling.cli import answered, run


def main() -> int:
    p = argparse.ArgumentParser(prog="scripts/inventory_partitions", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default="http://127.0.0.1:8000")
    p.add_argument("--set", type=int, metavar="N", dest="partitions",
                   help="spread the slots over N partitions (starts or stops actors)")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")
    a = p.parse_args()
    token = os.environ.get("AISLE_INTERNAL_TOKEN")
    if not token:
        p.error("set AISLE_INTERNAL_TOKEN (scripts/demo prints it)")
    path = "/api/v1/internal/inventory/partitions"
    with httpx.Client(base_url=a.url, headers={"Authorization": f"Bearer {token}"},
                      timeout=600) as client:
        if a.partitions is not None:
            r = client.put(path, json={"partitions": a.partitions})
            d = answered(r)
            if not a.json:
                print(f"{d['partitions_before']} -> {d['partitions']} partitions: "
                      f"{d['slots_moved']} slots moved in {d['handoffs']} handoffs, "
                      f"{d['seconds']} s")
            r = r if a.json else client.get(path)
        else:
            r = client.get(path)
    body = answered(r)  # an error: one line on stderr, exit 1
    if a.json or "owners" not in body:
        print(json.dumps(body, indent=2))
        return 0
    print(f"{body['partitions']} partitions over {body['slots']} slots")
    print(f"{'partition':>9} {'slots':>6} {'variants':>9} {'open':>6} {'commits':>8}  node")
    for o in body["owners"]:
        print(f"{o['partition']:>9} {o['slots']:>6} {o['variants']:>9} "
              f"{o['open_reservations']:>6} {o['commits']:>8}  {o['node_id'][:12]}")
    for m in body["moves"][:5]:
        print(f"moved {m['slots']} slots {m['source']} -> {m['target']} at {m['moved_at']}")
    return 0


if __name__ == "__main__":
    sys.exit(run("inventory_partitions", main))
