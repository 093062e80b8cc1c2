"""The Elasticsearch backend without a server: exact request bodies from the pure builders, a
canned answer parsed back, and the `ElasticIndex` shell driving the real client against a fake
HTTP node that records every request and answers from a script."""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from elastic_transport import ApiResponseMeta, BaseAsyncNode, HttpHeaders
from elastic_transport._node._base import NodeApiResponse
from elasticsearch import AsyncElasticsearch
from elasticsearch import ConnectionError as EsConnectionError

from adapters.search import NoLiveIndex
from adapters.search._es_requests import ALL_FIELDS, words
from adapters.search.elastic import (
    ElasticIndex,
    SearchIndexError,
    bulk_actions,
    bulk_outcome,
    delete_actions,
    index_template,
    parse_search_response,
    search_body,
    search_type,
    swap_actions,
)
from domain.errors import Conflict, NotFound, Unavailable
from domain.search import (
    DOCUMENT_FIELDS,
    FACET_ATTRIBUTES,
    PRICE_RANGES,
    Facets,
    Filters,
    IndexQuery,
    Near,
    TextQuery,
    price_range_label,
)

FIELDS = list(ALL_FIELDS)


def body_of(**kwargs: Any) -> dict[str, Any]:
    """The search body of an IndexQuery built from keyword arguments, without facets."""
    return search_body(IndexQuery(facets=False, **kwargs))


def must(**text: Any) -> list[dict[str, Any]]:
    return body_of(text=TextQuery(**text))["query"]["bool"]["must"]


def word(w: str, **extra: Any) -> dict[str, Any]:
    """The clause of one exact word (or phrase) over all fields."""
    return {"multi_match": {"query": w, "type": "phrase", "fields": FIELDS,
                            "tie_breaker": 0.1, **extra}}


def fuzzy(w: str) -> dict[str, Any]:
    return {"multi_match": {"query": w, "fuzziness": 1, "type": "best_fields", "fields": FIELDS,
                            "tie_breaker": 0.1}}


# -- template -----------------------------------------------------------------------------

def test_template_targets_the_generations_of_its_prefix() -> None:
    t = index_template("aisle-products")
    assert t["index_patterns"] == ["aisle-products-*"]
    assert t["allow_auto_create"] is False
    assert index_template("aisle-products-test")["priority"] > t["priority"]
    assert t["template"]["settings"]["number_of_shards"] == 1
    assert index_template(shards=3, replicas=0)["template"]["settings"]["number_of_replicas"] == 0


def test_template_maps_every_document_field() -> None:
    props = index_template()["template"]["mappings"]["properties"]
    assert set(props) == set(DOCUMENT_FIELDS)
    types = {name: props[name]["type"] for name in props}
    assert types == {
        "product_id": "long", "version": "long", "external_id": "keyword", "seller_id": "long",
        "title": "text", "description": "text", "brand": "keyword", "brand_key": "keyword",
        "category_ids": "long", "category_path": "text", "price": "double",
        "price_was": "double", "currency": "keyword", "rating_avg": "double",
        "rating_count": "integer", "in_stock": "boolean", "badges": "keyword",
        "attributes": "object", "created_at": "long", "sales_velocity": "double",
        "seller_rating": "double", "thumbnail_url": "keyword", "tie_key": "long",
    } | {name: "keyword" for name, kind in DOCUMENT_FIELDS.items() if kind == "stored"}
    for stored in ("external_id", "currency", "thumbnail_url"):
        assert props[stored] == {"type": "keyword", "index": False, "doc_values": False}
    assert props["brand"]["fields"]["text"]["type"] == "text"
    assert props["description"]["analyzer"] == props["title"]["analyzer"] == "aisle_english"


def test_template_has_an_edge_ngram_title_subfield() -> None:
    body = index_template()["template"]
    ngram = body["mappings"]["properties"]["title"]["fields"]["ngram"]
    analysis = body["settings"]["analysis"]
    analyzer = analysis["analyzer"][ngram["analyzer"]]
    edge = [analysis["filter"][f] for f in analyzer["filter"] if f in analysis["filter"]]
    assert edge == [{"type": "edge_ngram", "min_gram": 1, "max_gram": 15}]  # as tantivy
    assert "edge_ngram" not in json.dumps(analysis["analyzer"][ngram["search_analyzer"]])


def test_text_analyser_keeps_stop_words_and_stems() -> None:
    analysis = index_template()["template"]["settings"]["analysis"]
    english = analysis["analyzer"]["aisle_english"]
    assert english["filter"] == ["aisle_not_too_long", "lowercase", "asciifolding",
                                 "aisle_stemmer"]
    assert analysis["filter"]["aisle_stemmer"] == {"type": "stemmer", "language": "porter2"}
    assert analysis["tokenizer"][english["tokenizer"]]["type"] == "pattern"


def test_attributes_are_dynamic_keywords() -> None:
    mappings = index_template()["template"]["mappings"]
    assert mappings["dynamic"] is False  # unknown top-level fields: kept, not indexed
    assert mappings["properties"]["attributes"] == {"type": "object", "dynamic": True}
    assert mappings["dynamic_templates"] == [{"attributes_as_keywords": {
        "path_match": "attributes.*", "mapping": {"type": "keyword"}}}]


def test_template_is_a_fresh_copy_each_time() -> None:
    t = index_template()
    t["template"]["mappings"]["properties"]["title"]["fields"]["ngram"]["analyzer"] = "x"
    assert index_template() != t


@pytest.mark.parametrize("prefix", ["Aisle", "-aisle", "ai sle", "aisle/x", ""])
def test_bad_prefixes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        index_template(prefix)


# -- filters ------------------------------------------------------------------------------

@pytest.mark.parametrize(("filters", "clause"), [
    (Filters(category_ids=(3, 7)), {"terms": {"category_ids": [3, 7]}}),
    (Filters(brands=("sony", "bose")), {"terms": {"brand_key": ["sony", "bose"]}}),
    (Filters(price_min=10.0), {"range": {"price": {"gte": 10.0}}}),
    (Filters(price_max=99.99), {"range": {"price": {"lte": 99.99}}}),
    (Filters(price_min=10, price_max=20), {"range": {"price": {"gte": 10, "lte": 20}}}),
    (Filters(rating_min=4.0), {"range": {"rating_avg": {"gte": 4.0}}}),
    (Filters(in_stock=True), {"term": {"in_stock": True}}),
    (Filters(in_stock=False), {"term": {"in_stock": False}}),
    (Filters(seller_id=42), {"term": {"seller_id": 42}}),
    (Filters(attributes=(("color", ("black", "silver")),)),
     {"terms": {"attributes.color": ["black", "silver"]}}),
])
def test_each_filter_is_one_non_scoring_clause(filters: Filters, clause: dict[str, Any]) -> None:
    assert body_of(filters=filters)["query"] == {"bool": {
        "must": [{"match_all": {}}], "filter": [clause],
    }}


def test_filters_combine_as_a_conjunction() -> None:
    f = Filters(category_ids=(3,), brands=("sony",), price_min=1, rating_min=3,
                in_stock=True, seller_id=9,
                attributes=(("color", ("black",)), ("size", ("m", "l"))))
    assert body_of(filters=f)["query"]["bool"]["filter"] == [
        {"terms": {"category_ids": [3]}},
        {"terms": {"brand_key": ["sony"]}},
        {"range": {"price": {"gte": 1}}},
        {"range": {"rating_avg": {"gte": 3}}},
        {"term": {"in_stock": True}},
        {"term": {"seller_id": 9}},
        {"terms": {"attributes.color": ["black"]}},
        {"terms": {"attributes.size": ["m", "l"]}},
    ]


def test_excluded_ids_are_must_not() -> None:
    assert body_of(filters=Filters(exclude_ids=(5, 6)))["query"] == {"bool": {
        "must": [{"match_all": {}}], "must_not": [{"terms": {"product_id": [5, 6]}}],
    }}


# -- sort and pages -----------------------------------------------------------------------

_TIES = [{"tie_key": {"order": "asc"}}, {"product_id": {"order": "asc"}}]


@pytest.mark.parametrize(("sort", "expected"), [
    ("relevance", [{"_score": {"order": "desc"}}, *_TIES]),
    ("price_asc", [{"price": {"order": "asc"}}, *_TIES]),
    ("price_desc", [{"price": {"order": "desc"}}, *_TIES]),
    ("rating", [{"rating_avg": {"order": "desc"}}, {"rating_count": {"order": "desc"}}, *_TIES]),
    ("newest", [{"created_at": {"order": "desc"}}, *_TIES]),
])
def test_each_sort_breaks_ties_on_the_tie_key_then_product_id(sort: str,
                                                              expected: list[Any]) -> None:
    assert body_of(sort=sort)["sort"] == expected


def test_relevance_is_scored_with_statistics_of_every_shard() -> None:
    """dfs_query_then_fetch: term and field statistics of the whole index, so a document's
    score does not depend on its shard; sorts and browsing need no scores."""
    words = TextQuery((("lamp",),))
    assert search_type(IndexQuery(words)) == "dfs_query_then_fetch"
    assert search_type(IndexQuery(words, sort="price_asc")) is None
    assert search_type(IndexQuery()) is None


def test_unknown_sort_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown sort"):
        body_of(sort="cheapest")


def test_pages_use_from_and_size_and_count_every_hit() -> None:
    body = body_of(offset=40, limit=20)
    assert (body["from"], body["size"], body["track_total_hits"]) == (40, 20, True)


# -- text ---------------------------------------------------------------------------------

def test_no_words_match_every_document() -> None:
    assert must() == [{"match_all": {}}]


def test_groups_without_a_single_word_match_nothing() -> None:
    assert must(groups=(("--",), ("", "!"))) == [{"match_none": {}}]


def test_a_word_matches_any_field_with_boosts() -> None:
    assert FIELDS == ["title^3", "brand.text^2", "category_path^1", "description^0.2"]
    assert must(groups=(("headphones",),)) == [word("headphones")]


def test_require_all_makes_every_word_a_must() -> None:
    assert must(groups=(("sony",), ("headphones",))) == [word("sony"), word("headphones")]


def test_require_any_needs_one_word() -> None:
    assert must(groups=(("sony",), ("headphones",)), require_all=False) == [{"bool": {
        "should": [word("sony"), word("headphones")], "minimum_should_match": 1,
    }}]


def test_alternatives_of_a_word_are_a_disjunction() -> None:
    # the typed word counts fully, its alternatives half (as in the embedded backend)
    assert must(groups=(("tv", "television"),)) == [{"dis_max": {
        "queries": [word("tv"), word("television", boost=0.5)], "tie_breaker": 0.1,
    }}]


def test_phrases_and_compound_words_match_as_phrases() -> None:
    assert must(groups=(("noise cancelling",), ("wh-1000xm5",)), fuzzy=True) == [
        word("noise cancelling"), word("wh-1000xm5"),
    ]


def test_fuzzy_allows_one_edit_from_five_letters() -> None:
    assert must(groups=(("sony",), ("headphnes",), ("cable",)), fuzzy=True) == [
        word("sony"), fuzzy("headphnes"), fuzzy("cable"),
    ]


def test_title_only_is_plain_matching_on_the_title() -> None:
    assert must(groups=(("sony",), ("wireless headphones",)), fields="title") == [
        {"match_phrase": {"title": {"query": "sony"}}},
        {"match_phrase": {"title": {"query": "wireless headphones"}}},
    ]
    assert must(groups=(("headphnes",),), fields="title", fuzzy=True) == [
        {"match": {"title": {"query": "headphnes", "fuzziness": 1}}},
    ]


def test_predicted_categories_only_add_to_the_score() -> None:
    q = body_of(text=TextQuery(groups=(("sony",),), boost_category_ids=(3, 4)),
                filters=Filters(in_stock=True))["query"]
    assert q == {"bool": {
        "must": [word("sony")],
        "filter": [{"term": {"in_stock": True}}],
        "should": [{"terms": {"category_ids": [3, 4], "boost": 1.5}}],
    }}
    # With no words there is nothing to rank: every document matches, unboosted.
    assert "should" not in body_of(text=TextQuery(boost_category_ids=(3,)))["query"]["bool"]


def test_words_split_like_the_index_analyser() -> None:
    assert words("WH-1000XM5 3.5mm") == ["WH", "1000XM5", "3", "5mm"]
    assert words("café_noir") == ["café", "noir"]
    assert words("a" * 39 + " " + "b" * 40) == ["a" * 39]


# -- facets -------------------------------------------------------------------------------

def test_facet_aggregations() -> None:
    aggs = search_body(IndexQuery())["aggs"]
    assert aggs == {
        "brands": {"terms": {"field": "brand", "size": 10_000}},
        "price_ranges": {"range": {"field": "price", "ranges": [
            {"key": "$0-$25", "from": 0, "to": 25},
            {"key": "$25-$50", "from": 25, "to": 50},
            {"key": "$50-$100", "from": 50, "to": 100},
            {"key": "$100-$200", "from": 100, "to": 200},
            {"key": "$200-$500", "from": 200, "to": 500},
            {"key": "$500-$1000", "from": 500, "to": 1000},
            {"key": "$1000+", "from": 1000},
        ]}},
        "ratings": {"range": {"field": "rating_avg", "ranges": [
            {"key": "4", "from": 4}, {"key": "3", "from": 3},
            {"key": "2", "from": 2}, {"key": "1", "from": 1},
        ]}},
        "categories": {"terms": {"field": "category_ids", "size": 1000}},
        "attributes.color": {"terms": {"field": "attributes.color", "size": 10_000}},
        "attributes.size": {"terms": {"field": "attributes.size", "size": 10_000}},
    }
    assert [r["key"] for r in aggs["price_ranges"]["range"]["ranges"]] == [
        price_range_label(lo, hi) for lo, hi in PRICE_RANGES]
    assert FACET_ATTRIBUTES == ("color", "size")


def test_no_facets_no_aggregations() -> None:
    assert "aggs" not in search_body(IndexQuery(facets=False))


# -- responses ----------------------------------------------------------------------------

def _doc(pid: int, **extra: Any) -> dict[str, Any]:
    return {"product_id": pid, "version": 1, "title": f"Product {pid}", "brand": "Sony",
            "price": 349.99, "price_was": None, "rating_avg": 4.7, "rating_count": 12,
            "category_ids": [1, 2], "attributes": {"color": ["black"]}, **extra}


SEARCH_RESPONSE = json.loads("""
{
  "took": 7, "timed_out": false,
  "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
  "hits": {
    "total": {"value": 1342, "relation": "eq"},
    "max_score": 12.5,
    "hits": [
      {"_index": "aisle-products-g2", "_id": "1001", "_score": 12.5,
       "_source": {"product_id": 1001, "version": 3, "title": "Sony WH-1000XM5",
                   "brand": "Sony", "price": 349.99, "price_was": null, "rating_avg": 4.7,
                   "attributes": {"color": ["black", "silver"]}},
       "sort": [12.5, 1001]},
      {"_index": "aisle-products-g2", "_id": "1002", "_score": 9.25,
       "_source": {"product_id": 1002, "version": 1, "title": "Sony WF-1000XM4",
                   "brand": "Sony", "price": 279.0, "price_was": 299.0, "rating_avg": 4.4,
                   "attributes": {}},
       "sort": [9.25, 1002]}
    ]
  },
  "aggregations": {
    "brands": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 40,
               "buckets": [{"key": "Sony", "doc_count": 900}, {"key": "Bose", "doc_count": 402}]},
    "price_ranges": {"buckets": [
      {"key": "$0-$25", "from": 0.0, "to": 25.0, "doc_count": 0},
      {"key": "$25-$50", "from": 25.0, "to": 50.0, "doc_count": 12},
      {"key": "$50-$100", "from": 50.0, "to": 100.0, "doc_count": 30},
      {"key": "$100-$200", "from": 100.0, "to": 200.0, "doc_count": 300},
      {"key": "$200-$500", "from": 200.0, "to": 500.0, "doc_count": 1000},
      {"key": "$500-$1000", "from": 500.0, "to": 1000.0, "doc_count": 0},
      {"key": "$1000+", "from": 1000.0, "doc_count": 0}
    ]},
    "ratings": {"buckets": [
      {"key": "4", "from": 4.0, "doc_count": 800}, {"key": "3", "from": 3.0, "doc_count": 1200},
      {"key": "2", "from": 2.0, "doc_count": 1300}, {"key": "1", "from": 1.0, "doc_count": 1342}
    ]},
    "categories": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                   "buckets": [{"key": 1, "doc_count": 1342}, {"key": 12, "doc_count": 700}]},
    "attributes.color": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                         "buckets": [{"key": "black", "doc_count": 600},
                                     {"key": "silver", "doc_count": 90}]},
    "attributes.size": {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0,
                        "buckets": []}
  }
}
""")


def test_parse_a_relevance_answer_with_facets() -> None:
    result = parse_search_response(SEARCH_RESPONSE)
    assert result.total == 1342
    assert [(h.product_id, h.score) for h in result.hits] == [(1001, 12.5), (1002, 9.25)]
    assert result.hits[0].doc["title"] == "Sony WH-1000XM5"
    assert result.hits[0].doc["price_was"] is None  # a missing compare-at price
    assert result.facets == Facets(
        brands={"Sony": 900, "Bose": 402},
        price_ranges={"$25-$50": 12, "$50-$100": 30, "$100-$200": 300, "$200-$500": 1000},
        ratings={4: 800, 3: 1200, 2: 1300, 1: 1342},
        categories={1: 1342, 12: 700},
        attributes={"color": {"black": 600, "silver": 90}},
    )


def test_parse_a_sorted_answer_scores_hits_by_the_sort_value() -> None:
    resp = {"hits": {"total": {"value": 2, "relation": "eq"}, "hits": [
        {"_id": "7", "_score": None, "_source": _doc(7), "sort": [19.99, 7]},
        {"_id": "3", "_score": None, "_source": _doc(3), "sort": [1736899200, 3]},
    ]}}
    result = parse_search_response(resp)
    assert [(h.product_id, h.score) for h in result.hits] == [(7, 19.99), (3, 1736899200.0)]
    assert result.facets == Facets() and result.total == 2


# -- bulk and aliases ---------------------------------------------------------------------

def test_bulk_actions_write_whole_documents_with_external_versions() -> None:
    docs = [_doc(1, version=3, price_was=math.nan), _doc(2, version=1, price_was=10.0)]
    ops = bulk_actions(docs, "aisle-products-g1")
    assert ops[0] == {"index": {"_index": "aisle-products-g1", "_id": "1", "version": 3,
                                "version_type": "external_gte"}}
    assert ops[1] == {**docs[0], "price_was": None}  # JSON has no NaN
    assert ops[2] == {"index": {"_index": "aisle-products-g1", "_id": "2", "version": 1,
                                "version_type": "external_gte"}}
    assert ops[3] == docs[1]
    assert math.isnan(docs[0]["price_was"])  # the caller's document is not changed


def test_delete_actions_delete_at_the_stored_version() -> None:
    assert delete_actions({4: 2, 5: 1}, "aisle-products") == [
        {"delete": {"_index": "aisle-products", "_id": "4", "version": 2,
                    "version_type": "external_gte"}},
        {"delete": {"_index": "aisle-products", "_id": "5", "version": 1,
                    "version_type": "external_gte"}},
    ]


def test_bulk_outcome_sorts_items() -> None:
    out = bulk_outcome({"errors": True, "items": [
        {"index": {"_id": "1", "status": 201, "result": "created"}},
        {"index": {"_id": "2", "status": 200, "result": "updated"}},
        {"index": {"_id": "3", "status": 409,
                   "error": {"type": "version_conflict_engine_exception"}}},
        {"index": {"_id": "4", "status": 429,
                   "error": {"type": "es_rejected_execution_exception"}}},
        {"index": {"_id": "5", "status": 400, "error": {"type": "mapper_parsing_exception"}}},
        {"delete": {"_id": "6", "status": 404, "result": "not_found"}},
        {"delete": {"_id": "7", "status": 404, "error": {"type": "index_not_found_exception"}}},
        {"delete": {"_id": "8", "status": 409,
                    "error": {"type": "version_conflict_engine_exception"}}},
    ]})
    assert (out.written, out.stale, out.retry) == (2, 3, [3])
    assert [(f["id"], f["status"]) for f in out.failures] == [("5", 400), ("7", 404)]


def test_swap_actions_remove_the_old_and_add_the_new_at_once() -> None:
    assert swap_actions("aisle-products", "aisle-products-g2", ["aisle-products-g1"]) == [
        {"remove": {"index": "aisle-products-g1", "alias": "aisle-products", "must_exist": True}},
        {"add": {"index": "aisle-products-g2", "alias": "aisle-products"}},
    ]
    assert swap_actions("aisle-products", "aisle-products-g1", []) == [
        {"add": {"index": "aisle-products-g1", "alias": "aisle-products"}},
    ]


# -- the shell, over the real client and a fake HTTP node ----------------------------------

@dataclasses.dataclass
class Request:
    method: str
    path: str
    params: dict[str, list[str]]
    body: Any


Answer = tuple[int, Any] | Callable[[Request], tuple[int, Any]]


class FakeServer:
    """Scripted answers by (method, path); records every request, body decoded."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.down = False

    def on(self, method: str, path: str, *answers: Answer) -> None:
        """Answers in turn; the last one repeats."""
        self.routes[(method, path)] = list(answers)

    def handle(self, method: str, target: str, raw: bytes | None) -> tuple[int, Any]:
        if self.down:
            raise EsConnectionError("connection refused")
        path, _, query = target.partition("?")
        body: Any = None
        if raw:
            lines = raw.decode().splitlines()
            body = [json.loads(x) for x in lines] if path.endswith("_bulk") else json.loads(raw)
        request = Request(method, path, parse_qs(query), body)
        self.requests.append(request)
        answers = self.routes.get((method, path))
        assert answers, f"unexpected request {method} {target}"
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return answer(request) if callable(answer) else answer

    def paths(self) -> list[str]:
        return [f"{r.method} {r.path}" for r in self.requests]


def error(status: int, kind: str) -> tuple[int, Any]:
    return status, {"error": {"type": kind, "reason": kind, "root_cause": [
        {"type": kind, "reason": kind}]}, "status": status}


def bulk_answer(*statuses: int) -> Callable[[Request], tuple[int, Any]]:
    """Answers a bulk request item by item with these statuses (then 201s)."""
    def answer(req: Request) -> tuple[int, Any]:
        heads = [op for op in req.body if set(op) & {"index", "delete"}]
        items = []
        for i, head in enumerate(heads):
            op, meta = next(iter(head.items()))
            status = statuses[i] if i < len(statuses) else 201
            item: dict[str, Any] = {"_index": meta["_index"], "_id": meta["_id"],
                                    "status": status}
            if status >= 300:
                item["error"] = {"type": {409: "version_conflict_engine_exception",
                                          429: "es_rejected_execution_exception"}.get(
                    status, "mapper_parsing_exception"), "reason": "..."}
            items.append({op: item})
        return 200, {"took": 3, "errors": any(s >= 300 for s in statuses), "items": items}
    return answer


@pytest.fixture
async def es() -> AsyncIterator[tuple[ElasticIndex, FakeServer]]:
    server = FakeServer()

    class Node(BaseAsyncNode):
        async def perform_request(  # type: ignore[override]
                self, method: str, target: str, body: bytes | None = None,
                headers: Any = None, request_timeout: Any = None) -> NodeApiResponse:
            status, payload = server.handle(method, target, body)
            headers = HttpHeaders({"X-Elastic-Product": "Elasticsearch",
                                   "Content-Type": "application/json"})
            meta = ApiResponseMeta(status, "1.1", headers, 0.001, self.config)
            return NodeApiResponse(meta, json.dumps(payload).encode())

        async def close(self) -> None:  # type: ignore[override]
            pass

    client = AsyncElasticsearch("http://es.invalid:9200", node_class=Node, max_retries=0)
    index = ElasticIndex(client=client, prefix="shop", chunk_size=2, retry_backoff=0)
    yield index, server
    await index.close()
    await client.close()


async def test_upsert_counts_version_conflicts_as_not_written(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("PUT", "/_bulk", bulk_answer(201, 409), bulk_answer(200))
    written = await index.upsert([_doc(1, version=2), _doc(2, version=1), _doc(3, version=5)])
    assert written == 2
    assert server.paths() == ["PUT /_bulk", "PUT /_bulk"]  # chunks of two documents
    first = server.requests[0]
    assert first.params == {"require_alias": ["true"]}  # the live generation: the alias
    assert first.body[0] == {"index": {"_index": "shop", "_id": "1", "version": 2,
                                       "version_type": "external_gte"}}
    assert first.body[1]["title"] == "Product 1"


async def test_upsert_to_a_generation_writes_its_index(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("PUT", "/_bulk", bulk_answer())
    assert await index.upsert([_doc(1)], generation="g2") == 1
    assert server.requests[0].params == {"require_alias": ["false"]}
    assert server.requests[0].body[0]["index"]["_index"] == "shop-g2"


async def test_upsert_retries_items_rejected_as_busy(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("PUT", "/_bulk", bulk_answer(201, 429), bulk_answer(201))
    assert await index.upsert([_doc(1), _doc(2)]) == 2
    assert [op["index"]["_id"] for op in server.requests[1].body if "index" in op] == ["2"]


async def test_upsert_gives_up_when_always_busy(es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("PUT", "/_bulk", bulk_answer(429))
    with pytest.raises(Unavailable):
        await index.upsert([_doc(1)])
    assert len(server.requests) == 4  # the first try and three retries


async def test_upsert_failures_raise_with_their_items(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("PUT", "/_bulk", bulk_answer(201, 400))
    with pytest.raises(SearchIndexError) as failed:
        await index.upsert([_doc(1), _doc(2)])
    assert failed.value.data["failures"][0]["id"] == "2"


async def test_delete_reads_the_stored_versions_then_deletes_at_them(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("POST", "/shop/_mget", (200, {"docs": [
        {"_index": "shop-g1", "_id": "4", "_version": 3, "found": True},
        {"_index": "shop-g1", "_id": "5", "found": False},
    ]}))
    server.on("PUT", "/_bulk", lambda req: (200, {"errors": True, "items": [
        {"delete": {"_id": "4", "status": 409,
                    "error": {"type": "version_conflict_engine_exception"}}},
    ]}))
    await index.delete([4, 5])  # 4 was rewritten meanwhile (409): not an error
    mget, bulk = server.requests
    assert (mget.body, mget.params) == ({"ids": ["4", "5"]}, {"_source": ["false"]})
    assert bulk.body == [{"delete": {"_index": "shop", "_id": "4", "version": 3,
                                     "version_type": "external_gte"}}]
    assert bulk.params == {"require_alias": ["true"]}


async def test_delete_of_nothing_stored_sends_no_bulk(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("POST", "/shop-g2/_mget", (200, {"docs": [
        {"_index": "shop-g2", "_id": "4", "found": False}]}))
    await index.delete([4], generation="g2")
    await index.delete([])
    assert server.paths() == ["POST /shop-g2/_mget"]


async def test_search_reads_the_alias(es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("POST", "/shop/_search", (200, SEARCH_RESPONSE))
    query = IndexQuery(text=TextQuery(groups=(("sony",),)), offset=20, limit=10)
    result = await index.search(query)
    assert server.requests[0].body == search_body(query)  # "from" on the wire
    assert server.requests[0].params["search_type"] == ["dfs_query_then_fetch"]
    assert result.total == 1342 and result.facets.brands["Sony"] == 900


async def test_search_before_any_generation_is_live_is_unavailable(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    """As the embedded backend: 503 until the first build is live, not an empty answer."""
    index, server = es
    server.on("POST", "/shop/_search", error(404, "index_not_found_exception"))
    with pytest.raises(NoLiveIndex):
        await index.search(IndexQuery())
    with pytest.raises(NoLiveIndex):
        await index.suggest([], "a", 5)
    server.on("POST", "/shop-g9/_search", error(404, "index_not_found_exception"))
    with pytest.raises(NotFound):  # a named generation that is not there is an error
        await index.search_index("shop-g9", IndexQuery())


async def test_get_count_and_refresh(es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("POST", "/shop/_mget", (200, {"docs": [
        {"_index": "shop-g1", "_id": "1", "found": True, "_version": 2, "_source": _doc(1)},
        {"_index": "shop-g1", "_id": "9", "found": False},
    ]}))
    server.on("POST", "/shop-g1/_count", (200, {"count": 17}))
    server.on("POST", "/shop/_refresh", (200, {"_shards": {}}))
    assert await index.get([1, 9]) == {1: _doc(1)}
    assert (server.requests[0].body, server.requests[0].params) == (
        {"ids": ["1", "9"]}, {"_source": ["true"]})
    assert await index.get([]) == {}
    assert await index.count("g1") == 17
    await index.refresh()
    assert server.paths() == ["POST /shop/_mget", "POST /shop-g1/_count", "POST /shop/_refresh"]


async def test_reads_of_a_missing_alias_are_empty_but_of_a_missing_generation_fail(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("POST", "/shop/_count", error(404, "index_not_found_exception"))
    server.on("POST", "/shop-g9/_count", error(404, "index_not_found_exception"))
    assert await index.count() == 0
    with pytest.raises(NotFound):
        await index.count("g9")


async def test_create_generation_installs_the_template_once(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("PUT", "/_index_template/shop", (200, {"acknowledged": True}))
    server.on("PUT", "/shop-g1", (200, {"acknowledged": True, "index": "shop-g1"}))
    server.on("PUT", "/shop-g2", (200, {"acknowledged": True, "index": "shop-g2"}))
    await index.create_generation("g1")
    await index.create_generation("g2")
    assert server.paths() == ["PUT /_index_template/shop", "PUT /shop-g1", "PUT /shop-g2"]
    template = index_template("shop")
    assert server.requests[0].body == template
    assert server.requests[1].body == template["template"]  # settings and mappings


async def test_create_an_existing_generation_conflicts(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("PUT", "/_index_template/shop", (200, {"acknowledged": True}))
    server.on("PUT", "/shop-g1", error(400, "resource_already_exists_exception"))
    with pytest.raises(Conflict) as conflict:
        await index.create_generation("g1")
    assert conflict.value.code == "generation_exists"
    with pytest.raises(ValueError, match="generation"):
        await index.create_generation("G 1")


async def test_swap_moves_the_alias_in_one_call(es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    missing = error(404, "aliases_not_found_exception")
    g1: Answer = (200, {"shop-g1": {"aliases": {"shop": {}}}})
    g2: Answer = (200, {"shop-g2": {"aliases": {"shop": {}}}})
    server.on("GET", "/_alias/shop", missing, missing, g1, g1, g2)
    server.on("POST", "/_aliases", (200, {"acknowledged": True}))
    assert await index.live_generation() is None
    assert await index.swap("g1") is None
    assert await index.live_generation() == "g1"
    assert await index.swap("g2") == "g1"
    assert await index.swap("g2") is None  # already live: nothing replaced
    aliases = [r.body for r in server.requests if r.path == "/_aliases"]
    assert aliases == [
        {"actions": [{"add": {"index": "shop-g1", "alias": "shop"}}]},
        {"actions": [{"remove": {"index": "shop-g1", "alias": "shop", "must_exist": True}},
                     {"add": {"index": "shop-g2", "alias": "shop"}}]},
    ]


async def test_a_swap_racing_another_changes_nothing_and_fails(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("GET", "/_alias/shop", (200, {"shop-g1": {"aliases": {"shop": {}}}}))
    server.on("POST", "/_aliases", error(404, "aliases_not_found_exception"))
    with pytest.raises(NotFound):
        await index.swap("g2")


async def test_drop_generation(es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.on("DELETE", "/shop-g1", (200, {"acknowledged": True}))
    server.on("DELETE", "/shop-g0", error(404, "index_not_found_exception"))
    await index.drop_generation("g1")
    await index.drop_generation("g0")  # already gone
    assert server.paths() == ["DELETE /shop-g1", "DELETE /shop-g0"]


async def test_an_unreachable_cluster_is_unavailable(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    index, server = es
    server.down = True
    with pytest.raises(Unavailable):
        await index.search(IndexQuery())
    with pytest.raises(Unavailable):
        await index.upsert([_doc(1)])


async def test_constructor_needs_exactly_one_of_url_and_client() -> None:
    with pytest.raises(ValueError):
        ElasticIndex()
    index = ElasticIndex("http://localhost:9200")
    assert index.prefix == "aisle-products" and index.index_name("g1") == "aisle-products-g1"
    await index.close()  # its own client: closed (nothing was ever connected)


def test_suggest_body_prefix_on_edge_ngrams_most_reviewed_first() -> None:
    from adapters.search._es_requests import suggest_body
    body = suggest_body(["studio"], "Mon", 5)
    assert body["query"] == {"bool": {"must": [
        {"match": {"title": {"query": "studio", "operator": "and"}}},
        {"match": {"title.ngram": {"query": "mon"}}}]}}
    assert body["sort"][0] == {"rating_count": "desc"} and body["size"] == 10


def test_slim_candidates_ask_for_fast_fields_only() -> None:
    from domain.search import SLIM_FIELDS
    assert body_of(slim=True, limit=200)["_source"] == list(SLIM_FIELDS)
    assert "_source" not in body_of()


async def test_semantic_candidates_are_not_asked_of_elasticsearch(
        es: tuple[ElasticIndex, FakeServer]) -> None:
    """Its documents carry no title vectors: Near's first step answers none, with no request
    (a learned ranker's search then joins nothing to the words' matches)."""
    index, server = es
    asked = IndexQuery(TextQuery((("shoe",),)), limit=0, facets=False,
                       near=Near(bytes(384), 20))
    got = await index.search(asked)
    assert got.near == [] and got.total == 0 and server.requests == []
