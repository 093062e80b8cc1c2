"""Seller accounts: made and managed by the platform (internal), shown to shoppers (public
profile). API keys are shown once, when issued; only their hash is kept."""

from __future__ import annotations

import dataclasses
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from adapters.postgres import seller_accounts as accounts
from adapters.postgres.seller_accounts import SellerAccount
from domain.errors import ValidationFailed
from serve.services import Internal, Json, Svc

router = APIRouter(tags=["sellers"])
SellerPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="seller id")]
KeyPath = Annotated[str, Path(pattern=r"^k[0-9a-f]{16}$|^k-initial$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                        pattern=r"^[^\x00-\x1f\x7f]+$")]


class SellerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    rating: float | None = Field(default=None, ge=0, le=5)


class SellerPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    rating: float | None = Field(default=None, ge=0, le=5)
    status: Literal["ACTIVE", "SUSPENDED"] | None = None


def _account(a: SellerAccount) -> Json:
    return {"seller_id": str(a.seller_id), "name": a.name, "rating": a.rating,
            "status": a.status,
            "keys": [{"key_id": k.key_id, "prefix": k.prefix,
                      "created_at": k.created_at.isoformat() if k.created_at else None,
                      "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
                      "active": k.revoked_at is None} for k in a.keys]}


@router.post("/api/v1/internal/sellers", status_code=201)
async def create_seller(svc: Svc, _: Internal, body: SellerIn) -> Json:
    """A new seller and its first API key (`api_key`: shown this once)."""
    await svc.ids.ensure()
    seller_id = svc.ids.next_id()
    async with svc.pool.acquire() as conn:
        issued = await accounts.create(conn, seller_id, body.name, body.rating)
        account = await accounts.account(conn, seller_id)
    return {**_account(account), "api_key": issued.api_key, "key_id": issued.key_id}


@router.get("/api/v1/internal/sellers/{seller_id}")
async def get_seller(svc: Svc, _: Internal, seller_id: SellerPath) -> Json:
    """The seller and its keys (ids and prefixes, never the keys)."""
    async with svc.pool.acquire() as conn:
        return _account(await accounts.account(conn, seller_id))


@router.patch("/api/v1/internal/sellers/{seller_id}")
async def update_seller(svc: Svc, _: Internal, seller_id: SellerPath,
                        body: SellerPatch) -> Json:
    """Name, rating or status (SUSPENDED: its keys stop working, its products leave search
    and cannot be bought). Its products are announced through the outbox, so search and the
    product pages' caches follow within a second or so."""
    if not body.model_fields_set:
        raise ValidationFailed({"body": "name, rating or status"}, "nothing to change")
    why = "must not be null (a rating may be: it clears it)"
    nulls: dict[str, str] = {f: why for f in ("name", "status")
                             if f in body.model_fields_set and getattr(body, f) is None}
    if nulls:  # was a 200 that changed nothing
        raise ValidationFailed(nulls)
    async with svc.pool.acquire() as conn:
        return _account(await accounts.update(
            conn, seller_id, body.name, body.rating, body.status,
            clear_rating="rating" in body.model_fields_set and body.rating is None))


@router.post("/api/v1/internal/sellers/{seller_id}/keys", status_code=201)
async def issue_key(
    svc: Svc, _: Internal, seller_id: SellerPath,
    revoke_others: Annotated[bool, Query(description="a rotation: every other key of the "
                                                     "seller stops working now")] = False,
) -> Json:
    """A new API key (shown once). `?revoke_others=true` rotates: the others stop working."""
    async with svc.pool.acquire() as conn:
        issued = await accounts.issue(conn, seller_id, revoke_others)
    return dataclasses.asdict(issued)


@router.delete("/api/v1/internal/sellers/{seller_id}/keys/{key_id}")
async def revoke_key(svc: Svc, _: Internal, seller_id: SellerPath, key_id: KeyPath) -> Json:
    """Revokes one key now (the next request with it is a 401)."""
    async with svc.pool.acquire() as conn:
        return _account(await accounts.revoke(conn, seller_id, key_id))


@router.get("/api/v1/sellers/{seller_id}")
async def seller_profile(svc: Svc, seller_id: SellerPath) -> Json:
    """A seller as shoppers see it (product pages show the same)."""
    async with svc.pool.acquire() as conn:
        name, rating = await accounts.public_profile(conn, seller_id)
    return {"seller_id": str(seller_id), "name": name, "rating": rating}
