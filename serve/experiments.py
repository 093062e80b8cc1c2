"""The experiment router of a Gateway replica: which arm of the running experiment (if any)
orders a search, counting what each arm served, and the guardrails that stop an arm.

Only searches that ask for the `default` ranker and carry a session id (`X-Session-Id`
header or `aisle_session` cookie) take part: an explicit `ranker=` is a request for that
ranker, and a request without a session cannot be kept in one arm. The running experiment is
read from PostgreSQL again every REFRESH_S per replica (behind the searches; one waits, up
to a second, only after a replica had none for a while), so starting or stopping one (or a
guardrail's stop of an arm) reaches every replica within about a second.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Coroutine

from adapters.experiment_metrics import ExperimentMetrics
from adapters.postgres.experiments import ExperimentStore
from domain.errors import Conflict
from ranking.experiments import SHADOW, Arm, ArmStats, Experiment, assign, breach
from serve._kept import Refreshed

log = logging.getLogger("aisle.experiments")
REFRESH_S = 1.0
GUARD_EVERY_S = 2.0  # how often a replica checks the guardrails (while it counts searches)


@dataclasses.dataclass(frozen=True)
class Routing:
    """A search's place in an experiment: its A/B arm, or the two interleaved arms; and the
    shadow ranker when this search is in the shadow's sample."""

    experiment: Experiment
    session: str
    arm: Arm | None
    interleaved: tuple[Arm, Arm] | None
    shadow: str | None

    @property
    def arms(self) -> tuple[Arm, ...]:
        """The arms this search is counted in: its A/B arm, or both interleaved ones."""
        return (self.arm,) if self.arm is not None else self.interleaved or ()

    @property
    def pair(self) -> tuple[Arm, Arm]:
        """The interleaved arms (ValueError for an A/B search)."""
        if self.interleaved is None:
            raise ValueError("not an interleaved search")
        return self.interleaved

    def to_json(self) -> dict[str, str]:
        return {"name": self.experiment.name, "kind": self.experiment.kind,
                "arm": self.arm.name if self.arm else "interleaved"}


class ExperimentRouter:
    def __init__(self, store: ExperimentStore, metrics: ExperimentMetrics) -> None:
        self.store = store
        self.metrics = metrics
        # read again behind the searches (serve/_kept.Refreshed says when one waits)
        self._current = Refreshed(self._running, REFRESH_S, "the running experiment")
        self._guarded_at = 0.0
        self._tasks: set[asyncio.Task[None]] = set()

    def forget(self) -> None:
        """Read the running experiment again on the next search (after this replica changed
        it)."""
        self._current.forget()

    async def _running(self) -> Experiment | None:
        record = await self.store.running()
        return record.experiment if record else None

    async def current(self) -> Experiment | None:
        try:
            return await self._current.get()
        except Exception as exc:  # PostgreSQL down, none read yet: no experiment for now
            log.warning("running experiment not read: %r", exc)
            return None

    async def route(self, session: str | None, requested: str) -> Routing | None:
        if session is None or requested != "default":
            return None
        e = await self.current()
        if e is None:
            return None
        shadow = (e.shadow if e.shadow is not None and e.live(SHADOW)
                  and random.random() < e.shadow_sample else None)
        if e.kind == "ab":
            arm = assign(e, session)
            return Routing(e, session, arm, None, shadow) if e.live(arm.name) else None
        a, b = e.arms
        if not (e.live(a.name) and e.live(b.name)):
            return None
        return Routing(e, session, None, (a, b), shadow)

    def spawn(self, work: Coroutine[object, object, None]) -> None:
        """Runs `work` off the request path (kept referenced until done)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def count(self, experiment: Experiment, arm: str, ms: float, *, zero: bool = False,
              error: bool = False, agreement: int | None = None) -> None:
        """Counts one search of `arm` (in the background), and checks the guardrails every
        GUARD_EVERY_S."""
        self.spawn(self.metrics.count(experiment.name, arm, ms, zero=zero, error=error,
                                      agreement=agreement))
        if time.monotonic() - self._guarded_at >= GUARD_EVERY_S:
            self._guarded_at = time.monotonic()
            self.spawn(self._guarded(experiment))

    async def _guarded(self, e: Experiment) -> None:
        await self.guard(e)

    async def counters(self, e: Experiment) -> dict[str, ArmStats] | None:
        """Every arm's counters now (and the shadow's); None when Redis cannot say."""
        names = [a.name for a in e.arms] + ([SHADOW] if e.shadow else [])
        try:
            return await self.metrics.read(e.name, names)
        except Exception as exc:  # Redis down: the stop goes on, its figures stay live ones
            log.warning("counters of %s not read: %r", e.name, exc)
            return None

    async def guard(self, e: Experiment) -> list[tuple[str, str]]:
        """Stops each live arm (and the shadow) whose counters breach the guardrails, and
        the experiment once no arm is left to show; returns the (arm, reason) stopped now
        (arm "": the experiment)."""
        names = [a.name for a in e.arms] + ([SHADOW] if e.shadow else [])
        stopped = []
        try:
            stats = await self.metrics.read(e.name, names)
            for name in names:
                why = breach(stats[name], e.guardrails) if e.live(name) else None
                if why and await self.store.stop_arm(e.name, name, why, stats[name]):
                    log.warning("experiment %s: guardrail stopped arm %s: %s", e.name, name,
                                why)
                    stopped.append((name, why))
            if stopped or any(not e.live(a.name) for a in e.arms):
                # read again (another replica may have stopped an arm since `e` was read):
                # with no arm left to show, the experiment is over (it stayed running,
                # blocking the next one, with nothing to measure)
                fresh = await self.store.get(e.name)
                if fresh.status == "running" and not self._serves(fresh.experiment):
                    try:
                        await self.store.stop(e.name, "guardrails",
                                              "every arm stopped by its guardrails",
                                              await self.counters(fresh.experiment))
                    except Conflict:  # stopped meanwhile (an operator, another replica)
                        pass
                    else:
                        log.warning("experiment %s stopped: no arm left", e.name)
                        stopped.append(("", "experiment stopped: no arm left"))
        except Exception as exc:
            log.warning("guardrails of %s not checked: %r", e.name, exc)
        if stopped:
            self.forget()
        return stopped

    @staticmethod
    def _serves(e: Experiment) -> bool:
        """Whether `e` still shows searches: an A/B test while any arm is live, an
        interleaving while both are."""
        live = [a.name for a in e.arms if e.live(a.name)]
        return bool(live) if e.kind == "ab" else len(live) == len(e.arms)
