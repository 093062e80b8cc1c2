"""The Ranker deployment: orders search candidates with a ranker chosen per request by name: a
formula of `ranking`, or a learned model version of the registry (loaded from PostgreSQL on its
first request, checksum verified, kept while in use). Requests are batched (`@serve.batch`);
batch size and wait are tunable at run time through `user_config` ({"max_batch_size": ..,
"batch_wait_timeout_s": ..}).

A model that cannot be loaded answers None for its requests (the Gateway then falls back to
the formula and says so); the other requests of the batch are not affected.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import Protocol

import asyncpg
import numpy as np
from ray import serve
from ray.serve.handle import DeploymentHandle

from adapters.cache.breaker import Breaker
from adapters.postgres import create_pool
from adapters.postgres.ranker_registry import RankerRegistry, checksum
from ranking import Ranker, get_ranker, order_of, ranker_names
from ranking.lgbm import LgbmRanker

log = logging.getLogger("aisle.ranker")
MODELS_KEPT = 8  # loaded model versions per replica (production, candidates under test)
RANK_TIMEOUT_S = 2.0  # a re-ranking call that takes longer falls back to the formula
RANK_RETRY_AFTER_S = 1.0  # after a failed call, the deployment is left alone this long


class RankerClient(Protocol):
    """What the search service asks of the Ranker deployment: the order of candidates
    (indices into `features`' rows, best first) under the ranker `name`; None when that
    ranker cannot be used (a model that does not load)."""

    async def rank(self, name: str, features: np.ndarray) -> list[int] | None: ...


class RankerHandle:
    """`RankerClient` through the deployment's Serve handle, with a timeout and a breaker:
    a call that fails or takes over `timeout_s` answers None (the search falls back to the
    formula and says so), and for `retry_after_s` after that the deployment is not called
    (a dead Ranker costs searches nothing, not a timeout each). `grpc`: through Serve's
    interdeployment gRPC transport (`_by_reference=False`: the request and the order go over
    gRPC, not as Ray actor calls and objects; scripts/bench_ranker --transports actor,grpc)."""

    def __init__(self, handle: DeploymentHandle, timeout_s: float = RANK_TIMEOUT_S,
                 retry_after_s: float = RANK_RETRY_AFTER_S, grpc: bool = False) -> None:
        self._handle = handle.options(_by_reference=False) if grpc else handle
        self.timeout_s = timeout_s
        self.breaker = Breaker(retry_after_s, name="Ranker deployment")

    @property
    def open(self) -> bool:
        return not self.breaker.closed

    @property
    def failures(self) -> int:
        return self.breaker.failures

    async def rank(self, name: str, features: np.ndarray) -> list[int] | None:
        async def call() -> list[int] | None:
            order: list[int] | None = await asyncio.wait_for(
                self._handle.rank.remote(name, features), self.timeout_s)
            return order

        return await self.breaker.call("rank", call)


class ModelStore:
    """Rankers by name for one process: formulas from `ranking`, learned versions loaded
    from the registry (at most MODELS_KEPT, least recently used dropped)."""

    def __init__(self, registry: RankerRegistry | None) -> None:
        self.registry = registry
        self._loaded: OrderedDict[str, Ranker] = OrderedDict()

    async def get(self, name: str) -> Ranker:
        """ValueError when a version cannot be loaded (unknown, corrupt, wrong shape)."""
        if name in self._loaded:
            self._loaded.move_to_end(name)
            return self._loaded[name]
        if name in ranker_names():
            ranker: Ranker = get_ranker(name)
        else:
            if self.registry is None:
                raise ValueError(f"no registry to load {name!r} from")
            record, artifact = await self.registry.artifact(name)
            if checksum(artifact) != record.checksum:
                raise ValueError(f"{name}: artifact does not match its checksum")
            ranker = LgbmRanker.from_bytes(artifact, name, record.features)
        self._loaded[name] = ranker
        while len(self._loaded) > MODELS_KEPT:
            self._loaded.popitem(last=False)
        return ranker


@serve.deployment(name="Ranker", max_ongoing_requests=256, ray_actor_options={"num_cpus": 0.25})
class RankerDeployment:
    async def __init__(self, database_url: str | None = None) -> None:  # type: ignore[misc]
        self._pool: asyncpg.Pool | None = (
            await create_pool(database_url, min_size=0, max_size=2) if database_url else None)
        self.models = ModelStore(RankerRegistry(self._pool) if self._pool else None)

    def reconfigure(self, config: dict[str, float]) -> None:
        if "max_batch_size" in config:
            self.rank_batch.set_max_batch_size(  # type: ignore[attr-defined]
                int(config["max_batch_size"]))
        if "batch_wait_timeout_s" in config:
            self.rank_batch.set_batch_wait_timeout_s(  # type: ignore[attr-defined]
                float(config["batch_wait_timeout_s"]))

    # no wait for more requests: a batch is what queued while the last one was scored (at 16
    # in flight 0 and 2 ms give the same calls/s; alone, a call answers 2.5 ms sooner)
    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.0)
    async def rank_batch(self, requests: list[tuple[str, np.ndarray]]) -> list[list[int] | None]:
        out: list[list[int] | None] = [None for _ in requests]
        for name in {n for n, _ in requests}:  # one model call per model name in the batch
            mine = [i for i, (n, _) in enumerate(requests) if n == name]
            try:
                ranker = await self.models.get(name)
                scores = ranker.score(np.vstack([requests[i][1] for i in mine]))
            except Exception as exc:  # this model's requests fall back; the others go on
                log.error("ranker %s unavailable: %r", name, exc)
                continue
            start = 0
            for i in mine:
                n = len(requests[i][1])
                out[i] = [int(j) for j in order_of(scores[start:start + n])]
                start += n
        return out

    async def rank(self, name: str, features: np.ndarray) -> list[int] | None:
        order: list[int] | None = await self.rank_batch((name, features))
        return order
