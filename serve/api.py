"""The FastAPI app of the Gateway: every area's routes, JSON errors, the body guard.

Routers are included in an order that matters: `/api/v1/products/search` and `/suggest` before
`/api/v1/products/{product_id}`; and shoppers' routes first, since every request walks the
list in order twice (Starlette's routing, and Ray Serve naming the route for its metrics):
a search matched fifth instead of eleventh costs 5 us a walk instead of 88
(scripts/bench_hot_path).
"""

from __future__ import annotations

from fastapi import FastAPI

from serve._errors import (
    DEFAULT_MAX_BODY,
    DEFAULT_UPLOAD_BYTES,
    BodyGuard,
    install_error_handlers,
)
from serve.observability import RequestMetrics
from serve.openapi import install_docs, install_openapi
from serve.routes import (
    cart,
    catalog,
    experiments,
    inventory,
    media,
    operations,
    pages,
    pricing,
    rankers,
    search,
    seller,
    sellers,
    storefront,
)

# the routers in the order they are matched (see above)
ROUTE_AREAS = (search, pages, cart, storefront, catalog, seller, media, sellers, pricing,
               inventory, rankers, experiments, operations)


def make_api(max_body_bytes: int = DEFAULT_MAX_BODY,
             upload_bytes: int = DEFAULT_UPLOAD_BYTES,
             internal_token: str | None = None) -> FastAPI:
    api = FastAPI(
        docs_url=None, redoc_url=None,  # install_docs: no CDN
        title="aisle",
        version="0.1.0",
        description="Product listing: seller catalog API, categories, search, product pages, "
        "inventory. Errors are JSON: {\"error\": {\"code\", \"message\", \"fields\"}}.",
    )
    install_error_handlers(api)
    api.add_middleware(BodyGuard, limit=max_body_bytes, upload_limit=upload_bytes,
                       internal_token=internal_token)
    api.add_middleware(RequestMetrics)  # outermost: every answer counted, 413s included
    for area in ROUTE_AREAS:
        api.include_router(area.router)
    install_openapi(api)
    install_docs(api)
    return api
