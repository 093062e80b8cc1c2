"""Synonyms: equivalent terms (`a, b, c`) and one-way expansions (`a => b, c`).

Terms are normalized like queries; a term may be several words ("running shoes"). A term on
several lines gets the alternatives of every line (no transitive closure). `load_synonyms`
parses text; reading the file is the caller's job (`default_synonyms_path()` says where the
repository keeps it).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from domain.query._text import tokenize


@dataclasses.dataclass(frozen=True, slots=True)
class Synonyms:
    table: dict[tuple[str, ...], tuple[str, ...]] = dataclasses.field(default_factory=dict)
    max_len: int = 0  # longest left-hand term, in tokens
    words: frozenset[str] = frozenset()  # every word of every term: known words, not typos

    def expand(self, term: tuple[str, ...]) -> tuple[str, ...]:
        """Alternatives of a term (phrases joined by one space), the term itself excluded."""
        return self.table.get(term, ())


def default_synonyms_path() -> Path:
    """`config/synonyms.txt` at the repository root (the package is installed editable)."""
    return Path(__file__).resolve().parents[2] / "config" / "synonyms.txt"


def _term(raw: str, lineno: int) -> tuple[str, ...]:
    tokens = tuple(tokenize(raw))
    if not tokens:
        raise ValueError(f"synonyms line {lineno}: empty term {raw!r}")
    return tokens


def load_synonyms(text: str) -> Synonyms:
    """Parses synonym rules; `#` starts a comment. Raises ValueError on a malformed line."""
    table: dict[tuple[str, ...], list[str]] = {}

    def add(source: tuple[str, ...], targets: list[tuple[str, ...]]) -> None:
        alts = table.setdefault(source, [])
        for t in targets:
            phrase = " ".join(t)
            if t != source and phrase not in alts:
                alts.append(phrase)

    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if "=>" in line:
            left, _, right = line.partition("=>")
            if "=>" in right:
                raise ValueError(f"synonyms line {lineno}: more than one '=>'")
            sources = [_term(t, lineno) for t in left.split(",")]
            targets = [_term(t, lineno) for t in right.split(",")]
            for s in sources:
                add(s, targets)
            continue
        terms = [_term(t, lineno) for t in line.split(",")]
        if len(terms) < 2:
            raise ValueError(f"synonyms line {lineno}: needs two terms or '=>'")
        for s in terms:
            add(s, terms)
    words = frozenset(w for key, alts in table.items() for w in (*key, *" ".join(alts).split()))
    return Synonyms(
        table={k: tuple(v) for k, v in table.items() if v},
        max_len=max(map(len, table), default=0),
        words=words,
    )
