"""From a parsed query and the request's own filters to what the index is asked."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from domain.query.understanding import ParsedQuery
from domain.search import Filters, TextQuery

EXPLICIT = "explicit"
INFERRED = "inferred"


def merge(parsed: ParsedQuery, explicit: Filters) -> tuple[Filters, dict[str, Any]]:
    """Explicit filters win over inferred ones, field by field (for attributes, name by name).

    `applied` (JSON-able) lists every filter in effect: {"brands": {"value": ["sony"],
    "source": "inferred"}, "price_max": {...}, "attributes": {"color": {...}}}. Filters
    `exclude_ids` is internal and not listed. To have the words of an overridden brand or color
    kept as keywords (and those naming the URL's own value read as without it), pass the same
    `explicit` to `QueryUnderstanding.parse`.
    """
    applied: dict[str, Any] = {}

    def pick(field: str, mine: Any, inferred: Any) -> Any:
        if mine not in (None, ()):
            applied[field] = {"value": _json(mine), "source": EXPLICIT}
            return mine
        if inferred not in (None, ()):
            applied[field] = {"value": _json(inferred), "source": INFERRED}
        return inferred

    brands = pick("brands", explicit.brands, parsed.brands)
    price_min = pick("price_min", explicit.price_min, parsed.price_min)
    price_max = pick("price_max", explicit.price_max, parsed.price_max)
    rating_min = pick("rating_min", explicit.rating_min, parsed.rating_min)
    for field in ("category_ids", "in_stock", "seller_id"):
        pick(field, getattr(explicit, field), None)
    attributes = dict(explicit.attributes)
    sources = dict.fromkeys(attributes, EXPLICIT)
    for name, values in parsed.attributes:
        if name not in attributes:
            attributes[name] = values
            sources[name] = INFERRED
    if attributes:
        applied["attributes"] = {
            name: {"value": list(values), "source": sources[name]}
            for name, values in attributes.items()
        }
    merged = dataclasses.replace(
        explicit,
        brands=tuple(brands or ()),
        price_min=price_min,
        price_max=price_max,
        rating_min=rating_min,
        attributes=tuple(attributes.items()),
    )
    return merged, applied


def explicit_only(explicit: Filters) -> tuple[Filters, dict[str, Any]]:
    """`merge` with nothing inferred: the request's own filters and how they are listed."""
    return merge(_NOTHING, explicit)


_NOTHING = ParsedQuery(raw="", normalized="", keywords=(), groups=(), did_you_mean=None)


def text_query(
    parsed: ParsedQuery,
    *,
    require_all: bool = True,
    fuzzy: bool = False,
    fields: Literal["all", "title"] = "all",
) -> TextQuery:
    """The text part of the index query: the synonym groups, predicted categories boosted."""
    return TextQuery(
        groups=parsed.groups,
        require_all=require_all,
        fuzzy=fuzzy,
        fields=fields,
        boost_category_ids=tuple(c for c, _ in parsed.categories),
    )


def _json(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value
