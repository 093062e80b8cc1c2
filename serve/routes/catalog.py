"""Browsing the catalog's structure: categories (anyone), warehouses (internal)."""

from __future__ import annotations

from fastapi import APIRouter

from serve.services import Internal, Json, Svc

router = APIRouter()


@router.get("/api/v1/categories", tags=["catalog"])
async def categories(svc: Svc) -> Json:
    return {"categories": await svc.catalog.category_tree()}


@router.get("/api/v1/warehouses", tags=["internal"])
async def warehouses(svc: Svc, _: Internal) -> Json:
    return {"warehouses": await svc.catalog.warehouses()}
