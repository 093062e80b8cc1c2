"""The Gateway's client of the Ranker deployment: a call that fails or is too slow answers
None (the search falls back to the formula), and the deployment is then left alone for a
while, so a dead Ranker costs searches no timeout each. Orders it got are remembered by the
candidates' feature rows: the same rows under the same ranker are not sent again."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from serve.ranker import KeptOrders, RankerHandle, RankReply
from serve.stages import Stages, untimed


class FakeHandle:
    """Stands for a DeploymentHandle: `rank.remote(...)` awaits `delay` then answers, or
    raises while `fail` is set."""

    def __init__(self) -> None:
        self.calls = 0
        self.delay = 0.0
        self.fail = False
        self.rank = self

    def remote(self, name: str, features: np.ndarray) -> Any:
        self.calls += 1

        async def answer() -> RankReply:
            await asyncio.sleep(self.delay)
            if self.fail:
                raise RuntimeError("replica died")
            return RankReply(list(range(len(features)))[::-1], 0.25, 0.5)

        return answer()


async def test_failures_and_timeouts_fall_back_and_open_the_breaker() -> None:
    fake = FakeHandle()
    client = RankerHandle(fake, timeout_s=0.05, retry_after_s=0.2,  # type: ignore[arg-type]
                          kept=0)  # every call goes out
    rows = np.zeros((3, 4))
    assert await client.rank("lgbm_1", rows) == [2, 1, 0]
    fake.fail = True
    assert await client.rank("lgbm_1", rows) is None and client.open
    calls = fake.calls
    assert await client.rank("lgbm_1", rows) is None  # open: not even called
    assert fake.calls == calls
    await asyncio.sleep(0.25)
    fake.fail, fake.delay = False, 0.5  # back, but too slow
    assert await client.rank("lgbm_1", rows) is None and client.open
    await asyncio.sleep(0.25)
    fake.delay = 0.0
    assert await client.rank("lgbm_1", rows) == [2, 1, 0] and not client.open
    assert client.failures == 2


class TransportHandle(FakeHandle):
    """Records the options a handle is derived with (`_by_reference=False`: Serve's gRPC)."""

    def __init__(self) -> None:
        super().__init__()
        self.derived: list[dict[str, object]] = []

    def options(self, **kwargs: object) -> TransportHandle:
        derived = TransportHandle()
        self.derived.append(kwargs)
        return derived


async def test_the_transport_is_the_one_configured() -> None:
    base = TransportHandle()
    grpc = RankerHandle(base, grpc=True)  # type: ignore[arg-type]
    assert base.derived == [{"_by_reference": False}]
    assert await grpc.rank("lgbm_1", np.zeros((2, 4))) == [1, 0]
    assert base.calls == 0  # the call went through the derived (gRPC) handle
    actor = TransportHandle()
    RankerHandle(actor)  # type: ignore[arg-type]
    assert actor.derived == []


async def test_the_same_rows_under_the_same_ranker_are_scored_once() -> None:
    fake = FakeHandle()
    client = RankerHandle(fake, timeout_s=0.05, retry_after_s=10.0,  # type: ignore[arg-type]
                          kept=2)
    rows = np.arange(12, dtype=np.float64).reshape(3, 4)
    assert await client.rank("lgbm_1", rows) == [2, 1, 0]
    assert await client.rank("lgbm_1", rows.copy()) == [2, 1, 0]
    assert fake.calls == 1  # the same rows: remembered
    changed = rows.copy()
    changed[1, 3] += 1e-9  # one feature of one candidate (a stock level, a price) moved
    assert await client.rank("lgbm_1", changed) == [2, 1, 0]
    assert fake.calls == 2
    assert await client.rank("lgbm_2", rows) == [2, 1, 0]  # another version: its own order
    assert fake.calls == 3
    assert await client.rank("lgbm_1", rows[:2]) == [1, 0]  # other candidates
    assert fake.calls == 4 and len(client.orders) == 2  # the two most recent kept
    fake.fail = True
    assert await client.rank("lgbm_1", np.ones((3, 4))) is None and client.open
    assert await client.rank("lgbm_1", rows[:2]) == [1, 0]  # kept: served while open
    assert await client.rank("lgbm_1", np.ones((3, 4))) is None  # a failure is not kept
    assert (client.orders.hits, client.orders.misses) == (2, 6)


def test_a_key_names_the_ranker_the_rows_and_their_shape() -> None:
    rows = np.zeros((2, 6))
    assert KeptOrders.key("a", rows) == KeptOrders.key("a", np.zeros((2, 6)))
    assert KeptOrders.key("a", rows) != KeptOrders.key("b", rows)
    assert KeptOrders.key("a", rows) != KeptOrders.key("a", np.zeros((3, 4)))  # same bytes
    assert KeptOrders.key("a", rows) != KeptOrders.key("a", rows.astype(np.float32))
    assert KeptOrders.key("a", np.asfortranarray(np.eye(3))) == KeptOrders.key("a", np.eye(3))


def test_the_least_recently_used_order_is_dropped_first() -> None:
    orders = KeptOrders(2)
    a, b, c = (KeptOrders.key("v", np.full((1, 2), x)) for x in (1.0, 2.0, 3.0))
    orders.put(a, [0])
    orders.put(b, [0])
    assert orders.get(a) == [0]  # used: now the most recent
    orders.put(c, [0])
    assert orders.get(b) is None and orders.get(a) == [0] and orders.get(c) == [0]


async def test_formulas_and_a_memo_of_none_are_not_remembered_nor_counted() -> None:
    fake = FakeHandle()
    client = RankerHandle(fake, kept=8)  # type: ignore[arg-type]
    rows = np.zeros((3, 4))
    for _ in range(2):  # a formula sent to the deployment: its rows hold the second asked
        assert await client.rank("text", rows) == [2, 1, 0]
    assert fake.calls == 2 and len(client.orders) == 0
    off = RankerHandle(fake, kept=0)  # type: ignore[arg-type]
    for _ in range(2):
        assert await off.rank("lgbm_1", rows) == [2, 1, 0]
    assert fake.calls == 4 and (off.orders.hits, off.orders.misses) == (0, 0)


async def test_a_call_that_went_out_is_the_ranker_stage_and_a_shadow_adds_nothing() -> None:
    client = RankerHandle(FakeHandle(), kept=8)  # type: ignore[arg-type]
    rows = np.ones((3, 4))
    first, again, shadow = Stages(), Stages(), Stages()
    with first.current():
        await client.rank("lgbm_1", rows)
    with again.current():
        await client.rank("lgbm_1", rows)  # remembered: nothing went out
    with shadow.current():
        async def shadowed() -> None:  # a task of the request that may outlive its answer
            with untimed():
                await client.rank("lgbm_2", rows)

        await asyncio.get_running_loop().create_task(shadowed())
    assert "ranker" in first.ms and "ranker" not in again.ms and shadow.ms == {}
    # the replica's own account of the call, beside the round trip
    assert (first.ms["ranker_queue"], first.ms["ranker_score"]) == (0.25, 0.5)
