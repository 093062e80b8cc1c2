"""Background jobs' records (real PostgreSQL): a running job's replica renews its sign of
life, and a job whose replica died is told as failed, saying so (it stayed running)."""

from __future__ import annotations

import asyncio

import asyncpg

from adapters.postgres.jobs import ORPHAN_S, JobStore
from serve.jobs import Jobs


async def test_a_running_job_says_it_is_alive_and_an_orphan_is_failed(
        db: asyncpg.Pool) -> None:
    store = JobStore(db)
    jobs = Jobs(store, heartbeat_s=0.05)
    release = asyncio.Event()

    async def work() -> dict[str, object]:
        await release.wait()
        return {"done": True}

    live = await jobs.start("cache.prewarm", {}, work)
    # a job whose replica died: started long ago, silent since
    dead = await store.start("index.rebuild", {"workers": 2})
    await db.execute("UPDATE jobs SET alive_at = now() - make_interval(secs => $2), "
                     "created_at = now() - interval '1 hour' WHERE job_id = $1",
                     dead.job_id, ORPHAN_S + 5)
    await db.execute("UPDATE jobs SET alive_at = now() - interval '1 hour' "
                     "WHERE job_id = $1", live.job_id)  # as old, until its next beat
    await asyncio.sleep(0.3)
    got = await store.get(live.job_id)
    assert got is not None and got.status == "running"  # its beat renewed it in time
    gone = await store.get(dead.job_id)
    assert gone is not None and gone.status == "failed" and gone.finished_at is not None
    assert gone.error is not None and "replica stopped before it ended" in gone.error
    # the build itself runs in the index builder and may go live (probe 49: it did, while
    # the job said "start it again", which answered 409 rebuild_under_way)
    assert "/api/v1/internal/search/status" in gone.error
    assert "start it again if not" in gone.error
    assert {j.job_id: j.status for j in await store.recent(None, 10)} == {
        live.job_id: "running", dead.job_id: "failed"}
    other = await store.start("cache.prewarm", {"products": 1})  # another kind: its own work
    await db.execute("UPDATE jobs SET alive_at = now() - make_interval(secs => $2) "
                     "WHERE job_id = $1", other.job_id, ORPHAN_S + 5)
    await store.recent(None, 10)  # finds the orphans
    orphan = await store.get(other.job_id)
    assert orphan is not None and orphan.error is not None
    assert orphan.error.endswith("): start it again") and "index builder" not in orphan.error
    release.set()
    assert await jobs.result(live) == {"done": True}
    done = await store.get(live.job_id)
    assert done is not None and done.status == "succeeded"
    beat_after = await db.fetchval("SELECT alive_at FROM jobs WHERE job_id = $1", live.job_id)
    await asyncio.sleep(0.2)  # no beat after the end
    assert await db.fetchval("SELECT alive_at FROM jobs WHERE job_id = $1",
                             live.job_id) == beat_after
