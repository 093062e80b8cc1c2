"""Inventory partition rules: a plain synchronous state machine (no I/O, no Ray, no await).

Stock per variant per warehouse: `available` (sellable), `reserved` (held by open
reservations), `sold` (deducted). Every operation checks and changes in one synchronous call
and records what changed (`drain()`), for the actor to group-commit. Conservation:
available + reserved + sold == initial + sum(ADJUST deltas), per variant and warehouse.

Warehouse allocation when the caller names none: take from the warehouse with the most
available (ties: lowest warehouse id), then the next, splitting the quantity as needed, among
the platform's warehouses only: a warehouse a seller owns (`owned`) holds that seller's units
of the variants it offers, reserved only by naming it (the offer that won the buy box).
"""

from __future__ import annotations

import dataclasses
import heapq
from collections.abc import Callable, Iterable, Mapping
from typing import Literal, NotRequired, TypedDict

from domain.errors import Conflict, NotFound, ValidationFailed
from domain.inventory_slots import spans_slots

Status = Literal["IN_STOCK", "LOW_STOCK", "OUT_OF_STOCK"]
MAX_QUANTITY = 1_000_000
MAX_UNITS = 2**31 - 1  # a warehouse's available, reserved or sold units (stored as integer)
MAX_REASON = 200


class ShortItem(TypedDict):
    """An item there is not enough of (JSON-ready: the API shows it as is)."""

    variant_id: str
    requested: int
    available: int
    warehouse_id: NotRequired[str]


class InsufficientStock(Conflict):
    """`items`: every short item."""

    def __init__(self, items: list[ShortItem]) -> None:
        super().__init__("not enough stock", code="insufficient_stock", items=items)
        self.items = items


class UnknownVariant(NotFound):
    code = "unknown_variant"


class ReservationNotFound(NotFound):
    code = "reservation_not_found"


class ReservationClosed(Conflict):
    def __init__(self, reservation_id: str, status: str) -> None:
        super().__init__(f"reservation {reservation_id} is {status}", code="reservation_closed",
                         status=status)


@dataclasses.dataclass
class Stock:
    available: int = 0
    reserved: int = 0
    sold: int = 0
    initial: int = 0
    version: int = 0


@dataclasses.dataclass(frozen=True, slots=True)
class Item:
    variant_id: int
    quantity: int
    warehouse_id: str | None = None


@dataclasses.dataclass
class Reservation:
    reservation_id: str
    lines: list[tuple[int, str, int]]  # (variant_id, warehouse_id, quantity)
    expires_at_ms: int
    status: str = "OPEN"
    cart_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Movement:
    variant_id: int
    warehouse_id: str
    kind: str
    quantity: int
    reservation_id: str | None
    reason: str | None
    after: Stock


@dataclasses.dataclass
class Changes:
    stock: dict[tuple[int, str], Stock]
    movements: list[Movement]
    reservations: dict[str, Reservation]  # made or closed since the last drain
    status_flips: dict[int, Status]
    created: set[str] = dataclasses.field(default_factory=set)  # of those, made since then


def stock_status(available: int, low_threshold: int) -> tuple[Status, str]:
    hint = "50+" if available >= 50 else str(max(available, 0))
    if available <= 0:
        return "OUT_OF_STOCK", hint
    return ("LOW_STOCK" if available <= low_threshold else "IN_STOCK"), hint


class PartitionState:
    def __init__(self, clock: Callable[[], int], low_stock_threshold: int = 5) -> None:
        self.clock = clock
        self.low = low_stock_threshold
        self.stock: dict[int, dict[str, Stock]] = {}
        self.warehouses: set[str] = set()
        self.owned: dict[str, int] = {}  # warehouse -> the seller whose units it holds
        self.reservations: dict[str, Reservation] = {}
        self._deadlines: list[tuple[int, str]] = []  # heap of (expires_at_ms, reservation id)
        self._touched: dict[tuple[int, str], Stock] = {}
        self._movements: list[Movement] = []
        self._res_changes: dict[str, Reservation] = {}
        self._res_created: set[str] = set()
        self._status_before: dict[int, Status] = {}

    # -- loading ----------------------------------------------------------------------------
    def load_variant(self, variant_id: int, rows: dict[str, Stock]) -> None:
        self.stock[variant_id] = rows

    def load_reservation(self, r: Reservation) -> None:
        self.reservations[r.reservation_id] = r
        heapq.heappush(self._deadlines, (r.expires_at_ms, r.reservation_id))

    def forget(self, variants: Iterable[int], reservations: Iterable[str]) -> None:
        """Drops variants and reservations from memory (handed to another owner: what is
        committed is in PostgreSQL). Only between batches: nothing of them may be pending."""
        for v in variants:
            self.stock.pop(v, None)
        for rid in reservations:
            self.reservations.pop(rid, None)  # its deadline entry is skipped when due

    def knows(self, variant_id: int) -> bool:
        return variant_id in self.stock

    def status(self, variant_id: int) -> tuple[Status, str]:
        total = sum(s.available for s in self.stock.get(variant_id, {}).values())
        return stock_status(total, self.low)

    # -- operations -------------------------------------------------------------------------
    def reserve(self, reservation_id: str, items: Iterable[Item], ttl_ms: int,
                cart_id: str | None = None) -> Reservation:
        if reservation_id in self.reservations:
            raise Conflict(f"reservation {reservation_id} exists", code="reservation_exists")
        lines = self._allocate(list(items))
        for v, w, q in lines:
            self._move(v, w, "RESERVE", q, reservation_id, None, d_avail=-q, d_res=q)
        r = Reservation(reservation_id, lines, self.clock() + ttl_ms, "OPEN", cart_id)
        self.reservations[reservation_id] = self._res_changes[reservation_id] = r
        self._res_created.add(reservation_id)
        heapq.heappush(self._deadlines, (r.expires_at_ms, reservation_id))
        return r

    def release(self, reservation_id: str, kind: str = "RELEASE") -> Reservation:
        r = self._open(reservation_id)
        for v, w, q in r.lines:
            self._move(v, w, kind, q, reservation_id, None, d_avail=q, d_res=-q)
        return self._close(r, "RELEASED" if kind == "RELEASE" else "EXPIRED")

    def deduct(self, reservation_id: str) -> Reservation:
        r = self._open(reservation_id)
        for v, w, q in r.lines:
            self._move(v, w, "DEDUCT", q, reservation_id, None, d_res=-q, d_sold=q)
        return self._close(r, "COMMITTED")

    def adjust(self, variant_id: int, warehouse_id: str, delta: int, reason: str) -> Stock:
        if delta == 0 or abs(delta) > MAX_QUANTITY:
            raise ValidationFailed({"quantity_delta": f"must be non-zero, at most {MAX_QUANTITY}"})
        if not reason or len(reason) > MAX_REASON or "\x00" in reason:
            raise ValidationFailed({"reason": f"must be 1 to {MAX_REASON} characters, no NUL"})
        rows = self._rows(variant_id)
        if warehouse_id not in self.warehouses:
            raise ValidationFailed({"warehouse_id": f"unknown warehouse {warehouse_id!r}"})
        have = rows.get(warehouse_id, Stock()).available
        if have + delta > MAX_UNITS:
            raise ValidationFailed({"quantity_delta": f"would take available to {have + delta}, "
                                                      f"past {MAX_UNITS}"})
        if have + delta < 0:
            raise InsufficientStock([{"variant_id": str(variant_id), "warehouse_id": warehouse_id,
                                      "requested": -delta, "available": have}])
        rows.setdefault(warehouse_id, Stock())
        return self._move(variant_id, warehouse_id, "ADJUST", delta, None, reason, d_avail=delta)

    def set_available(self, variant_id: int, warehouse_id: str, on_hand: int,
                      reason: str) -> Stock:
        """A seller stating its units on hand (holds included): an ADJUST that makes available
        `on_hand` less what open reservations hold there (never below 0; a feed re-sending
        the same figure sells nothing twice); no movement when it is so already."""
        if not 0 <= on_hand <= MAX_UNITS:
            raise ValidationFailed({"quantity": f"must be 0 to {MAX_UNITS}"})
        rows = self._rows(variant_id)
        if warehouse_id not in self.warehouses:
            raise ValidationFailed({"warehouse_id": f"unknown warehouse {warehouse_id!r}"})
        have = rows.get(warehouse_id)
        available = max(0, on_hand - (have.reserved if have else 0))
        if have is not None and have.available == available:
            return dataclasses.replace(have)
        if have is None and available == 0:
            return Stock()
        return self.adjust(variant_id, warehouse_id, available - (have.available if have else 0),
                           reason)

    def offered(self, variant_id: int) -> dict[str, int]:
        """Units available in each warehouse a seller owns (its offers' stock)."""
        return {w: s.available for w, s in self.stock.get(variant_id, {}).items()
                if w in self.owned}

    def due_carts(self) -> set[str]:
        """Carts over several slots with an open reservation here that is due: those expire
        only as the cart's decision says (a commit of the whole cart may have come first).
        O(due): the heap is walked only where entries are due."""
        now, heap, found = self.clock(), self._deadlines, set()
        todo = [0]
        while todo:
            i = todo.pop()
            if i >= len(heap) or heap[i][0] > now:
                continue
            r = self.reservations.get(heap[i][1])
            if r is not None and r.status == "OPEN" and spans_slots(r.cart_id):
                found.add(r.cart_id)
            todo += (2 * i + 1, 2 * i + 2)
        return found

    def expire(self, decided: Mapping[str, str] | None = None) -> list[Reservation]:
        """Releases the open reservations whose time is up (O(due), not O(all)). One of a
        cart over several slots closes as `decided` (cart -> COMMITTED, RELEASED or
        EXPIRED) says, and waits while the cart is not in it. Closed ones leave memory at
        their deadline too: PostgreSQL has them if anyone asks again."""
        now = self.clock()
        decided = decided or {}
        expired: list[Reservation] = []
        waiting: list[tuple[int, str]] = []
        while self._deadlines and self._deadlines[0][0] <= now:
            due, rid = heapq.heappop(self._deadlines)
            r = self.reservations.get(rid)
            if r is None:
                continue
            if r.status == "OPEN":
                # a one-slot reservation expires alone; a cart's, as the cart was decided
                outcome = decided.get(r.cart_id) if spans_slots(r.cart_id) else "EXPIRED"
                if outcome is None:
                    waiting.append((due, rid))
                    continue
                if outcome == "COMMITTED":
                    self.deduct(rid)
                else:
                    expired.append(self.release(
                        rid, kind="RELEASE" if outcome == "RELEASED" else "EXPIRE"))
            del self.reservations[rid]
        for entry in waiting:
            heapq.heappush(self._deadlines, entry)
        return expired

    def drain(self) -> Changes:
        flips: dict[int, Status] = {}
        for v, before in self._status_before.items():
            now, _ = self.status(v)
            if now != before:
                flips[v] = now
        changes = Changes(dict(self._touched), self._movements, dict(self._res_changes), flips,
                          self._res_created)
        self._touched, self._movements, self._res_changes, self._status_before = {}, [], {}, {}
        self._res_created = set()
        return changes

    # -- internals --------------------------------------------------------------------------
    def _rows(self, variant_id: int) -> dict[str, Stock]:
        rows = self.stock.get(variant_id)
        if rows is None:
            raise UnknownVariant(f"variant {variant_id} not found")
        return rows

    def _open(self, reservation_id: str) -> Reservation:
        r = self.reservations.get(reservation_id)
        if r is None:
            raise ReservationNotFound(f"reservation {reservation_id} not found")
        if r.status != "OPEN":
            raise ReservationClosed(reservation_id, r.status)
        return r

    def _close(self, r: Reservation, status: str) -> Reservation:
        r.status = status
        self._res_changes[r.reservation_id] = r
        return r

    def _allocate(self, items: list[Item]) -> list[tuple[int, str, int]]:
        """Lines for every item, or InsufficientStock naming every short item."""
        left = {(v, w): s.available for v in {i.variant_id for i in items}
                for w, s in self._rows(v).items()}
        lines: list[tuple[int, str, int]] = []
        short: list[ShortItem] = []
        for item in items:
            if not 1 <= item.quantity <= MAX_QUANTITY:
                raise ValidationFailed({"quantity": f"must be between 1 and {MAX_QUANTITY}"})
            whs = sorted((w for (v, w) in left if v == item.variant_id and w not in self.owned),
                         key=lambda w: (-left[(item.variant_id, w)], w))
            if item.warehouse_id is not None:
                if item.warehouse_id not in self.warehouses:
                    raise ValidationFailed(
                        {"warehouse_id": f"unknown warehouse {item.warehouse_id!r}"})
                whs = [item.warehouse_id] if (item.variant_id, item.warehouse_id) in left else []
            need = item.quantity
            for w in whs:
                take = min(need, left[(item.variant_id, w)])
                if take > 0:
                    lines.append((item.variant_id, w, take))
                    left[(item.variant_id, w)] -= take
                    need -= take
            if need > 0:
                missing: ShortItem = {"variant_id": str(item.variant_id),
                                      "requested": item.quantity,
                                      "available": item.quantity - need}
                if item.warehouse_id:
                    missing["warehouse_id"] = item.warehouse_id
                short.append(missing)
        if short:
            raise InsufficientStock(short)
        return lines

    def _move(self, v: int, w: str, kind: str, qty: int, rid: str | None, reason: str | None,
              d_avail: int = 0, d_res: int = 0, d_sold: int = 0) -> Stock:
        if v not in self._status_before:
            self._status_before[v] = self.status(v)[0]
        s = self.stock[v][w]
        s.available += d_avail
        s.reserved += d_res
        s.sold += d_sold
        s.version += 1
        assert s.available >= 0 and s.reserved >= 0 and s.sold >= 0, (v, w, s)
        snapshot = dataclasses.replace(s)
        self._touched[(v, w)] = snapshot
        self._movements.append(Movement(v, w, kind, qty, rid, reason, snapshot))
        return snapshot

