"""The Elasticsearch backend of `SearchIndex`, used when ES_URL is set.

A thin shell around `AsyncElasticsearch`: every request body is built, and every answer read,
by the pure functions of `_es_mapping` and `_es_requests` (re-exported here).

Layout: generation `g` is the index `{prefix}-{g}`; the alias `{prefix}` names the live one and
is what searches read. Documents have `_id` = str(product_id) and an external version
(`version_type=external_gte`), so an older version never replaces a newer document.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, cast

from elasticsearch import (
    ApiError,
    AsyncElasticsearch,
    BadRequestError,
    NotFoundError,
    TransportError,
)

from adapters.search import NoLiveIndex
from adapters.search._es_mapping import DEFAULT_PREFIX, check_name, index_body, index_template
from adapters.search._es_requests import (
    BulkOutcome,
    bulk_actions,
    bulk_outcome,
    delete_actions,
    parse_search_response,
    search_body,
    search_type,
    suggest_body,
    swap_actions,
)
from domain.errors import AisleError, Conflict, NotFound, Unavailable
from domain.search import Facets, IndexQuery, IndexResult, SearchDocument

__all__ = [
    "DEFAULT_PREFIX",
    "BulkOutcome",
    "ElasticIndex",
    "SearchIndexError",
    "bulk_actions",
    "bulk_outcome",
    "delete_actions",
    "index_body",
    "index_template",
    "parse_search_response",
    "search_body",
    "search_type",
    "swap_actions",
]

_BUSY = frozenset({429, 502, 503, 504})


class SearchIndexError(AisleError):
    """Elasticsearch refused a request or some documents of a bulk write (`failures`)."""

    code = "search_index_error"


@contextlib.contextmanager
def _translated(what: str) -> Iterator[None]:
    """Client errors become aisle errors at this boundary."""
    try:
        yield
    except NotFoundError as exc:
        raise NotFound(f"{what}: {exc}", error=exc.error) from exc
    except ApiError as exc:
        if exc.status_code in _BUSY:
            raise Unavailable(f"{what}: Elasticsearch is busy ({exc.status_code})") from exc
        raise SearchIndexError(f"{what}: {exc}", status=exc.status_code,
                               error=exc.error) from exc
    except TransportError as exc:
        raise Unavailable(f"{what}: Elasticsearch did not answer ({exc})") from exc


class ElasticIndex:
    """`SearchIndex` on an Elasticsearch 9 cluster. Pass `url` (ES_URL) or an existing
    `client` (then closing it is the caller's business). `shards`/`replicas` apply to the
    generations this instance creates."""

    def __init__(self, url: str | None = None, *, prefix: str = DEFAULT_PREFIX,
                 client: AsyncElasticsearch | None = None, shards: int = 1, replicas: int = 1,
                 request_timeout: float = 30.0, chunk_size: int = 500, busy_retries: int = 3,
                 retry_backoff: float = 0.5) -> None:
        if (url is None) == (client is None):
            raise ValueError("ElasticIndex needs exactly one of url and client")
        self.prefix = check_name(prefix, "prefix")
        self._owns_client = client is None
        self._es = client if client is not None else AsyncElasticsearch(
            url, request_timeout=request_timeout, max_retries=2, retry_on_timeout=True)
        self._shards, self._replicas = shards, replicas
        self._chunk_size = chunk_size
        self._busy_retries, self._retry_backoff = busy_retries, retry_backoff
        self._template_ready = False

    def index_name(self, generation: str) -> str:
        return f"{self.prefix}-{check_name(generation, 'generation')}"

    def _target(self, generation: str | None) -> str:
        return self.prefix if generation is None else self.index_name(generation)

    def _generation_of(self, index: str) -> str:
        return index.removeprefix(f"{self.prefix}-")

    # -- documents --------------------------------------------------------------------------

    async def upsert(self, docs: Sequence[SearchDocument],
                     generation: str | None = None) -> int:
        target, written = self._target(generation), 0
        for start in range(0, len(docs), self._chunk_size):
            ops = bulk_actions(docs[start:start + self._chunk_size], target)
            written += await self._bulk(ops, 2, generation is None, "upsert")
        return written

    async def delete(self, product_ids: Sequence[int], generation: str | None = None) -> None:
        """Deletes at each document's stored version (read first): the tombstone then keeps
        that version, so the same version can be written again, as after a delete in the
        embedded backend, while an older one is still refused (for `index.gc_deletes`)."""
        target = self._target(generation)
        for start in range(0, len(product_ids), self._chunk_size):
            docs = await self._mget(product_ids[start:start + self._chunk_size], generation,
                                    source=False)
            versions = {int(d["_id"]): int(d["_version"]) for d in docs}
            if versions:
                await self._bulk(delete_actions(versions, target), 1, generation is None,
                                 "delete")

    async def _bulk(self, ops: list[dict[str, Any]], per_item: int, via_alias: bool,
                    what: str) -> int:
        """Sends one chunk; items rejected as busy (429) are sent again, with back-off.
        With `via_alias` the target must be the alias: no live generation, no write."""
        written = 0
        for attempt in range(self._busy_retries + 1):
            if attempt:
                await asyncio.sleep(self._retry_backoff * 2 ** (attempt - 1))
            with _translated(what):
                resp = await self._es.bulk(operations=ops, require_alias=via_alias)
            out = bulk_outcome(resp.body)
            if out.failures:
                raise SearchIndexError(f"{what}: {len(out.failures)} documents failed",
                                       failures=out.failures[:20])
            written += out.written
            if not out.retry:
                return written
            ops = [op for p in out.retry for op in ops[p * per_item:(p + 1) * per_item]]
        raise Unavailable(f"{what}: Elasticsearch kept rejecting {len(ops) // per_item} "
                          "documents as too busy")

    async def refresh(self, generation: str | None = None) -> None:
        with _translated("refresh"):
            try:
                await self._es.indices.refresh(index=self._target(generation))
            except NotFoundError:
                if generation is not None:
                    raise  # no live generation: nothing to refresh

    async def search(self, query: IndexQuery) -> IndexResult:
        return await self.search_index(self.prefix, query)

    async def search_index(self, index: str, query: IndexQuery) -> IndexResult:
        """Searches one concrete index (a generation being checked) or the alias. Documents
        here carry no title vectors: no semantic candidates (domain.search.Near)."""
        if query.near is not None and query.near.ids is None:
            return IndexResult([], 0, Facets())
        kwargs = search_body(query)
        kwargs["from_"] = kwargs.pop("from")
        if (kind := search_type(query)) is not None:
            kwargs["search_type"] = kind
        with _translated("search"):
            try:
                resp = await self._es.search(index=index, **kwargs)
            except NotFoundError:
                if index != self.prefix:  # a named generation that is not there
                    raise
                resp = None  # the alias: no live generation yet
        if resp is None:
            raise NoLiveIndex("no live search index generation")
        return parse_search_response(resp.body)

    async def suggest(self, words: Sequence[str], last: str, limit: int) -> list[str]:
        """Titles with every full word and a word starting with `last` (edge n-grams), most
        reviewed first."""
        body = suggest_body(words, last, limit)
        with _translated("suggest"):
            try:
                resp = await self._es.search(index=self.prefix, **body)
            except NotFoundError:
                resp = None
        if resp is None:
            raise NoLiveIndex("no live search index generation")
        out: dict[str, str] = {}  # casefolded -> as written (as the embedded backend)
        for hit in resp.body["hits"]["hits"]:
            out.setdefault(hit["_source"]["title"].casefold(), hit["_source"]["title"])
        return list(out.values())[:limit]

    async def get(self, product_ids: Sequence[int],
                  generation: str | None = None) -> dict[int, SearchDocument]:
        docs = await self._mget(product_ids, generation, source=True)
        return {int(d["_id"]): cast(SearchDocument, dict(d["_source"])) for d in docs}

    async def _mget(self, product_ids: Sequence[int], generation: str | None,
                    source: bool) -> list[dict[str, Any]]:
        """The stored documents among `product_ids` (realtime: unrefreshed writes too)."""
        if not product_ids:
            return []
        with _translated("get"):
            try:
                resp = await self._es.mget(index=self._target(generation), source=source,
                                           ids=[str(int(p)) for p in product_ids])
            except NotFoundError:
                if generation is not None:
                    raise
                return []  # no live generation
        return [d for d in resp.body["docs"] if d.get("found")]

    async def count(self, generation: str | None = None) -> int:
        with _translated("count"):
            try:
                resp = await self._es.count(index=self._target(generation))
            except NotFoundError:
                if generation is not None:
                    raise
                return 0
        return int(resp.body["count"])

    # -- generations ------------------------------------------------------------------------

    async def create_generation(self, name: str, sample: Sequence[SearchDocument] = (),
                                vectors: bool = False) -> None:
        """Creates `{prefix}-{name}` (installing the prefix's index template first). No
        `sample` is needed: searches gather the statistics of every shard first
        (dfs_query_then_fetch)."""
        index = self.index_name(name)
        with _translated("create_generation"):
            if not self._template_ready:
                await self._es.indices.put_index_template(
                    name=self.prefix,
                    **index_template(self.prefix, self._shards, self._replicas))
                self._template_ready = True
            try:
                await self._es.indices.create(index=index,
                                              **index_body(self._shards, self._replicas))
            except BadRequestError as exc:
                if exc.error == "resource_already_exists_exception":
                    raise Conflict(f"generation {name!r} exists", code="generation_exists",
                                   generation=name) from exc
                raise

    async def finish_generation(self, name: str) -> None:
        await self.refresh(name)

    async def _live_indices(self) -> list[str]:
        """The indices the alias points to (one, unless someone edited it by hand)."""
        with _translated("live_generation"):
            try:
                resp = await self._es.indices.get_alias(name=self.prefix)
            except NotFoundError:
                return []
        return sorted(resp.body)

    async def live_generation(self) -> str | None:
        indices = await self._live_indices()
        return self._generation_of(indices[-1]) if indices else None

    async def swap(self, name: str) -> str | None:
        """Moves the alias in one `_aliases` call (remove the old, add the new: atomic). If
        the alias moved meanwhile, the remove fails and so does the whole call."""
        new = self.index_name(name)
        old = await self._live_indices()
        if old == [new]:
            return None  # live already: nothing replaced
        with _translated("swap"):
            await self._es.indices.update_aliases(actions=swap_actions(self.prefix, new, old))
        replaced = [i for i in old if i != new]
        return self._generation_of(replaced[-1]) if replaced else None

    async def drop_generation(self, name: str) -> None:
        """Deletes the generation's index (gone already: fine). Dropping the live one leaves
        no live generation: searches then find nothing."""
        with _translated("drop_generation"), contextlib.suppress(NotFoundError):
            await self._es.indices.delete(index=self.index_name(name))

    async def close(self) -> None:
        if self._owns_client:
            await self._es.close()

