"""The seller write API: products with their variants and images, versioned (If-Match)."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from adapters.postgres import product_history as history
from adapters.postgres.product_history import Version
from domain.catalog import ProductIn, check_product
from domain.errors import PreconditionRequired, ValidationFailed
from serve.services import Json, Seller, Svc, limit_seller

router = APIRouter(tags=["seller"], dependencies=[Depends(limit_seller)])
ProductPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Snowflake product id")]
_IF_MATCH = re.compile(r'\s*(?:"([0-9]{1,9})"|([0-9]{1,9}))\s*', re.ASCII)


def expected_version(if_match: str | None, body_version: int | None) -> int | None:
    header_version = None
    if if_match is not None:
        m = _IF_MATCH.fullmatch(if_match)
        if not m:
            raise ValidationFailed({"If-Match": 'must be a version such as "3"'})
        header_version = int(m.group(1) or m.group(2))
    if header_version is not None and body_version is not None and header_version != body_version:
        raise ValidationFailed({"version": "differs from the If-Match header"})
    return header_version if header_version is not None else body_version


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


@router.post("/api/v1/seller/products", status_code=201)
async def create_product(svc: Svc, seller_id: Seller, body: ProductIn,
                         response: Response) -> Json:
    if body.version is not None:  # a new product's version is 1: one given is a slip
        raise ValidationFailed({"version": "only a PUT names the version it read"})
    check_product(body, svc.limits)
    product = await svc.catalog.create_product(seller_id, body)
    response.headers["Location"] = f"/api/v1/seller/products/{product['product_id']}"
    _etag(response, product["version"])
    return product


@router.put("/api/v1/seller/products/{product_id}")
async def update_product(
    svc: Svc, seller_id: Seller, product_id: ProductPath, body: ProductIn, response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> Json:
    version = expected_version(if_match, body.version)
    if version is None:
        raise PreconditionRequired(
            "send the version you read, in If-Match or the body's version field")
    check_product(body, svc.limits)
    product = await svc.catalog.update_product(seller_id, product_id, body, version)
    await svc.pages.written([product_id])  # the seller's next read shows its write
    _etag(response, product["version"])
    return product


@router.delete("/api/v1/seller/products/{product_id}")
async def delete_product(
    svc: Svc, seller_id: Seller, product_id: ProductPath,
    if_match: Annotated[str | None, Header()] = None,
) -> Json:
    deleted = await svc.catalog.delete_product(seller_id, product_id,
                                               expected_version(if_match, None))
    await svc.pages.written([product_id])
    return deleted


@router.get("/api/v1/seller/products/{product_id}")
async def get_product(svc: Svc, seller_id: Seller, product_id: ProductPath,
                      response: Response) -> Json:
    product = await svc.catalog.get_product(seller_id, product_id)
    _etag(response, product["version"])
    return product


@router.get("/api/v1/seller/products")
async def list_products(
    svc: Svc,
    seller_id: Seller,
    status: Annotated[str | None, Query(pattern="^(DRAFT|ACTIVE|INACTIVE)$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Json:
    items, next_cursor = await svc.catalog.list_products(seller_id, status, limit, cursor)
    return {"items": items,
            "next_cursor": str(next_cursor) if next_cursor is not None else None}


# -- history -------------------------------------------------------------------------------
VersionPath = Annotated[int, Path(ge=1, le=10**9, description="a version of the product")]


def _version_json(product_id: int, v: Version, current: int) -> Json:
    return {"product_id": str(product_id), "version": v.version,
            "written_at": v.at.isoformat(), "current": v.version == current,
            "title": v.snapshot.title, "status": v.snapshot.status}


@router.get("/api/v1/seller/products/{product_id}/versions")
async def list_versions(svc: Svc, seller_id: Seller, product_id: ProductPath) -> Json:
    """Every version of the product, newest first (the current one included)."""
    async with svc.pool.acquire() as conn:
        found = await history.versions(conn, seller_id, product_id)
    current = found[0].version
    return {"product_id": str(product_id), "current_version": current,
            "versions": [_version_json(product_id, v, current) for v in found]}


@router.get("/api/v1/seller/products/{product_id}/versions/{version}")
async def get_version(svc: Svc, seller_id: Seller, product_id: ProductPath,
                      version: VersionPath) -> Json:
    """One version as it was written: the product as a PUT body would carry it."""
    async with svc.pool.acquire() as conn:
        v, current = await history.version(conn, seller_id, product_id, version)
    try:
        body: dict[str, object] = v.snapshot.as_product().model_dump(exclude={"version"})
    except ValidationFailed:  # written under older rules: shown as it was (not restorable)
        body = v.snapshot.as_body()
    return {**_version_json(product_id, v, current), "product": body}


@router.post("/api/v1/seller/products/{product_id}/versions/{version}/restore")
async def restore_version(
    svc: Svc, seller_id: Seller, product_id: ProductPath, version: VersionPath,
    response: Response, if_match: Annotated[str | None, Header()] = None,
) -> Json:
    """Writes that version again as a new one (the current version + 1), through the same
    path as a PUT: one transaction, the outbox, search and product pages follow. Send the
    current version in If-Match (428 without, 409 if it moved)."""
    expected = expected_version(if_match, None)
    if expected is None:
        raise PreconditionRequired("send the current version in If-Match")
    async with svc.pool.acquire() as conn:
        v, _ = await history.version(conn, seller_id, product_id, version)
    body = v.snapshot.as_product()
    check_product(body, svc.limits)
    product = await svc.catalog.update_product(seller_id, product_id, body, expected)
    await svc.pages.written([product_id])
    _etag(response, product["version"])
    return {**product, "restored_from": version}
