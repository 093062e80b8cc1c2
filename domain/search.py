"""Search: the request the index answers, the document it holds, and what it returns.

Pure data shared by every search backend (tantivy shards, Elasticsearch), the index builders
and the search API. No I/O here.

Documents are flat dicts with the fields of `DOCUMENT_FIELDS` (the seed's search document plus
what ranking needs). Prices are in major units (dollars) as floats; ids are ints.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import heapq
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import Any, Literal, TypedDict, TypeVar

Sort = Literal["relevance", "price_asc", "price_desc", "rating", "newest"]
SORTS: tuple[str, ...] = ("relevance", "price_asc", "price_desc", "rating", "newest")

# Facet buckets for price (dollars, [low, high)), and "N stars & up" for ratings.
PRICE_RANGES: tuple[tuple[float, float | None], ...] = (
    (0, 25), (25, 50), (50, 100), (100, 200), (200, 500), (500, 1000), (1000, None),
)
RATING_FLOORS: tuple[int, ...] = (4, 3, 2, 1)
K = TypeVar("K", str, int)
FACET_SIZE = 20  # buckets returned per terms facet (brands, attribute values)
CATEGORY_FACET_SIZE = 1000  # category ids counted; the API keeps the ones it shows
FACET_ATTRIBUTES: tuple[str, ...] = ("color", "size")  # attribute facets always computed

# Text scoring, the same in every backend (relevance must not depend on the backend).
FIELD_BOOSTS: dict[str, float] = {  # fields="all": a word may match in any of these
    "title": 3.0, "brand": 2.0, "category_path": 1.0, "description": 0.2,
}
ALTERNATIVE_WEIGHT = 0.5  # synonyms and spelling alternatives, relative to the typed word
CATEGORY_BOOST = 1.5  # score added when a document is in a predicted category
FUZZY_MIN_LENGTH = 5  # with fuzzy, words this long may match with one edit
TIE_BREAKER = 0.1  # several fields / alternatives matching: the best scores, the rest add 10%
PREFIX_MAX = 15  # typeahead prefixes (edge n-grams) are 1..PREFIX_MAX letters

# field -> kind. "text": analysed full text; "keyword": exact, filterable, facetable;
# "keywords": several exact values; the rest are numbers, booleans or stored-only values.
DOCUMENT_FIELDS: dict[str, str] = {
    "product_id": "int",
    "version": "int",  # product version: an older version never replaces a newer one
    "external_id": "stored",
    "seller_id": "int",
    "title": "text",  # also indexed as edge n-grams (typeahead, prefix matching)
    "description": "text",
    "brand": "keyword",  # as written, for display and facets; filters compare `brand_key`
    "brand_key": "keyword",  # normalized (lower case, single spaces)
    "category_ids": "ints",  # the leaf category and all its ancestors
    "category_path": "text",  # names from the root down, e.g. ["Electronics", "Audio"]
    "price": "float",  # effective price of the cheapest active variant
    "price_was": "float",  # compare-at price, or NaN when none
    "currency": "stored",
    "rating_avg": "float",
    "rating_count": "int",
    "in_stock": "bool",
    "badges": "keywords",
    "attributes": "object",  # {name: [values]}, names and values normalized (lower case)
    "created_at": "int",  # epoch seconds
    "sales_velocity": "float",  # units sold per day, recent
    "seller_rating": "float",
    "thumbnail_url": "stored",
    "variant_ids": "stored",  # active variants (live stock hydration)
    "tie_key": "int",  # order among equals (tie_key()): the same on every load of a catalog
}


class SearchDocument(TypedDict, total=False):
    """A search document (`DOCUMENT_FIELDS`). Whole documents have every field; slim hits
    (ranking candidates) only `SLIM_FIELDS`."""

    product_id: int
    version: int
    external_id: str | None
    seller_id: int
    title: str
    description: str
    brand: str | None
    brand_key: str | None
    category_ids: list[int]
    category_path: list[str]
    price: float
    price_was: float | None
    currency: str | None
    rating_avg: float
    rating_count: int
    in_stock: bool
    badges: list[str]
    attributes: dict[str, list[str]]
    created_at: int
    sales_velocity: float
    seller_rating: float | None
    thumbnail_url: str | None
    variant_ids: list[int]
    tie_key: int
    title_vec: bytes | None  # the title's dense vector (index side only; not in answers)


@dataclasses.dataclass(frozen=True, slots=True)
class Filters:
    """Every filter is a conjunction; a tuple of values inside one filter is a disjunction."""

    category_ids: tuple[int, ...] = ()  # any of these (each matches its whole subtree)
    brands: tuple[str, ...] = ()  # brand_key values
    price_min: float | None = None  # inclusive
    price_max: float | None = None  # inclusive
    rating_min: float | None = None
    in_stock: bool | None = None
    seller_id: int | None = None
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (name, any of values), normalized
    exclude_ids: tuple[int, ...] = ()


@dataclasses.dataclass(frozen=True, slots=True)
class TextQuery:
    """What to match. `groups`: each group is one query word with its alternatives (spelling
    correction, synonyms): a document matches a group if it matches any alternative. With
    `require_all`, every group must match (in some field); otherwise any group. `fuzzy` allows
    one edit per word of five letters or more. An empty `groups` matches every document."""

    groups: tuple[tuple[str, ...], ...] = ()
    require_all: bool = True
    fuzzy: bool = False
    fields: Literal["all", "title"] = "all"  # "title": plain BM25 over the title only
    boost_category_ids: tuple[int, ...] = ()  # predicted categories: score boost, not a filter


# Ranking signals the index computes for each hit of a query that asks for them (learned
# rankers' features, ranking/features.py): the query's BM25 within each scored field (summed
# over word groups, each group the best of its alternatives), the share of word groups a
# document matches in any field and in its title, whether the title holds the words typed as
# one phrase, whether the document has a brand, color or category query understanding read
# from the words (0 when it read none), and the cosine of the query's and the title's dense
# vectors (adapters/text_embedding.py; 0 without vectors).
SIGNALS: tuple[str, ...] = (
    "bm25_title", "bm25_brand", "bm25_category", "bm25_description",
    "coverage", "coverage_title", "phrase_title", "brand_match", "color_match",
    "category_match", "dense",
)


@dataclasses.dataclass(frozen=True, slots=True)
class SignalRequest:
    """What the words say beyond the text, to compare each hit with."""

    brands: tuple[str, ...] = ()  # brand keys
    colors: tuple[str, ...] = ()  # normalized color values
    color_attribute: str = "color"
    categories: tuple[int, ...] = ()  # predicted categories
    vector: bytes | None = None  # the query's dense vector (adapters.text_embedding.to_bytes)


# A semantic candidate's place in the index's relevance order: its text score plus this (more
# than any text score), so that it is among a page's re-ranked candidates (search_plan.py
# takes it off again before ranking).
NEAR_BOOST = 10_000.0


@dataclasses.dataclass(frozen=True, slots=True)
class Near:
    """Semantic candidates: the `k` products passing the filters whose titles' dense vectors
    are closest to the query's (`vector`), whether or not they hold the words. Asked in two
    steps. With `ids` None, each shard answers its own closest k (IndexResult.near: score =
    cosine; `merge` keeps the k closest of all, so the answer does not depend on how the
    catalog is sharded, as long as no shard holds more than the index keeps vectors for:
    tantivy_shard.NEAR_MAX_DOCS) and nothing else. Then the chosen `ids` join the words'
    matches: they are counted, faceted and sorted like matches, and in the relevance order
    they come first (NEAR_BOOST); they need pass only `filters`. The embedded index only:
    Elasticsearch's documents carry no vectors, and it answers none."""

    vector: bytes
    k: int
    ids: tuple[int, ...] | None = None
    # the filters the ids passed when chosen (search_plan.near_filters: all but a brand or
    # attribute read from the words, which decide the words' matches only)
    filters: Filters = Filters()


@dataclasses.dataclass(frozen=True, slots=True)
class IndexQuery:
    text: TextQuery = TextQuery()
    filters: Filters = Filters()
    sort: str = "relevance"
    offset: int = 0
    limit: int = 20
    facets: bool = True
    slim: bool = False  # hits may carry only SLIM_FIELDS (ranking candidates); get() the rest
    full_docs: int = 0  # with slim: the first this many hits (per shard) come whole anyway
    signals: SignalRequest | None = None  # SIGNALS of every hit (IndexResult.signals)
    near: Near | None = None  # semantic candidates (Near)


# What ranking and merging need: enough for sort_key and ranking/features.py.
SLIM_FIELDS: tuple[str, ...] = (
    "product_id", "version", "price", "rating_avg", "rating_count", "in_stock", "created_at",
    "sales_velocity", "seller_rating", "tie_key",
)


@dataclasses.dataclass(frozen=True, slots=True)
class Hit:
    product_id: int
    score: float  # text score for relevance; the sort key otherwise
    doc: SearchDocument


@dataclasses.dataclass(slots=True)
class Facets:
    brands: dict[str, int] = dataclasses.field(default_factory=dict)
    price_ranges: dict[str, int] = dataclasses.field(default_factory=dict)  # price_range_label
    ratings: dict[int, int] = dataclasses.field(default_factory=dict)  # floor -> count (>= floor)
    categories: dict[int, int] = dataclasses.field(default_factory=dict)  # id -> count
    attributes: dict[str, dict[str, int]] = dataclasses.field(default_factory=dict)

    def add(self, other: Facets) -> None:
        """Merges another shard's counts into these (counts are exact per shard)."""
        pairs: tuple[tuple[dict[Any, int], dict[Any, int]], ...] = (
            (self.brands, other.brands), (self.price_ranges, other.price_ranges),
            (self.ratings, other.ratings), (self.categories, other.categories))
        for mine, theirs in pairs:
            _add_counts(mine, theirs)
        for name, values in other.attributes.items():
            _add_counts(self.attributes.setdefault(name, {}), values)


def _add_counts(mine: dict[K, int], theirs: Mapping[K, int]) -> None:
    if not mine:  # the first shard's: copied whole (hundreds of buckets per facet)
        mine.update(theirs)
        return
    for k, n in theirs.items():
        mine[k] = mine.get(k, 0) + n


def top_buckets(counts: Mapping[K, int], n: int) -> list[tuple[K, int]]:
    """The `n` largest counts, ties by key: as sorting every bucket would give, without
    sorting the hundreds below the n-th count."""
    if len(counts) > n:
        floor = heapq.nlargest(n, counts.values())[-1]
        kept = [(k, c) for k, c in counts.items() if c >= floor]
    else:
        kept = list(counts.items())
    kept.sort(key=lambda x: (-x[1], x[0]))
    return kept[:n]


def merged_by_key(counts: Mapping[str, int], key: Callable[[str], str]) -> Mapping[str, int]:
    """Counts of values that are one value by `key` (a brand written "Nike" and "NIKE": one
    brand_key, which is what the brand filter compares) added up under the name most of
    them are written as (a tie: the one that sorts first, "NIKE" before "Nike"). A facet's
    count is then what choosing it shows. Run on every search's brands (hundreds to
    thousands): only the values that share a key are grouped."""
    keys = [key(name) for name in counts]
    if len(set(keys)) == len(keys):
        return counts
    shared = {k for k, times in collections.Counter(keys).items() if times > 1}
    merged: dict[str, int] = {}
    groups: dict[str, list[tuple[str, int]]] = {}
    for k, (name, n) in zip(keys, counts.items(), strict=True):
        if k in shared:
            groups.setdefault(k, []).append((name, n))
        else:
            merged[name] = n
    for names in groups.values():
        merged[min(names, key=lambda x: (-x[1], x[0]))[0]] = sum(n for _, n in names)
    return merged


def shown_buckets(counts: Mapping[str, int], n: int, chosen: Collection[str],
                  key: Callable[[str], str] = lambda k: k) -> list[tuple[str, int]]:
    """`top_buckets`, and after them the values the shopper chose (by `key`: a brand's
    display name is chosen by its brand_key) that are not among the first n: a chosen value
    stays on offer, to be seen and taken back, however few products it has."""
    top = top_buckets(counts, n)
    if not chosen:
        return top
    shown = {k for k, _ in top}
    wanted = set(chosen)
    return top + sorted(((k, c) for k, c in counts.items()
                         if k not in shown and key(k) in wanted), key=lambda x: (-x[1], x[0]))


@dataclasses.dataclass(slots=True)
class IndexResult:
    hits: list[Hit]
    total: int
    facets: Facets
    signals: dict[int, tuple[float, ...]] = dataclasses.field(default_factory=dict)  # SIGNALS
    near: list[Hit] = dataclasses.field(default_factory=list)  # Near's first step: the closest
    near_only: int = 0  # of the Near ids joined: how many match no word (counted in `total`)

    def __reduce__(self) -> tuple[Any, ...]:
        # between shard actors and the Gateway, hits travel as plain tuples: pickling
        # hundreds of slotted dataclasses (one state dict each) cost twice as much
        return _index_result, ([(h.product_id, h.score, h.doc) for h in self.hits],
                               self.total, self.facets, self.signals,
                               [(h.product_id, h.score, h.doc) for h in self.near],
                               self.near_only)

    @property
    def word_matches(self) -> int:
        """The matches of the words and filters, without the semantic candidates joined."""
        return self.total - self.near_only


def _index_result(hits: list[tuple[int, float, SearchDocument]], total: int,
                  facets: Facets, signals: dict[int, tuple[float, ...]] | None = None,
                  near: list[tuple[int, float, SearchDocument]] | None = None,
                  near_only: int = 0) -> IndexResult:
    return IndexResult([Hit(p, s, d) for p, s, d in hits], total, facets, signals or {},
                       [Hit(p, s, d) for p, s, d in near or ()], near_only)


def merge(parts: Sequence[IndexResult], query: IndexQuery) -> IndexResult:
    """Shards' results -> one page of `query`. Each part is sorted in the query's order and
    holds its shard's top offset + limit; ties break on the tie key, then the product id
    (`relevance_key`, `sort_key`); totals and facet counts add up."""
    hits: list[Hit] = [h for p in parts for h in p.hits]
    if query.sort == "relevance":
        hits.sort(key=lambda h: relevance_key(h.score, h.doc))
    else:
        hits.sort(key=lambda h: sort_key(h.doc, query.sort))
    facets = Facets()
    for p in parts:
        facets.add(p.facets)
    page = hits[query.offset:query.offset + query.limit]
    signals = {h.product_id: v for p in parts for h in page
               if (v := p.signals.get(h.product_id)) is not None}
    near: list[Hit] = []
    if query.near is not None and query.near.ids is None:  # the k closest of every shard's
        near = sorted((h for p in parts for h in p.near),
                      key=lambda h: relevance_key(h.score, h.doc))[:query.near.k]
    return IndexResult(page, sum(p.total for p in parts), facets, signals, near,
                       sum(p.near_only for p in parts))


def price_range_label(low: float, high: float | None) -> str:
    return f"${low:g}+" if high is None else f"${low:g}-${high:g}"


def split_list(raw: str) -> tuple[str, ...]:
    """The values of a list filter (`brand=`, `color=`, `attr.<name>=`): comma-separated,
    `\\,` a comma inside a value and `\\\\` a backslash (a brand "Smith, Jones & Co" is
    `Smith\\, Jones & Co`); each stripped, empty ones dropped."""
    values: list[str] = []
    part: list[str] = []
    chars = iter(raw)
    for c in chars:
        if c == "\\":
            part.append(next(chars, "\\"))
        elif c == ",":
            values.append("".join(part))
            part = []
        else:
            part.append(c)
    values.append("".join(part))
    return tuple(v for v in (x.strip() for x in values) if v)


def normalize_key(value: str) -> str:
    """Brand keys and attribute names/values: case- and space-insensitive."""
    return " ".join(value.casefold().split())


def tie_key(external_id: str | None, product_id: int) -> int:
    """A product's place among equals (the same score or sort value): a hash of its external
    id, so it is the same whenever the same catalog is loaded (product ids are time-based and
    differ on every load). Products without an external id fall back to their id."""
    key = external_id if external_id else f"#{int(product_id)}"
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") >> 1


def doc_tie_key(doc: Mapping[str, Any]) -> int:
    v = doc.get("tie_key")
    return int(v) if v is not None else tie_key(doc.get("external_id"), int(doc["product_id"]))


def relevance_key(score: float, doc: Mapping[str, Any]) -> tuple[float, int, int]:
    """The order of relevance: best score first, then the tie key, then the id."""
    return (-score, doc_tie_key(doc), int(doc["product_id"]))


def sort_key(doc: Mapping[str, Any], sort: str) -> tuple[Any, ...]:
    """The order of `sort` for merging shards and for brute-force checks: ascending tuples.
    Ties break on the tie key (then the id) so pages are stable, and the same on every load."""
    pid = int(doc["product_id"])
    tie = doc_tie_key(doc)
    if sort == "price_asc":
        return (float(doc["price"]), tie, pid)
    if sort == "price_desc":
        return (-float(doc["price"]), tie, pid)
    if sort == "rating":
        return (-float(doc["rating_avg"]), -int(doc["rating_count"]), tie, pid)
    if sort == "newest":
        return (-int(doc["created_at"]), tie, pid)
    raise ValueError(f"sort {sort!r} has no document order")


def matches(doc: Mapping[str, Any], f: Filters) -> bool:
    """Brute-force filter semantics (tests compare every backend with this)."""
    if f.category_ids and not set(f.category_ids) & set(doc.get("category_ids") or ()):
        return False
    if f.brands and doc.get("brand_key") not in f.brands:
        return False
    price = float(doc["price"])
    if f.price_min is not None and price < f.price_min:
        return False
    if f.price_max is not None and price > f.price_max:
        return False
    if f.rating_min is not None and float(doc["rating_avg"]) < f.rating_min:
        return False
    if f.in_stock is not None and bool(doc["in_stock"]) != f.in_stock:
        return False
    if f.seller_id is not None and int(doc["seller_id"]) != f.seller_id:
        return False
    attrs = doc.get("attributes") or {}
    for name, values in f.attributes:
        if not set(values) & set(attrs.get(name) or ()):
            return False
    return int(doc["product_id"]) not in f.exclude_ids


def brute_facets(docs: Sequence[Mapping[str, Any]]) -> Facets:
    """Facet counts over matching documents, computed the slow, obvious way."""
    out = Facets()
    for d in docs:
        if d.get("brand"):
            out.brands[d["brand"]] = out.brands.get(d["brand"], 0) + 1
        price = float(d["price"])
        for low, high in PRICE_RANGES:
            if price >= low and (high is None or price < high):
                label = price_range_label(low, high)
                out.price_ranges[label] = out.price_ranges.get(label, 0) + 1
        for floor in RATING_FLOORS:
            if float(d["rating_avg"]) >= floor:
                out.ratings[floor] = out.ratings.get(floor, 0) + 1
        for c in set(d.get("category_ids") or ()):
            out.categories[c] = out.categories.get(c, 0) + 1
        attrs = d.get("attributes") or {}
        for name in FACET_ATTRIBUTES:
            for v in set(attrs.get(name) or ()):
                bucket = out.attributes.setdefault(name, {})
                bucket[v] = bucket.get(v, 0) + 1
    return out


def finite(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else x
