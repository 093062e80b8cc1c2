"""Values a replica reads from the database again in the background (serve/_kept.Refreshed):
a search waits only for the first read, and a database that stalls or fails keeps the value
it had."""

from __future__ import annotations

import asyncio

import pytest

from serve._kept import Refreshed


class Reads:
    """What a store answers, in order; an Exception is raised; each read takes `delay`."""

    def __init__(self, *answers: object, delay: float = 0.0) -> None:
        self.answers = list(answers)
        self.delay = delay
        self.count = 0

    async def __call__(self) -> object:
        self.count += 1
        await asyncio.sleep(self.delay)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


async def test_only_the_first_read_is_waited_for_then_reads_go_on_behind() -> None:
    reads = Reads("g1", "g2", delay=0.05)
    kept = Refreshed(reads, every_s=0.0, what="the generation")
    assert await asyncio.gather(kept.get(), kept.get()) == ["g1", "g1"]  # one read, shared
    assert reads.count == 1
    assert await kept.get() == "g1"  # old: answered at once, read again behind
    await asyncio.sleep(0)
    assert reads.count == 2
    await asyncio.sleep(0.1)
    assert await kept.get() == "g2"


async def test_a_failed_read_keeps_the_value_and_the_first_one_is_told() -> None:
    reads = Reads(TimeoutError("stalled"), "g1", TimeoutError("stalled"), "g2")
    kept = Refreshed(reads, every_s=0.0, what="the generation")
    with pytest.raises(TimeoutError):
        await kept.get()  # nothing to answer instead
    assert await kept.get() == "g1"
    assert await kept.get() == "g1"  # starts the read that fails
    await asyncio.sleep(0.01)
    assert await kept.get() == "g1"  # kept through the failure; reads again
    await asyncio.sleep(0.01)
    assert await kept.get() == "g2"


async def test_none_is_read_again_at_once_when_asked_and_forget_waits_for_a_new_read(
        ) -> None:
    reads = Reads(None, "g1", "g2", "g3", delay=0.01)
    kept = Refreshed(reads, every_s=60.0, what="the generation", wait_for_none=True)
    assert await kept.get() is None
    assert await kept.get() == "g1"  # a None is not kept: the index went live meanwhile
    assert await kept.get() == "g1"  # fresh for a minute: no read
    assert reads.count == 2
    kept.forget()
    assert await kept.get() == "g2"
    behind = Refreshed(Reads("old", "new", delay=0.0), every_s=60.0, what="x")
    assert await behind.get() == "old"
    behind.forget()
    assert await behind.get() == "new"


async def test_a_read_started_before_a_forget_never_replaces_a_newer_one() -> None:
    slow = asyncio.Event()

    async def read() -> str:
        n = calls.append(1) or len(calls)
        if n == 2:
            await slow.wait()  # the read under way when the value changed
            return "before the change"
        return f"read {n}"

    calls: list[int] = []
    kept = Refreshed(read, every_s=0.0, what="the experiment")
    assert await kept.get() == "read 1"
    assert await kept.get() == "read 1"  # read 2 starts, behind
    kept.forget()
    assert await kept.get() == "read 3"
    slow.set()
    await asyncio.sleep(0.01)
    assert kept._kept is not None and kept._kept[1] == "read 3"
