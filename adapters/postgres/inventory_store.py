"""PostgreSQL side of an inventory partition: load state, look up decided ops, group-commit."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from domain.inventory import Changes, Reservation, Stock

_UPSERT_STOCK = """
INSERT INTO stock (variant_id, warehouse_id, available, reserved, sold, version, initial,
                   updated_at)
SELECT u.v, u.w, u.a, u.r, u.s, u.ver, 0, now()
FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::int[], $6::bigint[])
     AS u(v, w, a, r, s, ver)
ON CONFLICT (variant_id, warehouse_id) DO UPDATE SET available = EXCLUDED.available,
    reserved = EXCLUDED.reserved, sold = EXCLUDED.sold, version = EXCLUDED.version,
    updated_at = now()
"""

_MOVEMENTS = """
INSERT INTO inventory_movements (variant_id, warehouse_id, kind, quantity, reservation_id,
    reason, available_after, reserved_after, sold_after)
SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::int[], $5::text[], $6::text[],
                     $7::int[], $8::int[], $9::int[])
"""

_RESERVATIONS = """
INSERT INTO reservations (reservation_id, cart_id, partition, status, lines, expires_at)
SELECT u.id, u.cart, $1, u.status, u.lines::jsonb, to_timestamp(u.exp / 1000.0)
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[])
     AS u(id, cart, status, lines, exp)
ON CONFLICT (reservation_id) DO UPDATE SET status = EXCLUDED.status, updated_at = now()
"""

_OPS = """
INSERT INTO inventory_ops (op_key, partition, outcome)
SELECT u.k, $1, u.o::jsonb FROM unnest($2::text[], $3::text[]) AS u(k, o)
"""

_EVENTS = """
WITH e AS (
    INSERT INTO outbox (event_type, aggregate_id, payload)
    SELECT 'inventory.changed', u.v, jsonb_build_object('variant_id', u.v::text,
                                                         'status', u.status)
    FROM unnest($1::bigint[], $2::text[]) AS u(v, status)
    RETURNING event_id)
SELECT pg_notify('aisle_outbox', max(event_id)::text) FROM e
"""


class InventoryStore:
    def __init__(self, pool: asyncpg.Pool, partition: int) -> None:
        self.pool = pool
        self.partition = partition

    async def warehouses(self) -> set[str]:
        rows = await self.pool.fetch("SELECT warehouse_id FROM warehouses")
        return {r["warehouse_id"] for r in rows}

    async def load_variants(self, ids: list[int]) -> dict[int, dict[str, Stock]]:
        """Stock rows of the variants that exist (a variant with no rows maps to {})."""
        rows = await self.pool.fetch(
            """SELECT v.variant_id, s.warehouse_id, s.available, s.reserved, s.sold, s.initial,
                      s.version
               FROM product_variants v LEFT JOIN stock s USING (variant_id)
               WHERE v.variant_id = ANY($1::bigint[])""",
            ids,
        )
        out: dict[int, dict[str, Stock]] = {}
        for r in rows:
            stock = out.setdefault(int(r["variant_id"]), {})
            if r["warehouse_id"] is not None:
                stock[r["warehouse_id"]] = Stock(r["available"], r["reserved"], r["sold"],
                                                 r["initial"], r["version"])
        return out

    async def open_reservations(self) -> list[Reservation]:
        rows = await self.pool.fetch(
            """SELECT reservation_id, cart_id, status, lines,
                      (extract(epoch FROM expires_at) * 1000)::bigint AS exp
               FROM reservations WHERE partition = $1 AND status = 'OPEN'""",
            self.partition,
        )
        return [_reservation(r) for r in rows]

    async def reservations(self, ids: list[str]) -> list[Reservation]:
        rows = await self.pool.fetch(
            """SELECT reservation_id, cart_id, status, lines,
                      (extract(epoch FROM expires_at) * 1000)::bigint AS exp
               FROM reservations WHERE reservation_id = ANY($1::text[])""",
            ids,
        )
        return [_reservation(r) for r in rows]

    async def decided(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT op_key, outcome FROM inventory_ops WHERE op_key = ANY($1::text[])", keys
        )
        return {r["op_key"]: r["outcome"] for r in rows}

    async def commit(self, changes: Changes, outcomes: dict[str, dict[str, Any]]) -> None:
        """One transaction: stock rows, ledger, reservations, decided ops, status events."""
        stock = list(changes.stock.items())
        mv = changes.movements
        res = list(changes.reservations.values())
        async with self.pool.acquire(timeout=10) as conn, conn.transaction():
            if stock:
                await conn.execute(
                    _UPSERT_STOCK, [k[0] for k, _ in stock], [k[1] for k, _ in stock],
                    [s.available for _, s in stock], [s.reserved for _, s in stock],
                    [s.sold for _, s in stock], [s.version for _, s in stock],
                )
            if mv:
                await conn.execute(
                    _MOVEMENTS, [m.variant_id for m in mv], [m.warehouse_id for m in mv],
                    [m.kind for m in mv], [m.quantity for m in mv],
                    [m.reservation_id for m in mv], [m.reason for m in mv],
                    [m.after.available for m in mv], [m.after.reserved for m in mv],
                    [m.after.sold for m in mv],
                )
            if res:
                await conn.execute(
                    _RESERVATIONS, self.partition, [r.reservation_id for r in res],
                    [r.cart_id for r in res], [r.status for r in res],
                    [json.dumps(r.lines) for r in res], [r.expires_at_ms for r in res],
                )
            if outcomes:
                await conn.execute(_OPS, self.partition, list(outcomes),
                                   [json.dumps(o) for o in outcomes.values()])
            if changes.status_flips:
                flips = list(changes.status_flips.items())
                await conn.execute(_EVENTS, [v for v, _ in flips], [s for _, s in flips])


def _reservation(r: asyncpg.Record) -> Reservation:
    lines = [(int(v), str(w), int(q)) for v, w, q in r["lines"]]
    return Reservation(r["reservation_id"], lines, int(r["exp"]), r["status"], r["cart_id"])
