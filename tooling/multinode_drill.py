"""python -m tooling.multinode_drill --dsn DSN --variants ID,ID,... [--partitions 6]
                                     [--seconds 9] [--clients 16]

A node-loss drill for the inventory partitions on a multi-node Ray cluster made on this
machine (`ray.cluster_utils.Cluster`: a head and two worker nodes, one CPU each). The
partition actors are spread over the nodes (`PartitionOptions(scheduling="SPREAD")`); clients
reserve one unit at a time, each with its own idempotency key, for --seconds; a third of the way
in, the worker node holding the most partitions is removed without warning. Ray starts its
partitions again on the other nodes, where they rebuild from PostgreSQL; calls in flight are
retried with the same key.

Prints one JSON object: the nodes of the partitions before and after, the node removed, and
the reservations acknowledged (with their ids), refused and failed. What was acknowledged must
be in PostgreSQL (tests/integration/test_multinode.py checks it, with the ledger invariants).
The variants must exist with stock in the database (the caller makes them).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys

import ray
from ray._private.node import Node
from ray.cluster_utils import Cluster

from actors.inventory import PartitionOptions
from actors.inventory_client import InventoryClient, InventoryUnavailable
from domain.errors import AisleError


async def drill(cluster: Cluster, workers: list[Node], a: argparse.Namespace) -> dict[
        str, object]:
    variants = [int(v) for v in a.variants.split(",")]
    client = InventoryClient(a.partitions, a.dsn, call_timeout_s=3.0, deadline_s=60.0,
                             options=PartitionOptions(scheduling="SPREAD"))
    await client.stock(variants)  # every partition up, its variants loaded
    before = await client.nodes()
    acked: list[str] = []
    refused = failed = 0
    loop = asyncio.get_running_loop()
    stop = loop.time() + a.seconds
    rnd = random.Random(7)

    async def reserve(i: int) -> None:
        nonlocal refused, failed
        n = 0
        while loop.time() < stop:
            n += 1
            try:
                got = await client.reserve([(rnd.choice(variants), 1, None)],
                                           key=f"drill-{i}-{n}")
                acked.append(str(got["reservation_id"]))
            except InventoryUnavailable:
                failed += 1
            except AisleError:
                refused += 1

    load = asyncio.gather(*(reserve(i) for i in range(a.clients)))
    await asyncio.sleep(a.seconds / 3)
    ids = {w.node_id: w for w in workers}
    victim = max(ids, key=before.count)
    cluster.remove_node(ids[victim], allow_graceful=False)
    await load
    after = await client.nodes()
    return {"nodes_before": before, "nodes_after": after, "removed": victim,
            "partitions_moved": sum(1 for b in before if b == victim),
            "acked": len(acked), "reservation_ids": acked, "refused": refused,
            "failed": failed, "retries": client.retries}


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m tooling.multinode_drill", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dsn", required=True)
    p.add_argument("--variants", required=True, help="comma-separated variant ids")
    p.add_argument("--partitions", type=int, default=6)
    p.add_argument("--seconds", type=float, default=9.0)
    p.add_argument("--clients", type=int, default=16)
    a = p.parse_args()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        report = asyncio.run(drill(cluster, workers, a))
    finally:
        ray.shutdown()
        cluster.shutdown()
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
