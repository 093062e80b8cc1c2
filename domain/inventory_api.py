"""What an inventory client offers (`Inventory`: actors.inventory_client.InventoryClient, or a
fake in tests), and its answers: JSON-ready, as the HTTP API and the stock cache show them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime
from typing import NotRequired, Protocol, TypedDict

from domain.inventory import Status
from domain.inventory_commands import ReservationView, VariantStock

CartItem = tuple[int, int, str | None]  # variant, quantity, warehouse (None: any)
StockView = dict[str, object]  # a variant for shoppers: StockSnapshot, or as cached


class LineJson(TypedDict):
    variant_id: str
    warehouse_id: str
    quantity: int


class CartJson(TypedDict):
    """A cart's reservation: its partitions' reservations together."""

    reservation_id: str
    status: str  # OPEN, COMMITTED, RELEASED, EXPIRED; MIXED if its partitions differ
    expires_at: str | None  # ISO 8601 UTC, milliseconds
    expires_at_ms: int | None
    lines: list[LineJson]


class FiguresJson(TypedDict):
    available: int
    reserved: int
    sold: int


class WarehouseJson(FiguresJson):
    version: int


class StockJson(TypedDict):
    status: Status
    quantity_hint: str
    available: int
    warehouses: dict[str, WarehouseJson]


class StockSnapshot(TypedDict):
    """The shoppers' view of a variant (what partitions publish to Redis)."""

    status: Status
    quantity_hint: str
    available: int  # every seller's units
    # of those, other sellers' (in warehouses they own: their offers'), by warehouse; absent:
    # none
    offered: NotRequired[dict[str, int]]


def buyable(snapshot: Mapping[str, object], offered_from: Collection[str]) -> int:
    """Units of a variant shoppers can buy now, from its owner's snapshot: the listing
    seller's (every unit not in another seller's warehouse) and those in the warehouses of
    `offered_from`, the sellers whose offers of it are live; not units left where an offer
    was withdrawn."""
    offered = snapshot.get("offered")
    total = snapshot.get("available")
    gone = (sum(n for w, n in offered.items() if w not in offered_from and isinstance(n, int))
            if isinstance(offered, Mapping) else 0)
    return max((total if isinstance(total, int) else 0) - gone, 0)


class Inventory(Protocol):
    async def reserve(self, items: Sequence[CartItem], key: str | None = None,
                      ttl_s: float = 900.0) -> CartJson: ...

    async def commit(self, cart_id: str, variant_id: int | None = None,
                     quantity: int | None = None) -> CartJson: ...

    async def release(self, cart_id: str, variant_id: int | None = None,
                      quantity: int | None = None) -> CartJson: ...

    async def get(self, cart_id: str) -> CartJson: ...

    async def adjust(self, variant_id: int, warehouse_id: str, delta: int, reason: str,
                     key: str | None = None, absolute: bool = False) -> FiguresJson: ...

    async def stock(self, variant_ids: list[int]) -> dict[str, StockJson]: ...

    async def status(self, variant_ids: list[int], wait_for_owners: bool = True,
                     cached: Mapping[int, StockView] | None = None
                     ) -> dict[str, StockView]: ...


def cart_json(cart_id: str, parts: Sequence[ReservationView]) -> CartJson:
    statuses = {p.status for p in parts}
    expires = min((p.expires_at_ms for p in parts), default=None)
    return {
        "reservation_id": cart_id,
        "status": statuses.pop() if len(statuses) == 1 else "MIXED",
        "expires_at": None if expires is None else datetime.fromtimestamp(
            expires / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "expires_at_ms": expires,
        "lines": [{"variant_id": str(v), "warehouse_id": w, "quantity": q}
                  for p in parts for v, w, q in p.lines],
    }


def stock_json(s: VariantStock) -> StockJson:
    return {"status": s.status, "quantity_hint": s.quantity_hint, "available": s.available,
            "warehouses": {w: {"available": f.available, "reserved": f.reserved,
                               "sold": f.sold, "version": f.version}
                           for w, f in s.warehouses}}


def snapshot(s: VariantStock) -> StockSnapshot:
    out: StockSnapshot = {"status": s.status, "quantity_hint": s.quantity_hint,
                          "available": s.available}
    if s.offered:
        out["offered"] = dict(s.offered)
    return out
