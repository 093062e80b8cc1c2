"""Values a replica reads from the database again (serve/_kept.Refreshed): a request waits
only for the first read, or for up to a second when nothing has been read for a while; a
database that stalls or fails leaves the value it had."""

from __future__ import annotations

import asyncio
import time

import pytest

from serve._kept import Refreshed


class Reads:
    """What a store answers, in order; an Exception is raised; each read takes `delay`
    (or `delays[i]` for the i-th)."""

    def __init__(self, *answers: object, delay: float = 0.0,
                 delays: dict[int, float] | None = None) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.delays = delays or {}
        self.count = 0

    async def __call__(self) -> object:
        self.count += 1
        await asyncio.sleep(self.delays.get(self.count, self.delay))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_the_first_read_is_shared_then_a_due_one_goes_on_behind() -> None:
    reads = Reads("g1", "g2", delay=0.02)
    kept = Refreshed(reads, every_s=0.1, what="the generation")
    assert await asyncio.gather(kept.get(), kept.get()) == ["g1", "g1"]  # one read, shared
    assert reads.count == 1
    await asyncio.sleep(0.12)  # due: answered at once, read again behind
    assert await kept.get() == "g1"
    await asyncio.sleep(0.05)
    assert reads.count == 2 and await kept.get() == "g2"


async def test_a_value_nobody_asked_for_a_while_is_read_before_it_is_answered() -> None:
    """A replica idle past two periods (a promotion may have happened): the next request
    waits for the read, up to wait_s."""
    reads = Reads("before", "after", delay=0.02)
    kept = Refreshed(reads, every_s=0.05, what="the production ranker", wait_s=1.0)
    assert await kept.get() == "before"
    await asyncio.sleep(0.15)
    assert await kept.get() == "after"


async def test_a_stalled_database_costs_one_wait_then_none() -> None:
    reads = Reads("g1", "g2", delays={2: 1.0})
    kept = Refreshed(reads, every_s=0.05, what="the generation", wait_s=0.1)
    assert await kept.get() == "g1"
    await asyncio.sleep(0.15)
    started = time.monotonic()
    assert await kept.get() == "g1"  # waited wait_s for the stalled read, then the kept one
    assert await kept.get() == "g1"  # the read is stuck: no more waiting
    assert 0.09 <= time.monotonic() - started < 0.5
    await asyncio.sleep(1.0)
    assert await kept.get() == "g2"


async def test_a_failed_read_keeps_the_value_and_the_first_one_is_told() -> None:
    reads = Reads(TimeoutError("stalled"), "g1", TimeoutError("stalled"), "g2")
    kept = Refreshed(reads, every_s=0.05, what="the generation")
    with pytest.raises(TimeoutError):
        await kept.get()  # nothing to answer instead
    assert await kept.get() == "g1"
    await asyncio.sleep(0.15)
    assert await kept.get() == "g1"  # read, failed: the value stays another period
    assert reads.count == 3
    await asyncio.sleep(0.15)
    assert await kept.get() == "g2"


async def test_none_is_read_again_at_once_when_asked_and_forget_waits_for_a_new_read(
        ) -> None:
    reads = Reads(None, "g1", "g2", delay=0.01)
    kept = Refreshed(reads, every_s=60.0, what="the generation", wait_for_none=True)
    assert await kept.get() is None
    assert await kept.get() == "g1"  # a None is not kept: the index went live meanwhile
    assert await kept.get() == "g1"  # fresh for a minute: no read
    assert reads.count == 2
    kept.forget()
    assert await kept.get() == "g2"


@pytest.mark.parametrize("first", ["the old read", "the new read"])
async def test_a_read_started_before_a_forget_is_never_kept(first: str) -> None:
    """This replica stopped an experiment (forget) while a read begun before the stop was
    under way: whichever ends first, the stopped one is not answered again."""
    slow = asyncio.Event()
    calls: list[int] = []

    async def read() -> str:
        calls.append(1)
        n = len(calls)
        if n == 2:
            await slow.wait()  # the read under way when the value changed
            return "before the change"
        return f"read {n}"

    kept = Refreshed(read, every_s=0.05, what="the experiment")
    assert await kept.get() == "read 1"
    await asyncio.sleep(0.06)
    assert await kept.get() == "read 1"  # read 2 starts, behind
    kept.forget()
    if first == "the old read":
        slow.set()
        await asyncio.sleep(0.01)
    assert await kept.get() == "read 3"
    slow.set()
    await asyncio.sleep(0.01)
    assert await kept.get() == "read 3"
