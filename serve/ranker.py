"""The Ranker deployment: re-ranks search candidates with a model from `ranking/`, chosen per
request by name. Requests are batched (`@serve.batch`); batch size and wait are tunable at
run time through `user_config` ({"max_batch_size": .., "batch_wait_timeout_s": ..})."""

from typing import Any, Protocol

import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from ranking import Ranker, get_ranker, order_of


class RankerClient(Protocol):
    """What the search service asks of the Ranker deployment: the order of candidates
    (indices into `features`' rows, best first) under the model `name`."""

    async def rank(self, name: str, features: np.ndarray) -> list[int]: ...


class RankerHandle:
    """`RankerClient` through the deployment's Serve handle."""

    def __init__(self, handle: DeploymentHandle) -> None:
        self._handle = handle

    async def rank(self, name: str, features: np.ndarray) -> list[int]:
        order: list[int] = await self._handle.rank.remote(name, features)
        return order


@serve.deployment(name="Ranker", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.25})
class RankerDeployment:
    def __init__(self) -> None:
        self._rankers: dict[str, Ranker] = {}

    def reconfigure(self, config: dict[str, Any]) -> None:
        if "max_batch_size" in config:
            self.rank_batch.set_max_batch_size(  # type: ignore[attr-defined]
                int(config["max_batch_size"]))
        if "batch_wait_timeout_s" in config:
            self.rank_batch.set_batch_wait_timeout_s(  # type: ignore[attr-defined]
                float(config["batch_wait_timeout_s"]))

    def _ranker(self, name: str) -> Ranker:
        if name not in self._rankers:
            self._rankers[name] = get_ranker(name)
        return self._rankers[name]

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.002)
    async def rank_batch(self, requests: list[tuple[str, np.ndarray]]) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in requests]
        for name in {n for n, _ in requests}:  # one model call per model name in the batch
            mine = [i for i, (n, _) in enumerate(requests) if n == name]
            stacked = np.vstack([requests[i][1] for i in mine])
            scores = self._ranker(name).score(stacked)
            start = 0
            for i in mine:
                n = len(requests[i][1])
                part = scores[start:start + n]
                out[i] = [int(j) for j in order_of(part)]
                start += n
        return out

    async def rank(self, name: str, features: np.ndarray) -> list[int]:
        return await self.rank_batch((name, features))
