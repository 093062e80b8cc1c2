"""The Elasticsearch index template: settings, analysers and the mapping of the search document.

Pure data; `elastic.py` installs it. One template covers every generation of a prefix
(`{prefix}-*`); the live alias is `{prefix}` itself.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from domain.search import DOCUMENT_FIELDS, PREFIX_MAX

DEFAULT_PREFIX = "aisle-products"

# Full text: words are runs of letters and digits (anything else separates them), lower-cased,
# ASCII-folded and stemmed (Porter2), words of 40+ letters dropped; no stop words. This is the
# embedded backend's analyser (`tantivy_shard.analyzer`), so both match the same documents;
# `_es_requests.words` splits query text the same way.
TEXT_ANALYZER = "aisle_english"
NGRAM_ANALYZER = "aisle_title_ngram"  # edge n-grams 1..PREFIX_MAX of each title word (typeahead)
NGRAM_SEARCH_ANALYZER = "aisle_title_ngram_search"  # the query side: whole words, lower case
WORD_SEPARATORS = r"[^\p{L}\p{N}]+"  # Java regex: not a letter, not a digit

_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")

_ANALYSIS: dict[str, Any] = {
    "tokenizer": {
        "aisle_words": {"type": "pattern", "pattern": WORD_SEPARATORS},
    },
    "filter": {
        "aisle_not_too_long": {"type": "length", "max": 39},
        "aisle_stemmer": {"type": "stemmer", "language": "porter2"},
        "aisle_edge_ngram": {"type": "edge_ngram", "min_gram": 1, "max_gram": PREFIX_MAX},
    },
    "analyzer": {
        TEXT_ANALYZER: {
            "type": "custom", "tokenizer": "aisle_words",
            "filter": ["aisle_not_too_long", "lowercase", "asciifolding", "aisle_stemmer"],
        },
        NGRAM_ANALYZER: {
            "type": "custom", "tokenizer": "aisle_words",
            "filter": ["lowercase", "asciifolding", "aisle_edge_ngram"],
        },
        NGRAM_SEARCH_ANALYZER: {
            "type": "custom", "tokenizer": "aisle_words", "filter": ["lowercase", "asciifolding"],
        },
    },
}

_TEXT: dict[str, Any] = {"type": "text", "analyzer": TEXT_ANALYZER}
# Numbers are doubles, not floats or scaled floats: filters, range facets and sort values then
# compare exactly the Python floats the documents hold (a float field would round 19.99).
_BY_KIND: dict[str, dict[str, Any]] = {
    "int": {"type": "long"},
    "ints": {"type": "long"},
    "float": {"type": "double"},
    "bool": {"type": "boolean"},
    "keyword": {"type": "keyword"},
    "keywords": {"type": "keyword"},
    "stored": {"type": "keyword", "index": False, "doc_values": False},
    "text": _TEXT,
    "object": {"type": "object", "dynamic": True},  # attributes.*: see the dynamic template
}
_SPECIAL: dict[str, dict[str, Any]] = {
    "title": {**_TEXT, "fields": {"ngram": {
        "type": "text", "analyzer": NGRAM_ANALYZER, "search_analyzer": NGRAM_SEARCH_ANALYZER,
    }}},
    "brand": {"type": "keyword", "fields": {"text": _TEXT}},  # facets on brand, text on .text
    "rating_count": {"type": "integer"},
}


def check_name(name: str, what: str) -> str:
    """Index names are lower case; refuse anything Elasticsearch would refuse, early."""
    if not _NAME.fullmatch(name):
        raise ValueError(f"{what} {name!r}: expected lower-case letters, digits, '.', '_', '-'")
    return name


def properties() -> dict[str, Any]:
    """The mapping of every field of `DOCUMENT_FIELDS`."""
    return {name: _SPECIAL.get(name, _BY_KIND[kind]) for name, kind in DOCUMENT_FIELDS.items()}


def index_body(shards: int = 1, replicas: int = 1) -> dict[str, Any]:
    """`settings` and `mappings` of one generation's index."""
    return copy.deepcopy({
        "settings": {
            "number_of_shards": shards,
            "number_of_replicas": replicas,
            "analysis": _ANALYSIS,
        },
        "mappings": {
            # Unknown top-level fields are kept in _source but not indexed.
            "dynamic": False,
            "dynamic_templates": [{
                "attributes_as_keywords": {
                    "path_match": "attributes.*", "mapping": {"type": "keyword"},
                },
            }],
            "properties": properties(),
        },
    })


def index_template(prefix: str = DEFAULT_PREFIX, shards: int = 1,
                   replicas: int = 1) -> dict[str, Any]:
    """Keyword arguments of `indices.put_index_template(name=prefix, ...)`.

    Indices matching `{prefix}-*` are never created implicitly by a write (a write to a dropped
    generation fails instead). A longer prefix gets a higher priority, so prefixes that extend
    one another ("aisle-products", "aisle-products-test") do not conflict.
    """
    check_name(prefix, "prefix")
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 200 + len(prefix),
        "allow_auto_create": False,
        "template": index_body(shards, replicas),
    }
