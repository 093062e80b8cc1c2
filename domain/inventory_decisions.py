"""How a partition answers each command from its state: synchronous, no I/O (the actor loads
what a batch needs first, then decides every command of it without an await)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import assert_never

from domain.errors import AisleError, ValidationFailed
from domain.inventory import PartitionState, ReservationNotFound
from domain.inventory_commands import (
    Adjust,
    Adjusted,
    Close,
    Deduct,
    Done,
    GetReservation,
    Outcome,
    PartitionCommand,
    Read,
    ReadStock,
    Refused,
    Release,
    ReservationView,
    Reserve,
    VariantStock,
    Write,
)
from domain.inventory_slots import slot_of, slot_of_reservation


def decide(st: PartitionState, cmd: Write) -> Outcome:
    """Applies a write to the state (recording its changes), or refuses it."""
    try:
        match cmd:
            case Reserve():
                if {slot_of(i.variant_id) for i in cmd.items} != {
                        slot_of_reservation(cmd.reservation_id)}:
                    # a reservation lives in one slot, the one its id names (a handoff moves
                    # a slot's reservations with its variants)
                    raise ValidationFailed({"items": "must all be in the slot the reservation "
                                            "id names"})
                if cmd.reservation_id in st.reservations:  # a replay: the reservation it made
                    return Done(ReservationView.of(st.reservations[cmd.reservation_id]))
                return Done(ReservationView.of(st.reserve(cmd.reservation_id, cmd.items,
                                                          cmd.ttl_ms, cmd.cart_id)))
            case Release() | Deduct():
                if cmd.variant_id is not None:
                    _check_holds(st, cmd.reservation_id, cmd.variant_id, cmd.quantity)
                close = st.release if isinstance(cmd, Release) else st.deduct
                return Done(ReservationView.of(close(cmd.reservation_id)))
            case Adjust():
                s = (st.set_available if cmd.absolute else st.adjust)(
                    cmd.variant_id, cmd.warehouse_id, cmd.delta, cmd.reason)
                return Done(Adjusted(s.available, s.reserved, s.sold))
            case _:
                assert_never(cmd)
    except AisleError as exc:
        return Refused.of(exc)


def read(st: PartitionState, cmd: Read) -> Outcome:
    match cmd:
        case GetReservation():
            r = st.reservations.get(cmd.reservation_id)
            if r is None:
                return Refused.of(ReservationNotFound(
                    f"reservation {cmd.reservation_id} not found"))
            return Done(ReservationView.of(r))
        case ReadStock():
            return Done({v: VariantStock.of(st, v) for v in cmd.variant_ids if st.knows(v)})
        case _:
            assert_never(cmd)


def variants_of(cmd: PartitionCommand) -> list[int]:
    """The variants whose stock the partition must have loaded to answer `cmd`."""
    match cmd:
        case Reserve():
            return [i.variant_id for i in cmd.items]
        case Adjust():
            return [cmd.variant_id]
        case ReadStock():
            return list(cmd.variant_ids)
        case _:
            return []


def slots_of(cmd: PartitionCommand) -> set[int]:
    """The hash slots whose owner must answer `cmd` (none: any partition may; it will not
    find what it names)."""
    match cmd:
        case Reserve():
            return {slot_of(i.variant_id) for i in cmd.items}
        case Close() | GetReservation():
            slot = slot_of_reservation(cmd.reservation_id)
            return set() if slot is None else {slot}
        case Adjust():
            return {slot_of(cmd.variant_id)}
        case ReadStock():
            return {slot_of(v) for v in cmd.variant_ids}
        case _:
            assert_never(cmd)


def warehouses_of(cmd: PartitionCommand) -> list[str | None]:
    """The warehouses `cmd` names (None: any)."""
    match cmd:
        case Reserve():
            return [i.warehouse_id for i in cmd.items]
        case Adjust():
            return [cmd.warehouse_id]
        case _:
            return []


def _check_holds(st: PartitionState, reservation_id: str, variant_id: int,
                 quantity: int | None) -> None:
    """For a close that names a variant: the reservation must hold it (and that many units)."""
    r = st.reservations.get(reservation_id)
    if r is None:
        return  # the close itself reports it
    problem = holding_problem(r.lines, variant_id, quantity)
    if problem is not None:
        raise problem


def holding_problem(lines: Iterable[tuple[int, str, int]], variant_id: int,
                    quantity: int | None) -> ValidationFailed | None:
    """Why a close naming `variant_id` (and `quantity`) does not fit a reservation of these
    lines (None: it does)."""
    held = sum(q for v, _, q in lines if v == variant_id)
    if held == 0:
        return ValidationFailed({"reservation_id": f"does not hold variant {variant_id}"})
    if quantity is not None and quantity != held:
        return ValidationFailed({"quantity_delta": f"the reservation holds {held} units of "
                                 "this variant; it is released or deducted whole"})
    return None
