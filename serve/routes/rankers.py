"""The ranker registry over HTTP (internal): what `scripts/rankers` and `scripts/train_ranker`
use. Register a model (its LightGBM artifact, base64, with its metadata), list and show
versions, record metrics, promote through the offline gate (or `force`, recorded), roll back,
archive. A promotion reaches every Gateway within a second (serve/rankers.py); a model that
does not load is refused before it is promoted."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field, StrictBool

from adapters.postgres.ranker_registry import ModelRecord, RankerRegistry, StageChange
from domain.errors import Conflict, ValidationFailed
from ranking.gate import FORMULA, ModelMetrics, gate, recorded
from ranking.learned_features import LEARNED_FEATURES, LEARNED_FEATURES_VERSION
from ranking.lgbm import LgbmRanker
from ranking.registry import RANKER_NAME
from serve.services import Internal, Json, Svc

router = APIRouter(tags=["rankers"])
VersionPath = Annotated[str, Path(pattern=f"^{RANKER_NAME}$")]


class ModelIn(BaseModel):
    kind: str = Field("lightgbm", pattern="^lightgbm$")
    feature_set: str = Field(min_length=1, max_length=20)
    features: list[str] = Field(min_length=1, max_length=200)
    artifact_b64: str = Field(min_length=1, max_length=50_000_000)
    metrics: dict[str, object] = Field(default_factory=dict)
    created_by: str = Field(min_length=1, max_length=100)
    note: str | None = Field(None, max_length=1000)
    stage: str = Field("candidate", pattern="^(candidate|archived)$")


class PromoteIn(BaseModel):
    by: str = Field(min_length=1, max_length=100)
    force: StrictBool = False  # true or false ("yes" or 1 is no answer to "skip the gate?")
    reason: str | None = Field(None, max_length=1000)


class MetricsIn(BaseModel):
    metrics: dict[str, object]


def _json(m: ModelRecord) -> Json:
    return {"version": m.version, "kind": m.kind, "feature_set": m.feature_set,
            "features": list(m.features), "checksum": m.checksum, "metrics": m.metrics,
            "stage": m.stage, "created_by": m.created_by,
            "created_at": m.created_at.isoformat(), "note": m.note}


def _change(c: StageChange) -> Json:
    return {"version": c.version, "from": c.from_stage, "to": c.to_stage, "by": c.changed_by,
            "at": c.changed_at.isoformat(), "forced": c.forced, "reason": c.reason}


def _registry(svc: Svc) -> RankerRegistry:
    return RankerRegistry(svc.pool)


@router.post("/api/v1/internal/rankers", status_code=201)
async def register_model(svc: Svc, _: Internal, body: ModelIn) -> Json:
    """A new model version (a candidate), refused if its artifact does not load."""
    try:
        artifact = base64.b64decode(body.artifact_b64, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed({"artifact_b64": "not base64"}) from exc
    if body.feature_set == LEARNED_FEATURES_VERSION and tuple(body.features) != LEARNED_FEATURES:
        raise ValidationFailed({"features": f"feature set {LEARNED_FEATURES_VERSION} is "
                                f"{', '.join(LEARNED_FEATURES)}, in that order"},
                               "features disagree with their feature set")
    try:
        LgbmRanker.from_bytes(artifact, feature_names=body.features)
    except ValueError as exc:
        raise ValidationFailed({"artifact_b64": str(exc)}, "model does not load") from exc
    record = await _registry(svc).add(body.kind, body.feature_set, body.features, artifact,
                                      _metrics(body.metrics), body.created_by, body.note,
                                      body.stage)
    return _json(record)


def _metrics(raw: dict[str, object]) -> dict[str, object]:
    """Metrics as `ModelMetrics` reads them, written back as it writes them (never as sent:
    a figure sent as text would be stored as text); 422 naming what is wrong."""
    try:
        return ModelMetrics.from_json(raw).to_json()
    except ValueError as exc:
        raise ValidationFailed({"metrics": f"not model metrics: {exc}"}) from exc


@router.get("/api/v1/internal/rankers")
async def list_models(svc: Svc, _: Internal) -> Json:
    production = await _registry(svc).production()
    return {"production": production.version if production else None,
            "models": [_json(m) for m in await _registry(svc).all()]}


@router.get("/api/v1/internal/rankers/{version}")
async def show_model(svc: Svc, _: Internal, version: VersionPath) -> Json:
    registry = _registry(svc)
    return _json(await registry.get(version)) | {
        "history": [_change(c) for c in await registry.history(version)]}


@router.put("/api/v1/internal/rankers/{version}/metrics")
async def set_metrics(svc: Svc, _: Internal, version: VersionPath, body: MetricsIn) -> Json:
    """The model's measured figures (`scripts/rankers evaluate` writes them). Refused (409
    `in_production`) for the production model: its record is what it was promoted on."""
    metrics = _metrics(body.metrics)
    stored = recorded((await _registry(svc).get(version)).metrics)
    if stored is not None and stored.cv_fold:  # a fold's model stays one, whatever is sent
        metrics = metrics | {"cv_fold": stored.cv_fold}
    production = await _registry(svc).production()
    if production is not None and production.version == version:
        raise Conflict(f"{version} is in production: its record stays as it was when it was "
                       "promoted", code="in_production")
    await _registry(svc).set_metrics(version, metrics)
    return _json(await _registry(svc).get(version))


@router.post("/api/v1/internal/rankers/{version}/promote")
async def promote_model(svc: Svc, _: Internal, version: VersionPath, body: PromoteIn) -> Json:
    """Through the offline gate (ranking/gate.py) unless `force` (recorded with the reason);
    the artifact must load. 409 `gate_refused` lists why, and the harmed queries."""
    if body.force and not (body.reason or "").strip():
        raise ValidationFailed({"reason": "a forced promotion needs a reason: it is recorded "
                                          "with the promotion"}, "reason missing")
    registry = _registry(svc)
    record, artifact = await registry.artifact(version)
    try:
        LgbmRanker.from_bytes(artifact, version, record.features)
    except ValueError as exc:
        raise Conflict(f"{version} does not load: {exc}", code="model_broken") from exc
    if (record.feature_set, tuple(record.features)) != (LEARNED_FEATURES_VERSION,
                                                          LEARNED_FEATURES):
        # searches could not score it (they would fall back to the formula): not even forced
        raise Conflict(f"{version} scores features {record.feature_set}; searches make "
                       f"{LEARNED_FEATURES_VERSION}: train it again", code="features_not_served")
    production = await registry.production()
    if production is not None and production.version == version:
        raise Conflict(f"{version} is in production already", code="in_production")
    try:
        metrics = ModelMetrics.from_json(record.metrics)
    except ValueError as exc:  # recorded before metrics were checked as they are now
        raise Conflict(f"{version}'s metrics do not read ({exc}): evaluate it again",
                       code="gate_refused", reasons=[str(exc)], harmed={}) from exc
    verdict = gate(metrics, production.version if production else FORMULA)
    if not verdict.ok and not body.force:
        raise Conflict(f"{version} did not pass the offline gate", code="gate_refused",
                       reasons=verdict.reasons, harmed=verdict.harmed)
    previous = await registry.promote(version, body.by, forced=not verdict.ok,
                                      reason=body.reason or "; ".join(verdict.reasons) or None)
    return {"production": version, "previous": previous, "gate": {
        "ok": verdict.ok, "reasons": verdict.reasons, "harmed": verdict.harmed}}


@router.post("/api/v1/internal/rankers/rollback")
async def rollback_model(svc: Svc, _: Internal, body: PromoteIn) -> Json:
    """Production goes back to the model before it (none: the formula)."""
    rolled, now = await _registry(svc).rollback(body.by, body.reason)
    return {"rolled_back": rolled, "production": now}


@router.post("/api/v1/internal/rankers/{version}/archive")
async def archive_model(svc: Svc, _: Internal, version: VersionPath, body: PromoteIn) -> Json:
    await _registry(svc).archive(version, body.by, body.reason)
    return _json(await _registry(svc).get(version))
