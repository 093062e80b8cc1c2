"""Brands, colors and sizes named in a query, by longest match over the catalog's values."""

from __future__ import annotations

from domain.query._text import STOPWORDS
from domain.query.vocabulary import CatalogVocabulary

# Standing alone, these can only be clothing sizes ("xl" alone may be a model: "pixel 2 xl").
UNAMBIGUOUS_SIZES = frozenset({"xxs", "xxl", "xxxl", "xxxxl", "2xl", "3xl", "4xl", "5xl"})


# Catalog color attributes are free text ("greens powder", "full", "black and white"): a value
# is taken as a color filter only when every word of it is a color word.
COLOR_WORDS = frozenset({
    "red", "blue", "green", "yellow", "orange", "purple", "pink", "brown", "black", "white",
    "gray", "grey", "silver", "gold", "beige", "navy", "teal", "turquoise", "maroon",
    "burgundy", "ivory", "cream", "tan", "khaki", "olive", "lime", "violet", "lavender",
    "magenta", "cyan", "charcoal", "coral", "mint", "aqua", "bronze", "copper", "rose",
    "champagne", "multicolor", "clear", "transparent", "light", "dark",
})


def _lookup(vocab: CatalogVocabulary, kind: str, tokens: tuple[str, ...]) -> str | None:
    if kind == "color" and not all(t in COLOR_WORDS for t in tokens):
        return None
    if len(tokens) == 1 and tokens[0] in STOPWORDS:
        return None
    return vocab.brand(tokens) if kind == "brand" else vocab.value(kind, tokens)


def match_at(
    vocab: CatalogVocabulary, kind: str, tokens: list[str], i: int, blocked: set[int]
) -> tuple[str, int] | None:
    """The longest `kind` value starting at token i, over tokens not blocked: (value, end)."""
    longest = min(vocab.max_phrase_len(kind), len(tokens) - i)
    for n in range(longest, 0, -1):
        if any(k in blocked for k in range(i, i + n)):
            continue
        value = _lookup(vocab, kind, tuple(tokens[i : i + n]))
        if value is not None:
            return value, i + n
    return None


def extract(
    vocab: CatalogVocabulary, kind: str, tokens: list[str], blocked: set[int]
) -> tuple[list[str], set[int]]:
    """Every `kind` value in the query (left to right, longest first): (values, positions)."""
    values: list[str] = []
    used: set[int] = set()
    i = 0
    while i < len(tokens):
        if i in blocked:
            i += 1
            continue
        start = i
        if kind == "size":
            m = _size_at(vocab, tokens, i, blocked)
        else:
            m = match_at(vocab, kind, tokens, i, blocked)
        if m is None:
            i += 1
            continue
        if m[0] not in values:
            values.append(m[0])
        used.update(range(start, m[1]))
        i = m[1]
    return values, used


def _size_at(
    vocab: CatalogVocabulary, tokens: list[str], i: int, blocked: set[int]
) -> tuple[str, int] | None:
    """"size 10", "size m", "size: xl"; alone, only "xxl", "3xl" and the like."""
    if tokens[i] in ("size", "sz") and i + 1 < len(tokens):
        return match_at(vocab, "size", tokens, i + 1, blocked)
    if tokens[i] in UNAMBIGUOUS_SIZES:
        return match_at(vocab, "size", tokens, i, blocked)
    return None
