"""Query understanding: normalization, spelling, synonyms, filters and categories inferred from
the text of a search. Pure: no I/O (the caller reads `config/synonyms.txt`), no Ray."""

from domain.query._categories import predict_categories
from domain.query._text import normalize, tokenize
from domain.query.merge import explicit_only, merge, text_query
from domain.query.synonyms import Synonyms, default_synonyms_path, load_synonyms
from domain.query.understanding import ParsedQuery, QueryUnderstanding
from domain.query.vocabulary import CatalogVocabulary

__all__ = [
    "CatalogVocabulary",
    "ParsedQuery",
    "QueryUnderstanding",
    "Synonyms",
    "default_synonyms_path",
    "explicit_only",
    "load_synonyms",
    "merge",
    "normalize",
    "predict_categories",
    "text_query",
    "tokenize",
]
