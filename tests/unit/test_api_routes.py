"""The Gateway's route table: every request walks it in order, twice (Starlette's routing and
Ray Serve naming the route for its metrics), so shoppers' routes come first."""

from __future__ import annotations

from ray.serve._private.thirdparty.get_asgi_route_name import get_asgi_route_name
from starlette.routing import Match

from serve.api import make_api


def walked(path: str, method: str = "GET") -> tuple[int, str | None]:
    """(top-level entries tried, the route Ray Serve names for the request's metrics: it
    walks the same table) for a request."""
    api = make_api()
    scope = {"type": "http", "path": path, "method": method, "root_path": "",
             "query_string": b"", "headers": [], "app": api}
    for i, route in enumerate(api.router.routes, start=1):
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return i, get_asgi_route_name(api, scope)
    return len(api.router.routes), None


def test_searches_and_product_pages_are_matched_first() -> None:
    docs = 1  # /openapi.json (FastAPI's own); /docs comes last (install_docs)
    assert walked("/api/v1/products/search") == (docs + 1, "/api/v1/products/search")
    assert walked("/api/v1/products/suggest") == (docs + 1, "/api/v1/products/suggest")
    # the product page's template would also take "search": it comes after
    assert walked("/api/v1/products/123") == (docs + 2, "/api/v1/products/{product_id}")
    assert walked("/api/v1/seller/products", "POST")[1] == "/api/v1/seller/products"
