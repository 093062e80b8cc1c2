"""The storefront: pages for shoppers, served by the Gateway itself (no other server).

One HTML shell and its script and style, committed as source (no build step): the script
renders search, product and cart pages from the public JSON API, keeps the state in the URL
(shareable; the back button works) and uses the cart API with an httpOnly cookie.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, Response

router = APIRouter(include_in_schema=False)
ASSETS = Path(__file__).resolve().parent.parent / "storefront"
TYPES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
         "favicon.svg": "image/svg+xml"}


def _shell() -> Response:
    return FileResponse(ASSETS / "index.html", media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})


@router.get("/")
async def home() -> Response:
    return _shell()


@router.get("/search")
async def search_page() -> Response:
    return _shell()


@router.get("/cart")
async def cart_page() -> Response:
    return _shell()


@router.get("/product/{product_id}")
async def product_page(product_id: Annotated[str, PathParam(max_length=30)]) -> Response:
    return _shell()


@router.get("/static/{name}")
async def asset(name: Annotated[str, PathParam(pattern=r"^[a-z]+\.[a-z]+$")]) -> Response:
    if name not in TYPES:
        return Response(status_code=404)
    # revalidated each time (ETag): a new release is seen at once, an unchanged file is a 304
    return FileResponse(ASSETS / name, media_type=TYPES[name],
                        headers={"Cache-Control": "no-cache"})
