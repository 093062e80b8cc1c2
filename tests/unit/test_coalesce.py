"""adapters.coalesce: items submitted while calls are under way go together in the next call."""

from __future__ import annotations

import asyncio

import pytest

from adapters.coalesce import Coalescer


async def test_batches_form_under_load_and_each_item_gets_its_own_result() -> None:
    calls: list[tuple[str, list[int]]] = []
    gate = asyncio.Event()

    async def send(key: str, items: list[int]) -> list[int]:
        calls.append((key, items))
        await gate.wait()
        return [i * 10 for i in items]

    c: Coalescer[str, int, int] = Coalescer(send, in_flight=1, max_per_call=3)
    futs = [c.submit("a", i) for i in range(7)] + [c.submit("b", 100)]
    await asyncio.sleep(0)
    assert calls == [("a", [0]), ("b", [100])]  # the first goes alone: no waiting when idle
    gate.set()
    assert await asyncio.gather(*futs) == [0, 10, 20, 30, 40, 50, 60, 1000]
    assert calls[2:] == [("a", [1, 2, 3]), ("a", [4, 5, 6])]  # at most 3, one call at a time
    assert not c._waiting and not c._running  # nothing kept for quiet keys


async def test_a_failed_call_fails_its_items_only_and_given_up_items_are_not_sent() -> None:
    sent: list[list[str]] = []
    gate = asyncio.Event()

    async def send(key: int, items: list[str]) -> list[str]:
        sent.append(items)
        await gate.wait()
        if "boom" in items:
            raise RuntimeError("actor died")
        return [i.upper() for i in items]

    c: Coalescer[int, str, str] = Coalescer(send, in_flight=1, max_per_call=10)
    first = c.submit(1, "boom")
    gone = c.submit(1, "late")
    rest = c.submit(1, "ok")
    gone.cancel()  # its caller gave up before it was sent
    gate.set()
    with pytest.raises(RuntimeError, match="actor died"):
        await first
    assert await rest == "OK"
    assert sent == [["boom"], ["ok"]]
