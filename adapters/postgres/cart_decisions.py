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
    one recorded first). Two statements: the second reads what a concurrent first decision
    committed while the insert waited for it."""
    carts = sorted(wanted)
    await conn.execute(
        "INSERT INTO cart_decisions (cart_id, outcome) "
        "SELECT * FROM unnest($1::text[], $2::text[]) ON CONFLICT (cart_id) DO NOTHING",
        carts, [wanted[c] for c in carts])
    rows = await conn.fetch(
        "SELECT cart_id, outcome FROM cart_decisions WHERE cart_id = ANY($1::text[])", carts)
    return {r["cart_id"]: r["outcome"] for r in rows}
