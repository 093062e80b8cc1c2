"""Product detail pages, and the internal controls of their caches."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from serve.pdp import PrewarmIn
from serve.routes.seller import ProductPath
from serve.services import Internal, Json, Svc, is_internal_caller
from serve.stages import Stages

router = APIRouter()


@router.get("/api/v1/products/{product_id}", tags=["catalog"])
async def product_page(svc: Svc, product_id: ProductPath, request: Request) -> Response:
    """The product detail page: product, variants with price, stock and images, the buy
    box, seller, reviews summary, related products, badges, deals. 404 `product_not_found`
    (unknown, deleted, draft) or `product_unavailable` (taken off sale). The `X-Cache`
    header says whether Redis had it (hit), it was loaded (miss) or Redis was unavailable
    (bypass), or this process had the whole page from the last second (local). While
    PostgreSQL cannot be reached, a page whose parts are not in Redis is the page as last
    assembled (kept a day), with `stale: true` and `X-Cache: stale`; 503 if there is none.
    Internal callers also get where the time went (`Server-Timing`: `page_cache` the Redis
    read and whatever it had to load, within it `page_db` and `page_related`; `page_stock`,
    `page_owners`)."""
    local = svc.pages.local(product_id)  # no await: Serve then skips its extra calls
    if local is not None:
        return Response(local, media_type="application/json", headers={"X-Cache": "local"})
    stages = Stages()
    with stages.current():
        data, how = await svc.pages.encoded(product_id)
    headers = {"X-Cache": how}
    if stages.ms and is_internal_caller(request):  # as searches: shoppers do not get it
        headers["Server-Timing"] = stages.header()
    return Response(data, media_type="application/json", headers=headers)


@router.post("/api/v1/internal/cache/prewarm", tags=["internal"], status_code=202,
             responses={200: {"description": "wait=true: what was warmed"}})
async def prewarm_cache(svc: Svc, _: Internal, body: PrewarmIn, response: Response,
                        wait: bool = False) -> Json:
    """Loads product metadata and price snapshots into Redis now (before a flash sale). A
    background job (202 with its record; status at GET /api/v1/internal/jobs/{job_id});
    `wait=true` answers what was warmed once done (200)."""

    async def warm() -> Json:
        return await svc.pages.prewarm(body.product_ids, body.top)

    return await svc.jobs.answer("cache.prewarm", {"products": len(body.product_ids),
                                                   "top": body.top}, warm, wait, response)


@router.get("/api/v1/internal/cache/stats", tags=["internal"])
async def cache_stats(svc: Svc, _: Internal) -> Json:
    """This replica's product-page cache counters (hits, misses, loads, Redis state)."""
    return svc.pages.stats()
