"""Request bodies of the inventory and quote APIs (validated before any actor sees them)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from adapters.settings import MAX_RESERVATION_TTL_S
from domain.inventory import MAX_QUANTITY, MAX_REASON

NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold U+0000
WarehouseId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,32}$")]
IdempotencyKey = Annotated[str, StringConstraints(pattern=r"^[\x21-\x7e]{1,128}$")]
# a cart id names its hash slots: up to 100 of 4 hex digits
ReservationId = Annotated[str, StringConstraints(min_length=1, max_length=512, pattern=NO_NUL)]
CustomerId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NO_NUL)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=MAX_REASON, pattern=NO_NUL)]
QuoteToken = Annotated[str, StringConstraints(min_length=1, max_length=8192, pattern=NO_NUL)]
CouponCode = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=NO_NUL)]
VariantId = Annotated[int, Field(ge=1, le=2**63 - 1)]
TtlSeconds = Annotated[int, Field(ge=1, le=MAX_RESERVATION_TTL_S)]


class InventoryPatch(BaseModel):
    """`PATCH /api/v1/inventory/{variant_id}`.

    quantity_delta follows the seed: the change of `available` (RESERVE -2 reserves 2 units).
    RESERVE, RELEASE and DEDUCT also accept the unsigned count; ADJUST needs the sign
    (+ restock, - shrinkage) and a reason. RELEASE and DEDUCT close the reservation named by
    reservation_id whole; a quantity_delta given with them must be what it holds of the variant.
    """

    model_config = ConfigDict(extra="forbid")

    operation: Literal["RESERVE", "RELEASE", "DEDUCT", "ADJUST"]
    warehouse_id: WarehouseId | None = None
    quantity_delta: StrictInt | None = Field(default=None, ge=-MAX_QUANTITY, le=MAX_QUANTITY)
    reservation_id: ReservationId | None = None
    reason: Reason | None = None
    ttl_seconds: TtlSeconds | None = None
    idempotency_key: IdempotencyKey | None = None

    def problems(self) -> dict[str, str]:
        """What this operation lacks or must not have, by field (empty when valid)."""
        op, delta = self.operation, self.quantity_delta
        out: dict[str, str] = {}
        if op in ("RESERVE", "ADJUST") and not delta:
            out["quantity_delta"] = f"{op} needs a non-zero quantity_delta"
        if op in ("RELEASE", "DEDUCT") and delta == 0:
            out["quantity_delta"] = "must not be 0"
        if op == "ADJUST" and self.warehouse_id is None:
            out["warehouse_id"] = "ADJUST needs the warehouse to change"
        if op == "ADJUST" and self.reason is None:
            out["reason"] = "ADJUST needs a reason (restock, cycle count, damage...)"
        if op != "ADJUST" and self.reason is not None:
            out["reason"] = "only ADJUST takes a reason"
        if op in ("RELEASE", "DEDUCT") and self.reservation_id is None:
            out["reservation_id"] = f"{op} acts on a reservation: name it"
        if op in ("RESERVE", "ADJUST") and self.reservation_id is not None:
            out["reservation_id"] = f"{op} does not take a reservation_id"
        if op != "RESERVE" and self.ttl_seconds is not None:
            out["ttl_seconds"] = "only RESERVE takes a ttl"
        return out


class CartItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant_id: VariantId
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)
    warehouse_id: WarehouseId | None = None


def repeated(keys: list[tuple[int, str | None]]) -> dict[str, str]:
    """`items.N.variant_id` for each item that names what an earlier one did: a cart has one
    line per variant (and warehouse), so a repeat is a client's mistake, refused whole."""
    first: dict[tuple[int, str | None], int] = {}
    out: dict[str, str] = {}
    for i, key in enumerate(keys):
        if key in first:
            out[f"items.{i}.variant_id"] = (
                f"repeats items.{first[key]}: give one item per variant"
                + (" and warehouse" if key[1] is not None else "") + ", with the total quantity")
        else:
            first[key] = i
    return out


class ReservationIn(BaseModel):
    """`POST /api/v1/reservations`: all items or none."""

    model_config = ConfigDict(extra="forbid")

    items: list[CartItem] = Field(min_length=1, max_length=100)
    idempotency_key: IdempotencyKey | None = None
    ttl_seconds: TtlSeconds | None = None
    quote_token: QuoteToken | None = None
    customer_id: CustomerId | None = None

    def problems(self) -> dict[str, str]:
        return repeated([(i.variant_id, i.warehouse_id) for i in self.items])


class QuoteItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variant_id: VariantId
    quantity: StrictInt = Field(ge=1, le=MAX_QUANTITY)


class QuoteIn(BaseModel):
    """`POST /api/v1/quotes`: the exact price of a cart, and a token that holds it."""

    model_config = ConfigDict(extra="forbid")

    items: list[QuoteItem] = Field(min_length=1, max_length=100)
    coupon: CouponCode | None = None
    customer_id: CustomerId | None = None

    def problems(self) -> dict[str, str]:
        return repeated([(i.variant_id, None) for i in self.items])
