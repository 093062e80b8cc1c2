"""How decided outcomes are stored (inventory_ops.outcome, JSON), so that a key replayed after
its partition forgot it gets the same answer: {"ok": true, "value": ...} or {"ok": false,
"error": {code, message, data, fields}}. A value is a reservation or an ADJUST's figures.
"""

from __future__ import annotations

import json
from typing import Literal, TypedDict, cast

from domain.inventory_commands import Adjusted, Done, Outcome, Refused, ReservationView


class StoredLine(TypedDict):
    variant_id: str
    warehouse_id: str
    quantity: int


class StoredReservation(TypedDict):
    reservation_id: str
    status: str
    expires_at_ms: int
    cart_id: str | None
    lines: list[StoredLine]


class StoredFigures(TypedDict):
    available: int
    reserved: int
    sold: int


class StoredError(TypedDict):
    code: str
    message: str
    data: dict[str, object]
    fields: dict[str, str] | None


class StoredDone(TypedDict):
    ok: Literal[True]
    value: StoredReservation | StoredFigures


class StoredRefused(TypedDict):
    ok: Literal[False]
    error: StoredError


Stored = StoredDone | StoredRefused


def encode(outcome: Outcome) -> str:
    stored: Stored
    if isinstance(outcome, Refused):
        stored = {"ok": False, "error": {
            "code": outcome.code, "message": outcome.message, "data": dict(outcome.data),
            "fields": None if outcome.fields is None else dict(outcome.fields)}}
    elif isinstance(outcome.value, ReservationView):
        stored = {"ok": True, "value": _reservation_json(outcome.value)}
    elif isinstance(outcome.value, Adjusted):
        v = outcome.value
        stored = {"ok": True, "value": {"available": v.available, "reserved": v.reserved,
                                        "sold": v.sold}}
    else:
        raise TypeError(f"reads are not stored: {outcome!r}")
    return json.dumps(stored)


def decode(stored: Stored) -> Outcome:
    if not stored["ok"]:
        e = stored["error"]
        return Refused(e["code"], e["message"], e.get("data") or {}, e.get("fields"))
    value = stored["value"]
    if "reservation_id" in value:
        return Done(_reservation_view(cast("StoredReservation", value)))
    figures = cast("StoredFigures", value)
    return Done(Adjusted(figures["available"], figures["reserved"], figures["sold"]))


def _reservation_json(r: ReservationView) -> StoredReservation:
    return {"reservation_id": r.reservation_id, "status": r.status,
            "expires_at_ms": r.expires_at_ms, "cart_id": r.cart_id,
            "lines": [{"variant_id": str(v), "warehouse_id": w, "quantity": q}
                      for v, w, q in r.lines]}


def _reservation_view(j: StoredReservation) -> ReservationView:
    return ReservationView(j["reservation_id"], j["status"], j["expires_at_ms"], j["cart_id"],
                           tuple((int(x["variant_id"]), x["warehouse_id"], x["quantity"])
                                 for x in j["lines"]))
