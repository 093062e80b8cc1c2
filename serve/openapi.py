"""The OpenAPI document as the API behaves: every error is `{"error": {"code", "message",
"fields"}}` (serve/_errors.py), with the statuses an operation can really answer. FastAPI's
own description (422 with `{"detail": [...]}` only) is replaced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

Doc = dict[str, Any]  # a part of the OpenAPI document (JSON)
ERROR_SCHEMA: Doc = {
    "type": "object", "required": ["error"],
    "properties": {"error": {
        "type": "object", "required": ["code", "message", "fields"],
        "properties": {
            "code": {"type": "string", "description": "stable, machine-readable"},
            "message": {"type": "string"},
            "fields": {"type": "object", "additionalProperties": {"type": "string"},
                       "description": "the reason for each field at fault (dotted path)"},
        },
        "additionalProperties": True,  # some errors add data, e.g. `items` of a 409
    }},
}
WHY = {
    "400": "the body is not valid JSON or not UTF-8",
    "401": "missing or invalid credentials",
    "403": "the resource belongs to another seller",
    "404": "no such resource",
    "409": "conflicts with the current state (stock, versions, a used quote...)",
    "413": "the body is larger than AISLE_MAX_BODY_BYTES",
    "422": "a field is invalid: `fields` names each one and why",
    "428": "a precondition header is required (If-Match)",
    "429": "too many requests a minute from this client or API key: retry after Retry-After",
    "500": "an unexpected error (logged)",
    "503": "a dependency is unavailable or not ready: retry after Retry-After",
}
_WRITES = {"post", "put", "patch", "delete"}
RATE_LIMITED = ("/api/v1/products/search", "/api/v1/products/suggest", "/api/v1/seller/",
                "/api/v1/cart", "/api/v1/events")


def statuses(method: str, path: str, operation: Doc) -> set[str]:
    """The error statuses an operation can answer."""
    params = operation.get("parameters", [])
    out = {"422", "500", "503"}
    if method in _WRITES:
        out |= {"400", "409", "413"}
    if any(p.get("in") == "header" and p.get("name", "").lower() == "authorization"
           for p in params):
        out |= {"401", "403"}
    if "{" in path or method in _WRITES or path.startswith("/api/v1/cart"):
        out.add("404")  # a cart is found by its token: none, or an unknown one, is a 404
    if "if-match" in {str(p.get("name", "")).lower() for p in params}:
        out.add("428")
    if path.startswith(RATE_LIMITED):
        out.add("429")
    return out


def install_openapi(api: FastAPI) -> None:
    def build() -> Doc:
        if api.openapi_schema is not None:
            return api.openapi_schema
        doc = get_openapi(title=api.title, version=api.version, description=api.description,
                          routes=api.routes)
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        schemas["Error"] = ERROR_SCHEMA
        ref = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
        for path, item in doc.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                for status in statuses(method, path, operation):
                    responses[status] = {"description": WHY[status], **ref}
        health = doc.get("paths", {}).get("/health", {}).get("get")
        if health is not None:  # /health answers its checks whatever its status
            health["responses"]["503"] = {"description": "a required dependency is down",
                                          "content": health["responses"]["200"]["content"]}
        api.openapi_schema = doc
        return doc

    api.openapi = build  # type: ignore[method-assign]


DOCS_ASSETS = "/docs/assets"


def install_docs(api: FastAPI) -> None:
    """`/docs` (Swagger UI) served with its script from this app (fastapi-offline's copy,
    under DOCS_ASSETS): FastAPI's own page loads it from a CDN, and shows nothing where the
    network does not reach it. No `/redoc`: ReDoc's page loads its logo from redoc.ly. Added
    after every area's routes (every request walks the list in order)."""
    assets = Path(fastapi_offline.__file__).parent / "static"
    title = api.title
    api.mount(DOCS_ASSETS, StaticFiles(directory=assets), name="docs-assets")

    @api.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = str(request.scope.get("root_path", "")).rstrip("/")
        return get_swagger_ui_html(
            openapi_url=f"{root}{api.openapi_url}", title=f"{title} - Swagger UI",
            swagger_js_url=f"{root}{DOCS_ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{DOCS_ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{root}{DOCS_ASSETS}/favicon.png")
