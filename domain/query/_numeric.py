"""Price and rating phrases in a tokenized query ("under $200", "4+ stars", "$50-$100").

Only phrases that say "price" count: a number with `$` or followed by "dollars", or a bare
number after a strong price word (under, below, over, above, less/more than, between). Numbers
of product names ("iphone 13", "4k tv", "2 pack") are left alone, as is a number followed by a
unit ("over 50 inch"). A rating needs a qualifier: "4+ stars", "4 stars and up", "at least 4
stars", "rated 4 or more"; "5 star" alone may be a product name.
"""

from __future__ import annotations

import dataclasses
import re

_NUMBER = re.compile(r"^(\$?)(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(\$?)$")
_RANGE = re.compile(r"^(\$?)(\d[\d,]*(?:\.\d+)?)\$?-(\$?)(\d[\d,]*(?:\.\d+)?)\$?$")
_STARS = re.compile(r"^([1-5](?:\.\d+)?)(\+?)$")

CURRENCY = frozenset({"dollars", "dollar", "usd", "bucks"})
UNITS = frozenset({
    "inch", "inches", "in", "ft", "feet", "foot", "cm", "mm", "m", "km", "lb", "lbs", "pound",
    "pounds", "kg", "g", "oz", "ml", "l", "liter", "liters", "litre", "litres", "gallon",
    "gallons", "qt", "gb", "tb", "mb", "w", "watt", "watts", "v", "volt", "volts", "mah", "hz",
    "kw", "year", "years", "yr", "yrs", "month", "months", "old", "pack", "packs", "pk", "pcs",
    "pc", "piece", "pieces", "count", "ct", "set", "sets", "people", "person", "players", "seats",
    "seater", "inchs", "x"
})
_Phrases = tuple[tuple[str, ...], ...]
_MAX_STRONG: _Phrases = (("under",), ("below",), ("less", "than"), ("cheaper", "than"),
                         ("lower", "than"), ("no", "more", "than"), ("not", "more", "than"))
_MAX_WEAK: _Phrases = (("up", "to"), ("at", "most"), ("max",), ("maximum",), ("within",))
_MIN_STRONG: _Phrases = (("over",), ("above",), ("more", "than"), ("greater", "than"),
                         ("higher", "than"))
_MIN_WEAK: _Phrases = (("at", "least"), ("min",), ("minimum",), ("starting", "at"), ("from",))
_PRICE_WORDS = _MAX_STRONG + _MAX_WEAK + _MIN_STRONG + _MIN_WEAK  # once, not per token
_WEAK = _MAX_WEAK + _MIN_WEAK
_MAX = _MAX_STRONG + _MAX_WEAK
_AFTER_MAX: _Phrases = (("and", "under"), ("or", "under"), ("and", "below"), ("or", "less"),
                        ("and", "less"), ("under",), ("or", "below"), ("or", "cheaper"))
_AFTER_MIN: _Phrases = (("and", "up"), ("and", "over"), ("and", "above"), ("or", "more"),
                        ("and", "more"), ("up",), ("plus",), ("or", "above"), ("or", "higher"))
_RATING_LEAD: _Phrases = (("at", "least"), ("minimum",), ("min",), ("over",), ("above",))
_RATING_TAIL: _Phrases = (*_AFTER_MIN, ("or", "better"), ("and", "higher"), ("and", "better"),
                          ("or", "up"), ("and", "above"))
_STAR_WORDS = frozenset({"star", "stars", "rating", "ratings"})
# Dropped just before an extracted phrase: "with 4+ stars", "priced under $50".
FILLERS = frozenset({"with", "priced", "price", "prices", "costing", "cost", "costs", "for",
                     "that", "is", "are", "and", "at", "rating", "a", "an", "of"})


@dataclasses.dataclass(slots=True)
class NumericFilters:
    price_min: float | None = None
    price_max: float | None = None
    rating_min: float | None = None
    consumed: set[int] = dataclasses.field(default_factory=set)  # token positions used


def _phrase(tokens: list[str], i: int, phrases: _Phrases) -> int | None:
    """The end of the longest of `phrases` starting at i."""
    best = None
    for p in phrases:
        if tuple(tokens[i : i + len(p)]) == p and (best is None or i + len(p) > best):
            best = i + len(p)
    return best


def _number(token: str) -> tuple[float, bool] | None:
    m = _NUMBER.match(token)
    if m is None:
        return None
    return float(m[2].replace(",", "") + (m[3] or "")), bool(m[1] or m[4])


def _price(tokens: list[str], i: int) -> tuple[float, bool, int] | None:
    """A price at i: (value, says-dollars, end)."""
    n = _number(tokens[i]) if i < len(tokens) else None
    if n is None:
        return None
    value, explicit = n
    nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
    if nxt in CURRENCY:
        return value, True, i + 2
    if not explicit and nxt in UNITS:
        return None
    return value, explicit, i + 1


def _range(tokens: list[str], i: int, bare_ok: bool) -> tuple[float, float, int] | None:
    m = _RANGE.match(tokens[i]) if i < len(tokens) else None
    if m is not None and (bare_ok or m[1] or m[3]):
        low, high = (float(m[k].replace(",", "")) for k in (2, 4))
        end = i + 2 if i + 1 < len(tokens) and tokens[i + 1] in CURRENCY else i + 1
        return min(low, high), max(low, high), end
    first = _price(tokens, i)
    if first is None:
        return None
    j = first[2]
    if j < len(tokens) and tokens[j] in ("and", "to", "or"):
        j += 1
    elif not first[1]:  # "$50 $100" ("$50 - $100" without the dash) needs dollars on both
        return None
    second = _price(tokens, j)
    if second is None or not (bare_ok or first[1] or second[1]):
        return None
    if j == first[2] and not second[1]:
        return None
    return min(first[0], second[0]), max(first[0], second[0]), second[2]


def _rating(tokens: list[str], i: int) -> tuple[float, int] | None:
    j = i
    rated = tokens[j] == "rated"
    j += rated
    lead = _phrase(tokens, j, _RATING_LEAD)
    j = lead if lead is not None else j
    m = _STARS.match(tokens[j]) if j < len(tokens) else None
    if m is None:
        return None
    j += 1
    stars = j < len(tokens) and tokens[j] in _STAR_WORDS
    j += stars
    tail = _phrase(tokens, j, _RATING_TAIL)
    j = tail if tail is not None else j
    qualified = bool(m[2]) or lead is not None or tail is not None or rated
    return (float(m[1]), j) if qualified and (stars or rated) else None


def _range_at(tokens: list[str], i: int) -> tuple[float, float, int] | None:
    """"between 50 and 100", "from $10 to $20", "$10 to $20", "$50-$100"."""
    if tokens[i] in ("between", "from"):
        found = _range(tokens, i + 1, tokens[i] == "between")
        if found is not None:
            return found
    return _range(tokens, i, False)


def extract_numeric(tokens: list[str]) -> NumericFilters:
    out = NumericFilters()
    maxes: list[float] = []
    mins: list[float] = []
    i = 0
    while i < len(tokens):
        start, end = i, None
        if (r := _rating(tokens, i)) is not None:
            out.rating_min = max(out.rating_min or 0.0, r[0])
            end = r[1]
        elif (rg := _range_at(tokens, i)) is not None:
            mins.append(rg[0])
            maxes.append(rg[1])
            end = rg[2]
        elif (k := _phrase(tokens, i, _PRICE_WORDS)) and (
            p := _price(tokens, k)
        ):
            weak = _phrase(tokens, i, _WEAK) == k
            if p[1] or not weak:
                (maxes if _phrase(tokens, i, _MAX) == k else mins).append(p[0])
                end = p[2]
        elif (p := _price(tokens, i)) is not None and p[1]:
            end = p[2]  # a lone "$50": not a filter, and not a word to match either
            if (k := _phrase(tokens, end, _AFTER_MAX)) is not None:
                maxes.append(p[0])
                end = k
            elif (k := _phrase(tokens, end, _AFTER_MIN)) is not None:
                mins.append(p[0])
                end = k
        if end is None:
            i += 1
            continue
        out.consumed.update(range(start, end))
        k = start - 1
        while k >= 0 and tokens[k] in FILLERS and k not in out.consumed:
            out.consumed.add(k)
            k -= 1
        i = end
    out.price_max = min(maxes) if maxes else None
    out.price_min = max(mins) if mins else None
    return out
