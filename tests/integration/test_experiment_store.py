"""Ranker experiments' records (real PostgreSQL): what is credited and kept once an
experiment, or one of its arms, stopped, whatever a replica that has not read the stop yet
believes."""

from __future__ import annotations

import asyncpg

from adapters.postgres.experiments import ExperimentStore, SearchEvent
from ranking.experiments import Arm, ArmStats, Experiment


def _event(arm: str) -> SearchEvent:
    return SearchEvent("click", "0123456789abcdef", 7, 1, "s1", "e1", arm, None)


async def test_stopped_arms_and_experiments_credit_nothing_and_keep_their_counters(
        db: asyncpg.Pool) -> None:
    store = ExperimentStore(db)
    await store.create(Experiment("e1", "ab", (Arm("a", "formula"), Arm("b", "text"))), "t")
    assert (await store.record(_event("a"))).arm == "a"  # runs: credited
    at_stop = ArmStats(requests=40, errors=9)
    assert await store.stop_arm("e1", "a", "error rate", at_stop)
    recorded = await store.record(_event("a"))  # by a replica that still shows arm a
    assert (recorded.experiment, recorded.arm) == (None, None)
    assert (await store.record(_event("b"))).arm == "b"
    final = {"a": ArmStats(requests=45, errors=11), "b": ArmStats(requests=50)}
    await store.stop("e1", "test", None, final)
    assert (await store.record(_event("b"))).experiment is None
    # a replica that has not read the stop yet stops arm b on later counters: not recorded
    assert not await store.stop_arm("e1", "b", "p99", ArmStats(requests=60))
    record = await store.get("e1")
    assert record.frozen == {"a": at_stop, "b": ArmStats(requests=50)}  # a at its own stop
    counts = await store.counts("e1", ("a", "b"))
    assert (counts["a"].clicks, counts["b"].clicks) == (1, 1)
    events = await db.fetch("SELECT arm FROM search_events ORDER BY event_id")
    assert [e["arm"] for e in events] == ["a", None, "b", None]  # every event kept
