"""BM25 that does not depend on how documents are spread over shards (pure, no I/O).

A shard scoring with its own statistics (documents, document frequencies, average lengths)
gives the same document a different score in every layout, and a layout that changes with
each load (products hashed to shards by a time-based id) gives different answers on every
start. Here every statistic a score uses is fixed per index generation:

- `avg_length` per field (the BM25 length pivot) is measured on a deterministic sample of the
  catalog before the generation is built (`pivots`), so each document's per-term part is known
  when it is written: the index stores it, quantized to a geometric `level`, as the token
  `term~level` (an "impact"; see adapters/search/tantivy_shard.py);
- `documents` and `df` (how many documents hold each term, per field) are counted over the
  whole generation once it is built (`TermStats`), and every shard reads the same copy.

So score(query, document) = sum over matched terms of boost x idf(term) x impact(tf, length),
with textbook BM25 (k1 = 1.2, b = 0.75, Lucene's idf). 1, 2 or 4 shards give the same scores,
and so does the same catalog loaded again. Statistics stay as they were at the build until the
next full build: a term first written after it counts as rare (df 0).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

K1 = 1.2
B = 0.75
IMPACT_MIN = 0.01  # level 0; BM25's per-term part is below k1 + 1 = 2.2
IMPACT_STEP = 1.06  # one level to the next: a stored impact is within 3 % of the exact one
LEVEL_SEP = "~"  # analysed words are letters and digits only, never this

# The scored fields (as the index names them) and their length pivots when nothing was measured
# (a generation made without a sample, e.g. by a test): typical product titles and texts.
SCORED_FIELDS: tuple[str, ...] = ("title", "brand_text", "category_path", "description")
DEFAULT_AVG_LENGTH: Mapping[str, float] = {
    "title": 12.0, "brand_text": 1.5, "category_path": 6.0, "description": 150.0,
}
SAMPLE_SIZE = 5_000  # products whose texts set the pivots (all of them in smaller catalogs)


def idf(df: int, documents: int) -> float:
    """Lucene's BM25 idf: ln(1 + (N - df + 0.5) / (df + 0.5)); a term no document held at the
    build (df 0) is as rare as a term can be."""
    n = max(documents, df, 1)
    return math.log(1.0 + (n - df + 0.5) / (df + 0.5))


def impact(tf: int, length: int, avg_length: float) -> float:
    """BM25's per-term part: tf (k1 + 1) / (tf + k1 (1 - b + b length / avg_length))."""
    norm = K1 * (1.0 - B + B * length / max(avg_length, 1e-9))
    return tf * (K1 + 1.0) / (tf + norm)


def level(value: float) -> int:
    """The quantized impact: the nearest geometric level (0 for anything at or below the
    smallest)."""
    if value <= IMPACT_MIN:
        return 0
    return max(0, round(math.log(value / IMPACT_MIN) / math.log(IMPACT_STEP)))


def level_value(lvl: int) -> float:
    return IMPACT_MIN * IMPACT_STEP ** lvl


def impact_tokens(tokens: Sequence[str], avg_length: float) -> list[str]:
    """`term~level` for each distinct term of one field's analysed tokens, in first-seen order."""
    counts = Counter(tokens)
    n = len(tokens)
    return [f"{term}{LEVEL_SEP}{level(impact(tf, n, avg_length))}"
            for term, tf in counts.items()]


def split_impact_token(token: str) -> tuple[str, int]:
    term, _, lvl = token.rpartition(LEVEL_SEP)
    return term, int(lvl)


def pivots(samples: Iterable[Mapping[str, Sequence[str]]]) -> dict[str, float]:
    """Average analysed length per scored field over sample documents ({field: tokens}); a
    field the sample never fills keeps its default."""
    totals: Counter[str] = Counter()
    n = 0
    for fields in samples:
        n += 1
        for name in SCORED_FIELDS:
            totals[name] += len(fields.get(name) or ())
    out = dict(DEFAULT_AVG_LENGTH)
    for name in SCORED_FIELDS:
        if n and totals[name]:
            out[name] = totals[name] / n
    return out


@dataclasses.dataclass(frozen=True)
class TermStats:
    """A generation's statistics: its documents when built, the length pivots its impacts were
    written with, and per field the documents holding each term."""

    documents: int = 0
    avg_length: Mapping[str, float] = dataclasses.field(
        default_factory=lambda: dict(DEFAULT_AVG_LENGTH))
    df: Mapping[str, Mapping[str, int]] = dataclasses.field(default_factory=dict)

    def idf(self, field: str, term: str) -> float:
        """1.0 for every term while no statistics were counted (a generation being built)."""
        if self.documents <= 0:
            return 1.0
        return idf(self.df.get(field, {}).get(term, 0), self.documents)

    @staticmethod
    def combine(avg_length: Mapping[str, float],
                parts: Sequence[tuple[int, Mapping[str, Mapping[str, int]]]]) -> TermStats:
        """Shards' (documents, {field: {term: df}}) summed into one generation's statistics."""
        documents = 0
        df: dict[str, Counter[str]] = {}
        for n, fields in parts:
            documents += n
            for name, terms in fields.items():
                df.setdefault(name, Counter()).update(terms)
        return TermStats(documents, dict(avg_length), {k: dict(v) for k, v in df.items()})

    def to_json(self) -> dict[str, object]:
        return {"documents": self.documents, "avg_length": dict(self.avg_length),
                "df": {k: dict(v) for k, v in self.df.items()}}

    @staticmethod
    def from_json(data: Mapping[str, object]) -> TermStats:
        documents = data.get("documents", 0)
        avg = data.get("avg_length", {})
        df = data.get("df", {})
        if not (isinstance(documents, int) and isinstance(avg, dict) and isinstance(df, dict)):
            raise ValueError("malformed term statistics")
        return TermStats(documents, {str(k): float(v) for k, v in avg.items()},
                         {str(f): {str(t): int(n) for t, n in terms.items()}
                          for f, terms in df.items()})
