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
import dataclasses
import hashlib
import logging
import time
from collections import OrderedDict
from typing import Protocol

import asyncpg
import numpy as np
import numpy.typing as npt
from ray import serve
from ray.serve.handle import DeploymentHandle

from adapters.cache.breaker import Breaker
from adapters.postgres import create_pool
from adapters.postgres.ranker_registry import RankerRegistry, checksum
from ranking import Ranker, get_ranker, order_of, ranker_names
from ranking.lgbm import LgbmRanker
from serve.stages import add_timing, timed

log = logging.getLogger("aisle.ranker")
MODELS_KEPT = 8  # loaded model versions per replica (production, candidates under test)
RANK_TIMEOUT_S = 2.0  # a re-ranking call that takes longer falls back to the formula
RANK_RETRY_AFTER_S = 1.0  # after a failed call, the deployment is left alone this long
ORDERS_KEPT = 4096  # orders a Gateway replica remembers (~1 KB each for 200 candidates)


@dataclasses.dataclass(frozen=True, slots=True)
class RankReply:
    """The Ranker deployment's answer to one call: the order (None: that ranker cannot be
    used), and the handler's account of the call's time: from reaching the handler to its
    batch being scored (`queued_ms`), and the batch's scoring (`scored_ms`). The caller's
    round trip minus these is the transport, Serve's own handling in the replica before the
    handler, and the caller's own waits (its event loop)."""

    order: list[int] | None
    queued_ms: float = 0.0
    scored_ms: float = 0.0


class RankerClient(Protocol):
    """What the search service asks of the Ranker deployment: the order of candidates
    (indices into `features`' rows, best first) under the ranker `name`; None when that
    ranker cannot be used (a model that does not load)."""

    async def rank(self, name: str, features: np.ndarray) -> list[int] | None: ...


class KeptOrders:
    """Orders a ranker gave, by (ranker name, the candidates' feature rows): a ranker scores
    each row alone from the row and its version (a name is one artifact, never rewritten), so
    the same rows under the same name have the same order. A repeated search whose
    candidates' features did not change (the same stock, price, words ...) is not scored
    again; any change to a row is a new key. At most `kept` orders, least recently used
    dropped (0: none kept)."""

    def __init__(self, kept: int = ORDERS_KEPT) -> None:
        self.kept = kept
        self._orders: OrderedDict[tuple[str, bytes], bytes] = OrderedDict()  # int32s
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(name: str, features: npt.NDArray[np.float64]) -> tuple[str, bytes]:
        rows = np.ascontiguousarray(features)
        digest = hashlib.blake2b(rows.tobytes(), digest_size=16)
        digest.update(f"{rows.dtype.str}{rows.shape}".encode())
        return name, digest.digest()

    def get(self, key: tuple[str, bytes]) -> list[int] | None:
        found = self._orders.get(key)
        if found is None:
            self.misses += 1
            return None
        self.hits += 1
        self._orders.move_to_end(key)
        return np.frombuffer(found, dtype=np.int32).tolist()

    def put(self, key: tuple[str, bytes], order: list[int]) -> None:
        if self.kept <= 0:
            return
        self._orders[key] = np.asarray(order, dtype=np.int32).tobytes()
        self._orders.move_to_end(key)
        while len(self._orders) > self.kept:
            self._orders.popitem(last=False)

    def __len__(self) -> int:
        return len(self._orders)


class RankerHandle:
    """`RankerClient` through the deployment's Serve handle, with a timeout and a breaker:
    a call that fails or takes over `timeout_s` answers None (the search falls back to the
    formula and says so), and for `retry_after_s` after that the deployment is not called
    (a dead Ranker costs searches nothing, not a timeout each). `grpc`: through Serve's
    interdeployment gRPC transport (`_by_reference=False`: the request and the order go over
    gRPC, not as Ray actor calls and objects; scripts/bench_ranker --transports actor,grpc).
    The orders it got for learned versions are remembered (`KeptOrders`, `kept` of them):
    the same candidates with the same features under the same version are not sent again,
    also while the breaker is open. The `ranker` stage of a search's Server-Timing is a call
    that went out (the Gateway's round trip); `ranker_queue` and `ranker_score` are the
    Ranker handler's part of it (`RankReply`)."""

    def __init__(self, handle: DeploymentHandle, timeout_s: float = RANK_TIMEOUT_S,
                 retry_after_s: float = RANK_RETRY_AFTER_S, grpc: bool = False,
                 kept: int = ORDERS_KEPT) -> None:
        self._handle = handle.options(_by_reference=False) if grpc else handle
        self.timeout_s = timeout_s
        self.breaker = Breaker(retry_after_s, name="Ranker deployment")
        self.orders = KeptOrders(kept)

    @property
    def open(self) -> bool:
        return not self.breaker.closed

    @property
    def failures(self) -> int:
        return self.breaker.failures

    async def rank(self, name: str, features: np.ndarray) -> list[int] | None:
        # a learned version's order only: a formula's rows carry the second it was asked
        # (they would never repeat) and a formula may be registered anew under its name
        key = (KeptOrders.key(name, features)
               if self.orders.kept > 0 and name not in ranker_names() else None)
        kept = self.orders.get(key) if key is not None else None
        if kept is not None:
            return kept

        async def call() -> RankReply:
            reply: RankReply = await asyncio.wait_for(
                self._handle.rank.remote(name, features), self.timeout_s)
            return reply

        with timed("ranker"):
            reply = await self.breaker.call("rank", call)
        if reply is None:
            return None
        add_timing("ranker_queue", reply.queued_ms)
        add_timing("ranker_score", reply.scored_ms)
        if reply.order is not None and key is not None:
            self.orders.put(key, reply.order)
        return reply.order


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
    async def rank_batch(self, requests: list[tuple[str, np.ndarray, float]]
                         ) -> list[RankReply]:
        """Each request: (ranker name, features, when the replica got it: perf_counter)."""
        started = time.perf_counter()
        out: list[list[int] | None] = [None for _ in requests]
        for name in {n for n, _, _ in requests}:  # one model call per model name in the batch
            mine = [i for i, (n, _, _) in enumerate(requests) if n == name]
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
        scored_ms = (time.perf_counter() - started) * 1000
        return [RankReply(order, (started - got) * 1000, scored_ms)
                for order, (_, _, got) in zip(out, requests, strict=True)]

    async def rank(self, name: str, features: np.ndarray) -> RankReply:
        reply: RankReply = await self.rank_batch((name, features, time.perf_counter()))
        return reply
