"""Shoppers' search and typeahead, and the internal index operations (rebuild, status)."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response

from actors import metrics
from actors.index_builder import IndexStatus
from adapters.cache import dumps
from domain.errors import Conflict, RebuildUnderWay, ValidationFailed
from domain.search import split_list
from serve.routes.experiments import session_of
from serve.search import SORTS, SearchParams, attribute_name, parse_attribute_params
from serve.services import (
    Internal,
    Json,
    Svc,
    is_internal_caller,
    limit_shopper,
    require_internal,
)
from serve.stages import Stages

router = APIRouter()


def _list_param(name: str) -> bool:
    return name == "brand" or attribute_name(name) is not None


def _merged(request: Request) -> dict[str, str]:
    """The query's parameters, a list filter given more than once as one comma list
    (`brand=HP&brand=Lenovo` is `brand=HP,Lenovo`: the last one alone was kept); any other
    parameter given twice is 422 naming it (which one was meant?)."""
    qp = request.query_params
    keys = list(dict.fromkeys(qp.keys()))  # the URL's order (filters, cache keys follow it)
    twice = [k for k in keys if len(qp.getlist(k)) > 1 and not _list_param(k)]
    if twice:
        raise ValidationFailed({k: "given more than once" for k in twice}, "repeated parameter")
    merged = {k: ",".join(qp.getlist(k)) for k in keys}
    if len(merged.get("brand", "")) > 2000:
        raise ValidationFailed({"brand": "at most 2000 characters"}, "too long")
    return merged


@router.get("/api/v1/products/search", tags=["search"], dependencies=[Depends(limit_shopper)])
async def search(
    svc: Svc,
    request: Request,
    q: Annotated[str, Query(max_length=500)] = "",
    category: Annotated[str | None, Query(max_length=300)] = None,
    price_min: Annotated[float | None, Query(ge=0, le=1e9, allow_inf_nan=False)] = None,
    price_max: Annotated[float | None, Query(ge=0, le=1e9, allow_inf_nan=False)] = None,
    brand: Annotated[str | None, Query(max_length=2000,
                                       description="comma-separated brands (`\\,` a comma "
                                                   "inside one)")] = None,
    rating_min: Annotated[float | None, Query(ge=0, le=5, allow_inf_nan=False)] = None,
    in_stock: bool | None = None,
    sort: Annotated[str, Query(pattern="^(" + "|".join(SORTS) + ")$")] = "relevance",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    ranker: Annotated[str, Query(pattern="^[a-z0-9_]{1,40}$")] = "default",
    explain: Annotated[bool, Query(description="internal: the re-ranked candidates with "
                                               "their learned-ranker features")] = False,
    authorization: Annotated[str | None, Header()] = None,
) -> Response:
    """Keyword search with filters, facets, sorts and pages. `color=`, `size=` and
    `attr.<name>=` filter on attributes (comma lists). `ranker` picks the re-ranking model:
    `default` (the learned model in production, or the seed's formula while there is none),
    `formula` (the seed's formula, whatever is in production), another formula (`weighted`,
    `text`), a registered model version (`lgbm_7`), or `bm25_title` (plain BM25 over titles,
    for comparisons); the answer's `ranker` says which ordered it. `explain=true` (internal
    token) adds the candidates and their features (feature logging for training rankers).
    A session id (`X-Session-Id` header or `aisle_session` cookie) places a `default` search
    in the running ranker experiment's arm (sticky); `ranker.experiment` names it, and
    `search_id` is what `POST /api/v1/events` credits clicks to. The `Server-Timing` header
    (internal token only) says where the time went (ms per stage: index, embed, features,
    rerank, documents, prices, stock, facets; only the stages this search reached)."""
    if explain:
        await require_internal(request, authorization)
    if price_min is not None and price_max is not None and price_min > price_max:
        raise ValidationFailed({"price_min": "must not be above price_max"}, "bad price range")
    params = _merged(request)
    brands = split_list(params.get("brand", ""))
    if len(brands) > 50:
        raise ValidationFailed({"brand": "at most 50 brands"}, "too many brands")
    stages = Stages()
    with stages.current():
        found = await svc.search.search(SearchParams(
            q=q, category=category, price_min=price_min, price_max=price_max, brands=brands,
            rating_min=rating_min, in_stock=in_stock,
            attributes=parse_attribute_params(params), sort=sort, page=page,
            page_size=page_size, ranker=ranker), explain=explain, session=session_of(request))
    metrics.search_answered(int(found["total"]), stages.ms)
    # encoded here: FastAPI's generic encoder walks ~10 KB of answer in Python
    # where the time went, for internal callers only: which stages a search skipped (cached
    # facets, a known query vector) tells what others searched recently
    timing = stages.header() if stages.ms and is_internal_caller(request) else ""
    return Response(dumps(found), media_type="application/json",
                    headers={"Server-Timing": timing} if timing else None)


@router.get("/api/v1/products/suggest", tags=["search"], dependencies=[Depends(limit_shopper)])
async def suggest(
    svc: Svc, request: Request, q: Annotated[str, Query(min_length=1, max_length=100)],
    limit: Annotated[int, Query(ge=1, le=20)] = 8,
) -> Json:
    """Typeahead: titles completing the last word, most popular first."""
    _merged(request)  # a parameter given twice: 422 naming it, as search says
    return await svc.search.suggest(q, limit)


BUILDER_ANSWERS_S = 5.0  # a status the builder has not given by then: 503, not a hang


@router.post("/api/v1/internal/search/rebuild", tags=["internal"], status_code=202,
             responses={200: {"description": "wait=true: the rebuild's report"}})
async def rebuild_index(svc: Svc, _: Internal, response: Response,
                        workers: Annotated[int, Query(ge=1, le=64)] = 2,
                        wait: bool = False) -> Json:
    """Builds a new index generation beside the live one, checks it, swaps it in (the
    previous one is kept for rollback). A background job (202 with its record; status at
    GET /api/v1/internal/jobs/{job_id}); `wait=true` answers its report once done (200). The
    job goes on if the caller hangs up. 409 `rebuild_under_way` while one runs; a generation
    that fails its checks is not made live: the job fails with `generation_refused` and its
    problems (with `wait=true`, the 409 itself)."""

    building = await svc.builder.building.remote()
    if building is not None:  # one at a time (the builder refuses a second one too)
        raise RebuildUnderWay(f"generation {building} is being built: try again once "
                              "GET /api/v1/internal/search/status no longer shows it "
                              "BUILDING", generation=building)

    async def build() -> Json:
        return dataclasses.asdict(await svc.builder.full_build.remote(workers))

    return await svc.jobs.answer("index.rebuild", {"workers": workers}, build, wait, response)


@router.post("/api/v1/internal/search/rollback", tags=["internal"])
async def rollback_index(svc: Svc, _: Internal) -> Json:
    """Makes the previous index generation live again (kept current: it received every change
    since the rebuild that replaced it); the one that was live becomes the previous one, so a
    second rollback undoes the first. 409 if there is none."""
    report = await svc.builder.rollback.remote()
    if report is None:
        raise Conflict("no previous generation of the current format to roll back to (one "
                       "is kept after each rebuild)", "no_previous_generation")
    return dataclasses.asdict(report)


@router.get("/api/v1/internal/search/status", tags=["internal"])
async def search_status(svc: Svc, _: Internal) -> Json:
    """Index generations, the builder's counters and its lag behind the outbox (503 while
    the builder does not answer: restarting, or stuck)."""
    status: IndexStatus = await asyncio.wait_for(svc.builder.status.remote(),
                                                 BUILDER_ANSWERS_S)
    out: Json = status.to_json()
    return out
