"""The Gateway's client of the Ranker deployment: a call that fails or is too slow answers
None (the search falls back to the formula), and the deployment is then left alone for a
while, so a dead Ranker costs searches no timeout each."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from serve.ranker import RankerHandle


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

        async def answer() -> list[int]:
            await asyncio.sleep(self.delay)
            if self.fail:
                raise RuntimeError("replica died")
            return list(range(len(features)))[::-1]

        return answer()


async def test_failures_and_timeouts_fall_back_and_open_the_breaker() -> None:
    fake = FakeHandle()
    client = RankerHandle(fake, timeout_s=0.05, retry_after_s=0.2)  # type: ignore[arg-type]
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
