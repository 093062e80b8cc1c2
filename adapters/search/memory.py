"""`MemoryIndex`: a `SearchIndex` held in a dict and answered by brute force (the filter, sort
and facet semantics of domain.search), for unit tests of the logic that uses an index.

Text: a document matches a word group when one of its alternatives' words all occur in the
title, brand, category names or description (lower case, split on non-letters); the score is
the number of groups matched, plus one per group matched in the title. Not BM25, on purpose:
tests of search policy need an index that is easy to reason about, not a second scorer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import pyarrow as pa

from adapters.search import NoLiveIndex, SearchIndex
from domain.search import (
    Hit,
    IndexQuery,
    IndexResult,
    SearchDocument,
    TextQuery,
    brute_facets,
    matches,
    relevance_key,
    sort_key,
)
from domain.search_documents import rows_of

_WORD = re.compile(r"[^\W_]+")


def _words(text: str) -> set[str]:
    return set(_WORD.findall(text.casefold()))


def _score(doc: SearchDocument, text: TextQuery) -> float | None:
    """None: no match; otherwise the score (see the module docstring)."""
    if not text.groups:
        return 0.0
    title = _words(doc.get("title") or "")
    fields = title if text.fields == "title" else title | _words(" ".join([
        doc.get("brand") or "", " ".join(doc.get("category_path") or ()),
        doc.get("description") or ""]))
    score, matched = 0.0, 0
    for group in text.groups:
        alts = [_words(alt) for alt in group if _words(alt)]
        if any(a <= fields for a in alts):
            matched += 1
            score += 1.0 + (1.0 if any(a <= title for a in alts) else 0.0)
    if matched == 0 or (text.require_all and matched < len(text.groups)):
        return None
    return score


class MemoryIndex:
    backend = "memory"

    def __init__(self) -> None:
        self.generations: dict[str, dict[int, SearchDocument]] = {}
        self.live: str | None = None
        self.searches: list[IndexQuery] = []  # every query asked, in order (for tests)

    def _docs(self, generation: str | None) -> dict[int, SearchDocument]:
        name = generation or self.live
        if name is None:
            raise NoLiveIndex("no live search index generation")
        return self.generations[name]

    async def write(self, docs: pa.RecordBatch | Sequence[SearchDocument],
                    deletes: Sequence[int], generation: str | None = None,
                    commit: bool = True) -> int:
        store = self._docs(generation)
        written = 0
        for d in rows_of(docs) if isinstance(docs, pa.RecordBatch) else docs:
            old = store.get(int(d["product_id"]))
            if old is None or int(d["version"]) >= int(old["version"]):
                store[int(d["product_id"])] = d
                written += 1
        for pid in deletes:
            store.pop(int(pid), None)
        return written

    async def upsert(self, docs: Sequence[SearchDocument], generation: str | None = None) -> int:
        return await self.write(docs, (), generation)

    async def delete(self, product_ids: Sequence[int], generation: str | None = None) -> None:
        await self.write((), product_ids, generation)

    async def refresh(self, generation: str | None = None) -> None:
        return None

    async def search(self, query: IndexQuery) -> IndexResult:
        return await self.search_generation(None, query)

    async def search_generation(self, generation: str | None, query: IndexQuery) -> IndexResult:
        self.searches.append(query)
        found = []
        for d in self._docs(generation).values():
            score = _score(d, query.text)
            if score is not None and matches(d, query.filters):
                found.append(Hit(int(d["product_id"]), score, d))
        if query.sort == "relevance":
            found.sort(key=lambda h: relevance_key(h.score, h.doc))
        else:
            found.sort(key=lambda h: sort_key(h.doc, query.sort))
        facets = brute_facets([h.doc for h in found]) if query.facets else brute_facets([])
        return IndexResult(found[query.offset:query.offset + query.limit], len(found), facets)

    async def get(self, product_ids: Sequence[int],
                  generation: str | None = None) -> dict[int, SearchDocument]:
        docs = self._docs(generation)
        return {int(p): docs[int(p)] for p in product_ids if int(p) in docs}

    async def count(self, generation: str | None = None) -> int:
        return len(self._docs(generation))

    async def suggest(self, words: Sequence[str], last: str, limit: int) -> list[str]:
        want, prefix = {w.casefold() for w in words}, last.casefold()
        found = sorted((d for d in self._docs(None).values()
                        if want <= _words(d.get("title") or "")
                        and any(w.startswith(prefix) for w in _words(d.get("title") or ""))),
                       key=lambda d: -int(d.get("rating_count") or 0))
        return [d.get("title") or "" for d in found][:limit]

    async def create_generation(self, name: str, sample: Sequence[SearchDocument] = (),
                                vectors: bool = False) -> None:
        self.generations[name] = {}

    async def finish_generation(self, name: str) -> None:
        return None

    async def live_generation(self) -> str | None:
        return self.live

    async def swap(self, name: str) -> str | None:
        previous, self.live = self.live, name
        return previous

    async def drop_generation(self, name: str) -> None:
        self.generations.pop(name, None)
        if self.live == name:
            self.live = None

    async def close(self) -> None:
        return None


if TYPE_CHECKING:
    def _is_a_search_index(index: MemoryIndex) -> SearchIndex:
        return index
