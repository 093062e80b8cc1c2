"""Category prediction: which categories the query's words point at, from catalog counts.

Each known word votes with P(category | word), smoothed towards the category's share of the
catalog; votes are averaged with IDF weights (rare words say more). A category is returned only
when it is confident (probability >= `min_probability`), informative (at least `min_lift` times
its share of the catalog, so the root of everything never qualifies) and supported by enough
products. When both a category and one of its descendants qualify, only the descendant is
kept. The result boosts ranking; it is never a filter.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from domain.query.vocabulary import CatalogVocabulary


def predict_categories(
    vocab: CatalogVocabulary,
    words: Iterable[str],
    *,
    min_probability: float = 0.3,
    min_lift: float = 2.0,
    min_support: int = 3,
    top_k: int = 3,
    alpha: float = 1.0,
) -> tuple[tuple[int, float], ...]:
    n = vocab.doc_count
    votes: list[tuple[float, int, dict[int, int]]] = []  # (weight, df, category -> count)
    for w in dict.fromkeys(words):
        df = vocab.df(w)
        counts = vocab.category_counts(w) if df else []
        if counts:
            votes.append((math.log(1.0 + n / df), df, dict(counts)))
    if not votes:
        return ()
    total = sum(v[0] for v in votes)
    candidates = {c for _, _, counts in votes for c in counts}
    scored: dict[int, float] = {}
    for c in candidates:
        prior = vocab.category_docs(c) / n
        p = sum(wt * (counts.get(c, 0) + alpha * prior) / (df + alpha) for wt, df, counts in votes)
        p /= total
        support = sum(counts.get(c, 0) for _, _, counts in votes)
        if p >= min_probability and p >= min_lift * prior and support >= min_support:
            scored[c] = p
    covered = {a for c in scored for a in vocab.ancestors(c)}
    best = sorted(
        ((c, p) for c, p in scored.items() if c not in covered),
        key=lambda cp: (-cp[1], vocab.category_docs(cp[0]), cp[0]),
    )
    return tuple((c, round(p, 4)) for c, p in best[:top_k])
