"""Ranker experiments in PostgreSQL (migration 0015): their definitions, the arms guardrails
stopped, and shoppers' events on search results attributed to arms."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Literal

import asyncpg

from domain.errors import Conflict, NotFound
from ranking.experiments import Arm, ArmStats, Experiment, Guardrails

EventKind = Literal["click", "add_to_cart"]


class ExperimentNotFound(NotFound):
    code = "experiment_not_found"


@dataclasses.dataclass(frozen=True)
class ExperimentRecord:
    experiment: Experiment
    status: Literal["running", "stopped"]
    created_by: str
    created_at: datetime
    stopped_by: str | None
    stopped_at: datetime | None
    stop_reason: str | None
    # counters as they were when the experiment (or a guardrail's stop of an arm) stopped
    # them: the figures shown for those arms from then on
    frozen: Mapping[str, ArmStats] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class SearchEvent:
    kind: EventKind
    search_id: str
    product_id: int
    position: int | None
    session_id: str | None
    experiment: str | None
    arm: str | None
    team: str | None


@dataclasses.dataclass(frozen=True)
class EventCounts:
    """Events of one arm: clicks, add-to-carts, and (interleaving) searches it won."""

    clicks: int = 0
    add_to_carts: int = 0
    wins: int = 0


def _counters(s: ArmStats) -> dict[str, object]:
    return {"requests": s.requests, "zero_results": s.zero_results, "errors": s.errors,
            "latency": list(s.latency), "agreement_sum": s.agreement_sum}


def _count(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _stats(d: Mapping[str, object]) -> ArmStats:
    latency = d.get("latency")
    buckets = len(ArmStats().latency)
    return ArmStats(requests=_count(d.get("requests")),
                    zero_results=_count(d.get("zero_results")),
                    errors=_count(d.get("errors")),
                    # kept as many buckets as there are now (the bounds may change)
                    latency=tuple(_count(x) for x in latency[:buckets])
                    + (0,) * (buckets - len(latency[:buckets]))
                    if isinstance(latency, list) else ArmStats().latency,
                    agreement_sum=_count(d.get("agreement_sum")))


@dataclasses.dataclass(frozen=True)
class _Stops:
    reasons: Mapping[str, str]
    stats: Mapping[str, ArmStats]


def _experiment(row: asyncpg.Record, stops: _Stops | None) -> ExperimentRecord:
    g = row["guardrails"]
    exp = Experiment(
        name=row["name"], kind=row["kind"],
        arms=tuple(Arm(a["name"], a["ranker"], int(a["weight"])) for a in row["arms"]),
        guardrails=Guardrails(float(g["max_error_rate"]), float(g["max_p99_ms"]),
                              int(g["min_requests"])),
        shadow=row["shadow"], shadow_sample=float(row["shadow_sample"]),
        stopped_arms=dict(stops.reasons) if stops else {})
    final = {a: _stats(v) for a, v in (row["final_stats"] or {}).items()}
    # an arm a guardrail stopped before the experiment ended: its counters then
    return ExperimentRecord(exp, row["status"], row["created_by"], row["created_at"],
                            row["stopped_by"], row["stopped_at"], row["stop_reason"],
                            final | dict(stops.stats if stops else {}))


class ExperimentStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def create(self, e: Experiment, created_by: str) -> ExperimentRecord:
        """Starts `e`; Conflict if its name is taken or another experiment runs."""
        try:
            await self.pool.execute(
                """INSERT INTO experiments (name, kind, arms, guardrails, shadow,
                                            shadow_sample, created_by)
                   VALUES ($1, $2, $3, $4, $5, $6, $7)""",
                e.name, e.kind, [dataclasses.asdict(a) for a in e.arms],
                dataclasses.asdict(e.guardrails), e.shadow, e.shadow_sample, created_by)
        except asyncpg.UniqueViolationError as exc:
            if "experiments_one_running" in str(exc):
                running = await self.running()
                raise Conflict(f"experiment {running.experiment.name if running else '?'} "
                               "is running: stop it first", "experiment_running") from exc
            raise Conflict(f"an experiment named {e.name!r} exists (names are not reused: "
                           "their statistics stay)", "experiment_exists") from exc
        return await self.get(e.name)

    async def _stops(self, names: list[str]) -> dict[str, _Stops]:
        rows = await self.pool.fetch(
            "SELECT experiment, arm, reason, stats FROM experiment_arm_stops "
            "WHERE experiment = ANY($1::text[])", names)
        reasons: dict[str, dict[str, str]] = {}
        stats: dict[str, dict[str, ArmStats]] = {}
        for r in rows:
            reasons.setdefault(r["experiment"], {})[r["arm"]] = r["reason"]
            if r["stats"] is not None:
                stats.setdefault(r["experiment"], {})[r["arm"]] = _stats(r["stats"])
        return {n: _Stops(reasons[n], stats.get(n, {})) for n in reasons}

    async def get(self, name: str) -> ExperimentRecord:
        row = await self.pool.fetchrow("SELECT * FROM experiments WHERE name = $1", name)
        if row is None:
            raise ExperimentNotFound(f"no experiment {name!r}")
        return _experiment(row, (await self._stops([name])).get(name))

    async def all(self) -> list[ExperimentRecord]:
        rows = await self.pool.fetch("SELECT * FROM experiments ORDER BY created_at DESC")
        stops = await self._stops([r["name"] for r in rows])
        return [_experiment(r, stops.get(r["name"])) for r in rows]

    async def running(self) -> ExperimentRecord | None:
        row = await self.pool.fetchrow("SELECT * FROM experiments WHERE status = 'running'")
        if row is None:
            return None
        return _experiment(row, (await self._stops([row["name"]])).get(row["name"]))

    async def stop(self, name: str, by: str, reason: str | None,
                   stats: Mapping[str, ArmStats] | None = None) -> ExperimentRecord:
        """Stops it, keeping `stats` (its arms' counters now: None, unknown) as its figures."""
        done = await self.pool.fetchval(
            """UPDATE experiments SET status = 'stopped', stopped_by = $2, stopped_at = now(),
                                      stop_reason = $3, final_stats = $4
               WHERE name = $1 AND status = 'running' RETURNING name""", name, by, reason,
            None if stats is None else {a: _counters(s) for a, s in stats.items()})
        if done is None:
            found = await self.get(name)  # ExperimentNotFound
            raise Conflict(f"experiment {name!r} is {found.status}", "experiment_stopped")
        return await self.get(name)

    async def stop_arm(self, name: str, arm: str, reason: str,
                       stats: ArmStats | None = None) -> bool:
        """Records a guardrail's stop of `arm`, with its counters now as its figures (False:
        it was stopped already)."""
        # only while the experiment runs: a replica that has not read the experiment's stop
        # yet would stop an arm on counters taken after it
        done = await self.pool.fetchval(
            """INSERT INTO experiment_arm_stops (experiment, arm, reason, stats)
               SELECT $1, $2, $3, $4 WHERE EXISTS (
                   SELECT 1 FROM experiments WHERE name = $1 AND status = 'running')
               ON CONFLICT DO NOTHING RETURNING arm""", name, arm, reason,
            None if stats is None else _counters(stats))
        return done is not None

    async def record(self, e: SearchEvent) -> SearchEvent:
        """Records the event; credited to its experiment's arm only while the experiment
        runs and that arm was not stopped (read in the same statement: a replica that has
        not yet heard of a stop credits nothing after it). Answers the event as recorded."""
        row = await self.pool.fetchrow(
            """WITH live AS (
                   SELECT EXISTS (SELECT 1 FROM experiments x WHERE x.name = $6
                                    AND x.status = 'running')
                          AND NOT EXISTS (SELECT 1 FROM experiment_arm_stops s
                                          WHERE s.experiment = $6 AND s.arm = $7) AS credit)
               INSERT INTO search_events (kind, search_id, product_id, position, session_id,
                                          experiment, arm, team)
               SELECT $1, $2, $3, $4, $5, CASE WHEN credit THEN $6 END,
                      CASE WHEN credit THEN $7 END, CASE WHEN credit THEN $8 END FROM live
               RETURNING experiment, arm, team""",
            e.kind, e.search_id, e.product_id, e.position, e.session_id, e.experiment, e.arm,
            e.team)
        if row is None:  # an INSERT ... SELECT of one row returns it
            raise RuntimeError("the event was not recorded")
        return dataclasses.replace(e, experiment=row["experiment"], arm=row["arm"],
                                   team=row["team"])

    async def counts(self, name: str, team_arms: tuple[str, str]) -> dict[str, EventCounts]:
        """Per arm: clicks and add-to-carts credited to it, and searches it won (the arm whose
        team got more of the search's clicked products; interleaving only: `team_arms` are
        the arms of teams a and b). A product clicked (or added) twice from one search
        counts once: every event is kept, a repeat is not credited again."""
        rows = await self.pool.fetch(
            """SELECT arm,
                      count(DISTINCT (search_id, product_id)) FILTER (WHERE kind = 'click')
                          AS clicks,
                      count(DISTINCT (search_id, product_id)) FILTER (
                          WHERE kind = 'add_to_cart') AS carts
               FROM search_events WHERE experiment = $1 AND arm IS NOT NULL GROUP BY arm""",
            name)
        wins = await self.pool.fetch(
            """SELECT winner, count(*) AS n FROM (
                   SELECT CASE WHEN count(DISTINCT product_id) FILTER (WHERE team = 'a')
                                    > count(DISTINCT product_id) FILTER (WHERE team = 'b')
                                    THEN 'a'
                               WHEN count(DISTINCT product_id) FILTER (WHERE team = 'b')
                                    > count(DISTINCT product_id) FILTER (WHERE team = 'a')
                                    THEN 'b' END AS winner
                   FROM search_events
                   WHERE experiment = $1 AND kind = 'click' AND team IS NOT NULL
                   GROUP BY search_id) s
               WHERE winner IS NOT NULL GROUP BY winner""", name)
        out = {r["arm"]: EventCounts(int(r["clicks"]), int(r["carts"])) for r in rows}
        for w in wins:
            arm = team_arms[0 if w["winner"] == "a" else 1]
            out[arm] = dataclasses.replace(out.get(arm, EventCounts()), wins=int(w["n"]))
        return out
