"""The internal inventory API (partition owners decide), carts, and price quotes."""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated

from fastapi import APIRouter, Header, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from adapters.postgres import inventory_slots
from adapters.postgres.idempotency import bound_key
from domain.errors import ValidationFailed
from domain.inventory import UnknownVariant
from domain.inventory_slots import MAX_PARTITIONS, SLOTS
from serve.inventory_models import InventoryPatch, QuoteIn, ReservationIn
from serve.services import Internal, Json, Services, Svc

router = APIRouter()
VariantPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Snowflake variant id")]
ReservationPath = Annotated[str, Path(min_length=1, max_length=512)]
IdempotencyHeader = Annotated[str | None, Header(alias="Idempotency-Key", max_length=128)]
_KEY = re.compile(r"[\x21-\x7e]{1,128}", re.ASCII)


def idempotency_key(header: str | None, body: str | None) -> str | None:
    if header is not None and body is not None and header != body:
        raise ValidationFailed({"idempotency_key": "differs from the Idempotency-Key header"})
    key = header if header is not None else body
    if key is not None and not _KEY.fullmatch(key):
        raise ValidationFailed({"Idempotency-Key": "1 to 128 printable ASCII characters"})
    return key


@router.get("/api/v1/inventory/{variant_id}", tags=["inventory"])
async def get_inventory(svc: Svc, _: Internal, variant_id: VariantPath) -> Json:
    """Status, quantity hint and per-warehouse figures, from the owning partition."""
    got = (await svc.inventory.stock([variant_id])).get(str(variant_id))
    if got is None:
        raise UnknownVariant(f"variant {variant_id} not found")
    return {"variant_id": str(variant_id), **got}


@router.patch("/api/v1/inventory/{variant_id}", tags=["inventory"],
              responses={201: {"description": "RESERVE: the reservation made"}})
async def patch_inventory(
    svc: Svc, _: Internal, variant_id: VariantPath, body: InventoryPatch, response: Response,
    idempotency: IdempotencyHeader = None,
) -> Json:
    """RESERVE (201, a reservation), RELEASE / DEDUCT (a reservation, closed whole) or
    ADJUST (the warehouse's figures; creates the stock row if there is none)."""
    problems = body.problems()
    if problems:
        raise ValidationFailed(problems)
    key = idempotency_key(idempotency, body.idempotency_key)
    async with bound_key(svc.pool, "internal PATCH /api/v1/inventory", key,
                         [variant_id, body.model_dump(exclude={"idempotency_key"})]):
        return await _apply(svc, variant_id, body, key, response)


async def _apply(svc: Services, variant_id: int, body: InventoryPatch, key: str | None,
                 response: Response) -> Json:
    delta = body.quantity_delta
    if body.operation == "RESERVE":
        assert delta is not None
        response.status_code = 201
        # keys are scoped by route: POST /api/v1/reservations uses them as they are
        return dict(await svc.inventory.reserve(
            [(variant_id, abs(delta), body.warehouse_id)],
            key=f"patch:{key}" if key is not None else None,
            ttl_s=body.ttl_seconds or svc.settings.reservation_ttl_s))
    if body.operation in ("RELEASE", "DEDUCT"):
        assert body.reservation_id is not None
        close = svc.inventory.release if body.operation == "RELEASE" else svc.inventory.commit
        return dict(await close(body.reservation_id, variant_id,
                                abs(delta) if delta is not None else None))
    assert delta is not None and body.warehouse_id is not None and body.reason is not None
    figures = await svc.inventory.adjust(
        variant_id, body.warehouse_id, delta, body.reason,
        key=f"adjust:{key}" if key is not None else None)
    return {"variant_id": str(variant_id), "warehouse_id": body.warehouse_id, **figures}


@router.post("/api/v1/reservations", status_code=201, tags=["inventory"])
async def create_reservation(
    svc: Svc, _: Internal, body: ReservationIn, idempotency: IdempotencyHeader = None,
) -> Json:
    """A cart: every item reserved, or none (409 naming each short item). With a
    `quote_token` (POST /api/v1/quotes) the items must be the quoted ones: the quote is
    recorded with the reservation and its coupon redeemed, so the shopper pays the quote."""
    if problems := body.problems():
        raise ValidationFailed(problems, "an item is repeated")
    items = [(i.variant_id, i.quantity, i.warehouse_id) for i in body.items]
    key = idempotency_key(idempotency, body.idempotency_key)
    ttl_s = body.ttl_seconds or svc.settings.reservation_ttl_s
    async with bound_key(svc.pool, "internal POST /api/v1/reservations", key,
                         body.model_dump(exclude={"idempotency_key"})):
        if body.quote_token is not None:
            return dict(await svc.quotes.reserve(body.quote_token, items, key, ttl_s,
                                                 body.customer_id))
        return dict(await svc.inventory.reserve(items, key=key, ttl_s=ttl_s))


@router.get("/api/v1/reservations/{reservation_id}", tags=["inventory"])
async def get_reservation(svc: Svc, _: Internal,
                          reservation_id: ReservationPath) -> Json:
    return dict(await svc.inventory.get(reservation_id))


@router.post("/api/v1/reservations/{reservation_id}/commit", tags=["inventory"])
async def commit_reservation(svc: Svc, _: Internal,
                             reservation_id: ReservationPath) -> Json:
    """Checkout: the reserved units are sold (DEDUCT). Repeating it returns the same."""
    return dict(await svc.inventory.commit(reservation_id))


@router.delete("/api/v1/reservations/{reservation_id}", tags=["inventory"])
async def release_reservation(svc: Svc, _: Internal,
                              reservation_id: ReservationPath) -> Json:
    """Cart abandoned: the reserved units go back on sale."""
    return dict(await svc.inventory.release(reservation_id))


class PartitionsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    partitions: int = Field(ge=1, le=MAX_PARTITIONS,
                            description="inventory partition actors to spread the slots over")


@router.get("/api/v1/internal/inventory/partitions", tags=["inventory"])
async def get_partitions(svc: Svc, _: Internal) -> Json:
    """The partition actors and the hash slots each owns (with what it holds in memory and
    its Ray node), and the latest slot handoffs."""
    found = await svc.inventory.report()
    return {"partitions": len(found), "slots": SLOTS,
            "owners": [{"partition": k, "node_id": node, **s}
                       for k, (s, node) in enumerate(found)],
            "moves": [dataclasses.asdict(m)
                      for m in await inventory_slots.moves(svc.inventory.dsn, 20)]}


@router.put("/api/v1/internal/inventory/partitions", tags=["inventory"])
async def set_partitions(svc: Svc, _: Internal, body: PartitionsIn) -> Json:
    """Rebalances the hash slots online over `partitions` partition actors (starting or
    stopping actors), while reservations keep flowing: each move is a handoff between two
    batches of the old owner. Answers when done, with what moved; 409 if another rebalance
    is under way. The map lives in PostgreSQL: AISLE_INVENTORY_PARTITIONS only sizes a new
    database's."""
    return dataclasses.asdict(await svc.inventory.set_partitions(body.partitions))


@router.post("/api/v1/quotes", status_code=201, tags=["pricing"])
async def create_quote(svc: Svc, body: QuoteIn) -> Json:
    """The exact price of a cart at each variant's buy-box offer: per line list -> deal
    -> dynamic -> coupon, totals in cents, and `quote_token`, which a reservation carries
    to pay exactly this until `expires_at`."""
    if problems := body.problems():
        raise ValidationFailed(problems, "an item is repeated")
    return dict(await svc.quotes.make([(i.variant_id, i.quantity) for i in body.items],
                                      body.coupon, body.customer_id))


@router.post("/api/v1/internal/pricing/reprice", tags=["pricing"])
async def reprice_now(svc: Svc, _: Internal) -> Json:
    """Runs a dynamic-pricing pass now (it also runs every AISLE_REPRICE_INTERVAL_SECONDS):
    the prices it moved."""
    moved: Json = await svc.repricer.run_pass.remote()
    return moved
