"""Rankers by name: what a search request's `ranker=` parameter (or an A/B rule) selects.

Built in: "default" (the seed's weighted formula; the name to move when a better model ships),
"weighted" (the same formula, pinned) and "text" (text relevance alone, a baseline).

Extension point for learned models: put the model in its own module of this package (say
`ranking/lgbm.py`) as a class with a `name` and `score(features) -> scores` over the
`FEATURES` columns (see `ranking.base.Ranker`), then register a factory that loads it:

    register("lgbm-2025-06", lambda: LgbmRanker.load(path))
    register("default", lambda: LgbmRanker.load(path), replace=True)  # promote it

Factories run on every `get_ranker` call: callers that serve traffic keep the instance they get.
Models register `in_process=True` when scoring 200 candidates costs less than a remote call
(the formulas: microseconds of numpy); the search deployment then ranks them itself, and sends
everything else (learned models) to the batched Ranker deployment. Plain BM25 over titles
("bm25_title" in the search API) is a way of retrieving, not a re-ranking, so it is not a
ranker here.
"""

from __future__ import annotations

from collections.abc import Callable

from ranking.base import Ranker
from ranking.weighted import TextOnlyRanker, WeightedRanker

RankerFactory = Callable[[], Ranker]
RANKER_NAME = r"[a-z0-9_]{1,40}"  # a ranker's name or a model version (lgbm_6): in URL paths

# name -> (factory, cheap enough to score in the serving process)
_FACTORIES: dict[str, tuple[RankerFactory, bool]] = {
    "default": (WeightedRanker, True),
    "weighted": (WeightedRanker, True),
    "text": (TextOnlyRanker, True),
}


def get_ranker(name: str) -> Ranker:
    """A new instance of the ranker registered as `name`; KeyError if there is none."""
    try:
        factory, _ = _FACTORIES[name]
    except KeyError:
        raise KeyError(f"unknown ranker {name!r}; registered: {', '.join(ranker_names())}") \
            from None
    return factory()


def register(name: str, factory: RankerFactory, *, replace: bool = False,
             in_process: bool = False) -> None:
    """Makes `factory` answer `get_ranker(name)`. An existing name is an error unless
    `replace` is true. `in_process`: cheap enough to score where the request is served."""
    if not name or name != name.strip() or any(c.isspace() for c in name):
        raise ValueError(f"ranker name must be non-empty without spaces, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory for {name!r} must be callable, got {factory!r}")
    if name in _FACTORIES and not replace:
        raise ValueError(f"ranker {name!r} is registered already (replace=True replaces it)")
    _FACTORIES[name] = (factory, in_process)


def runs_in_process(name: str) -> bool:
    """True if `name` is registered as cheap enough to run in the serving process."""
    return name in _FACTORIES and _FACTORIES[name][1]


def unregister(name: str) -> None:
    """Removes `name` (tests, retired models); KeyError if it is not registered."""
    if name not in _FACTORIES:
        raise KeyError(f"unknown ranker {name!r}")
    del _FACTORIES[name]


def ranker_names() -> tuple[str, ...]:
    """Registered names, sorted."""
    return tuple(sorted(_FACTORIES))
