"""Spelling correction against the catalog's words (symmetric-delete candidates, SymSpell-like).

Every dictionary word is indexed under itself and the strings obtained by deleting up to one
letter (words of 3-7 letters) or two letters (8+). A query word generates its own deletes the
same way; two words within edit distance k share a delete of at most k letters on each side, so
the candidates are the words sharing a key, checked with the real (optimal string alignment)
distance. The index is a sorted array of 64-bit `crc32(delete) << 32 | word index`: about 16
bytes per key, no Python object per key, built in time linear in the dictionary (plus a sort).

Allowed distance: 1 for query words of 4+ letters; 2 when the query word and the candidate both
have 8+ letters. The best candidate has the smallest distance, then the highest frequency.
"""

from __future__ import annotations

import heapq
from array import array
from bisect import bisect_left
from collections.abc import Iterable
from zlib import crc32

MAX_WORD_LEN = 30  # longer tokens are not words; never corrected
_CHUNK = 1 << 18


def _depth(length: int) -> int:
    return 2 if length >= 8 else 1 if length >= 3 else 0


def _deletes(word: str, depth: int) -> set[str]:
    out = {word}
    layer = {word}
    for _ in range(depth):
        layer = {w[:i] + w[i + 1 :] for w in layer for i in range(len(w))}
        out |= layer
    return out


def _key(s: str) -> int:
    return crc32(s.encode()) << 32


def edit_distance(a: str, b: str, limit: int) -> int:
    """Optimal string alignment distance (a transposition counts 1), or limit + 1 if above."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            v = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                v = min(v, prev2[j - 2] + 1)
            cur[j] = v
        if min(cur) > limit:
            return limit + 1
        prev2, prev = prev, cur
    return prev[-1] if prev[-1] <= limit else limit + 1


def is_correctable(word: str) -> bool:
    """Letters only (hyphen and apostrophe allowed), no digits: model numbers stay as typed."""
    return 3 <= len(word) <= MAX_WORD_LEN and word.replace("-", "").replace("'", "").isalpha()


class SpellCorrector:
    """Built from (word, frequency) pairs; words with digits or shorter than 3 letters are not
    suggestions. `max_words` keeps only the most frequent words (rarer ones are poor targets)."""

    def __init__(
        self, words: Iterable[tuple[str, int]], *, min_df: int = 1, max_words: int = 200_000
    ) -> None:
        pairs = [(w, n) for w, n in words if n >= min_df and is_correctable(w)]
        if len(pairs) > max_words:
            pairs = heapq.nlargest(max_words, pairs, key=lambda p: p[1])
        self._words = [w for w, _ in pairs]
        self._df = array("q", [n for _, n in pairs])
        chunks: list[array[int]] = []
        buf: list[int] = []
        for idx, w in enumerate(self._words):
            buf.extend(_key(d) | idx for d in _deletes(w, _depth(len(w))))
            if len(buf) >= _CHUNK:
                buf.sort()
                chunks.append(array("Q", buf))
                buf = []
        buf.sort()
        chunks.append(array("Q", buf))
        self._index = chunks[0] if len(chunks) == 1 else array("Q", heapq.merge(*chunks))
        # where each 16-bit prefix of the keys starts: bisect within a bucket, not the whole
        index = self._index
        self._starts = array("I", [bisect_left(index, b << 48) for b in range(1 << 16)])
        self._starts.append(len(index))

    def __len__(self) -> int:
        return len(self._words)

    def suggest(self, word: str, *, max_distance: int = 2) -> tuple[str, int, int] | None:
        """The best dictionary word other than `word`: (word, distance, frequency), or None."""
        length = len(word)
        if length < 4 or length > MAX_WORD_LEN or not is_correctable(word):
            return None
        depth = min(max_distance, 2 if length >= 8 else 1)
        index, words = self._index, self._words
        seen: set[int] = set()
        best: tuple[int, int, str] | None = None  # (distance, -df, word)
        for d in _deletes(word, depth):
            key = _key(d)
            bucket = key >> 48
            end = self._starts[bucket + 1]
            j = bisect_left(index, key, self._starts[bucket], end)
            while j < end and index[j] - key < (1 << 32):
                idx = index[j] & 0xFFFFFFFF
                j += 1
                if idx in seen:
                    continue
                seen.add(idx)
                cand = words[idx]
                if cand == word:
                    continue
                limit = min(depth, 2 if len(cand) >= 8 else 1)
                if best is not None:
                    limit = min(limit, best[0])  # no need to verify worse candidates exactly
                dist = edit_distance(word, cand, limit)
                if dist <= limit:
                    score = (dist, -self._df[idx], cand)
                    if best is None or score < best:
                        best = score
        return None if best is None else (best[2], best[0], -best[1])
