"""Scaling inventory partitions online: hash slots handed between partition actors while a
flash sale runs, history-checked (tests/integration/histories.py).

Two clients serve the workload (as two Gateway replicas would); only one rebalances, so the
other learns every move from the partitions' `Moved` answers. Afterwards: every acknowledged
outcome is in PostgreSQL exactly once, nothing unacknowledged holds stock, the hot variant is
not oversold, the ledger balances, and each slot has exactly one owner that holds it.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections import Counter

import asyncpg
import ray

from actors import NAMESPACE
from actors.inventory_client import InventoryClient, partition_name
from adapters.postgres import inventory_slots
from domain.inventory_slots import SLOTS
from tests.integration.conftest import PARTITIONS, make_catalog
from tests.integration.histories import MIN_HITS, Ledger, chaos, setup, verify, workload

HOT_UNITS = 40


async def test_partitions_scale_up_and_down_during_a_flash_sale(
        db: asyncpg.Pool, client: InventoryClient, fresh_dsn: str) -> None:
    variants = await setup(db, client)
    hot = secrets.randbits(60)
    await make_catalog(db, {hot: {"WH_01": HOT_UNITS}})
    other = InventoryClient(PARTITIONS, fresh_dsn)  # another replica: never told of moves
    ledger, stop = Ledger(), asyncio.Event()
    sizes = itertools.cycle([6, 3, 5, 2, 7, 4, 1, 5, 3, 4, 6, 2])
    reports = []

    async def rebalance() -> bool:
        n = next(sizes)
        open_before = sum(s == "OPEN" for s in ledger.final.values())
        reports.append(await client.set_partitions(n))
        assert reports[-1].partitions == n
        return open_before > 0  # a blow lands when there were open carts to carry across

    try:
        ops, hits = await asyncio.gather(
            workload([client, other], variants, ledger, stop, hot=hot),
            chaos(rebalance, stop, budget_s=240.0))  # a slow machine rebalances slowly
        assert hits >= MIN_HITS, hits
        assert ops >= 60 and len(ledger.final) >= 30
        assert sum(r.slots_moved for r in reports) > SLOTS  # slots really moved, many times
        assert other.moved > 0, "the other replica never met a moved slot"
        assert ledger.refused, "nothing was refused: the sale was not contended"
        await verify(db, ledger)
        print({"rebalances": len(reports), "slots_moved": sum(r.slots_moved for r in reports),
               "handoffs": sum(r.handoffs for r in reports), "carts": len(ledger.final),
               "refused": len(ledger.refused), "operations": ops,
               "moved_answers": client.moved + other.moved,
               "retries": client.retries + other.retries, "unavailable": ledger.unavailable,
               "rebalance_s": [r.seconds for r in reports]})
        sold_hot = await db.fetchval(
            "SELECT sold + reserved FROM stock WHERE variant_id = $1", hot)
        assert 0 < sold_hot <= HOT_UNITS  # sold (or held), never oversold

        # one owner per slot, in PostgreSQL and in the actors' memory alike
        n = reports[-1].partitions
        owners = await inventory_slots.read_map(fresh_dsn, PARTITIONS)
        assert sorted(Counter(owners)) == list(range(n))
        stats = await client.stats()
        assert [s["slots"] for s in stats] == [Counter(owners)[k] for k in range(n)]
        # partitions beyond the last size were stopped, not left running without slots
        for k in range(n, 8):
            try:
                ray.get_actor(partition_name(k, fresh_dsn), namespace=NAMESPACE)
                raise AssertionError(f"partition {k} still runs")
            except ValueError:
                pass
        # open reservations carried across the moves still close
        still_open = [c for c, s in ledger.final.items() if s == "OPEN"]
        for cart in still_open[:10]:
            assert (await other.release(cart))["status"] == "RELEASED"

        # the other replica, told nothing of a rebalance: an operator's reads there follow
        # the map as it is now, and it rebalances in its turn (partitions this one stopped
        # are started anew there, not called through the handles it kept)
        await client.set_partitions(1)
        assert [s["slots"] for s in await other.stats()] == [SLOTS]
        assert len(await other.nodes()) == 1
        assert (await other.set_partitions(3)).partitions == 3
        owners = await inventory_slots.read_map(fresh_dsn, PARTITIONS)
        assert [s["slots"] for s in await client.stats()] == [
            Counter(owners)[k] for k in range(3)]
    finally:
        other.shutdown()
