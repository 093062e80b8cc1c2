"""Experiment arms' counters and search impressions in Redis, shared by every Gateway replica.

Counters are one hash per arm (adapters/redis_keys.experiment_arm_key): `requests`,
`zero_results`, `errors`, `b<i>` (latency histogram, ranking/experiments.LATENCY_BOUNDS_MS),
`agreement` (shadow only). One pipelined round trip per counted search, off the request path.
An impression records which arm (and, interleaving, which team) showed each result of an
experiment search, so that a click posted later is credited to the right arm. Redis down:
counts and impressions are lost for the moment (searches are served all the same).
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Mapping, Sequence

import redis.asyncio as aioredis

from adapters.redis_keys import experiment_arm_key, impression_key
from ranking.experiments import LATENCY_BOUNDS_MS, ArmStats, Team, latency_bucket

log = logging.getLogger("aisle.experiments")
COUNTERS_TTL_S = 30 * 86_400
IMPRESSION_TTL_S = 3_600  # a click on a result shown more than an hour ago is not credited


@dataclasses.dataclass(frozen=True)
class Impression:
    experiment: str
    arm: str | None  # the A/B arm (None: interleaved, see `teams`)
    teams: Mapping[int, Team]  # product -> the team that placed it (interleaving)
    team_arms: tuple[str, str] | None = None  # interleaving: the arms of teams a and b
    shown: frozenset[int] | None = None  # the page's products (None: an older record)

    def arm_of(self, product_id: int) -> tuple[str | None, Team | None]:
        """The arm credited with a result of this search, and its team (interleaving); none
        for a product the search did not show."""
        if self.shown is not None and product_id not in self.shown:
            return None, None
        team = self.teams.get(product_id)
        if self.arm is not None or team is None or self.team_arms is None:
            return self.arm, team
        return self.team_arms[0 if team == "a" else 1], team

    def to_json(self) -> str:
        return json.dumps({"experiment": self.experiment, "arm": self.arm,
                           "teams": {str(k): v for k, v in self.teams.items()},
                           "team_arms": self.team_arms,
                           "shown": None if self.shown is None else sorted(self.shown)})

    @staticmethod
    def from_json(raw: bytes | str) -> Impression:
        d = json.loads(raw)
        arms = d.get("team_arms")
        shown = d.get("shown")
        return Impression(d["experiment"], d["arm"],
                          {int(k): v for k, v in (d.get("teams") or {}).items()},
                          (arms[0], arms[1]) if arms else None,
                          None if shown is None else frozenset(int(x) for x in shown))


class ExperimentMetrics:
    def __init__(self, redis: aioredis.Redis | None) -> None:
        self.redis = redis

    async def count(self, experiment: str, arm: str, ms: float, *, zero: bool = False,
                    error: bool = False, agreement: int | None = None) -> None:
        if self.redis is None:
            return
        key = experiment_arm_key(experiment, arm)
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.hincrby(key, "requests", 1)
                pipe.hincrby(key, f"b{latency_bucket(ms)}", 1)
                if zero:
                    pipe.hincrby(key, "zero_results", 1)
                if error:
                    pipe.hincrby(key, "errors", 1)
                if agreement is not None:
                    pipe.hincrby(key, "agreement", agreement)
                pipe.expire(key, COUNTERS_TTL_S)
                await pipe.execute()
        except Exception as exc:
            log.warning("experiment counters of %s/%s not written: %r", experiment, arm, exc)

    async def read(self, experiment: str, arms: Sequence[str]) -> dict[str, ArmStats]:
        """The counters of `arms` (zeros for one that has none)."""
        if self.redis is None or not arms:
            return {a: ArmStats() for a in arms}
        async with self.redis.pipeline(transaction=False) as pipe:
            for a in arms:
                pipe.hgetall(experiment_arm_key(experiment, a))
            found: list[dict[bytes, bytes]] = await pipe.execute()
        out = {}
        for a, h in zip(arms, found, strict=True):
            v = {k.decode(): int(n) for k, n in h.items()}
            out[a] = ArmStats(
                requests=v.get("requests", 0), zero_results=v.get("zero_results", 0),
                errors=v.get("errors", 0),
                latency=tuple(v.get(f"b{i}", 0) for i in range(len(LATENCY_BOUNDS_MS))),
                agreement_sum=v.get("agreement", 0))
        return out

    async def remember(self, search_id: str, impression: Impression) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.set(impression_key(search_id), impression.to_json(),
                                 ex=IMPRESSION_TTL_S)
        except Exception as exc:
            log.warning("impression %s not kept: %r", search_id, exc)

    async def impression(self, search_id: str) -> Impression | None:
        if self.redis is None:
            return None
        raw = await self.redis.get(impression_key(search_id))
        return Impression.from_json(raw) if raw else None
