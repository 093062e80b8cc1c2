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
    were given back, or are given back at their deadline); such a cart is left out."""
    carts = sorted(wanted)
    # a conflict's no-op update waits for a concurrent first decision and returns it: one
    # round trip; carts the insert left out (not all reserved, or made up) are read after
    rows = await conn.fetch(
        "INSERT INTO cart_decisions (cart_id, outcome) "
        "SELECT u.c, u.o FROM unnest($1::text[], $2::text[]) AS u(c, o) "
        "WHERE (SELECT count(*) FROM reservations r WHERE r.cart_id = u.c) >= CASE u.o "
        "  WHEN 'COMMITTED' THEN length(split_part(u.c, '.', 2)) / 4 ELSE 1 END "
        "ON CONFLICT (cart_id) DO UPDATE SET cart_id = EXCLUDED.cart_id "
        "RETURNING cart_id, outcome",  # a cart id names its slots, 4 hex digits each
        carts, [wanted[c] for c in carts])
    decided: dict[str, CartOutcome] = {r["cart_id"]: r["outcome"] for r in rows}
    left = [c for c in carts if c not in decided]
    if left:
        rows = await conn.fetch(
            "SELECT cart_id, outcome FROM cart_decisions WHERE cart_id = ANY($1::text[])", left)
        decided.update({r["cart_id"]: r["outcome"] for r in rows})
    return decided
