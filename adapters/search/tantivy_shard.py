"""One tantivy index: a shard of the embedded search backend (no Ray here; `actors/index_shard.py`
holds one of these per actor).

Text fields use one analyzer (`aisle_en`: simple tokenizer, lower case, ASCII folding, English
stemmer) at index and at query time, so query words are analysed exactly like titles. Searches
return this shard's top `offset + limit` hits in the merge order, its exact total and its exact
facet counts (every bucket, so the merged counts are exact too).

Relevance does not use tantivy's BM25, whose statistics are this shard's own (and count
deleted documents): each scored field has an impact twin (`imp_<field>`) holding `term~level`
per distinct term, BM25's per-term part computed when the document is written with the
generation's length pivots (domain/text_scoring.py). A query word becomes one constant-score
clause per level present, worth boost x idf x level, idf from the generation's statistics
(`term_stats.json` beside the shards, the same for every shard). The plain fields still serve
phrases (positions), fuzzy matching and typeahead. Equal scores are ordered by the tie key,
and every document tied with the last one kept comes along, so a cut never depends on the
order documents were written in.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt
import tantivy
from tantivy import Filter, Occur, Query, TextAnalyzerBuilder, Tokenizer

from adapters.text_embedding import DIMENSION, similarity
from domain.search import (
    ALTERNATIVE_WEIGHT,
    CATEGORY_BOOST,
    CATEGORY_FACET_SIZE,
    FACET_ATTRIBUTES,
    FIELD_BOOSTS,
    FUZZY_MIN_LENGTH,
    NEAR_BOOST,
    PREFIX_MAX,
    PRICE_RANGES,
    RATING_FLOORS,
    SIGNALS,
    SLIM_FIELDS,
    TIE_BREAKER,
    Facets,
    Filters,
    Hit,
    IndexQuery,
    IndexResult,
    Near,
    SearchDocument,
    SignalRequest,
    TextQuery,
    doc_tie_key,
    price_range_label,
    sort_key,
)
from domain.text_scoring import (
    DEFAULT_AVG_LENGTH,
    LEVEL_SEP,
    SCORED_FIELDS,
    TermStats,
    impact_tokens,
    level_value,
)

TermCounts = tuple[int, dict[str, dict[str, int]]]  # (live documents, {field: {term: df}})
ANALYZER = "aisle_en"
PREFIX_ANALYZER = "aisle_prefix"  # whitespace only: typeahead prefixes and impact tokens
PIVOTS_FILE = "pivots.json"  # a generation's length pivots, written before its documents
STATS_FILE = "term_stats.json"  # its term statistics, written once it is built
FUZZY_WEIGHT = 0.5  # a word matched with one edit, relative to the word as typed
VECTOR_FIELD = "title_vec"
VECTORS_KEPT = 50_000  # title vectors a shard keeps in memory (~1.5 KB each)
NEAR_MAX_DOCS = 20_000  # semantic candidates (Near) in shards of at most this many documents
PASSING_KEPT = 256  # filters whose matches Near's first step keeps per searcher
ALL_TERMS = 100_000  # terms-aggregation size for exact facet counts (every bucket)
WRITER_HEAP = 64 << 20
_NOT_KEPT = object()
TERMS_AS_CLAUSES = 256  # _any_of: more values than this are one term set query
MAX_TIES = 10_000  # documents with the same sort value fetched to break ties on product_id
# relevance: the first fetch takes this many times the hits wanted, so that a run of equal
# scores at the cut (common: scores are sums of a few impact levels) seldom costs a second
# search of the whole query; hits past the cut's run are not ordered
FIRST_FETCH = 4
SIGNALS_KEPT = 256  # per read-only shard: queries whose signals are kept (~35 KB each)
ROWS_KEPT = 1_000  # products kept per query (~0.17 MB at most)
CLAUSES_KEPT = 20_000  # per read-only shard: (field, words, weight, fuzzy) -> clause
SIGNAL_SCAN = 1000  # a ranking-signal query matching fewer documents is not confined to the hits
SLOTS_PER_MASK = 20  # presence signals read by one search (2^i scores stay exact in float32)

# Searched fields and their boosts ("all"); "title" searches only the first.
TEXT_FIELDS: tuple[tuple[str, float], ...] = tuple(
    ("brand_text" if name == "brand" else name, boost) for name, boost in FIELD_BOOSTS.items())
# _signals' column of each signal, where domain.search.SIGNALS puts it: a scored field's BM25
# is bm25_ and the field's first word ("brand_text": bm25_brand, "category_path": bm25_category)
_COLUMN = {name: i for i, name in enumerate(SIGNALS)}
_FIELD_COLUMNS = tuple((name, _COLUMN[f"bm25_{name.split('_')[0]}"]) for name, _ in TEXT_FIELDS)
# what the words say beyond the text, in the order of their slots in _signals' bitmask search
_WORD_MATCHES = [_COLUMN[name]
                 for name in ("phrase_title", "brand_match", "color_match", "category_match")]

# text clauses by (field, analysed words, weight, fuzzy); None: cannot match in the shard
Clauses = dict[tuple[str, tuple[str, ...], float, bool], Query | None]
Signals = dict[int, tuple[float, ...]]  # product -> domain.search.SIGNALS


def _first_fetch(n: int) -> int:
    """Hits fetched first for a relevance page of n: FIRST_FETCH x (n + 1), within MAX_TIES
    (a deeper page fetches n + 1, as the second searches would never pass MAX_TIES either)."""
    return max(n + 1, min(MAX_TIES, FIRST_FETCH * (n + 1)))


@dataclasses.dataclass(frozen=True)
class _Kept:
    """One query's signals over one searcher, packed (a row per product, ~0.17 KB)."""

    rows: dict[int, int]  # product -> row of values
    values: npt.NDArray[np.float64]  # one column per signal

    @staticmethod
    def empty() -> _Kept:
        return _Kept({}, np.zeros((0, len(SIGNALS))))

    def of(self, pids: Sequence[int]) -> Signals:
        rows = [self.rows[p] for p in pids]
        return dict(zip(pids, map(tuple, self.values[rows].tolist()), strict=True))

    def keeping(self, pids: Sequence[int]) -> _Kept:
        """Only these products' rows (each of them held)."""
        return _Kept({p: i for i, p in enumerate(pids)},
                     self.values[[self.rows[p] for p in pids]])

    def adding(self, pids: Sequence[int], values: npt.NDArray[np.float64]) -> _Kept:
        """A copy that also holds these products (none of them held) with their rows `values`
        (entries are never changed in place: a search in another thread may be reading this
        one)."""
        rows = dict(self.rows) | {p: len(self.rows) + i for i, p in enumerate(pids)}
        return _Kept(rows, np.vstack([self.values, values]))


@dataclasses.dataclass
class _View:
    """What a read-only shard keeps per searcher (`TantivyShard._reader`): the text clauses
    of the words searched, and the ranking signals of the queries that asked for them, by
    (the words' groups, what the words said beyond the text), per product. Both are
    functions of the searcher and the term statistics, so they are dropped with either."""

    clauses: Clauses = dataclasses.field(default_factory=dict)
    signals: dict[tuple[tuple[tuple[str, ...], ...], SignalRequest], _Kept] = dataclasses.field(
        default_factory=dict)
    vectors: _Vectors | None = None  # every document's title vector (Near)


@dataclasses.dataclass(frozen=True)
class _Vectors:
    """Every live document's title vector, for Near: its int8 values as float32 (a dot
    product of two such vectors is an integer below 2^24, exact in float32 whatever the
    order of the sums, so shards of any layout agree on it)."""

    pids: npt.NDArray[np.int64]
    ties: npt.NDArray[np.int64]
    matrix: npt.NDArray[np.float32]  # (documents, DIMENSION); a document without one: zeros
    usable: npt.NDArray[np.bool_]  # documents with a vector
    # filters -> the documents passing them (the same searcher's: kept while it is; a shop's
    # filters repeat, and reading a filter's matches is most of a filtered first step)
    passing: dict[Filters, npt.NDArray[np.bool_]] = dataclasses.field(default_factory=dict)

    def nearest(self, vector: bytes, k: int, passing: npt.NDArray[np.bool_] | None) -> list[Hit]:
        """The k usable documents (and `passing`) closest to `vector`: cosine, then the tie
        key and the id (the merge order)."""
        q = np.frombuffer(vector, dtype=np.int8).astype(np.float32)
        ok = self.usable if passing is None else self.usable & passing
        rows = np.flatnonzero(ok)
        if not rows.size or k <= 0:
            return []
        # einsum: one thread (a BLAS product of this size wakes BLAS's threads, which then
        # spin beside the search: twice its CPU in bench_hot_path)
        dots = np.einsum("ij,j->i", self.matrix, q)[rows]
        if rows.size > k:  # every row tied with the k-th comes along, then the order decides
            kth = np.partition(-dots, k - 1)[k - 1]
            keep = -dots <= kth
            rows, dots = rows[keep], dots[keep]
        sims = dots / (127.0 * 127.0)
        order = sorted(range(rows.size), key=lambda i: (-sims[i], int(self.ties[rows[i]]),
                                                         int(self.pids[rows[i]])))[:k]
        return [Hit(int(self.pids[rows[i]]), float(sims[i]),
                    cast(SearchDocument, {"product_id": int(self.pids[rows[i]]),
                                          "tie_key": int(self.ties[rows[i]])}))
                for i in order]

_INT_FIELDS = ("product_id", "version", "seller_id", "rating_count", "created_at", "tie_key")
_FLOAT_FIELDS = ("price", "price_was", "rating_avg", "sales_velocity", "seller_rating")
_STORED_STR = ("external_id", "currency", "thumbnail_url", "brand")
_SORT_FIELD = {"price_asc": ("price", tantivy.Order.Asc),
               "price_desc": ("price", tantivy.Order.Desc),
               "rating": ("rating_avg", tantivy.Order.Desc),
               "newest": ("created_at", tantivy.Order.Desc)}


def analyzer(stem: bool = True) -> tantivy.TextAnalyzer:
    """Words: simple tokenizer, long tokens dropped, lower case, ASCII folding, and (for
    matching) the English stemmer; unstemmed words make the typeahead prefixes."""
    b = (TextAnalyzerBuilder(Tokenizer.simple()).filter(Filter.remove_long(40))
         .filter(Filter.lowercase()).filter(Filter.ascii_fold()))
    return (b.filter(Filter.stemmer("english")) if stem else b).build()


def prefix_analyzer() -> tantivy.TextAnalyzer:
    return TextAnalyzerBuilder(Tokenizer.whitespace()).build()


def word_prefixes(text: str, az: tantivy.TextAnalyzer, longest: int = PREFIX_MAX) -> str:
    """Every prefix (1..`longest` letters) of every word, space-separated: the edge n-grams
    of the title (tantivy has an n-gram tokenizer but no per-word edge n-gram filter)."""
    out: set[str] = set()
    for word in az.analyze(text):
        out.update(word[:n] for n in range(1, min(len(word), longest) + 1))
    return " ".join(sorted(out))


def schema() -> tantivy.Schema:
    b = tantivy.SchemaBuilder()
    for name in _INT_FIELDS:
        b.add_integer_field(name, stored=True, indexed=True, fast=True)
    for name in _FLOAT_FIELDS:
        b.add_float_field(name, stored=True, indexed=True, fast=True)
    b.add_integer_field("category_ids", stored=True, indexed=True, fast=True)
    b.add_integer_field("variant_ids", stored=True, indexed=False, fast=False)
    b.add_boolean_field("in_stock", stored=True, indexed=True, fast=True)
    b.add_text_field("title", stored=True, tokenizer_name=ANALYZER)
    b.add_text_field("title_prefix", stored=False, tokenizer_name=PREFIX_ANALYZER,
                     index_option="basic")
    b.add_text_field("description", stored=False, tokenizer_name=ANALYZER)
    b.add_text_field("brand_text", stored=False, tokenizer_name=ANALYZER)
    b.add_text_field("category_path", stored=True, tokenizer_name=ANALYZER)
    b.add_text_field("brand", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    b.add_text_field("brand_key", stored=False, tokenizer_name="raw", index_option="basic")
    b.add_text_field("badges", stored=True, tokenizer_name="raw", index_option="basic")
    for name in ("external_id", "currency", "thumbnail_url"):
        b.add_text_field(name, stored=True, tokenizer_name="raw", index_option="basic")
    b.add_json_field("attributes", stored=True, fast=True, tokenizer_name="raw",
                     index_option="basic")
    for name in SCORED_FIELDS:
        b.add_text_field(impact_field(name), stored=False, tokenizer_name=PREFIX_ANALYZER,
                         index_option="basic")
    b.add_bytes_field(VECTOR_FIELD, stored=True)  # the title's dense vector, when made
    return b.build()


def impact_field(name: str) -> str:
    return f"imp_{name}"


def write_generation_file(generation_dir: Path, name: str, data: Mapping[str, Any]) -> None:
    """A generation's JSON file, replaced atomically (a reader sees the old or the new)."""
    generation_dir.mkdir(parents=True, exist_ok=True)
    tmp = generation_dir / f".{name}.tmp"
    tmp.write_text(json.dumps(data), encoding="utf-8")
    os.replace(tmp, generation_dir / name)


def read_generation_file(generation_dir: Path, name: str) -> dict[str, Any] | None:
    try:
        data = json.loads((generation_dir / name).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    if not isinstance(data, dict):
        raise ValueError(f"{generation_dir / name} is not a JSON object")
    return data


def _tokens(text: str, az: tantivy.TextAnalyzer) -> list[str]:
    return list(az.analyze(text))


def scored_tokens(d: Mapping[str, Any], az: tantivy.TextAnalyzer) -> dict[str, list[str]]:
    """The analysed words of a document's scored fields, as the plain fields index them."""
    return {
        "title": _tokens(str(d.get("title") or ""), az),
        "brand_text": _tokens(str(d.get("brand") or ""), az),
        "category_path": [t for part in d.get("category_path") or ()
                          for t in _tokens(str(part), az)],
        "description": _tokens(str(d.get("description") or ""), az),
    }


class TantivyShard:
    """`path`: this shard's directory, inside its generation's directory (where the length
    pivots and term statistics of the generation are read from); None: in memory, with the
    default pivots and no statistics (every idf 1). `read_only`: searches only, no writer
    (tantivy allows one writer per directory, and any number of readers in other processes:
    adapters/search/local_reads.py); `reload()` then shows what the writer committed."""

    def __init__(self, path: Path | str | None, read_only: bool = False) -> None:
        self.schema = schema()
        self._generation_dir = Path(path).parent if path is not None else None
        made = (read_generation_file(self._generation_dir, PIVOTS_FILE)
                if self._generation_dir is not None else None) or {}
        lengths = made.get("avg_length") or {}
        self.avg_length: dict[str, float] = {**DEFAULT_AVG_LENGTH, **{
            str(k): float(v) for k, v in lengths.items()}}
        self.stats = TermStats(avg_length=self.avg_length)
        self._vectors: dict[tuple[int, int], bytes | None] = {}  # (product, version) -> vector
        self._vectors_kept = VECTORS_KEPT // 2 if read_only else VECTORS_KEPT  # per Gateway
        self._commits = 0
        self._all_vectors: tuple[int, _Vectors | None] | None = None  # a writer's, per commit
        # read-only: what is kept over the current searcher (see _reader)
        self._view_lock = threading.Lock()
        self._view: _View | None = _View() if read_only else None
        self.reload_stats()
        if path is not None and read_only:  # never creates: the writer's files or nothing
            self.index = tantivy.Index.open(str(path))
            self.index.config_reader("manual")  # reloaded by its reader (local_reads.py)
        elif path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
            self.index = tantivy.Index(self.schema, path=str(path), reuse=True)
        else:
            self.index = tantivy.Index(self.schema)
        self.index.register_tokenizer(ANALYZER, analyzer())
        self.index.register_tokenizer(PREFIX_ANALYZER, prefix_analyzer())
        self._az = analyzer()
        self._words = analyzer(stem=False)
        self._writer = None if read_only else self.index.writer(WRITER_HEAP, 1)
        self._lock = threading.Lock()  # one writer at a time; searches never take it
        self._pending: dict[int, int | None] = {}  # product -> version since last commit
        self.index.reload()

    def reload_stats(self) -> None:
        """The generation's term statistics, once they are written (TermStats: until then
        every idf is 1)."""
        if self._generation_dir is None:
            return
        data = read_generation_file(self._generation_dir, STATS_FILE)
        if data is not None:
            stats = TermStats.from_json(data)  # parsed before searches wait on the lock
            with self._view_lock:
                self.stats = stats
                self._view = _View() if self._view is not None else None

    def term_counts(self) -> TermCounts:
        """(live documents, {scored field: {term: live documents holding it}}): this shard's
        part of the generation's statistics. Deleted documents are not counted (tantivy's
        own document frequencies count them until segments merge)."""
        searcher = self.index.searcher()
        alive = Query.all_query()
        counts = {name: {t: int(n) for t, n in searcher.terms_with_prefix(
            name, "", filter_query=alive) if n > 0} for name in SCORED_FIELDS}
        return int(searcher.num_docs), counts

    # -- writes ------------------------------------------------------------------------
    def apply(self, docs: Sequence[Mapping[str, Any]], deletes: Sequence[int] = (),
              commit: bool = True) -> int:
        """Upserts, deletes and (with `commit`) commits in one call: a caller that gets an
        answer knows the write is durable; one that gets an error retries the whole call
        (upserts are idempotent by product version). Returns the documents written."""
        written = self.upsert(docs) if docs else 0
        if deletes:
            self.delete(deletes)
        if commit:
            self.commit()
        return written

    def _stored_versions(self, ids: Sequence[int]) -> dict[int, int]:
        if not ids:
            return {}
        searcher = self.index.searcher()
        q = _any_of(self.schema, "product_id", ids)
        res = searcher.search(q, limit=len(ids) * 2 + 10, count=False)
        addrs = [a for _, a in res.hits]
        pids = searcher.fast_field_values("product_id", addrs)
        versions = searcher.fast_field_values("version", addrs)
        return {int(p): int(v) for p, v in zip(pids, versions, strict=True)
                if p is not None and v is not None}

    def upsert(self, docs: Iterable[Mapping[str, Any]]) -> int:
        docs = list(docs)
        with self._lock:
            stored = self._stored_versions([int(d["product_id"]) for d in docs])
            written = 0
            for d in docs:
                pid, version = int(d["product_id"]), int(d["version"])
                current = self._pending[pid] if pid in self._pending else stored.get(pid)
                if current is not None and version < current:
                    continue
                self._w().delete_documents_by_term("product_id", pid)
                self._w().add_document(self._document(d))
                self._pending[pid] = version
                written += 1
            return written

    def delete(self, product_ids: Iterable[int]) -> None:
        with self._lock:
            for pid in product_ids:
                self._w().delete_documents_by_term("product_id", int(pid))
                self._pending[int(pid)] = None

    def commit(self) -> None:
        with self._lock:
            self._w().commit()
            self._pending.clear()
            # the searcher first, then the count: a search that reads the new count finds
            # the new searcher (what it keeps per commit, `_every_vector`, is that one's)
            self.index.reload()
            self._commits += 1

    def close(self) -> None:
        if self._writer is None:
            return
        with self._lock:
            self._writer.wait_merging_threads()

    def reload(self) -> None:
        """The searcher over what was last committed (by this shard or, read-only, by the
        writer in another process)."""
        with self._view_lock:
            self.index.reload()
            self._view = _View() if self._view is not None else None

    def _reader(self) -> tuple[tantivy.Searcher, _View]:
        """The searcher, and what is kept over it (`_View`). A read-only shard's searcher
        changes only with `reload()` (and its idfs with `reload_stats()`), which start a new
        view: a word's clauses (its impact levels in the shard's terms, the clause objects;
        most of building a query) are built once per field and weight, not on every search
        that has the word, and a repeated query's signals are computed once per product. A
        writer's searcher changes with its commits (tantivy reloads it), so its searches
        keep nothing."""
        with self._view_lock:
            return self.index.searcher(), self._view if self._view is not None else _View()

    def _w(self) -> tantivy.IndexWriter:
        if self._writer is None:
            raise RuntimeError("this shard was opened read-only")
        return self._writer

    def _document(self, d: Mapping[str, Any]) -> tantivy.Document:
        doc = tantivy.Document()
        for name in _INT_FIELDS:
            doc.add_integer(name, doc_tie_key(d) if name == "tie_key" else int(d.get(name) or 0))
        for name in _FLOAT_FIELDS:
            v = d.get(name)
            doc.add_float(name, float("nan") if v is None else float(v))
        for v in d.get("variant_ids") or ():
            doc.add_integer("variant_ids", int(v))
        for c in d.get("category_ids") or ():
            doc.add_integer("category_ids", int(c))
        doc.add_boolean("in_stock", bool(d.get("in_stock")))
        title = str(d.get("title") or "")
        doc.add_text("title", title)
        doc.add_text("title_prefix", word_prefixes(title, self._words))
        doc.add_text("description", str(d.get("description") or ""))
        if d.get("brand"):
            doc.add_text("brand", str(d["brand"]))
            doc.add_text("brand_text", str(d["brand"]))
        if d.get("brand_key"):
            doc.add_text("brand_key", str(d["brand_key"]))
        for name in d.get("category_path") or ():
            doc.add_text("category_path", str(name))
        for b in d.get("badges") or ():
            doc.add_text("badges", str(b))
        for name in ("external_id", "currency", "thumbnail_url"):
            if d.get(name):
                doc.add_text(name, str(d[name]))
        doc.add_json("attributes", {k: list(v) for k, v in (d.get("attributes") or {}).items()})
        vec = d.get(VECTOR_FIELD)
        if vec:
            doc.add_bytes(VECTOR_FIELD, bytes(vec))
        for name, tokens in scored_tokens(d, self._az).items():
            if tokens:
                doc.add_text(impact_field(name),
                             " ".join(impact_tokens(tokens, self.avg_length[name])))
        return doc

    # -- reads -------------------------------------------------------------------------
    def num_docs(self) -> int:
        return int(self.index.searcher().num_docs)

    def get(self, product_ids: Sequence[int]) -> dict[int, SearchDocument]:
        searcher = self.index.searcher()
        q = _any_of(self.schema, "product_id", [int(p) for p in product_ids])
        res = searcher.search(q, limit=max(1, len(product_ids)), count=False)
        out: dict[int, SearchDocument] = {}
        for _, addr in res.hits:
            d = _to_plain(searcher.doc(addr).to_dict())
            out[d["product_id"]] = d
        return out

    def search(self, q: IndexQuery) -> IndexResult:
        commits = self._commits  # before the searcher: a commit meanwhile is a new count
        searcher, view = self._reader()
        if q.near is not None and q.near.ids is None:  # Near's first step: nothing else
            return IndexResult([], 0, Facets(), near=self._nearest(searcher, view, q, commits))
        query = self._query(q, searcher, view.clauses)
        n = q.offset + q.limit
        if q.sort == "relevance":
            hits, total = self._by_relevance(searcher, query, n)
        else:
            field, order = _SORT_FIELD[q.sort]
            res = searcher.search(query, limit=max(n, 1), count=True, order_by_field=field,
                                  order=order)
            total = int(res.count or 0)  # type: ignore[attr-defined]
            hits = [(float(s), a) for s, a in res.hits]
            if len(hits) == n and n > 0:
                hits = self._with_ties(searcher, query, field, hits)
        if q.slim:
            k = min(q.full_docs, len(hits))
            docs = ([_to_plain(searcher.doc(a).to_dict()) for _, a in hits[:k]]
                    + _slim_docs(searcher, [a for _, a in hits[k:]]))
        else:
            docs = [_to_plain(searcher.doc(addr).to_dict()) for _, addr in hits]
        out = [Hit(int(d["product_id"]), score, d)
               for (score, _), d in zip(hits, docs, strict=True)]
        if q.sort != "relevance":
            out.sort(key=lambda h: sort_key(h.doc, q.sort))
            out = out[:n]
        facets = self._facets(searcher, query) if q.facets else Facets()
        signals = (self._kept_signals(searcher, view, q.text, q.signals,
                                      [h.product_id for h in out],
                                      dict(zip([int(d["product_id"]) for d in docs],
                                               [a for _, a in hits], strict=True)))
                   if q.signals is not None and out else {})
        return IndexResult(out, total, facets, signals,
                           near_only=self._near_only(searcher, view.clauses, q, hits, n))

    def _nearest(self, searcher: tantivy.Searcher, view: _View, q: IndexQuery,
                 commits: int) -> list[Hit]:
        """Near's first step in this shard: its k documents passing the filters closest to
        the query's vector (none in a shard of more than NEAR_MAX_DOCS documents)."""
        assert q.near is not None
        vectors = self._every_vector(searcher, view, commits)
        if vectors is None:
            return []
        passing = None
        if q.filters != Filters():
            passing = vectors.passing.get(q.filters)
            if passing is None:
                found = searcher.search(Query.boolean_query(
                    [(Occur.Must, Query.all_query()), *self._filters(q.filters)]),
                    limit=len(vectors.pids), count=False).hits
                ids = searcher.fast_field_values("product_id", [a for _, a in found])
                passing = np.isin(vectors.pids, np.array(
                    [int(p) for p in ids if p is not None], dtype=np.int64))
                if len(vectors.passing) >= PASSING_KEPT:
                    vectors.passing.clear()  # many filters (prices are any number): again
                vectors.passing[q.filters] = passing
        return vectors.nearest(q.near.vector, q.near.k, passing)

    def _every_vector(self, searcher: tantivy.Searcher, view: _View,
                      commits: int) -> _Vectors | None:
        """Every live document's title vector: kept per searcher (a read-only shard's view,
        a writer's commit: `commits`, read before the searcher was); None when the shard
        holds more than NEAR_MAX_DOCS documents."""
        if self._view is not None and view.vectors is not None:
            return view.vectors
        kept = self._all_vectors
        if self._view is None and kept is not None and kept[0] == commits:
            return kept[1]
        n = int(searcher.num_docs)
        made = None
        if 0 < n <= NEAR_MAX_DOCS:
            addrs = [a for _, a in searcher.search(Query.all_query(), limit=n, count=False).hits]
            pids = [int(p or 0) for p in searcher.fast_field_values("product_id", addrs)]
            ties = [int(t or 0) for t in searcher.fast_field_values("tie_key", addrs)]
            vecs = self._title_vectors(searcher, pids, addrs)
            usable = np.array([v is not None and len(v) == DIMENSION for v in vecs], dtype=bool)
            raw = b"".join(v if v is not None and len(v) == DIMENSION else bytes(DIMENSION)
                           for v in vecs)
            made = _Vectors(np.array(pids, dtype=np.int64), np.array(ties, dtype=np.int64),
                            np.frombuffer(raw, dtype=np.int8).reshape(len(addrs), DIMENSION)
                            .astype(np.float32), usable)
        if self._view is not None:
            view.vectors = made
        else:
            self._all_vectors = (commits, made)
        return made

    def _near_only(self, searcher: tantivy.Searcher, built: Clauses, q: IndexQuery,
                   hits: Sequence[tuple[float, tantivy.DocAddress]], n: int) -> int:
        """How many of the Near ids joined to the words' matches pass the filters but match
        no word (IndexResult.near_only): those scoring NEAR_BOOST and nothing more, read from
        the top n (every chosen id is there when n is at least their number, as in every
        search the plan makes); otherwise counted by a search of the chosen ids."""
        if q.near is None or not q.near.ids or not q.text.groups:
            return 0
        if q.sort == "relevance" and n >= len(q.near.ids):
            return sum(1 for score, _ in hits if score == NEAR_BOOST)
        text = self._text(q.text, searcher, built)
        if text is None:
            return 0
        words = Query.boolean_query([(Occur.Must, text), *self._filters(q.filters)])
        found = searcher.search(Query.boolean_query([  # those matching the words score 1
            (Occur.Must, Query.const_score_query(self._chosen(q.near), 0.0)),
            (Occur.Should, Query.const_score_query(words, 1.0))]),
            limit=len(q.near.ids), count=False).hits
        return sum(1 for score, _ in found if score < 0.5)

    def _chosen(self, near: Near) -> Query:
        """Near's chosen ids that pass its filters, each scoring NEAR_BOOST."""
        ids = _any_of(self.schema, "product_id", near.ids or ())
        filters = self._filters(near.filters)
        return Query.const_score_query(
            Query.boolean_query([(Occur.Must, ids), *filters]) if filters else ids, NEAR_BOOST)

    def _kept_signals(self, searcher: tantivy.Searcher, view: _View, text: TextQuery,
                      ask: SignalRequest, pids: Sequence[int],
                      addrs: Mapping[int, tantivy.DocAddress]) -> Signals:
        """`_signals`, computed only for the products whose signals for this query `view`
        does not keep (it keeps SIGNALS_KEPT queries' at most, ROWS_KEPT products each: the
        same words under many filters start again rather than grow)."""
        key = (text.groups, ask)
        kept = view.signals.get(key) or _Kept.empty()
        missing = [p for p in pids if p not in kept.rows]
        if not missing:
            return kept.of(pids)
        made = self._signals(searcher, view.clauses, text, ask, missing, addrs)
        if key not in view.signals and len(view.signals) >= SIGNALS_KEPT:
            view.signals.clear()
        if len(kept.rows) + len(missing) > ROWS_KEPT:  # the same words under many filters:
            kept = kept.keeping([p for p in pids if p in kept.rows])  # start again
        kept = view.signals[key] = kept.adding(missing, made)
        return kept.of(pids)

    def _signals(self, searcher: tantivy.Searcher, built: Clauses, text: TextQuery,
                 ask: SignalRequest, pids: Sequence[int],
                 addrs: Mapping[int, Any]) -> npt.NDArray[np.float64]:
        """domain.search.SIGNALS of these products (a row each, in their order), each from a
        query confined to them: per word group and scored field (the group's best
        alternative in that field), the title phrase, and the brand, color and category read
        from the words."""
        n_pids = len(pids)
        row_of = {pid: i for i, pid in enumerate(pids)}
        wanted = {(a.segment_ord, a.doc): i for pid, a in addrs.items()
                  if (i := row_of.get(pid)) is not None}
        only: list[tuple[Occur, Query]] = []

        def scores(q: Query) -> npt.NDArray[np.float64]:
            """The score of `q` for each of the products (0: no match). Most signal queries
            match few documents: they run over the whole shard and the products are picked
            from the matches (confining a search to 200 ids costs ~0.5 ms of term lookups);
            one that matches SIGNAL_SCAN or more runs again confined to the products."""
            got = np.zeros(n_pids)
            found = searcher.search(q, limit=SIGNAL_SCAN, count=False).hits
            if len(found) < SIGNAL_SCAN:
                picked = [(i, sc) for sc, a in found
                          if (i := wanted.get((a.segment_ord, a.doc))) is not None]
            else:
                if not only:
                    only.append((Occur.Must, Query.const_score_query(
                        _any_of(self.schema, "product_id", pids), 0.0)))
                res = searcher.search(Query.boolean_query([only[0], (Occur.Must, q)]),
                                      limit=n_pids, count=False)
                ids = searcher.fast_field_values("product_id", [a for _, a in res.hits])
                picked = [(i, sc) for (sc, _), p in zip(res.hits, ids, strict=True)
                          if p is not None and (i := row_of.get(int(p))) is not None]
            if picked:
                rows, values = zip(*picked, strict=True)
                got[list(rows)] = values
            return got

        def matched(slots: Sequence[Query | None]) -> npt.NDArray[np.bool_]:
            """Which of `slots` each product matches (a column per slot): one search per
            SLOTS_PER_MASK slots, slot i worth 2^i (exact in a float32 score), the bits read
            back."""
            got = np.zeros((n_pids, len(slots)), dtype=bool)
            for start in range(0, len(slots), SLOTS_PER_MASK):
                part = slots[start:start + SLOTS_PER_MASK]
                clauses = [(Occur.Should, Query.const_score_query(q, float(1 << i)))
                           for i, q in enumerate(part) if q is not None]
                if not clauses:
                    continue
                masks = scores(Query.boolean_query(clauses)).astype(np.int64)
                got[:, start:start + len(part)] = (
                    masks[:, None] >> np.arange(len(part), dtype=np.int64) & 1).astype(bool)
            return got

        groups = [g for g in text.groups if any(_tokens(a, self._az) for a in g)]
        # per group and field: the group's best alternative there (None: cannot match)
        best: list[dict[str, Query | None]] = []
        for group in groups:
            mine: dict[str, Query | None] = {}
            for field, boost in TEXT_FIELDS:
                alts = [q for n_alt, alt in enumerate(group)
                        if (toks := _tokens(alt, self._az))
                        and (q := self._alternative(
                            searcher, built, field, toks,
                            boost * (1.0 if n_alt == 0 else ALTERNATIVE_WEIGHT),
                            False)) is not None]
                mine[field] = (Query.disjunction_max_query(alts, 0.0) if len(alts) > 1
                               else alts[0] if alts else None)
            best.append(mine)
        out = np.zeros((n_pids, len(SIGNALS)))
        # a field's score is the sum over groups of the group's best alternative there (a
        # boolean of SHOULD clauses adds its clauses' scores): one search per field
        for field, column in _FIELD_COLUMNS:
            clauses = [(Occur.Should, q) for g in best if (q := g[field]) is not None]
            if clauses:
                out[:, column] = scores(Query.boolean_query(clauses))
        # presence signals, all in one bitmask search (per 20): per group, a match in the
        # title and in any field; the typed words as a title phrase; the brand, color and
        # categories read from the words
        typed = [t for g in groups for t in _tokens(g[0], self._az)]
        extra: list[Query | None] = [
            Query.phrase_query(self.schema, "title", list[Any](typed)) if len(typed) > 1
            else None,
            _any_of(self.schema, "brand_key", ask.brands)
            if ask.brands else None,
            Query.boolean_query([(Occur.Should, Query.term_query(
                self.schema, f"attributes.{ask.color_attribute}", c)) for c in ask.colors])
            if ask.colors else None,
            _any_of(self.schema, "category_ids", ask.categories)
            if ask.categories else None]
        any_field = [
            Query.disjunction_max_query(qs, 0.0) if len(qs) > 1 else qs[0] if qs else None
            for qs in ([q for q in g.values() if q is not None] for g in best)]
        g_n = len(groups)
        bits = matched([*extra, *(g["title"] for g in best), *any_field])
        e, n = len(extra), max(g_n, 1)
        out[:, _COLUMN["coverage"]] = bits[:, e + g_n:].sum(axis=1) / n
        out[:, _COLUMN["coverage_title"]] = bits[:, e:e + g_n].sum(axis=1) / n
        out[:, _WORD_MATCHES] = bits[:, :e]
        if ask.vector is not None:
            out[:, _COLUMN["dense"]] = similarity(ask.vector, self._title_vectors(
                searcher, pids, [addrs[pid] for pid in pids]))
        return out

    def _title_vectors(self, searcher: tantivy.Searcher, pids: Sequence[int],
                       addrs: Sequence[tantivy.DocAddress]) -> list[bytes | None]:
        """The stored title vectors of these documents, kept in memory by (product, version):
        a title changes only with a new product version, and reading 200 stored documents
        per search was most of the dense signal's cost."""
        versions = searcher.fast_field_values("version", list(addrs))
        out: list[bytes | None] = []
        for pid, addr, version in zip(pids, addrs, versions, strict=True):
            key = (pid, int(version or 0))
            kept = self._vectors.get(key, _NOT_KEPT)  # one lookup: another thread may clear
            if kept is not _NOT_KEPT:
                out.append(cast(bytes | None, kept))
                continue
            vec = searcher.doc(addr).get_first(VECTOR_FIELD)
            if len(self._vectors) >= self._vectors_kept:
                self._vectors.clear()  # rare: a catalog bigger than the cache, or many edits
            self._vectors[key] = vec
            out.append(vec)
        return out

    def _by_relevance(self, searcher: tantivy.Searcher, query: Query,
                      n: int) -> tuple[list[tuple[float, Any]], int]:
        """The top n by relevance in the merge order: score, then tie key; and how many match.
        The first fetch is `_first_fetch(n)`. When the n-th and the last found score alike,
        more are fetched until the run of equal scores ends, so the cut does not fall on
        whichever tied document tantivy met first (every document scoring above the last one
        found is among them). Only the hits down to the end of the n-th's run are ordered."""
        limit = _first_fetch(n)
        res = searcher.search(query, limit=limit, count=True)
        total, found = int(res.count or 0), res.hits  # type: ignore[attr-defined]
        while (n > 0 and len(found) == limit and found[n - 1][0] == found[-1][0]
               and limit < MAX_TIES):
            limit = min(MAX_TIES, limit * 4)
            found = searcher.search(query, limit=limit, count=False).hits
        if n <= 0 or not found:
            return [], total
        end = min(n, len(found))
        cut = found[end - 1][0]
        while end < len(found) and found[end][0] == cut:
            end += 1
        hits = [(float(s), a) for s, a in found[:end]]
        addrs = [a for _, a in hits]
        ties = searcher.fast_field_values("tie_key", addrs)
        pids = searcher.fast_field_values("product_id", addrs)
        order = sorted(range(len(hits)), key=lambda i: (-hits[i][0], ties[i] or 0, pids[i] or 0))
        return [hits[i] for i in order[:n]], total

    def _with_ties(self, searcher: tantivy.Searcher, query: Query, field: str,
                   hits: list[tuple[float, Any]]) -> list[tuple[float, Any]]:
        """The top n by `field` cuts a run of equal values at an arbitrary document; the merge
        order breaks ties on product_id, so every document tied with the last one comes too
        (the caller sorts and cuts again)."""
        last = hits[-1][0]
        kind = tantivy.FieldType.Integer if field == "created_at" else tantivy.FieldType.Float
        bound: float | int = int(last) if field == "created_at" else last
        tie = Query.boolean_query([(Occur.Must, query), (Occur.Must, Query.range_query(
            self.schema, field, kind, bound, bound))])
        tied = searcher.search(tie, limit=MAX_TIES, count=False).hits
        better = [(s, a) for s, a in hits if s != last]
        return better + [(last, a) for _, a in tied]

    def suggest(self, prefix_words: Sequence[str], last: str, limit: int) -> list[tuple[str, int]]:
        """Titles matching every full word and starting a word with `last`, most reviewed first."""
        searcher = self.index.searcher()
        clauses: list[tuple[Occur, Query]] = []
        for w in prefix_words:
            for t in _tokens(w, self._az):
                clauses.append((Occur.Must, Query.term_query(self.schema, "title", t)))
        low = _tokens(last, self._words)
        if low:
            clauses.append((Occur.Must, Query.term_query(
                self.schema, "title_prefix", low[0][:PREFIX_MAX])))
        if not clauses:
            return []
        res = searcher.search(Query.boolean_query(clauses), limit=limit, count=False,
                              order_by_field="rating_count")
        out = []
        for score, addr in res.hits:
            d = searcher.doc(addr).to_dict()
            out.append((d["title"][0], int(score)))
        return out

    def _text(self, t: TextQuery, searcher: tantivy.Searcher,
              built: Clauses) -> Query | None:
        """Each group: the best of its alternatives in any field (dismax); the groups all
        required or any one (`require_all`). A group with words that cannot match in this
        shard fails a query requiring every group, and is left out of the others."""
        if not t.groups:
            return None
        fields = TEXT_FIELDS[:1] if t.fields == "title" else TEXT_FIELDS
        groups: list[Query] = []
        worded = False
        for group in t.groups:
            alts: list[Query] = []
            for n_alt, alt in enumerate(group):
                toks = _tokens(alt, self._az)
                if not toks:
                    continue
                worded = True
                # the word as typed counts more than its synonyms and corrections
                weight = 1.0 if n_alt == 0 else ALTERNATIVE_WEIGHT
                fuzzy = t.fuzzy and len(toks) == 1 and len(alt) >= FUZZY_MIN_LENGTH
                for field, boost in fields:
                    clause = self._alternative(searcher, built, field, toks, boost * weight,
                                               fuzzy)
                    if clause is not None:
                        alts.append(clause)
            if alts:
                groups.append(Query.disjunction_max_query(alts, TIE_BREAKER) if len(alts) > 1
                              else alts[0])
            elif worded and t.require_all:
                return Query.empty_query()
        if not groups:
            return Query.empty_query()
        occur = Occur.Must if t.require_all else Occur.Should
        return Query.boolean_query([(occur, g) for g in groups])

    def _alternative(self, searcher: tantivy.Searcher, built: Clauses, field: str,
                     toks: Sequence[str], weight: float, fuzzy: bool) -> Query | None:
        """One alternative in one field, scored from the impacts of its words; None when it
        cannot match in this shard. Several words: a phrase (positions of the plain field),
        worth the sum of its words. Kept in `built` (the searcher's clauses, `_reader`)."""
        key = (field, tuple(toks), weight, fuzzy)
        try:
            return built[key]
        except KeyError:
            pass
        if len(built) >= CLAUSES_KEPT:
            built.clear()  # a long tail of words: start again rather than grow
        made = built[key] = self._build_alternative(searcher, field, toks, weight, fuzzy)
        return made

    def _build_alternative(self, searcher: tantivy.Searcher, field: str, toks: Sequence[str],
                           weight: float, fuzzy: bool) -> Query | None:
        scored = [self._impacts(searcher, field, tok, weight) for tok in dict.fromkeys(toks)]
        if len(toks) > 1:
            if any(q is None for q in scored):
                return None
            phrase = Query.phrase_query(self.schema, field, list[Any](toks))
            return Query.boolean_query([(Occur.Must, Query.const_score_query(phrase, 0.0))]
                                       + [(Occur.Should, q) for q in scored if q is not None])
        exact = scored[0]
        if not fuzzy:
            return exact
        near = Query.const_score_query(
            Query.fuzzy_term_query(self.schema, field, toks[0], distance=1),
            FUZZY_WEIGHT * weight)
        return near if exact is None else Query.boolean_query(
            [(Occur.Should, exact), (Occur.Should, near)])

    def _impacts(self, searcher: tantivy.Searcher, field: str, token: str,
                 weight: float) -> Query | None:
        """`token` in `field`: one constant-score clause per impact level present in this
        shard, worth weight x idf x level (a document holds one level per term and field)."""
        prefix = token + LEVEL_SEP
        levels = searcher.terms_with_prefix(impact_field(field), prefix)
        if not levels:
            return None
        idf = self.stats.idf(field, token)
        name = impact_field(field)
        clauses = [(Occur.Should, Query.const_score_query(
            Query.term_query(self.schema, name, term),
            weight * idf * level_value(int(term[len(prefix):])))) for term, _ in levels]
        return clauses[0][1] if len(clauses) == 1 else Query.boolean_query(clauses)

    def _filters(self, f: Filters) -> list[tuple[Occur, Query]]:
        s = self.schema
        out: list[tuple[Occur, Query]] = []
        if f.category_ids:
            out.append((Occur.Must, _any_of(s, "category_ids", f.category_ids)))
        if f.brands:
            out.append((Occur.Must, _any_of(s, "brand_key", f.brands)))
        if f.price_min is not None or f.price_max is not None:
            out.append((Occur.Must, Query.range_query(
                s, "price", tantivy.FieldType.Float, f.price_min, f.price_max)))
        if f.rating_min is not None:
            out.append((Occur.Must, Query.range_query(
                s, "rating_avg", tantivy.FieldType.Float, float(f.rating_min), None)))
        if f.in_stock is not None:
            out.append((Occur.Must, Query.term_query(s, "in_stock", f.in_stock)))
        if f.seller_id is not None:
            out.append((Occur.Must, Query.term_query(s, "seller_id", f.seller_id)))
        for name, values in f.attributes:
            out.append((Occur.Must, Query.boolean_query([
                (Occur.Should, Query.term_query(s, f"attributes.{name}", v)) for v in values])))
        if f.exclude_ids:
            out.append((Occur.MustNot,
                        _any_of(s, "product_id", f.exclude_ids)))
        return [(o, Query.const_score_query(q, 0.0)) for o, q in out]

    def _query(self, q: IndexQuery, searcher: tantivy.Searcher, built: Clauses) -> Query:
        text = self._text(q.text, searcher, built)
        clauses: list[tuple[Occur, Query]] = [(Occur.Must, text if text is not None
                                               else Query.all_query())]
        clauses += self._filters(q.filters)
        if text is not None and q.text.boost_category_ids:
            clauses.append((Occur.Should, Query.const_score_query(_any_of(
                self.schema, "category_ids", q.text.boost_category_ids), CATEGORY_BOOST)))
        if text is not None and q.near is not None and q.near.ids:
            # the semantic candidates chosen (Near) match too, passing their own filters,
            # first in the relevance order: NEAR_BOOST, plus the words' score if they match
            clauses = [(Occur.Must, Query.boolean_query([
                (Occur.Should, Query.boolean_query(clauses)),
                (Occur.Should, self._chosen(q.near))]))]
        return Query.boolean_query(clauses)

    def _facets(self, searcher: tantivy.Searcher, query: Query) -> Facets:
        ranges = [{"from": low, "to": high} if high is not None else {"from": low}
                  for low, high in PRICE_RANGES]
        aggs: dict[str, Any] = {
            "brands": {"terms": {"field": "brand", "size": ALL_TERMS}},
            "prices": {"range": {"field": "price", "ranges": ranges}},
            "ratings": {"range": {"field": "rating_avg", "ranges": [
                {"from": float(r)} for r in RATING_FLOORS[:1]] + [
                {"from": float(lo), "to": float(hi)}
                for lo, hi in zip(RATING_FLOORS[1:], RATING_FLOORS[:-1], strict=True)]}},
            "categories": {"terms": {"field": "category_ids", "size": CATEGORY_FACET_SIZE * 10}},
        }
        for name in FACET_ATTRIBUTES:
            aggs[f"attr_{name}"] = {"terms": {"field": f"attributes.{name}", "size": ALL_TERMS}}
        res = searcher.aggregate(query, aggs)
        out = Facets()
        for b in res["brands"]["buckets"]:
            out.brands[str(b["key"])] = int(b["doc_count"])
        by_from = {b.get("from"): int(b["doc_count"]) for b in res["prices"]["buckets"]}
        for low, high in PRICE_RANGES:  # tantivy adds open-ended buckets around the ranges
            n = by_from.get(float(low), 0)
            if n:
                out.price_ranges[price_range_label(low, high)] = n
        by_floor = {}
        for b in res["ratings"]["buckets"]:
            if b.get("from") is not None:
                by_floor[int(b["from"])] = int(b["doc_count"])
        running = 0
        for floor in RATING_FLOORS:  # 4, 3, 2, 1: "N stars & up" is cumulative
            running += by_floor.get(floor, 0)
            if running:
                out.ratings[floor] = running
        for b in res["categories"]["buckets"]:
            out.categories[int(b["key"])] = int(b["doc_count"])
        for name in FACET_ATTRIBUTES:
            buckets = res[f"attr_{name}"]["buckets"]
            if buckets:
                out.attributes[name] = {str(b["key"]): int(b["doc_count"]) for b in buckets}
        return out


def _any_of(schema: tantivy.Schema, field: str, values: Sequence[int] | Sequence[str]) -> Query:
    """The documents holding any of `values` in `field`, for matching only (every caller
    scores it as a constant or not at all). Up to TERMS_AS_CLAUSES values, a term query each:
    tantivy's term set query costs ~0.25 ms per search whatever the number of values (a
    search confined to 20 ids: 0.37 ms against 0.04 ms as 20 term queries, measured on a
    3,400-document shard, docs/benchmarks.md, session 30); above that, one term set query."""
    vals = list(values)
    if not vals or len(vals) > TERMS_AS_CLAUSES:
        return Query.term_set_query(schema, field, vals)
    if len(vals) == 1:
        return Query.term_query(schema, field, vals[0])
    return Query.boolean_query([(Occur.Should, Query.term_query(schema, field, v))
                                for v in vals])


def _slim_docs(searcher: tantivy.Searcher, addrs: list[Any]) -> list[SearchDocument]:
    """The SLIM_FIELDS of many hits, read column-wise from fast fields (no stored docs)."""
    if not addrs:
        return []
    cols = {f: searcher.fast_field_values(f, addrs) for f in SLIM_FIELDS}
    for k in _FLOAT_FIELDS:
        if k in cols:
            cols[k] = [None if isinstance(v, float) and math.isnan(v) else v for v in cols[k]]
    return [cast(SearchDocument, {f: cols[f][i] for f in SLIM_FIELDS})
            for i in range(len(addrs))]


def _to_plain(d: Mapping[str, list[Any]]) -> SearchDocument:
    """A stored tantivy document (every field a list) as a search document dict."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        if k == VECTOR_FIELD:
            continue
        if k in ("category_ids", "category_path", "badges", "variant_ids"):
            out[k] = list(v)
        elif k == "attributes":
            out[k] = v[0] if v else {}
        else:
            out[k] = v[0] if v else None
    for k in ("category_ids", "category_path", "badges", "variant_ids"):
        out.setdefault(k, [])
    out.setdefault("attributes", {})
    for k in _FLOAT_FIELDS:
        if isinstance(out.get(k), float) and math.isnan(out[k]):
            out[k] = None
    out.setdefault("brand", None)
    return cast(SearchDocument, out)
