"""Which ranker orders a search: the name a request gives (`ranker=`), resolved against the
formulas of `ranking` and the learned models of the registry.

- a formula name ("weighted", "text"): that formula, scored in the Gateway;
- "default": the learned model in production, or the seed's formula while there is none;
- a model version ("lgbm_7"): that model, whatever its stage (for evaluation and experiments).

The production version is read from PostgreSQL again every REFRESH_S per replica (behind
the searches; one waits, up to a second, only after a replica had none for a while), so a
promotion or rollback reaches every Gateway within about a second; a search in flight keeps
the choice it made.
"""

from __future__ import annotations

import dataclasses
from typing import Literal

from adapters.postgres.ranker_registry import ModelRecord, RankerNotFound, RankerRegistry
from domain.errors import ValidationFailed
from ranking import ranker_names
from ranking.learned_features import LEARNED_FEATURES_VERSION
from serve._kept import Refreshed

REFRESH_S = 1.0
DEFAULT = "default"
FORMULA = "formula"


@dataclasses.dataclass(frozen=True)
class RankerChoice:
    requested: str
    kind: Literal["formula", "learned"]
    name: str  # the formula's name, or the model version

    def to_json(self) -> dict[str, str | None]:
        return {"requested": self.requested, "kind": self.kind,
                "version": self.name if self.kind == "learned" else None}


class RankerCatalog:
    def __init__(self, registry: RankerRegistry | None) -> None:
        self.registry = registry
        # read again behind the searches (serve/_kept.Refreshed says when one waits)
        self._production = None if registry is None else Refreshed(
            registry.production, REFRESH_S, "the production ranker")
        self._models: dict[str, ModelRecord] = {}

    async def production(self) -> ModelRecord | None:
        return None if self._production is None else await self._production.get()

    async def choose(self, requested: str) -> RankerChoice:
        if requested == DEFAULT:
            model = await self.production()
            if model is not None and model.feature_set == LEARNED_FEATURES_VERSION:
                return RankerChoice(requested, "learned", model.version)
            return RankerChoice(requested, "formula", DEFAULT)
        if requested == FORMULA:  # the formula the default falls back to, whatever is live
            return RankerChoice(requested, "formula", DEFAULT)
        if requested in ranker_names():
            return RankerChoice(requested, "formula", requested)
        model = self._models.get(requested)
        if model is None and self.registry is not None:
            try:
                model = await self.registry.get(requested)
            except RankerNotFound:
                model = None
            if model is not None:
                self._models[requested] = model
        if model is None:
            raise ValidationFailed({"ranker": f"one of formula, "
                                              f"{', '.join(ranker_names())} "
                                              "or a registered model version (bm25_title: a "
                                              "baseline searches may ask for, not an order)"},
                                   "unknown ranker")
        if model.feature_set != LEARNED_FEATURES_VERSION:
            raise ValidationFailed({"ranker": f"{requested} scores features "
                                              f"{model.feature_set}; this service computes "
                                              f"{LEARNED_FEATURES_VERSION}"},
                                   "ranker not servable")
        return RankerChoice(requested, "learned", model.version)
