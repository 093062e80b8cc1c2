"""Decisions of carts held across several hash slots (migration 0022).

A cart over several slots is one reservation per slot, in as many partitions. Closing it
slot by slot let a commit and a release (or a partition's expiry) each win some of its slots.
Now the first decision is recorded here, once, before any slot closes; whoever closes a slot
(the caller that decided, a racing caller, the partition expiring it) closes it as recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from adapters.postgres import Conn

CartOutcome = Literal["COMMITTED", "RELEASED", "EXPIRED"]


async def decide(conn: Conn, wanted: Mapping[str, CartOutcome]) -> dict[str, CartOutcome]:
    """Records `wanted` for each cart not decided yet; answers every cart's decision (the
    one recorded first). Nothing is recorded for a cart none of whose reservations exists
    (an id made up), nor COMMITTED for one missing a slot's (refused whole: its other slots
    were given back, or are given back at their deadline); such a cart is left out. Two
    statements: the second reads what a concurrent first decision committed while the
    insert waited for it."""
    carts = sorted(wanted)
    await conn.execute(
        "INSERT INTO cart_decisions (cart_id, outcome) "
        "SELECT u.c, u.o FROM unnest($1::text[], $2::text[]) AS u(c, o) "
        "WHERE (SELECT count(*) FROM reservations r WHERE r.cart_id = u.c) >= CASE u.o "
        "  WHEN 'COMMITTED' THEN length(split_part(u.c, '.', 2)) / 4 ELSE 1 END "
        "ON CONFLICT (cart_id) DO NOTHING",  # a cart id names its slots, 4 hex digits each
        carts, [wanted[c] for c in carts])
    rows = await conn.fetch(
        "SELECT cart_id, outcome FROM cart_decisions WHERE cart_id = ANY($1::text[])", carts)
    return {r["cart_id"]: r["outcome"] for r in rows}
