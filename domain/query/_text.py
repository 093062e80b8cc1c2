"""Normalization and tokenization shared by the catalog vocabulary and the query parser.

Text is NFKC-normalized and case-folded; tokens are runs of letters and digits. Inside a token
we keep `-`, `'` and `&` between letters or digits ("usb-c", "men's", "at&t"), `.`, `/` and a
thousands `,` between digits ("3.5mm", "1/2", "1,299"), a leading `$` and a trailing `$` or `+`
("$200", "4+"). Everything else separates tokens. `normalize(text)` is the tokens joined by one
space, so a token's position in the normalized text is well defined.
"""

from __future__ import annotations

import re
import unicodedata

_MARKS = str.maketrans({"™": " ", "®": " ", "©": " ", "\u2018": "'", "\u2019": "'", "\u02bc": "'"})
_W = r"[^\W_]"
_JOIN = r"(?:[-'&]|(?<=\d)[./](?=\d)|(?<=\d),(?=\d{3}(?!\d)))"
_TOKEN = re.compile(rf"\$?{_W}+(?:{_JOIN}\$?{_W}+)*[$+]?")

# Dropped from keywords (when something else remains): they would have to match in some field.
STOPWORDS = frozenset({
    "a", "an", "the", "for", "with", "and", "or", "of", "in", "on", "to", "by", "at", "from", "w",
    "is", "are", "that", "this", "my"
})
# Words of the query syntax (prices, ratings, sizes) and common shopping words: never corrected.
QUERY_WORDS = frozenset({
    "under", "below", "less", "than", "cheaper", "lower", "over", "above", "more", "greater",
    "higher", "between", "from", "up", "most", "least", "max", "maximum", "min", "minimum",
    "dollar", "dollars", "usd", "bucks", "price", "priced", "prices", "cost", "costs", "costing",
    "star", "stars", "rating", "ratings", "rated", "plus", "better", "size", "sizes", "cheap",
    "cheapest", "best", "top", "new", "newest", "sale", "deal", "deals", "discount", "gift",
    "gifts", "free", "shipping", "review", "reviews", "popular"
})


def tokenize(text: str) -> list[str]:
    """The tokens of `text`, in order."""
    return _TOKEN.findall(unicodedata.normalize("NFKC", text.translate(_MARKS)).casefold())


def normalize(text: str) -> str:
    return " ".join(tokenize(text))


def has_digit(token: str) -> bool:
    return any(c.isdigit() for c in token)


def hyphen_parts(token: str) -> list[str]:
    """The parts of a hyphenated token ("usb-c" -> ["usb", "c"]); [] when there is no hyphen."""
    if "-" not in token:
        return []
    return [p.strip("$+") for p in token.split("-") if p.strip("$+")]
