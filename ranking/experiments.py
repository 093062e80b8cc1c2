"""Ranker experiments, the pure part (no I/O, no Ray): which arm a session is in, team-draft
interleaving and its credit, per-arm statistics and the guardrails that stop an arm.

An experiment is one of:
- `ab`: sessions split between arms by a stable hash of (experiment, session id), in
  proportion to the arms' weights; a session stays in its arm for the experiment's life (an
  arm that a guardrail stopped sends its sessions back to production, the others keep theirs);
- `interleave`: two arms; every session in it is shown one list made of both rankers' orders
  by team-draft interleaving (Radlinski, Kurup & Joachims, 2008), and a click credits the arm
  whose team placed the clicked result. The arm whose team got more clicks in a search wins it.

Either kind may name a `shadow` ranker: a sample of the experiment's searches is also ordered
by it, off the request path, and only measured (latency, errors, agreement with what was
shown); a shadow never changes what a shopper sees.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import random
from collections.abc import Mapping, Sequence
from typing import Literal

BUCKETS = 10_000  # hash space of the A/B split: weights resolve to 0.01 % of sessions
# search latency histogram (milliseconds, upper bounds; the last bucket is everything above)
LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2, 3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750, 1000, 1500, 2000,
    3000, 5000, math.inf)
Kind = Literal["ab", "interleave"]
Team = Literal["a", "b"]
EXPERIMENT_NAME = r"[a-z0-9][a-z0-9_-]{0,39}"  # in URL paths
SHADOW = "shadow"  # the name the shadow ranker's statistics go by


@dataclasses.dataclass(frozen=True)
class Arm:
    name: str
    ranker: str  # as `ranker=` names it: default, formula, a formula, a model version
    weight: int = 1  # share of sessions (ab), relative to the other arms'


@dataclasses.dataclass(frozen=True)
class Guardrails:
    """An arm is stopped once it has served `min_requests` searches and its error rate is
    above `max_error_rate` or its p99 latency above `max_p99_ms`."""

    max_error_rate: float = 0.02
    max_p99_ms: float = 1000.0
    min_requests: int = 100


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    kind: Kind
    arms: tuple[Arm, ...]
    guardrails: Guardrails = Guardrails()
    shadow: str | None = None
    shadow_sample: float = 0.0  # share of the experiment's searches the shadow also orders
    stopped_arms: Mapping[str, str] = dataclasses.field(default_factory=dict)  # arm -> why

    def __post_init__(self) -> None:
        problems = experiment_problems(self.kind, self.arms, self.guardrails, self.shadow,
                                       self.shadow_sample)
        if problems:
            raise ValueError("; ".join(f"{k}: {v}" for k, v in problems.items()))

    def arm(self, name: str) -> Arm:
        return next(a for a in self.arms if a.name == name)

    def live(self, arm: str) -> bool:
        return arm not in self.stopped_arms


def experiment_problems(kind: str, arms: Sequence[Arm], guardrails: Guardrails,
                        shadow: str | None, shadow_sample: float) -> dict[str, str]:
    """What is wrong with an experiment's definition, by field (empty: nothing)."""
    out: dict[str, str] = {}
    names = [a.name for a in arms]
    if kind not in ("ab", "interleave"):
        out["kind"] = "ab or interleave"
    if kind == "interleave" and len(arms) != 2:
        out["arms"] = "an interleaving experiment has exactly two arms"
    elif not 2 <= len(arms) <= 10:
        out["arms"] = "2 to 10 arms"
    elif len(set(names)) != len(names) or SHADOW in names:
        out["arms"] = f"arm names must be distinct and not {SHADOW!r}"
    elif any(a.weight < 1 or a.weight > BUCKETS for a in arms):
        out["arms"] = f"weights are whole numbers from 1 to {BUCKETS}"
    if not 0.0 <= shadow_sample <= 1.0 or math.isnan(shadow_sample):
        out["shadow_sample"] = "a share from 0 to 1"
    elif shadow_sample > 0 and shadow is None:
        out["shadow"] = "a shadow sample needs a shadow ranker"

    g = guardrails
    if not 0.0 <= g.max_error_rate <= 1.0:
        out["guardrails.max_error_rate"] = "a share from 0 to 1"
    if not g.max_p99_ms > 0 or math.isnan(g.max_p99_ms):
        out["guardrails.max_p99_ms"] = "milliseconds above 0"
    if g.min_requests < 1:
        out["guardrails.min_requests"] = "at least 1"
    return out


def bucket(experiment: str, session: str) -> int:
    """The session's place in the experiment's hash space (stable across processes and
    restarts; another experiment splits the same sessions independently)."""
    digest = hashlib.blake2b(f"{experiment}\x00{session}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % BUCKETS


def assign(e: Experiment, session: str) -> Arm:
    """The A/B arm of a session: its bucket against the arms' cumulative weights (the split
    is the same whichever arms are stopped, so a stop moves nobody else)."""
    total = sum(a.weight for a in e.arms)
    point = bucket(e.name, session) * total // BUCKETS
    for a in e.arms:
        if point < a.weight:
            return a
        point -= a.weight
    return e.arms[-1]


def team_draft(a: Sequence[int], b: Sequence[int], seed: int) -> tuple[list[int], list[Team]]:
    """Team-draft interleaving of two orders of the same items: in each round the team with
    fewer picks (a coin, seeded, when even) picks its best item not yet picked. Returns the
    interleaved order and the team of each position."""
    rnd = random.Random(seed)
    picked: set[int] = set()
    out: list[int] = []
    teams: list[Team] = []
    ia = ib = na = nb = 0
    n = len(set(a) | set(b))
    while len(out) < n:
        a_turn = na < nb or (na == nb and rnd.random() < 0.5)
        order, i = (a, ia) if a_turn else (b, ib)
        while i < len(order) and order[i] in picked:
            i += 1
        if i == len(order):  # this team has nothing left: the other picks
            a_turn = not a_turn
            order, i = (a, ia) if a_turn else (b, ib)
            while i < len(order) and order[i] in picked:
                i += 1
        item = order[i]
        picked.add(item)
        out.append(item)
        teams.append("a" if a_turn else "b")
        if a_turn:
            ia, na = i + 1, na + 1
        else:
            ib, nb = i + 1, nb + 1
    return out, teams


def interleave_seed(experiment: str, session: str, query: str) -> int:
    """The coin of a session's interleaving for one query: the same list on a reload."""
    digest = hashlib.blake2b(f"{experiment}\x00{session}\x00{query}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "big")


def winner(clicked_teams: Sequence[Team | None]) -> Team | None:
    """The team credited with more of a search's clicks (None: a tie, or no clicks)."""
    a = sum(1 for t in clicked_teams if t == "a")
    b = sum(1 for t in clicked_teams if t == "b")
    return "a" if a > b else "b" if b > a else None


def latency_bucket(ms: float) -> int:
    """The histogram bucket of a latency (index into LATENCY_BOUNDS_MS)."""
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if ms <= bound:
            return i
    return len(LATENCY_BOUNDS_MS) - 1


def quantile_ms(histogram: Sequence[int], q: float) -> float | None:
    """The upper bound of the bucket holding the q-quantile (None: no samples; inf: above
    the last finite bound)."""
    total = sum(histogram)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for bound, n in zip(LATENCY_BOUNDS_MS, histogram, strict=False):
        seen += n
        if seen >= rank:
            return bound
    return LATENCY_BOUNDS_MS[-1]


@dataclasses.dataclass(frozen=True)
class ArmStats:
    """What an arm served and what shoppers did with it. For the shadow, `agreement_sum` is
    the sum over its searches of how many of the shown top 10 it also put in its top 10."""

    requests: int = 0
    zero_results: int = 0
    errors: int = 0
    latency: tuple[int, ...] = (0,) * len(LATENCY_BOUNDS_MS)
    clicks: int = 0
    add_to_carts: int = 0
    wins: int = 0  # interleaving: searches whose clicks went mostly to this arm's team
    agreement_sum: int = 0

    @property
    def error_rate(self) -> float:
        return self.errors / self.requests if self.requests else 0.0

    @property
    def zero_result_rate(self) -> float:
        return self.zero_results / self.requests if self.requests else 0.0

    @property
    def p99_ms(self) -> float | None:
        return quantile_ms(self.latency, 0.99)

    @property
    def ctr(self) -> float:
        return self.clicks / self.requests if self.requests else 0.0


def breach(stats: ArmStats, g: Guardrails) -> str | None:
    """Why a guardrail stops this arm now (None: it goes on)."""
    if stats.requests < g.min_requests:
        return None
    if stats.error_rate > g.max_error_rate:
        return (f"error rate {stats.error_rate:.3f} above {g.max_error_rate:.3f} "
                f"after {stats.requests} searches")
    p99 = stats.p99_ms
    if p99 is not None and p99 > g.max_p99_ms:
        return f"p99 {p99:g} ms above {g.max_p99_ms:g} ms after {stats.requests} searches"
    return None


def top_agreement(shown: Sequence[int], other: Sequence[int], k: int = 10) -> int:
    """How many of the shown top k another order also has in its top k."""
    return len(set(shown[:k]) & set(other[:k]))
