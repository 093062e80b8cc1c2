"""What crosses the Ray boundary between InventoryClient and an InventoryPartition actor.

One frozen dataclass per command. Each command is answered `Done` (its value), `Refused` (a
domain error, as data: the same key gets the same refusal) or `NotCommitted` (the batch that
held it was not committed: send it again with the same key). Slotted: Ray pickles thousands a
second. Writes carry an idempotency key; reads do not.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Final, Generic, TypedDict, TypeVar, cast

from domain.errors import AisleError, Conflict, NotFound, ValidationFailed
from domain.inventory import (
    InsufficientStock,
    Item,
    PartitionState,
    Reservation,
    ReservationNotFound,
    ShortItem,
    Status,
    UnknownVariant,
)

T_co = TypeVar("T_co", covariant=True)


# -- values -----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class ReservationView:
    """A partition's reservation as it stood when the answer was made."""

    reservation_id: str
    status: str
    expires_at_ms: int
    cart_id: str | None
    lines: tuple[tuple[int, str, int], ...]  # (variant_id, warehouse_id, quantity)

    @classmethod
    def of(cls, r: Reservation) -> ReservationView:
        return cls(r.reservation_id, r.status, r.expires_at_ms, r.cart_id, tuple(r.lines))


@dataclasses.dataclass(frozen=True, slots=True)
class Adjusted:
    """A warehouse's figures after an ADJUST."""

    available: int
    reserved: int
    sold: int


@dataclasses.dataclass(frozen=True, slots=True)
class WarehouseStock:
    available: int
    reserved: int
    sold: int
    version: int


@dataclasses.dataclass(frozen=True, slots=True)
class VariantStock:
    """A variant's status, quantity hint, total available and figures per warehouse."""

    status: Status
    quantity_hint: str
    available: int
    warehouses: tuple[tuple[str, WarehouseStock], ...]  # by warehouse id
    # of `available`, the units in warehouses sellers own (their offers), by warehouse
    offered: tuple[tuple[str, int], ...] = ()

    @classmethod
    def of(cls, state: PartitionState, variant_id: int) -> VariantStock:
        status, hint = state.status(variant_id)
        rows = state.stock[variant_id]
        return cls(status, hint, sum(s.available for s in rows.values()),
                   tuple((w, WarehouseStock(s.available, s.reserved, s.sold, s.version))
                         for w, s in sorted(rows.items())),
                   tuple(sorted(state.offered(variant_id).items())))


Stocks = dict[int, VariantStock]  # the variants a partition knows, of those asked for


# -- answers ----------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, slots=True)
class Done:
    value: ReservationView | Adjusted | Stocks


@dataclasses.dataclass(frozen=True, slots=True)
class Refused:
    """A domain error as data (outcomes cross Ray and are stored in PostgreSQL)."""

    code: str
    message: str
    data: Mapping[str, object] = dataclasses.field(default_factory=dict)
    fields: Mapping[str, str] | None = None

    @classmethod
    def of(cls, exc: AisleError) -> Refused:
        return cls(exc.code, exc.message, exc.data, getattr(exc, "fields", None))

    def error(self) -> AisleError:
        """The domain error this refusal records."""
        if self.code == "insufficient_stock":
            return InsufficientStock(cast("list[ShortItem]", self.data["items"]))
        if self.code == "validation_failed":
            return ValidationFailed(dict(self.fields or {}), self.message)
        if self.code in _NOT_FOUND:
            return _NOT_FOUND[self.code](self.message, **self.data)
        return Conflict(self.message, self.code, None, **self.data)  # reservation_closed...


_NOT_FOUND: dict[str, type[NotFound]] = {
    "unknown_variant": UnknownVariant, "reservation_not_found": ReservationNotFound,
}


@dataclasses.dataclass(frozen=True, slots=True)
class NotCommitted:
    """The batch that held the command was not committed: send it again, same key."""

    reason: str


@dataclasses.dataclass(frozen=True, slots=True)
class Moved:
    """The command touches slots this partition does not own (any more): the caller reloads
    the slot map and sends it to their owner. Nothing of it was decided."""

    slots: tuple[int, ...]


Outcome = Done | Refused  # a decided command: a write's is remembered by its key
Reply = Outcome | NotCommitted | Moved


class PartitionStats(TypedDict):
    commits: int
    failed_batches: int
    recoveries: int
    variants: int
    open_reservations: int
    slots: int


# -- commands ---------------------------------------------------------------------------------
class Command(Generic[T_co]):
    """A partition command whose `Done` holds a T_co."""

    __slots__ = ()


@dataclasses.dataclass(frozen=True, slots=True)
class Reserve(Command[ReservationView]):
    """Every item or none, as reservation `reservation_id` (it derives from `key`)."""

    key: str
    reservation_id: str
    items: tuple[Item, ...]
    ttl_ms: int
    cart_id: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Close(Command[ReservationView]):
    """Closes a reservation whole. With `variant_id`: only if the reservation holds that
    variant (and, with `quantity`, that many units of it)."""

    key: str
    reservation_id: str
    variant_id: int | None = None
    quantity: int | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class Release(Close):
    """The reserved units go back on sale."""


@dataclasses.dataclass(frozen=True, slots=True)
class Deduct(Close):
    """The reserved units are sold."""


@dataclasses.dataclass(frozen=True, slots=True)
class Adjust(Command[Adjusted]):
    """Restock (+) or shrinkage (-) of a warehouse's available units; with `absolute`,
    `delta` is what available becomes (a seller stating its offer's stock)."""

    key: str
    variant_id: int
    warehouse_id: str
    delta: int
    reason: str
    absolute: bool = False


@dataclasses.dataclass(frozen=True, slots=True)
class GetReservation(Command[ReservationView]):
    reservation_id: str


@dataclasses.dataclass(frozen=True, slots=True)
class ReadStock(Command[Stocks]):
    """The stock of these variants (unknown ones are left out)."""

    variant_ids: tuple[int, ...]


Write = Reserve | Release | Deduct | Adjust
Read = GetReservation | ReadStock
PartitionCommand = Write | Read
WRITES: Final = (Reserve, Release, Deduct, Adjust)
