"""Ranker experiments over HTTP: the internal API that `scripts/rankers experiment` uses
(start, list, show with per-arm figures, stop), and shoppers' events on search results
(`POST /api/v1/events`: clicks and add-to-carts, public, rate-limited, attributed to the
experiment arm that showed the result)."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from adapters.postgres.experiments import ExperimentRecord, SearchEvent
from domain.errors import ValidationFailed
from domain.search_plan import PLAIN
from ranking.experiments import (
    EXPERIMENT_NAME,
    SHADOW,
    Arm,
    ArmStats,
    Experiment,
    Guardrails,
    experiment_problems,
)
from ranking.registry import RANKER_NAME
from serve.services import Internal, Json, Svc, limit_events

router = APIRouter()
NAME = f"^{EXPERIMENT_NAME}$"
RANKER = f"^{RANKER_NAME}$"
SESSION_COOKIE = "aisle_session"
SESSION_HEADER = "x-session-id"
_SESSION = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
NamePath = Annotated[str, Path(pattern=NAME)]


def session_of(request: Request) -> str | None:
    """The shopper's session id: the `X-Session-Id` header, else the `aisle_session` cookie
    (None: neither). A header that is not 1 to 128 of [A-Za-z0-9._:-] is 422 (the client
    sent it); such a cookie is no session (a shopper cannot mend a cookie, and it must not
    stop their searches)."""
    header = request.headers.get(SESSION_HEADER)
    if header is not None:
        if not _SESSION.match(header):
            raise ValidationFailed({"X-Session-Id": "1 to 128 characters of A-Z a-z 0-9 . _ : -"},
                                   "bad session id")
        return header
    cookie = request.cookies.get(SESSION_COOKIE)
    return cookie if cookie is not None and _SESSION.match(cookie) else None


class ArmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    ranker: str = Field(pattern=RANKER, description="default, formula, a formula's name or "
                                                    "a model version")
    weight: int = Field(1, ge=1, le=10_000)


class GuardrailsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_error_rate: float = Field(default=0.02, ge=0, le=1)
    max_p99_ms: float = Field(default=1000.0, gt=0, le=600_000)
    min_requests: int = Field(default=100, ge=1, le=10**9)


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    kind: Literal["ab", "interleave"] = "ab"
    arms: list[ArmIn] = Field(min_length=2, max_length=10)
    shadow: str | None = Field(None, pattern=RANKER)
    shadow_sample: float = Field(0.0, ge=0, le=1)
    guardrails: GuardrailsIn = GuardrailsIn()
    created_by: str = Field(min_length=1, max_length=100)


class StopIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    by: str = Field(min_length=1, max_length=100)
    reason: str | None = Field(None, max_length=1000)


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["click", "add_to_cart"]
    search_id: str = Field(pattern="^[0-9a-f]{16}$", description="the search's `search_id`")
    product_id: str = Field(pattern="^[0-9]{1,19}$")
    position: StrictInt | None = Field(None, ge=1, le=10_000, description="1 = first result")
    session_id: str | None = Field(None, pattern=r"^[A-Za-z0-9._:-]{1,128}$",
                                   description="default: X-Session-Id or the aisle_session "
                                               "cookie")


def _ms(v: float | None) -> float | str | None:
    return v if v is None or math.isfinite(v) else ">5000"


def _stats(s: ArmStats) -> Json:
    return {"requests": s.requests, "zero_result_rate": round(s.zero_result_rate, 4),
            "errors": s.errors, "error_rate": round(s.error_rate, 4), "p99_ms": _ms(s.p99_ms),
            "clicks": s.clicks, "add_to_carts": s.add_to_carts, "ctr": round(s.ctr, 4),
            "interleaving_wins": s.wins}


def _record(r: ExperimentRecord) -> Json:
    e = r.experiment
    return {"name": e.name, "kind": e.kind, "status": r.status,
            "arms": [dataclasses.asdict(a) | {"stopped": e.stopped_arms.get(a.name)}
                     for a in e.arms],
            "shadow": e.shadow, "shadow_sample": e.shadow_sample,
            "shadow_stopped": e.stopped_arms.get(SHADOW),
            "guardrails": dataclasses.asdict(e.guardrails), "created_by": r.created_by,
            "created_at": r.created_at.isoformat(), "stopped_by": r.stopped_by,
            "stopped_at": r.stopped_at.isoformat() if r.stopped_at else None,
            "stop_reason": r.stop_reason}


@router.post("/api/v1/internal/experiments", tags=["experiments"], status_code=201)
async def start_experiment(svc: Svc, _: Internal, body: ExperimentIn) -> Json:
    """Starts an experiment (one runs at a time: 409 `experiment_running`). `ab` splits
    sessions between arms by weight; `interleave` (two arms) shows every session one
    team-draft interleaving of both; `shadow` also orders `shadow_sample` of the searches,
    unseen. Every arm's ranker must be servable now."""
    for i, arm in enumerate(body.arms):
        await _servable(svc, arm.ranker, f"arms.{i}.ranker")
    if body.shadow is not None:
        await _servable(svc, body.shadow, "shadow")
    arms = tuple(Arm(a.name, a.ranker, a.weight) for a in body.arms)
    guardrails = Guardrails(body.guardrails.max_error_rate, body.guardrails.max_p99_ms,
                            body.guardrails.min_requests)
    problems = experiment_problems(body.kind, arms, guardrails, body.shadow,
                                   body.shadow_sample)
    if body.shadow is not None and body.shadow_sample == 0:  # new ones; stored ones load
        problems["shadow_sample"] = "a shadow ranker needs a share of searches above 0"
    if problems:
        raise ValidationFailed(problems, "bad experiment")
    e = Experiment(body.name, body.kind, arms, guardrails, body.shadow, body.shadow_sample)
    record = await svc.search.experiments.store.create(e, body.created_by)
    svc.search.experiments.forget()
    return _record(record)


async def _servable(svc: Svc, ranker: str, field: str) -> None:
    if ranker == PLAIN:  # another search (titles only, words as typed), not an order of it
        raise ValidationFailed({field: f"{PLAIN} is plain BM25 over titles, a baseline for "
                                       "offline comparisons, not a ranker an arm can serve"},
                               "ranker not servable")
    try:
        await svc.search.rankers.choose(ranker)
    except ValidationFailed as exc:
        raise ValidationFailed({field: exc.fields.get("ranker", str(exc))},
                               "ranker not servable") from exc


@router.get("/api/v1/internal/experiments", tags=["experiments"])
async def list_experiments(svc: Svc, _: Internal) -> Json:
    return {"experiments": [_record(r) for r in await svc.search.experiments.store.all()]}


@router.get("/api/v1/internal/experiments/{name}", tags=["experiments"])
async def show_experiment(svc: Svc, _: Internal, name: NamePath) -> Json:
    """The experiment and, per arm: requests, zero-result rate, errors, p99 latency (ms, the
    upper bound of its histogram bucket), clicks, add-to-carts, CTR, interleaving wins; the
    shadow's requests, errors, p99 and how many of the shown top 10 it also ranked top 10.
    A running experiment's guardrails are checked first."""
    router_ = svc.search.experiments
    record = await router_.store.get(name)
    if record.status == "running" and await router_.guard(record.experiment):
        record = await router_.store.get(name)
    e = record.experiment
    names = [a.name for a in e.arms] + ([SHADOW] if e.shadow else [])
    # arms stopped (with the experiment, or by a guardrail) show their counters at the stop
    # (Redis is not asked for them: a stopped experiment shows whether or not it answers)
    live = [n for n in names if n not in record.frozen]
    stats = await router_.metrics.read(e.name, live) | dict(record.frozen)
    events = await router_.store.counts(e.name, (e.arms[0].name, e.arms[1].name))
    out = _record(record)
    for arm in out["arms"]:
        s = stats[arm["name"]]
        ev = events.get(arm["name"])
        if ev is not None:
            s = dataclasses.replace(s, clicks=ev.clicks, add_to_carts=ev.add_to_carts,
                                    wins=ev.wins)
        arm.update(_stats(s))
    if e.shadow:
        s = stats[SHADOW]
        out["shadow_stats"] = {
            "requests": s.requests, "errors": s.errors, "p99_ms": _ms(s.p99_ms),
            "top10_agreement": round(s.agreement_sum / s.requests, 3) if s.requests else None}
    return out


@router.post("/api/v1/internal/experiments/{name}/stop", tags=["experiments"])
async def stop_experiment(svc: Svc, _: Internal, name: NamePath, body: StopIn) -> Json:
    """Ends the experiment: every search goes back to production's ranker within a second;
    its figures stay as they were at the stop (a search or click after it is not counted)."""
    router_ = svc.search.experiments
    record = await router_.store.get(name)
    stats = await router_.counters(record.experiment) if record.status == "running" else None
    record = await router_.store.stop(name, body.by, body.reason, stats)
    router_.forget()
    return _record(record)


@router.post("/api/v1/events", tags=["events"], status_code=202,
             dependencies=[Depends(limit_events)])
async def post_event(svc: Svc, request: Request, body: EventIn) -> Json:
    """A shopper's click or add-to-cart on a search result, named by the search's
    `search_id` and the product. Credited to the experiment arm (or interleaving team) that
    showed it when the search was in an experiment within the hour that still runs;
    recorded either way."""
    if int(body.product_id) > 2**63 - 1:
        raise ValidationFailed({"product_id": "at most 9223372036854775807"}, "bad product id")
    session = body.session_id or session_of(request)
    router_ = svc.search.experiments
    shown = await router_.metrics.impression(body.search_id)
    experiment = arm = team = None
    running = await router_.current() if shown is not None else None
    if shown is not None and running is not None and running.name == shown.experiment:
        # credited while its experiment runs: a stopped one's figures stay as they were
        experiment = shown.experiment
        arm, team = shown.arm_of(int(body.product_id))
    # credited only if the experiment still runs (and the arm) when it is recorded: this
    # replica may not have heard of a stop yet
    done = await router_.store.record(SearchEvent(
        body.type, body.search_id, int(body.product_id), body.position, session, experiment,
        arm, team))
    return {"accepted": True, "experiment": done.experiment, "arm": done.arm, "team": done.team}
