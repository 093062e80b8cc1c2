"""The search policy: what to ask the index for a request, and what to do with its answers
(no I/O here; `serve/search.py` executes it with the index, the facet cache and the ranker).

raw words -> query understanding (spelling, synonyms, filters read from the words, likely
categories); URL filters win -> one index query: the top candidates (RERANK_DEPTH for
relevance), slim, with facet counts unless the cache holds counts made over the same number
of matches -> no match: relax (fuzzy; then without the filters read from the words) -> re-rank
the candidates -> few pass the filters read from the words: widen with the best matches of
every word without them -> the page.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping, Sequence
from typing import Literal, Protocol

from domain.errors import ValidationFailed
from domain.query import QueryUnderstanding, explicit_only, merge, text_query, tokenize
from domain.query.merge import EXPLICIT
from domain.search import (
    FACET_ATTRIBUTES,
    NEAR_BOOST,
    Facets,
    Filters,
    Hit,
    IndexQuery,
    IndexResult,
    Near,
    SignalRequest,
    TextQuery,
    relevance_key,
)

RERANK_DEPTH = 200  # candidates re-ranked by the Ranker
NEAR_CANDIDATES = 20  # semantic candidates joined to a learned ranker's matches (Near)
MAX_WINDOW = 10_000  # deepest result reachable by paging (page * page_size)
PLAIN = "bm25_title"  # the textbook baseline: words as typed, titles only, no re-rank
INDEX_ORDER = "text"  # the pipeline without a re-rank


@dataclasses.dataclass(frozen=True)
class SearchParams:
    q: str = ""
    category: str | None = None
    price_min: float | None = None
    price_max: float | None = None
    brands: tuple[str, ...] = ()
    rating_min: float | None = None
    in_stock: bool | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    sort: str = "relevance"
    page: int = 1
    page_size: int = 20
    ranker: str = "default"
    signals: bool = False  # the index computes ranking signals of the candidates (learned)
    vector: bytes | None = None  # the query's dense vector (the `dense` signal; Near)
    semantic: bool = False  # semantic candidates join the matches (a learned ranker shows them)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


@dataclasses.dataclass(frozen=True)
class Words:
    """What the words ask for: the text to match, the filters (URL's and read from the words),
    and every word typed (to search again without the filters read from them)."""

    text: TextQuery
    filters: Filters
    applied: dict[str, object]  # the answer's applied_filters: each with its source
    every_word: tuple[tuple[str, ...], ...]
    did_you_mean: str | None = None


@dataclasses.dataclass(frozen=True)
class CachedFacets:
    """Facet counts kept from an earlier search of the same words and filters: `total` and
    `word_matches` (IndexResult's) are the matches they were counted over; `facets` is what
    the answer shows, or None where only the numbers were kept (a query whose answer came
    from another: its words matched nothing and were relaxed; PlannedSearch.totals)."""

    total: int
    facets: dict[str, object] | None
    word_matches: int

    def holds_for(self, result: IndexResult) -> bool:
        """Trusted while the matches are as many, and as many of them match the words (an
        empty answer's counts, kept where semantic candidates alone passed the filters, are
        not those of words that came to match one of them)."""
        return result.total == self.total and result.word_matches == self.word_matches


@dataclasses.dataclass(frozen=True)
class Widened:
    inferred_filter_matches: int
    more_results: int


@dataclasses.dataclass(frozen=True)
class PlannedSearch:
    """The outcome: the page's hits (slim ones still to be made whole), the total, the facet
    counts to show (`cached`, else `result.facets` over `filters`), and what was done."""

    hits: list[Hit]
    total: int
    result: IndexResult  # the matches the facets count
    filters: Filters
    words: Words
    cached: CachedFacets | None
    relaxed: str | None = None
    widened: Widened | None = None
    counted_query: IndexQuery | None = None  # the query whose matches the counts are
    # the answer's counts' key (facet_identity of counted_query; "": none, nothing was
    # searched) and that query's own numbers of matches (total, word matches): what the
    # next search checks
    counted_key: str = ""
    counted_matches: tuple[int, int] = (0, 0)
    # queries searched on the way whose counts were not kept: their keys and numbers of
    # matches, to keep alone (a repeated search then asks each of them without facets)
    totals: tuple[tuple[str, int, int], ...] = ()

    def counts_to_keep(self, facets: dict[str, object]) -> list[tuple[str, CachedFacets]]:
        """What the next search of the same words and filters may reuse, by facet_identity
        (SearchSteps.cached_facets): the answer's counts `facets` under the counted query's,
        unless they came from there, and the numbers of matches of each query searched on
        the way."""
        out = [(key, CachedFacets(n, None, w)) for key, n, w in self.totals]
        if self.keep_facets and self.cached is None:
            total, words = self.counted_matches
            out.append((self.counted_key, CachedFacets(total, facets, words)))
        return out

    @property
    def keep_facets(self) -> bool:
        """The answer's counts are worth keeping: they count a query's matches."""
        return bool(self.counted_key)


class SearchSteps(Protocol):
    """What the plan asks of the world."""

    async def search(self, query: IndexQuery) -> IndexResult: ...

    async def cached_facets(self, identity: str) -> CachedFacets | None:
        """Counts kept under a facet_identity (PlannedSearch.counts_to_keep)."""

    async def rerank(self, hits: list[Hit], ranker: str, words: Words) -> list[Hit]: ...


def facet_identity(query: IndexQuery, explicit: Filters) -> str:
    """What an answer's facet counts depend on: the words, their fields and the filters, and
    which filters the shopper set (`explicit`, the URL's: their groups are counted over the
    other filters' matches, so that the shop offers their other values); not the sort or the
    page (a digest: the cache key's part that a generation does not already name)."""
    text = query.text
    identity = repr((text.groups, text.require_all, text.fuzzy, text.fields,
                     text.boost_category_ids, query.filters,
                     query.near.ids if query.near is not None else None, explicit))
    return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()


def read_words(p: SearchParams, explicit: Filters,
               understanding: QueryUnderstanding | None) -> Words:
    """The words through query understanding (none, or the plain baseline: every word as
    typed, over titles for the baseline). Any word may match: BM25 ranks documents with more
    of them first (on the ESCI judgments this beats requiring every word)."""
    if understanding is not None and p.ranker != PLAIN and p.q.strip():
        parsed = understanding.parse(p.q, explicit)
        filters, applied = merge(parsed, explicit)
        text = text_query(parsed, require_all=False)
        if not text.groups:  # a query that is only a brand (or a color) still ranks
            text = dataclasses.replace(text, groups=parsed.all_groups)
        return Words(text, filters, applied, parsed.all_groups, parsed.did_you_mean)
    filters, applied = explicit_only(explicit)
    groups = tuple((w,) for w in tokenize(p.q))
    text = TextQuery(groups, require_all=False, fields="title" if p.ranker == PLAIN else "all")
    return Words(text, filters, applied, groups)


def signal_request(words: Words, vector: bytes | None = None) -> SignalRequest:
    """What the words say beyond the text (the filters read from them, the categories
    predicted, the query's dense vector), for the index to compare every candidate with."""
    colors = next((vs for name, vs in words.filters.attributes if name == "color"), ())
    return SignalRequest(brands=words.filters.brands, colors=colors,
                         categories=words.text.boost_category_ids, vector=vector)


def _ranker_orders(p: SearchParams) -> bool:
    """Relevance ordered by a re-ranking ranker (not a sort, not bm25_title or text)."""
    return p.sort == "relevance" and p.ranker not in (PLAIN, INDEX_ORDER)


def wants_vector(p: SearchParams) -> bool:
    """Whether a learned ranker's search makes the query's dense vector: for the re-ranking's
    `dense` signal and for the semantic candidates (`near_query`), which every page of the
    search shares (a page past the re-ranked depth counts them too)."""
    return _ranker_orders(p) and bool(p.q.strip())


def may_rerank(p: SearchParams) -> bool:
    """Whether the search may re-rank, before its words are read (`reranks` then decides):
    work only a re-ranking needs is skipped otherwise."""
    return wants_vector(p) and p.offset < RERANK_DEPTH


def near_filters(words: Words, explicit: Filters) -> Filters:
    """What semantic candidates must pass: every filter but a brand or an attribute (color,
    size) read from the words. A price or a rating in the words ("under $50") is what the
    shopper asked for; a brand or color read from them leaves out the products whose brand
    or color field says it otherwise ("Black" in the title, no color attribute)."""
    return dataclasses.replace(words.filters, brands=explicit.brands,
                               attributes=explicit.attributes)


def near_choice(words: Words, explicit: Filters) -> Filters:
    """Where Near's first step chooses from: what the words themselves ask of a price or a
    rating ("under $50"), not the URL's filters. The candidates are the words' own, and the
    URL's filters then apply to them as to the matches (`near_filters`): a facet's count is
    what choosing its value shows, where candidates chosen again among a narrow filter's
    products would be the query's nearest there however far (mattresses for "headphones"
    at $200-$500)."""
    f = words.filters
    return Filters(price_min=f.price_min if explicit.price_min is None else None,
                   price_max=f.price_max if explicit.price_max is None else None,
                   rating_min=f.rating_min if explicit.rating_min is None else None)


def near_query(p: SearchParams, words: Words, explicit: Filters) -> IndexQuery | None:
    """Near's first step: the NEAR_CANDIDATES products passing `near_choice` whose titles
    are closest to the query's vector; those passing `near_filters` join the words' matches
    (a re-ranking that reads the `dense` signal finds among them what the words miss,
    "sneakers" for "running shoes", and what a brand or color read from the words left
    out)."""
    if not p.semantic or p.vector is None or not _ranker_orders(p) or not words.text.groups:
        return None
    return IndexQuery(words.text, near_choice(words, explicit), limit=0, facets=False,
                      near=Near(p.vector, NEAR_CANDIDATES,
                                filters=near_filters(words, explicit)))


def in_words_order(hits: list[Hit]) -> list[Hit]:
    """Candidates in the words' own relevance order: a semantic candidate's NEAR_BOOST (which
    placed it among them) taken off its score, which ranking features read as its text
    score; those that match no word come last."""
    if not any(h.score >= NEAR_BOOST / 2 for h in hits):
        return hits
    out = [Hit(h.product_id, h.score - NEAR_BOOST, h.doc) if h.score >= NEAR_BOOST / 2 else h
           for h in hits]
    out.sort(key=lambda h: relevance_key(h.score, h.doc))
    return out


def reranks(p: SearchParams, words: Words) -> bool:
    return _ranker_orders(p) and bool(words.text.groups) and p.offset < RERANK_DEPTH


def ordered_by(p: SearchParams, words: Words) -> Literal["ranker", "sort", "index"]:
    """What orders the answer: the ranker asked for (a re-rank, or bm25_title and text,
    which are orders of the index's relevance), a sort, or the index alone (no words, a page
    past the re-ranked depth)."""
    if p.sort != "relevance":
        return "sort"
    return "ranker" if reranks(p, words) or p.ranker in (PLAIN, INDEX_ORDER) else "index"


def first_query(p: SearchParams, words: Words) -> IndexQuery:
    """Re-ranked: the top RERANK_DEPTH candidates (and, for a page across that depth, the
    index's next ones down to the page's end); otherwise the page.
    Hits come slim (fast fields: enough to merge shards and re-rank), and the page's
    documents are fetched once it is known (a deep page or a sort's ties would otherwise
    load hundreds of stored documents per shard); except a first page in the index's order,
    which each shard's first page_size hold. A re-ranked page may be any of the candidates:
    loading each shard's first page_size whole cost more than fetching the page after."""
    rerank = reranks(p, words)
    depth = max(RERANK_DEPTH, p.offset + p.page_size) if rerank else p.page_size
    return IndexQuery(words.text, words.filters, p.sort, 0 if rerank else p.offset, depth,
                      facets=True, slim=True,
                      full_docs=p.page_size if p.offset == 0 and not rerank else 0,
                      signals=signal_request(words, p.vector) if rerank and p.signals else None)


async def _offered_alone(query: IndexQuery, words: Words, explicit: Filters,
                         result: IndexResult, steps: SearchSteps) -> bool:
    """Semantic candidates alone answer a search whose URL filters leave only them when the
    words match products without those filters: that search's facets counted them (a brand
    of earbuds among "headphones"), and choosing that value shows them. Words that match
    nothing are relaxed as ever."""
    if not result.near_only or query.near is None \
            or near_filters(words, explicit) == near_choice(words, explicit):
        return False  # no candidate passed, or no URL filter narrowed them
    unfiltered = await steps.search(dataclasses.replace(
        query, filters=near_choice(words, explicit), near=None, offset=0, limit=0,
        facets=False, signals=None))
    return unfiltered.total > 0


def relaxations(query: IndexQuery, words: Words,
                explicit: Filters) -> list[tuple[str, IndexQuery]]:
    """When nothing matches: one edit per long word; then, if filters were read from the
    words (they may be wrong), only the URL's, with every word typed again (brand and color
    words included)."""
    steps = [("fuzzy", dataclasses.replace(query, facets=True, near=None, text=dataclasses.replace(
        words.text, fuzzy=True)))]
    if words.filters != explicit:
        steps.append(("inferred_filters_dropped", dataclasses.replace(
            query, filters=explicit, facets=True, near=None, text=dataclasses.replace(
                words.text, groups=words.every_word, fuzzy=True))))
    return steps


def widens(p: SearchParams, words: Words, filters: Filters, explicit: Filters,
           relaxed: str | None, matches: int) -> bool:
    """Few products pass the filters read from the words (`matches`, fewer than a page): the
    answer is those, then the best matches of every word typed without those filters. Decided
    the same way on every page of the search (not by the page's offset), so that its pages
    share one list and one total."""
    return (relaxed is None and filters != explicit and matches < p.page_size
            and _ranker_orders(p) and bool(words.text.groups))


def widening(query: IndexQuery, words: Words, explicit: Filters) -> IndexQuery:
    """The best matches of every word typed, without the filters read from the words (as
    many as are re-ranked: a widened answer is at most RERANK_DEPTH long)."""
    return dataclasses.replace(query, filters=explicit, offset=0, limit=RERANK_DEPTH,
                               facets=False, near=None,
                               text=dataclasses.replace(words.text, groups=words.every_word))


async def plan_search(p: SearchParams, explicit: Filters,
                      understanding: QueryUnderstanding | None,
                      steps: SearchSteps) -> PlannedSearch:
    if p.page * p.page_size > MAX_WINDOW:
        raise ValidationFailed({
            "page": f"page * page_size must be at most {MAX_WINDOW}"}, "page too deep")
    words = read_words(p, explicit, understanding)
    if p.q.strip() and not tokenize(p.q):
        # words with nothing to search or read ("😀", "%", "(("): nothing matches them; they
        # are not a blank search box (which browses the catalog)
        return PlannedSearch([], 0, IndexResult([], 0, Facets()), words.filters, words, None)
    query = first_query(p, words)
    rerank = reranks(p, words)
    asked = near_query(p, words, explicit)
    if asked is not None and asked.near is not None:
        found = await steps.search(asked)
        if found.near:
            query = dataclasses.replace(query, near=dataclasses.replace(
                asked.near, ids=tuple(h.product_id for h in found.near)))
    # Facet counts over every match are the shards' largest cost: cached, and trusted only
    # while the matches are as many as they were counted over (CachedFacets.holds_for).
    async def kept_counts(q: IndexQuery) -> tuple[str, IndexResult, CachedFacets | None]:
        """`q`'s facet_identity, its matches, and the counts kept for it that still hold."""
        identity = facet_identity(q, explicit)
        kept = await steps.cached_facets(identity)
        if kept is not None:
            found = await steps.search(dataclasses.replace(q, facets=False))
            if kept.holds_for(found):
                return identity, found, kept
        return identity, await steps.search(q), None

    counted_key, result, cached = await kept_counts(query)
    counted_matches = (result.total, result.word_matches)
    totals: list[tuple[str, int, int]] = []
    relaxed = None
    filters = words.filters
    counted_query = query
    # nothing matches the words (semantic candidates alone are not an answer): relax them
    if result.word_matches == 0 and words.text.groups and p.ranker != PLAIN \
            and not await _offered_alone(query, words, explicit, result, steps):
        for how, relaxed_query in relaxations(query, words, explicit):
            identity, found, kept = await kept_counts(relaxed_query)
            if found.total:
                relaxed = how
                if cached is None:
                    totals.append((counted_key, *counted_matches))
                counted_key, result, cached, counted_query = identity, found, kept, relaxed_query
                counted_matches = (found.total, found.word_matches)
                if how == "inferred_filters_dropped":
                    filters, applied = explicit_only(explicit)
                    words = dataclasses.replace(words, applied=applied)
                break
            if kept is None:
                totals.append((identity, 0, 0))
            # none answers: the answer is empty; its counts are those of the query's groups
            # (service: the facets of filters a shopper may widen), kept under the query's key
            result = found
    if cached is not None and cached.facets is None:  # only its number of matches was kept
        if result.total:  # the answer's own counts are wanted
            result = await steps.search(counted_query)
        cached = None
    hits = result.hits
    if rerank and hits:
        # the top RERANK_DEPTH re-ranked, whatever the page: a page across that depth goes on
        # in the index's order (re-ranking more for it would order the first ones anew, and
        # its page would repeat some products of the page before and skip others)
        hits = (await steps.rerank(in_words_order(hits[:RERANK_DEPTH]), p.ranker, words)
                + hits[RERANK_DEPTH:])
    widened = None
    total = result.total
    counted = result
    if widens(p, words, filters, explicit, relaxed, result.word_matches):
        # show the few first, then the best matches of every word typed without the filters
        # read from the words ("more results"), up to RERANK_DEPTH in all
        more = await steps.search(widening(query, words, explicit))
        # the few: this search's hits when it re-ranks (all of them: fewer than a page);
        # on a page past the re-ranked depth, asked again from the first (the same list)
        few = hits if rerank else (await steps.search(dataclasses.replace(
            query, offset=0, limit=p.page_size + NEAR_CANDIDATES, facets=False,
            signals=None))).hits
        seen = {h.product_id for h in few}
        extra = [h for h in more.hits if h.product_id not in seen]
        extra = extra[:max(RERANK_DEPTH - len(few), 0)]
        total = len(few) + len(extra)  # counted alike on every page
        if rerank:
            if extra:
                extra = await steps.rerank(extra, p.ranker, words)
            hits = few + extra
        else:  # a page past the re-ranked depth: past every widened match
            hits = []
        # semantic candidates among the few are not the inferred filters' matches
        widened = Widened(result.word_matches, total - result.word_matches)
    if rerank or widened:
        hits = hits[p.offset:p.offset + p.page_size]
    return PlannedSearch(hits, total, counted, filters, words, cached, relaxed=relaxed,
                         widened=widened, counted_query=counted_query, counted_key=counted_key,
                         counted_matches=counted_matches, totals=tuple(totals))


# -- facets of filters a shopper may widen -------------------------------------------------
# A shop's facets offer the other values of a filtered group (a second brand, another price
# range): a group's counts are made over the matches of every OTHER filter. Only filters the
# shopper set (the URL's: the shop shows them ticked), and only groups the index counts
# (brands, price, rating, FACET_ATTRIBUTES). Categories are not among them (a category
# filter drills down: its facet lists the subcategories).
FacetKind = Literal["brands", "price", "rating", "attribute"]
FacetGroup = tuple[FacetKind, str]  # (kind, the attribute's name; "" for the others)


def _without(filters: Filters, group: FacetGroup) -> Filters:
    kind, name = group
    if kind == "brands":
        return dataclasses.replace(filters, brands=())
    if kind == "price":
        return dataclasses.replace(filters, price_min=None, price_max=None)
    if kind == "rating":
        return dataclasses.replace(filters, rating_min=None)
    return dataclasses.replace(filters, attributes=tuple(
        (n, v) for n, v in filters.attributes if n != name))


def facet_groups(filters: Filters, applied: Mapping[str, object]) -> list[FacetGroup]:
    """The groups the shopper filtered (`applied`: the answer's applied_filters, each with
    its source) whose facets count the matches of the other filters."""
    def explicit(entry: object) -> bool:
        return isinstance(entry, Mapping) and entry.get("source") == EXPLICIT

    out: list[FacetGroup] = []
    if filters.brands and explicit(applied.get("brands")):
        out.append(("brands", ""))
    if explicit(applied.get("price_min")) or explicit(applied.get("price_max")):
        out.append(("price", ""))
    if filters.rating_min is not None and explicit(applied.get("rating_min")):
        out.append(("rating", ""))
    named = applied.get("attributes")
    out += [("attribute", name) for name, _ in filters.attributes
            if name in FACET_ATTRIBUTES and isinstance(named, Mapping)
            and explicit(named.get(name))]
    return out


def facet_query(counted: IndexQuery, filters: Filters, group: FacetGroup) -> IndexQuery:
    """Counts for `group`: the counted query without that group's filter (no page, no
    signals: only its facet counts are read)."""
    near = counted.near
    if near is not None:  # its candidates too, as they would join without that filter
        near = dataclasses.replace(near, filters=_without(near.filters, group))
    return dataclasses.replace(counted, filters=_without(filters, group), offset=0, limit=1,
                               facets=True, slim=True, full_docs=0, signals=None, near=near)


def with_group_counts(facets: Facets, counts: Sequence[tuple[FacetGroup, Facets]]) -> Facets:
    """`facets` with each group's counts taken from its own facet query's."""
    out = Facets(dict(facets.brands), dict(facets.price_ranges), dict(facets.ratings),
                 dict(facets.categories), {k: dict(v) for k, v in facets.attributes.items()})
    for (kind, name), theirs in counts:
        if kind == "brands":
            out.brands = dict(theirs.brands)
        elif kind == "price":
            out.price_ranges = dict(theirs.price_ranges)
        elif kind == "rating":
            out.ratings = dict(theirs.ratings)
        else:
            out.attributes[name] = dict(theirs.attributes.get(name, {}))
    return out
