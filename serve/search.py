"""The search service behind `GET /api/v1/products/search` and `/suggest`: executes the search
policy (domain/search_plan.py: words, index queries, relaxing, re-ranking, widening, facet-cache
reuse) against the live generation and the query model built with it, then makes the page:
whole documents, live price (the pricing engine's listing price, through short-lived Redis
snapshots the index builder drops on every change), stock (partition actors' Redis snapshots)
and facets.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict, TypeVar, cast

import asyncpg
import numpy as np

from actors.inventory_client import InventoryClient
from adapters import stock_cache
from adapters.cache import Cache, Loaded, loads
from adapters.cache.breaker import Breaker
from adapters.experiment_metrics import ExperimentMetrics, Impression
from adapters.postgres import unavailable
from adapters.postgres.browse import browse
from adapters.postgres.category_tree import CategoryTree
from adapters.postgres.experiments import ExperimentStore
from adapters.postgres.pricing_repo import Listings, listings
from adapters.postgres.ranker_registry import RankerRegistry
from adapters.postgres.search_artifacts import VOCABULARY, SearchArtifacts
from adapters.postgres.search_registry import INDEX_FORMAT, GenerationRegistry
from adapters.redis_keys import facets_key, listing_key
from adapters.search import NoLiveIndex, SearchIndex, SearchUnavailable
from adapters.text_embedding import TextEmbedder, to_bytes
from domain.errors import ValidationFailed
from domain.inventory_api import StockView, buyable
from domain.query import (
    CatalogVocabulary,
    QueryUnderstanding,
    default_synonyms_path,
    load_synonyms,
)
from domain.search import (
    FACET_SIZE,
    PRICE_RANGES,
    RATING_FLOORS,
    SORTS,
    Facets,
    Filters,
    Hit,
    IndexQuery,
    IndexResult,
    SearchDocument,
    finite,
    merged_by_key,
    normalize_key,
    price_range_label,
    shown_buckets,
    split_list,
)
from domain.search_plan import (
    PLAIN,
    CachedFacets,
    PlannedSearch,
    SearchParams,
    Words,
    facet_groups,
    facet_query,
    may_rerank,
    ordered_by,
    plan_search,
    wants_vector,
    with_group_counts,
)
from ranking import feature_matrix, order, order_of, runs_in_process
from ranking.experiments import SHADOW, Team, interleave_seed, team_draft, top_agreement
from ranking.learned_features import (
    LEARNED_FEATURES,
    LEARNED_FEATURES_VERSION,
    QueryContext,
    learned_matrix,
)
from serve._kept import Refreshed, keep_until, within
from serve.experiments import ExperimentRouter, Routing
from serve.ranker import ModelStore, RankerClient
from serve.rankers import DEFAULT, RankerCatalog, RankerChoice
from serve.stages import timed, untimed

log = logging.getLogger("aisle.search")
Matrix = np.ndarray  # candidates x learned features (ranking.learned_features), float64
MAX_CATEGORY_ID = 2**31 - 1  # categories.category_id is an INTEGER
PRICES_WAIT_S = 2.5  # live prices not read by then (PostgreSQL stalled): the index's shown
GENERATION_TTL_S = 1.0  # how long a replica trusts its idea of the live generation
VECTORS_KEPT = 10_000  # queries' dense vectors kept per replica
# Near's first step (the products closest to a query's vector that pass its filters) kept per
# replica, by generation and query, for NEAR_KEPT_S: the same search again and its other
# pages do not ask the index again. A product that comes closer meanwhile (new, or now
# passing a filter) joins within that time; one that stops passing the filters drops at once
# (the search checks them again on the chosen ones).
NEAR_KEPT = 1024
NEAR_KEPT_S = 5.0
T = TypeVar("T")
INDEX_TIMEOUT_S = 5.0  # one index search (every shard, merged); longer: SearchUnavailable
INDEX_RETRY_AFTER_S = 1.0  # the index left alone after it failed (browse or a quick 503)
TIMEOUTS_TO_OPEN = 2  # searches timed out in a row before the index is left alone (one slow
# query alone does not stop search)


class IndexTimeout(SearchUnavailable):
    """One index search did not answer in INDEX_TIMEOUT_S."""


__all__ = ["SORTS", "SearchParams", "SearchService", "parse_attribute_params"]


@dataclasses.dataclass(frozen=True)
class GenerationModel:
    """A live index generation and the query-understanding model built with it (None: the
    generation has no vocabulary; searches then read the words as typed)."""

    generation: str
    understanding: QueryUnderstanding | None


class _Steps:
    """What the search plan asks, answered for one request: the index (the generation the
    request reads), the facet cache, the ranker."""

    def __init__(self, service: SearchService, generation: str, choice: RankerChoice,
                 explain: bool, partner: RankerChoice | None = None,
                 shadow: RankerChoice | None = None, seed: int = 0) -> None:
        self.service = service
        self.generation = generation
        self.choice = choice
        self.fallback = False  # the chosen model could not rank: the formula did
        self.partner = partner  # interleaving: the second ranker (team b)
        self.partner_fallback = False
        self.seed = seed  # interleaving's coin
        self.teams: dict[int, Team] = {}  # interleaving: product -> team that placed it
        self.shadow = shadow  # also orders the candidates, off the request path, unseen
        self.shadowed: asyncio.Task[ShadowOrder] | None = None
        self.signals: dict[int, tuple[float, ...]] = {}  # of the candidates, from the index
        self.explain = explain
        self.explained: Explained | None = None  # the first candidates' learned features

    async def search(self, query: IndexQuery) -> IndexResult:
        if query.near is not None and query.near.ids is None:
            return await self.service.nearest(self.generation, query)
        result = await self.service.index_call(
            "search", lambda: self.service.index.search_generation(self.generation, query))
        self.signals.update(result.signals)
        return result

    async def cached_facets(self, identity: str) -> CachedFacets | None:
        cache = self.service.cache
        key = self.service._facet_key(self.generation, identity)
        if key is None or cache is None:
            return None
        raw = await cache.mget([key])  # None: Redis down or slow (not a lookup)
        value = loads(raw[0]) if raw and raw[0] else None
        found = isinstance(value, dict) and "word_matches" in value  # else an older release's
        if raw is not None:
            cache.looked_up(key, found)
        if not found or value is None:
            return None
        return CachedFacets(int(value["total"]), value["facets"], int(value["word_matches"]))

    async def rerank(self, hits: list[Hit], ranker: str, words: Words) -> list[Hit]:
        """`ranker` is the name the request gave; `self.choice` what it resolved to."""
        choices = [c for c in (self.choice, self.partner, self.shadow) if c is not None]
        learned = None
        if any(c.kind == "learned" for c in choices) or self.explain:
            with timed("features"):  # only when made: a formula's search has no such stage
                learned = self.service._learned(hits, words, self.signals)
        if self.explain and self.explained is None and learned is not None:
            self.explained = Explained(hits, learned)
        with timed("rerank"):  # the chosen ranker's order (the Ranker deployment's, if learned)
            best = await self._ordered(hits, self.choice, learned, ranker)
        if self.partner is not None:
            with timed("rerank"):
                other = await self._ordered(hits, self.partner, learned, ranker, partner=True)
            best, teams = team_draft(best, other, self.seed)
            # a widened search re-ranks twice (the few, then the others): both teams' picks
            self.teams.update({hits[i].product_id: t for i, t in zip(best, teams, strict=True)})
        if self.shadow is not None and self.shadowed is None:  # the first candidates'
            self.shadowed = asyncio.get_running_loop().create_task(
                self._shadow(hits, self.shadow, learned, best))
        return [hits[i] for i in best]

    async def _ordered(self, hits: list[Hit], choice: RankerChoice, learned: Matrix | None,
                       ranker: str, partner: bool = False) -> list[int]:
        best = await self.service._order(hits, choice, learned)
        if best is None:
            if partner:
                self.partner_fallback = True
            else:
                self.fallback = True
            best = await self.service._order(hits, RankerChoice(ranker, "formula", DEFAULT),
                                             None)
        return list(best or range(len(hits)))

    async def _shadow(self, hits: list[Hit], choice: RankerChoice, learned: Matrix | None,
                      shown: list[int]) -> ShadowOrder:
        started = time.perf_counter()
        try:
            with untimed():  # this task may outlive the answer: its calls are not the answer's
                mine = await self.service._order(hits, choice, learned)
        except Exception:
            log.exception("shadow ranker %s failed", choice.name)
            mine = None
        return ShadowOrder(mine, shown, (time.perf_counter() - started) * 1000)


@dataclasses.dataclass(frozen=True)
class ShadowOrder:
    """What the shadow ranker made of a search's candidates (None: it failed), the order
    shown, and how long the shadow took."""

    order: list[int] | None
    shown: list[int]
    ms: float


@dataclasses.dataclass(frozen=True)
class Explained:
    """The candidates a search re-ranked (in the index's order) with their learned features
    (ranking.learned_features): what feature logging records."""

    hits: list[Hit]
    features: Matrix


class PriceJson(TypedDict):
    amount: float
    currency: str
    was: float | None


class RatingJson(TypedDict):
    avg: float | None  # None: no review yet (as the product page says)
    count: int


def rating_json(avg: float | None, count: int | None) -> RatingJson:
    n = int(count or 0)
    return {"avg": round(float(avg or 0), 2) if n else None, "count": n}


class ResultJson(TypedDict):
    """One result of a search, as the API shows it."""

    product_id: str
    external_id: str | None
    title: str
    price: PriceJson
    rating: RatingJson
    thumbnail_url: str | None
    badges: list[str]
    in_stock: bool
    # units on sale over the product's variants, from their owners' snapshots (None when
    # none is known yet: `in_stock` is then the index's); "Only 3 left" needs it
    available: int | None
    brand: str | None


Answer = dict[str, Any]  # a search's answer (JSON; its keys are in the route's docs)


class SearchService:
    def __init__(self, index: SearchIndex, pool: asyncpg.Pool,
                 inventory: InventoryClient | None, ranker: RankerClient | None,
                 cache: Cache | None = None, facet_ttl_s: int = 300,
                 categories: CategoryTree | None = None, price_ttl_s: int = 60,
                 rankers: RankerCatalog | None = None,
                 experiments: ExperimentRouter | None = None,
                 semantic_candidates: bool = True, near_kept_s: float = NEAR_KEPT_S) -> None:
        self.index = index
        self.pool = pool
        self.categories = categories or CategoryTree(pool)
        self.inventory = inventory
        self.ranker = ranker
        self.cache = cache  # facet counts (the breaker and short timeouts of product pages)
        # after the index failed (a dead shard, Elasticsearch down, a timeout), it is not
        # asked for INDEX_RETRY_AFTER_S: a browse comes from PostgreSQL, anything else is 503
        self.index_breaker = Breaker(INDEX_RETRY_AFTER_S, name="search index")
        self._timeouts = 0  # index searches timed out in a row
        self.facet_ttl_s = facet_ttl_s
        self.price_ttl_s = price_ttl_s  # listing price snapshots (cache); 0: not cached
        self.artifacts = SearchArtifacts(pool)
        self.generations = GenerationRegistry(pool, index.backend)
        self._generation = Refreshed(self._read_live, GENERATION_TTL_S,
                                     "the live index generation", wait_for_none=True)
        self._model: GenerationModel | None = None
        self._loading: asyncio.Task[None] | None = None
        self._loading_for: str | None = None
        self.rankers = rankers or RankerCatalog(RankerRegistry(pool))
        self.models = ModelStore(RankerRegistry(pool))  # when there is no Ranker deployment
        self.experiments = experiments or ExperimentRouter(ExperimentStore(pool),
                                                           ExperimentMetrics(None))
        self.embedder = TextEmbedder()  # queries' dense vectors (learned rankers)
        self.semantic_candidates = semantic_candidates  # Near joins a learned ranker's matches
        self.near_kept_s = near_kept_s
        # (generation, first step) -> (expires, the closest: (product, cosine, tie key))
        self._near: dict[tuple[str, IndexQuery], tuple[float, tuple[tuple[int, float, int],
                                                                    ...]]] = {}
        self._vectors: dict[str, bytes] = {}

    # -- the live generation and its query model --------------------------------------
    async def _live_generation(self) -> str | None:
        """The live generation, if it is in the format this code reads (an older one is
        being built again by the index builder: searching it would fail). Read again every
        GENERATION_TTL_S behind the searches (serve/_kept.Refreshed: a search waits only
        when none is known yet, or up to a second after none was read for a while)."""
        return await self._generation.get()

    async def _read_live(self) -> str | None:
        live = await self.generations.live_info()
        return live[0] if live is not None and live[1] >= INDEX_FORMAT else None

    async def _searched(self) -> GenerationModel:
        """The generation this search reads and the query model built with it. When another
        generation goes live, its model is loaded in the background while searches keep
        reading the previous pair (it is kept for rollback); only a replica that has no pair
        yet waits. So no search pairs a generation with another one's vocabulary, or with
        none while one is being loaded."""
        live = await self._live_generation()
        if live is None:
            raise NoLiveIndex("the search index is being built (or built again in a new "
                              "format)")
        model = self._model
        if model is not None and model.generation == live:
            return model
        if self._loading is None or self._loading_for != live:
            self._loading_for = live
            self._loading = asyncio.get_running_loop().create_task(self._load_model(live))
        if model is None:
            await asyncio.shield(self._loading)
            model = self._model
            if model is None:
                raise NoLiveIndex("the search index's query model is being loaded")
        return model

    async def _load_model(self, generation: str) -> None:
        try:
            blob = await self.artifacts.get(generation, VOCABULARY)
            understanding = None
            if blob is not None:
                vocab = await asyncio.to_thread(CatalogVocabulary.from_bytes, blob)
                synonyms = load_synonyms(default_synonyms_path().read_text(encoding="utf-8"))
                understanding = await asyncio.to_thread(QueryUnderstanding, vocab, synonyms)
            else:  # a generation built before vocabularies were stored with it
                log.warning("generation %s has no query vocabulary", generation)
            self._model = GenerationModel(generation, understanding)
        except Exception:  # keep the previous pair; the next search tries again
            log.exception("query model of generation %s not loaded", generation)
        finally:
            self._loading = None

    async def ready(self) -> None:
        """Raises until the index has a live generation and this replica has loaded the
        query model built with it (or, after a swap, still serves the previous pair)."""
        await self._searched()

    async def check(self) -> None:
        """`ready`, and every shard of the live generation answers (a dead one is started
        again by the call)."""
        await self._searched()
        await self.index.count()

    async def serves(self) -> None:
        """`ready`, and a search answers as shoppers' do: of the generation their searches
        read, with the index's breaker closed (with the Gateway's own read-only shards,
        whatever the shard actors' state)."""
        model = await self._searched()
        if not self.index_breaker.closed:
            raise SearchUnavailable("the search index failed a moment ago")
        await self.index.search_generation(model.generation, IndexQuery(limit=1, facets=False))

    async def _category_ids(self, value: str) -> tuple[int, ...]:
        v = value.strip()
        digits = v[4:] if v.upper().startswith("CAT_") else v
        if (digits.isascii() and digits.isdecimal() and int(digits) <= MAX_CATEGORY_ID
                and int(digits) in await self.categories.rows([int(digits)])):
            return (int(digits),)
        ids = await self.categories.named(v)
        if not ids:
            raise ValidationFailed({"category": f"no category {value!r}"}, "unknown category")
        return ids

    # -- facet cache (the seed's 5-minute facet counts, Redis) ----------------------------
    async def _keep_counts(self, generation: str,
                           kept: Sequence[tuple[str, CachedFacets]]) -> None:
        """Keeps facet counts (or numbers of matches alone) by facet_identity, for the next
        search of the same words and filters (_Steps.cached_facets); concurrently."""
        cache = self.cache
        if cache is None:
            return
        await asyncio.gather(*(
            cache.set(key, {"total": c.total, "word_matches": c.word_matches,
                            "facets": c.facets}, self.facet_ttl_s)
            for identity, c in kept if (key := self._facet_key(generation, identity))))

    def _facet_key(self, generation: str, identity: str) -> str | None:
        """Facet counts of a generation (a rebuilt index never serves the old one's counts)
        for a search's words and filters (domain.search_plan.facet_identity)."""
        if self.cache is None or self.facet_ttl_s <= 0:
            return None
        return facets_key(generation, identity)

    # -- search ------------------------------------------------------------------------
    async def _explicit(self, p: SearchParams) -> Filters:
        """The URL's filters, normalized (a category by id or by name; lists in one order,
        each value once: `brand=a&brand=b` is the filter `brand=b&brand=a` is, to the facet
        cache and to what the index keeps per filter, too)."""
        values: dict[str, set[str]] = {}
        for n, vs in p.attributes:
            values.setdefault(normalize_key(n), set()).update(normalize_key(v) for v in vs)
        return Filters(
            category_ids=await self._category_ids(p.category) if p.category else (),
            brands=tuple(sorted({normalize_key(b) for b in p.brands})),
            price_min=p.price_min, price_max=p.price_max, rating_min=p.rating_min,
            in_stock=p.in_stock,
            attributes=tuple((n, tuple(sorted(vs))) for n, vs in sorted(values.items())))

    async def search(self, p: SearchParams, explain: bool = False,
                     session: str | None = None) -> Answer:
        """The policy (domain/search_plan.py) run against the generation this replica
        searches, then the page made whole, priced and stocked, and the facets shown.
        `explain`: also the re-ranked candidates with their learned features. `session`:
        the shopper's session id, which places the search in the running experiment's arm
        (serve/experiments.py). While the index cannot answer, a browse (no words, no
        attribute filters) is answered from PostgreSQL with `degraded: true`; anything else
        is a quick 503."""
        explicit = await self._explicit(p)
        # a search no ranker orders (a sort, no words) is no experiment's: its arm's figures
        # would be the sort's. A page past the re-ranked depth is the arm's but not counted
        # (`ordered_by` says "index"): which ranker the arm has decides what the index
        # answers on every page (semantic candidates join a learned ranker's matches), so
        # its total and its pages are those of the arm's first pages
        routing = (await self.experiments.route(session, p.ranker) if wants_vector(p)
                   else None)
        counted = routing is not None and may_rerank(p)
        if routing is not None and not counted:
            routing = dataclasses.replace(routing, shadow=None)  # nothing re-ranked to shadow
        started = time.perf_counter()
        try:
            return await self._search(p, explicit, explain, routing, started)
        except Exception as exc:
            if routing is not None and counted:  # the arm(s) failed this search
                ms = (time.perf_counter() - started) * 1000
                for arm in routing.arms:
                    self.experiments.count(routing.experiment, arm.name, ms, error=True)
            if (not isinstance(exc, SearchUnavailable) or p.q.strip() or p.attributes
                    or explain):
                raise
            log.warning("search index unavailable (%r): browsing from PostgreSQL", exc)
            return await self._browse(p, explicit)

    async def nearest(self, generation: str, query: IndexQuery) -> IndexResult:
        """Near's first step (`query.near` without ids), kept NEAR_KEPT_S per replica."""
        key = (generation, query)
        now = time.monotonic()
        kept = self._near.get(key)
        if kept is not None and now < kept[0]:
            return IndexResult([], 0, Facets(), near=[
                Hit(p, s, cast(SearchDocument, {"product_id": p, "tie_key": t}))
                for p, s, t in kept[1]])
        found = await self.index_call(
            "search", lambda: self.index.search_generation(generation, query))
        if self.near_kept_s > 0:
            keep_until(self._near, key, now + self.near_kept_s,
                       tuple((h.product_id, h.score, int(h.doc.get("tie_key") or 0))
                             for h in found.near), now, NEAR_KEPT)
        return found

    async def index_call(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """One call to the index behind its breaker: SearchUnavailable at once while the
        breaker is open, IndexTimeout after INDEX_TIMEOUT_S. The breaker opens on a failure
        (not while the first generation is being built: no generation yet is not one), and
        on timeouts only after TIMEOUTS_TO_OPEN in a row."""
        if not self.index_breaker.closed:
            raise SearchUnavailable("the search index failed a moment ago; retry shortly")
        try:
            try:
                with timed("index"):
                    answer = await asyncio.wait_for(call(), INDEX_TIMEOUT_S)
            except TimeoutError as exc:
                raise IndexTimeout(f"the search index did not {what} in "
                                   f"{INDEX_TIMEOUT_S:.0f} s") from exc
        except NoLiveIndex:
            raise
        except IndexTimeout as exc:
            self._timeouts += 1
            if self._timeouts >= TIMEOUTS_TO_OPEN:
                self.index_breaker.failed(what, exc)
            raise
        except SearchUnavailable as exc:
            self.index_breaker.failed(what, exc)
            raise
        self._timeouts = 0
        return answer

    async def _browse(self, p: SearchParams, explicit: Filters) -> Answer:
        total, rows = await browse(self.pool, explicit, p.sort, p.offset, p.page_size)
        results: list[ResultJson] = [{
            "product_id": str(r.product_id), "external_id": r.external_id, "title": r.title,
            "price": {"amount": round(r.price_cents / 100, 2), "currency": "USD",
                      "was": round(r.was_cents / 100, 2) if r.was_cents else None},
            "rating": rating_json(r.rating_avg, r.rating_count),
            "thumbnail_url": r.thumbnail_url, "badges": [], "in_stock": r.in_stock,
            "available": None, "brand": r.brand} for r in rows]
        return {
            "results": results,
            "facets": {"brands": [], "price_ranges": [], "categories": [], "ratings": [],
                       "attributes": {}},
            "total": total, "page": p.page, "page_size": p.page_size, "did_you_mean": None,
            "relaxed": None, "widened": None, "applied_filters": {}, "sort": p.sort,
            "search_id": secrets.token_hex(8),
            "ranker": {"requested": p.ranker, "kind": "formula", "version": "postgres_browse",
                       "fallback": True, "experiment": None},
            "degraded": True,
        }

    async def _experiment_choice(self, name: str) -> RankerChoice | None:
        """An arm's ranker (None: it cannot be used now, e.g. a model archived meanwhile)."""
        try:
            return await self.rankers.choose(name)
        except ValidationFailed as exc:
            log.warning("experiment ranker %s not usable: %s", name, exc)
            return None

    async def _steps(self, p: SearchParams, generation: str, explain: bool,
                     routing: Routing | None) -> _Steps:
        """The steps of one search, with the ranker(s) the request or its experiment arm
        chose."""
        if routing is None:
            choice = await self.rankers.choose(p.ranker) if p.ranker != PLAIN else \
                RankerChoice(p.ranker, "formula", p.ranker)
            return _Steps(self, generation, choice, explain)
        fallback = RankerChoice(p.ranker, "formula", DEFAULT)
        first = routing.arm if routing.arm is not None else routing.pair[0]
        main = await self._experiment_choice(first.ranker)
        partner = None
        if routing.interleaved is not None:
            partner = await self._experiment_choice(routing.interleaved[1].ranker)
        shadow = await self._experiment_choice(routing.shadow) if routing.shadow else None
        if routing.shadow and shadow is None:
            self.experiments.count(routing.experiment, SHADOW, 0.0, error=True)
        e, session = routing.experiment, routing.session
        steps = _Steps(self, generation, main or fallback, explain,
                       (partner or fallback) if routing.interleaved else None, shadow,
                       interleave_seed(e.name, session, " ".join(p.q.split())))
        steps.fallback = main is None
        steps.partner_fallback = routing.interleaved is not None and partner is None
        return steps

    async def _counted(self, routing: Routing, steps: _Steps, page: Sequence[Hit], total: int,
                       started: float, search_id: str) -> None:
        """An experiment search's impression (written before the answer: a click may follow
        at once) and its counters (written in the background)."""
        e = routing.experiment
        ms = (time.perf_counter() - started) * 1000
        for arm, failed in zip(routing.arms, (steps.fallback, steps.partner_fallback),
                               strict=False):
            self.experiments.count(e, arm.name, ms, zero=total == 0, error=failed)
        teams = {h.product_id: steps.teams[h.product_id] for h in page
                 if h.product_id in steps.teams}
        pair = routing.interleaved
        await self.experiments.metrics.remember(search_id, Impression(
            e.name, routing.arm.name if routing.arm else None, teams,
            (pair[0].name, pair[1].name) if pair else None,
            frozenset(h.product_id for h in page)))
        shadowed = steps.shadowed
        if shadowed is not None:
            async def shadow_counted() -> None:
                found = await shadowed
                self.experiments.count(
                    e, SHADOW, found.ms, error=found.order is None,
                    agreement=top_agreement(found.shown, found.order)
                    if found.order is not None else None)
            self.experiments.spawn(shadow_counted())

    async def _search(self, p: SearchParams, explicit: Filters, explain: bool,
                      routing: Routing | None, started: float) -> Answer:
        model = await self._searched()
        steps = await self._steps(p, model.generation, explain, routing)
        choice = steps.choice
        # a learned ranker orders what is shown, or explain asks for the candidates a model
        # would see: semantic candidates join the matches (unless the operator turned them
        # off: AISLE_SEMANTIC_CANDIDATES=OFF); a learned shadow's never changes what is shown
        shown = explain or any(c is not None and c.kind == "learned"
                               for c in (choice, steps.partner))
        learned = shown or (steps.shadow is not None and steps.shadow.kind == "learned")
        # the query's dense vector (4 ms of CPU) only when a learned ranker may use it
        p = dataclasses.replace(p, signals=learned,
                                semantic=shown and self.semantic_candidates,
                                vector=await self._query_vector(p.q)
                                if learned and wants_vector(p) else None)
        plan = await plan_search(p, explicit, model.understanding, steps)
        hits = await self._whole(model.generation, plan.hits)
        results, live_prices = await self._hydrate(hits)
        if plan.cached is not None and plan.cached.facets is not None:
            facets = plan.cached.facets
        else:
            with timed("facets"):
                facets = await self._facets(await self._offered(steps, plan), plan.filters)
        await self._keep_counts(model.generation, plan.counts_to_keep(facets))
        search_id = secrets.token_hex(8)
        by = ordered_by(p, plan.words)
        if routing is not None and by != "ranker":  # its words read as filters only
            routing = None
        if routing is not None:
            await self._counted(routing, steps, hits, plan.total, started, search_id)
        ranker_json: dict[str, object] = choice.to_json() | {"fallback": steps.fallback}
        if by != "ranker":  # what ordered it: the sort asked for, or the index
            ranker_json = {"requested": p.ranker, "version": None, "fallback": False,
                           "kind": by}
        elif steps.partner is not None:
            ranker_json = {"requested": p.ranker, "kind": "interleaved", "version": None,
                           "fallback": steps.fallback or steps.partner_fallback,
                           "arms": [choice.to_json(), steps.partner.to_json()]}
        return {
            "search_id": search_id,
            "results": results,
            "facets": facets,
            "total": plan.total,
            "page": p.page,
            "page_size": p.page_size,
            "did_you_mean": plan.words.did_you_mean,
            "relaxed": plan.relaxed,
            "widened": dataclasses.asdict(plan.widened) if plan.widened else None,
            "applied_filters": plan.words.applied,
            "sort": p.sort,
            "ranker": ranker_json | {"experiment": routing.to_json() if routing else None},
            "degraded": not live_prices,  # the index's prices: PostgreSQL did not answer
        } | ({"explain": await self._explanation(model.generation, steps.explained)}
             if explain else {})

    async def _query_vector(self, q: str) -> bytes | None:
        """The query's dense vector (the `dense` signal), kept per query string."""
        text = " ".join(q.split())
        if not text:
            return None
        found = self._vectors.get(text)
        if found is None:
            with timed("embed"):
                vec = await asyncio.to_thread(self.embedder.embed, [text])
            found = to_bytes(vec[0])
            if len(self._vectors) >= VECTORS_KEPT:
                self._vectors.pop(next(iter(self._vectors)))
            self._vectors[text] = found
        return found

    def _learned(self, hits: Sequence[Hit], words: Words,
                 signals: Mapping[int, tuple[float, ...]]) -> Matrix:
        return learned_matrix(query_context(words), [h.score for h in hits],
                              [signals.get(h.product_id) for h in hits],
                              [h.doc for h in hits], time.time())

    async def _explanation(self, generation: str,
                           explained: Explained | None) -> dict[str, Any]:
        if explained is None:
            return {"features": list(LEARNED_FEATURES), "version": LEARNED_FEATURES_VERSION,
                    "candidates": []}
        ids = [h.product_id for h in explained.hits]
        docs = await self.index.get(ids, generation)
        return {"features": list(LEARNED_FEATURES), "version": LEARNED_FEATURES_VERSION,
                "candidates": [
                    {"product_id": str(pid), "external_id": docs.get(pid, {}).get("external_id"),
                     "values": [round(float(x), 6) for x in row]}
                    for pid, row in zip(ids, explained.features.tolist(), strict=True)]}

    async def _whole(self, generation: str, hits: list[Hit]) -> list[Hit]:
        """The page's hits with their whole documents (slim candidates carry fast fields
        only); a product deleted meanwhile drops out."""
        slim = [h.product_id for h in hits if "title" not in h.doc]
        if not slim:
            return hits
        with timed("documents"):
            full = await self.index.get(slim, generation)
        return [h if "title" in h.doc else Hit(h.product_id, h.score, full[h.product_id])
                for h in hits if "title" in h.doc or h.product_id in full]

    async def _order(self, hits: list[Hit], choice: RankerChoice,
                     learned: Matrix | None) -> list[int] | None:
        """The candidates' order under `choice` (None: the model could not be used).
        Formulas score here (microseconds of numpy); learned models in the batched Ranker
        deployment, or here when there is none (tests, tools)."""
        if choice.kind == "formula":
            if runs_in_process(choice.name) or self.ranker is None:
                scores = np.array([h.score for h in hits], dtype=np.float64)
                features = feature_matrix(scores, [h.doc for h in hits], time.time())
                return [int(i) for i in order(await self.models.get(choice.name), features)]
            return await self.ranker.rank(choice.name, feature_matrix(
                np.array([h.score for h in hits]), [h.doc for h in hits], time.time()))
        assert learned is not None
        if self.ranker is not None:
            return await self.ranker.rank(choice.name, learned)
        try:
            return [int(i) for i in order_of((await self.models.get(choice.name))
                                             .score(learned))]
        except Exception:
            log.exception("ranker %s unavailable", choice.name)
            return None

    async def _listings(self, variant_ids: list[int], now: datetime) -> Listings:
        async with self.pool.acquire() as conn:
            return await listings(conn, variant_ids, now)

    async def _listing_prices(self, variants: Mapping[int, list[int]], stock_of: Sequence[int]
                              ) -> tuple[dict[int, Any], dict[int, StockView] | None]:
        """product -> [cents, was cents, {variant: warehouses of its live offers}] (or None)
        as the pricing engine shows it now (buy box, deals, rules; the warehouses for
        `domain.inventory_api.buyable`), for products with their variants: from the Redis
        snapshots (one MGET), the products missing there priced together from PostgreSQL and
        stored (a lease keeps a price read before a change from being stored after the
        change's invalidation).
        And the stock snapshots of the variants `stock_of`, read in the same MGET (None: not
        read)."""
        product_of = {listing_key(p): p for p, vs in variants.items() if vs}

        async def load(keys: list[str]) -> Loaded:
            now = datetime.now(UTC)
            found = await within(self._listings(
                [v for k in keys for v in variants[product_of[k]]], now), PRICES_WAIT_S)
            ttl_ms = self.price_ttl_s * 1000
            if found.until is not None:  # never past the end of a deal it was priced with
                ttl_ms = min(ttl_ms, int((found.until - now).total_seconds() * 1000))
            shown = found.prices
            return {k: ([*shown[p], {str(v): list(found.offered_from[v]) for v in variants[p]
                                     if v in found.offered_from}]
                        if (p := product_of[k]) in shown else None, ttl_ms) for k in keys}

        if not product_of:
            return {}, None
        snapshots = None
        if self.cache is not None and self.price_ttl_s > 0:
            values, _, raw = await self.cache.get_or_load(
                list(product_of), load, stock_cache.keys(stock_of))
            if raw is not None:
                snapshots = stock_cache.read(stock_of, raw)
        else:
            values = {k: v for k, (v, _) in (await load(list(product_of))).items()}
        return {product_of[k]: v for k, v in values.items()}, snapshots

    async def _hydrate(self, hits: Sequence[Hit]) -> tuple[list[ResultJson], bool]:
        """Live price (the pricing engine's, through its short-lived snapshots: buy box, deals,
        rules, as on the product page) and stock (partition snapshots); and whether the prices
        are live (False: PostgreSQL did not answer within PRICES_WAIT_S, the index's shown)."""
        variants = {h.product_id: [int(v) for v in h.doc.get("variant_ids") or ()]
                    for h in hits}
        variant_ids = [v for vs in variants.values() for v in vs]
        stock: dict[str, StockView] = {}
        live = True
        with timed("prices"):  # the stock snapshots come in the same round trip
            try:
                listed, snapshots = await self._listing_prices(variants, variant_ids)
            except Exception as exc:
                if not (unavailable(exc) or isinstance(exc, TimeoutError)):
                    raise
                # PostgreSQL down or stalled: the index's prices, which follow every price
                # change within a second or so, said to be so (`degraded`)
                log.warning("live prices unavailable, the index's shown: %r", exc)
                listed, snapshots, live = {}, None, False
        prices = {pid: (v[0] / 100.0, v[1] / 100.0 if v[1] is not None else None)
                  for pid, v in listed.items() if v is not None}
        # variant -> warehouses of its live offers, for the products priced (a snapshot
        # stored before they were kept has none: its units counted whole, as then)
        offered_from = {int(v): ws for x in listed.values() if x is not None and len(x) > 2
                        for v, ws in x[2].items()}
        priced = {pid for pid, x in listed.items() if x is not None and len(x) > 2}
        if variant_ids and self.inventory is not None:
            try:
                with timed("stock"):
                    stock = await asyncio.wait_for(self.inventory.status(
                        variant_ids, wait_for_owners=False, cached=snapshots), 2.0)
            except Exception:
                log.warning("stock status unavailable; using the index's in_stock")
        out: list[ResultJson] = []
        for h in hits:
            d = h.doc
            amount, was = prices.get(h.product_id, (d["price"], finite(d.get("price_was"))))
            known = [(int(v), s) for v in d.get("variant_ids") or ()
                     if (s := stock.get(str(v))) is not None]
            in_stock, available = bool(d["in_stock"]), None
            if known:  # units on sale: not those left where an offer was withdrawn
                units = [buyable(s, offered_from.get(v, ())) if h.product_id in priced
                         else s.get("available") for v, s in known]
                available = sum(n for n in units if isinstance(n, int))
                in_stock = any(s["status"] != "OUT_OF_STOCK" if n == s.get("available")
                               else bool(n) for (_, s), n in zip(known, units, strict=True))
            out.append({
                "product_id": str(h.product_id),
                "external_id": d.get("external_id"),
                "title": d["title"],
                "price": {"amount": round(amount, 2), "currency": d.get("currency") or "USD",
                          "was": round(was, 2) if was is not None else None},
                "rating": rating_json(d.get("rating_avg"), d.get("rating_count")),
                "thumbnail_url": d.get("thumbnail_url"),
                "badges": list(d.get("badges") or ()),
                "in_stock": in_stock,
                "available": available,
                "brand": d.get("brand"),
            })
        return out, live

    async def _offered(self, steps: _Steps, plan: PlannedSearch) -> Facets:
        """The facet counts to show: each group the shopper filtered (brands, price, rating,
        color, size) counted over the matches of the other filters, so that the shop offers
        its other values (one more count per such group, concurrently; the answer's facets
        are then cached as a whole)."""
        groups = facet_groups(plan.filters, plan.words.applied)
        if not groups or plan.counted_query is None:
            return plan.result.facets
        with untimed():  # inside the "facets" stage, not also the index's
            found = await asyncio.gather(*(
                steps.search(facet_query(plan.counted_query, plan.filters, g))
                for g in groups))
        return with_group_counts(plan.result.facets,
                                 [(g, r.facets) for g, r in zip(groups, found, strict=True)])

    async def _facets(self, f: Facets, filters: Filters) -> Answer:
        cats = await self.categories.rows(f.categories)  # with any added since
        if filters.category_ids:
            parents = set(filters.category_ids)
            shown = [c for c in f.categories if cats.get(c, {}).get("parent_id") in parents]
        else:
            shown = [c for c in f.categories if c in cats and cats[c]["parent_id"] is None]
        chosen = dict(filters.attributes)
        categories = sorted(({"id": str(c), "name": cats[c]["name"], "count": f.categories[c]}
                             for c in shown), key=lambda x: (-x["count"], x["name"]))
        return {
            "brands": [{"name": b, "count": n} for b, n in shown_buckets(
                merged_by_key(f.brands, normalize_key), FACET_SIZE, filters.brands,
                normalize_key)],
            "price_ranges": [{"range": label, "count": f.price_ranges[label]}
                             for label in (price_range_label(lo, hi) for lo, hi in PRICE_RANGES)
                             if f.price_ranges.get(label)],
            "categories": categories[:FACET_SIZE],
            "ratings": [{"min": r, "label": f"{r} star{'' if r == 1 else 's'} & up",
                         "count": f.ratings[r]} for r in RATING_FLOORS if f.ratings.get(r)],
            "attributes": {name: [{"value": v, "count": n} for v, n in shown_buckets(
                values, FACET_SIZE, chosen.get(name, ()))]
                           for name, values in f.attributes.items()},
        }

    async def suggest(self, q: str, limit: int) -> Answer:
        words = q.split()
        if not words:
            return {"q": q, "suggestions": []}
        last = "" if q.endswith(" ") else words[-1]
        full = words if q.endswith(" ") else words[:-1]
        titles = await self.index_call("suggest",
                                       lambda: self.index.suggest(full, last, limit))
        return {"q": q, "suggestions": [{"text": t} for t in titles]}


def query_context(words: Words) -> QueryContext:
    """What a learned ranker knows of the query: its length, and what query understanding
    read from its words."""
    applied = words.applied

    def inferred(field: str) -> bool:
        entry = applied.get(field)
        return isinstance(entry, dict) and entry.get("source") == "inferred"

    colors = applied.get("attributes")
    color = isinstance(colors, dict) and any(
        isinstance(v, dict) and v.get("source") == "inferred" for v in colors.values())
    return QueryContext(words=len(words.text.groups), brand_inferred=inferred("brands"),
                        color_inferred=color,
                        category_inferred=bool(words.text.boost_category_ids))


def attribute_name(key: str) -> str | None:
    """The attribute a query parameter filters on (`color`, `size`, `attr.<name>`), or
    None."""
    if key in ("color", "size"):
        return key
    return key[5:] if key.startswith("attr.") and len(key) > 5 else None


def parse_attribute_params(params: Mapping[str, str]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`color=black,red`, `size=m` and `attr.<name>=a,b` query parameters (`\\,`: a comma
    inside a value, domain.search.split_list)."""
    out = []
    for key, raw in params.items():
        name = attribute_name(key)
        if name is None:
            continue
        values = split_list(raw)
        if not values or len(values) > 20 or any(len(v) > 100 for v in values):
            raise ValidationFailed(
                {key: "1 to 20 comma-separated values of at most 100 chars"},
                "bad attribute filter")
        out.append((name, values))
    return tuple(out)
