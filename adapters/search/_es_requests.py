"""Elasticsearch request bodies and response parsing, as pure functions (no client, no I/O).

`search_body` turns an `IndexQuery` into the JSON of a `_search` request; `parse_search_response`
reads its answer back into an `IndexResult`. The bulk helpers build `_bulk` operations and sort
each item of the answer into written / stale / retry / failed.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, cast

from domain.search import (
    ALTERNATIVE_WEIGHT,
    CATEGORY_BOOST,
    CATEGORY_FACET_SIZE,
    DOCUMENT_FIELDS,
    FACET_ATTRIBUTES,
    FIELD_BOOSTS,
    FUZZY_MIN_LENGTH,
    PREFIX_MAX,
    PRICE_RANGES,
    RATING_FLOORS,
    SLIM_FIELDS,
    TIE_BREAKER,
    Facets,
    Filters,
    Hit,
    IndexQuery,
    IndexResult,
    SearchDocument,
    TextQuery,
    price_range_label,
)

# fields="all": a word may match in any of these (boosts shared with the embedded backend)
ALL_FIELDS: tuple[str, ...] = tuple(
    f"{'brand.text' if name == 'brand' else name}^{boost:g}"
    for name, boost in FIELD_BOOSTS.items())
EXACT_TERMS = 10_000  # brand / attribute buckets counted (the API keeps the top ones): exact

_ASC: dict[str, str] = {"order": "asc"}
_DESC: dict[str, str] = {"order": "desc"}
_TIES: list[dict[str, Any]] = [{"tie_key": _ASC}, {"product_id": _ASC}]
SORTS: dict[str, list[dict[str, Any]]] = {  # the order of `domain.search.sort_key`
    "relevance": [{"_score": _DESC}, *_TIES],
    "price_asc": [{"price": _ASC}, *_TIES],
    "price_desc": [{"price": _DESC}, *_TIES],
    "rating": [{"rating_avg": _DESC}, {"rating_count": _DESC}, *_TIES],
    "newest": [{"created_at": _DESC}, *_TIES],
}
_FLOAT_FIELDS = tuple(name for name, kind in DOCUMENT_FIELDS.items() if kind == "float")


# -- search -------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[\W_]+")  # the index analyser's `WORD_SEPARATORS`, in Python


def words(text: str) -> list[str]:
    """How the index analyser splits `text` into words (40+ letter words are dropped)."""
    return [w for w in _SEPARATORS.split(text) if w and len(w.encode()) < 40]


def alternative_query(alt: str, text: TextQuery,
                      weight: float = 1.0) -> dict[str, Any] | None:
    """One spelling of one query word, as the embedded backend reads it: several words (a
    phrase, "wh-1000xm5") match as a phrase; one word exactly or, if fuzzy and 5+ letters
    long, within one edit. None when `alt` has no words at all."""
    n = len(words(alt))
    if n == 0:
        return None
    if n == 1 and text.fuzzy and len(alt) >= FUZZY_MIN_LENGTH:
        params: dict[str, Any] = {"query": alt, "fuzziness": 1}
    else:  # a phrase of one word is a term
        params = {"query": alt}
    if weight != 1.0:
        params["boost"] = weight
    if text.fields == "title":
        return {"match": {"title": params}} if "fuzziness" in params else {
            "match_phrase": {"title": params}}
    kind = "best_fields" if "fuzziness" in params else "phrase"
    return {"multi_match": {**params, "type": kind, "fields": list(ALL_FIELDS),
                            "tie_breaker": TIE_BREAKER}}


def group_query(group: Sequence[str], text: TextQuery) -> dict[str, Any] | None:
    """A query word matches when any of its alternatives does (the best one scores);
    None when no alternative has a word."""
    alts = [q for q in (alternative_query(a, text, 1.0 if i == 0 else ALTERNATIVE_WEIGHT)
                        for i, a in enumerate(group)) if q is not None]
    if len(alts) <= 1:
        return alts[0] if alts else None
    return {"dis_max": {"queries": alts, "tie_breaker": TIE_BREAKER}}


def text_clauses(text: TextQuery) -> list[dict[str, Any]]:
    """The `must` clauses of the text: every group, or at least one. No groups match every
    document; groups without a single word match none."""
    if not text.groups:
        return [{"match_all": {}}]
    groups = [q for q in (group_query(g, text) for g in text.groups) if q is not None]
    if not groups:
        return [{"match_none": {}}]
    if text.require_all or len(groups) == 1:
        return groups
    return [{"bool": {"should": groups, "minimum_should_match": 1}}]


def filter_clauses(f: Filters) -> list[dict[str, Any]]:
    """Non-scoring `filter` clauses (a conjunction) for `domain.search.matches` semantics."""
    out: list[dict[str, Any]] = []
    if f.category_ids:
        out.append({"terms": {"category_ids": list(f.category_ids)}})
    if f.brands:
        out.append({"terms": {"brand_key": list(f.brands)}})
    price: dict[str, float] = {}
    if f.price_min is not None:
        price["gte"] = f.price_min
    if f.price_max is not None:
        price["lte"] = f.price_max
    if price:
        out.append({"range": {"price": price}})
    if f.rating_min is not None:
        out.append({"range": {"rating_avg": {"gte": f.rating_min}}})
    if f.in_stock is not None:
        out.append({"term": {"in_stock": f.in_stock}})
    if f.seller_id is not None:
        out.append({"term": {"seller_id": f.seller_id}})
    for name, values in f.attributes:
        out.append({"terms": {f"attributes.{name}": list(values)}})
    return out


def query_clause(q: IndexQuery) -> dict[str, Any]:
    clauses: dict[str, Any] = {"must": text_clauses(q.text)}
    filters = filter_clauses(q.filters)
    if filters:
        clauses["filter"] = filters
    if q.filters.exclude_ids:
        clauses["must_not"] = [{"terms": {"product_id": list(q.filters.exclude_ids)}}]
    if q.text.boost_category_ids and q.text.groups:
        # Optional beside `must`: it only adds to the score of documents already matching.
        clauses["should"] = [{"terms": {
            "category_ids": list(q.text.boost_category_ids), "boost": CATEGORY_BOOST,
        }}]
    return {"bool": clauses}


def facet_aggs() -> dict[str, Any]:
    """Facet counts over the whole filtered result set."""
    aggs: dict[str, Any] = {
        "brands": {"terms": {"field": "brand", "size": EXACT_TERMS}},
        "price_ranges": {"range": {"field": "price", "ranges": [
            {"key": price_range_label(low, high), "from": low}
            | ({} if high is None else {"to": high})
            for low, high in PRICE_RANGES
        ]}},
        # Overlapping ranges: a 4.5 counts for "4 & up", "3 & up", ...
        "ratings": {"range": {"field": "rating_avg", "ranges": [
            {"key": str(floor), "from": floor} for floor in RATING_FLOORS
        ]}},
        "categories": {"terms": {"field": "category_ids", "size": CATEGORY_FACET_SIZE}},
    }
    for name in FACET_ATTRIBUTES:
        aggs[f"attributes.{name}"] = {"terms": {"field": f"attributes.{name}",
                                                "size": EXACT_TERMS}}
    return aggs


def search_type(q: IndexQuery) -> str | None:
    """`dfs_query_then_fetch` when `q` is scored by relevance: the term and field statistics
    of the whole index are gathered from every shard first, so a document's score does not
    depend on the shard it lives in (as the embedded backend's per-generation statistics)."""
    return "dfs_query_then_fetch" if q.sort == "relevance" and q.text.groups else None


def search_body(q: IndexQuery) -> dict[str, Any]:
    """The JSON body of the `_search` request answering `q`."""
    if q.sort not in SORTS:
        raise ValueError(f"unknown sort {q.sort!r}; expected one of {sorted(SORTS)}")
    body: dict[str, Any] = {
        "query": query_clause(q),
        "sort": copy.deepcopy(SORTS[q.sort]),
        "from": q.offset,
        "size": q.limit,
        "track_total_hits": True,
    }
    if q.facets:
        body["aggs"] = facet_aggs()
    if q.slim:  # ranking candidates: fast fields only, the caller fetches the page's docs
        body["_source"] = list(SLIM_FIELDS)
    return body


def _buckets(aggs: Mapping[str, Any], name: str) -> list[Mapping[str, Any]]:
    return [b for b in (aggs.get(name) or {}).get("buckets", ()) if b.get("doc_count", 0) > 0]


def parse_facets(aggs: Mapping[str, Any]) -> Facets:
    facets = Facets()
    facets.brands = {str(b["key"]): b["doc_count"] for b in _buckets(aggs, "brands")}
    facets.price_ranges = {str(b["key"]): b["doc_count"] for b in _buckets(aggs, "price_ranges")}
    facets.ratings = {int(b["key"]): b["doc_count"] for b in _buckets(aggs, "ratings")}
    facets.categories = {int(b["key"]): b["doc_count"] for b in _buckets(aggs, "categories")}
    for name in FACET_ATTRIBUTES:
        values = {str(b["key"]): b["doc_count"] for b in _buckets(aggs, f"attributes.{name}")}
        if values:
            facets.attributes[name] = values
    return facets


def parse_search_response(resp: Mapping[str, Any]) -> IndexResult:
    """Hits in order, the exact total and the facets. A hit's score is its `_score` when
    sorted by relevance; otherwise (`_score` is null) the primary sort value."""
    hits = []
    for h in resp["hits"]["hits"]:
        score = h.get("_score")
        if score is None:
            score = h["sort"][0]
        hits.append(Hit(product_id=int(h["_id"]), score=float(score),
                        doc=cast(SearchDocument, dict(h.get("_source") or {}))))
    total = resp["hits"]["total"]
    return IndexResult(
        hits=hits,
        total=int(total["value"] if isinstance(total, Mapping) else total),
        facets=parse_facets(resp.get("aggregations") or {}),
    )


# -- bulk ---------------------------------------------------------------------------------

def to_source(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The stored form of a document: JSON has no NaN, so a missing float (NaN) is stored, and
    read back, as null (None), as the embedded backend returns it."""
    out = {k: v for k, v in doc.items() if k != "title_vec"}  # dense vectors: embedded only
    for name in _FLOAT_FIELDS:
        value = out.get(name)
        if isinstance(value, float) and not math.isfinite(value):
            out[name] = None
    return out


def bulk_actions(docs: Sequence[Mapping[str, Any]], index: str) -> list[dict[str, Any]]:
    """`_bulk` operations writing whole documents. `external_gte`: a document is written
    unless the stored one has a higher `version` (then the item fails with 409)."""
    ops: list[dict[str, Any]] = []
    for doc in docs:
        ops.append({"index": {
            "_index": index, "_id": str(int(doc["product_id"])),
            "version": int(doc["version"]), "version_type": "external_gte",
        }})
        ops.append(to_source(doc))
    return ops


def delete_actions(versions: Mapping[int, int], index: str) -> list[dict[str, Any]]:
    """`_bulk` operations deleting documents at their stored versions ({product_id: version}):
    a document rewritten meanwhile with a newer version is not deleted (409)."""
    return [{"delete": {"_index": index, "_id": str(int(pid)), "version": int(version),
                        "version_type": "external_gte"}}
            for pid, version in versions.items()]


@dataclasses.dataclass(slots=True)
class BulkOutcome:
    """What one `_bulk` answer says, item by item (positions are indexes into the request)."""

    written: int = 0
    stale: int = 0  # a newer version is stored (409); delete: nothing there (404)
    retry: list[int] = dataclasses.field(default_factory=list)  # rejected: too busy (429)
    failures: list[dict[str, Any]] = dataclasses.field(default_factory=list)


def bulk_outcome(resp: Mapping[str, Any]) -> BulkOutcome:
    out = BulkOutcome()
    for position, item in enumerate(resp.get("items") or ()):
        op, result = next(iter(item.items()))
        status = int(result.get("status", 0))
        if 200 <= status < 300:
            out.written += 1
        elif status == 409 or (status == 404 and op == "delete" and "error" not in result):
            out.stale += 1
        elif status == 429:
            out.retry.append(position)
        else:
            out.failures.append({"op": op, "id": result.get("_id"), "status": status,
                                 "error": result.get("error")})
    return out


def swap_actions(alias: str, new_index: str, old_indices: Sequence[str]) -> list[dict[str, Any]]:
    """`_aliases` actions moving `alias` to `new_index` in one atomic step. `must_exist`: if
    the alias has left an old index meanwhile, the whole request fails and changes nothing."""
    actions: list[dict[str, Any]] = [
        {"remove": {"index": old, "alias": alias, "must_exist": True}}
        for old in old_indices if old != new_index
    ]
    actions.append({"add": {"index": new_index, "alias": alias}})
    return actions


def suggest_body(words_: Sequence[str], last: str, limit: int) -> dict[str, Any]:
    """Typeahead: every full word in the title, the last one as a prefix (edge n-grams), the
    most reviewed first (as the embedded backend)."""
    must: list[dict[str, Any]] = [{"match": {"title": {"query": w, "operator": "and"}}}
                                  for w in words_]
    if last:
        must.append({"match": {"title.ngram": {"query": last.casefold()[:PREFIX_MAX]}}})
    return {"query": {"bool": {"must": must}}, "size": limit * 2,
            "sort": [{"rating_count": "desc"}, {"product_id": "asc"}],
            "_source": ["title"]}
