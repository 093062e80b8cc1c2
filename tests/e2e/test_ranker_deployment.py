"""The Ranker deployment (learned models are re-ranked there, batched): one call, and many
concurrent calls batched together, each answered with its own order."""

from __future__ import annotations

import asyncio

import numpy as np
from ray import serve

from ranking import FEATURES, get_ranker, order


async def test_ranker_deployment_orders_each_request_of_a_batch(app_url: str) -> None:
    handle = serve.get_deployment_handle("Ranker", app_name="aisle")
    rng = np.random.default_rng(7)
    requests = [rng.random((int(rng.integers(1, 40)), len(FEATURES))) for _ in range(50)]
    names = ["text" if i % 2 else "default" for i in range(len(requests))]
    got = await asyncio.gather(*(handle.rank.remote(n, f)
                                 for n, f in zip(names, requests, strict=True)))
    for n, f, best in zip(names, requests, got, strict=True):
        assert best == [int(i) for i in order(get_ranker(n), f)]
        assert sorted(best) == list(range(len(f)))
