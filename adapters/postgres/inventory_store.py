"""PostgreSQL side of an inventory partition: load state, look up decided ops, group-commit.

One dedicated connection per partition (its actor is the only writer of its rows, and uses it
from one loop, one statement at a time). A group commit is a single statement (data-modifying
CTEs), so it is atomic by itself and costs one round trip.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping

import asyncpg

from adapters.postgres import cart_decisions, connect
from adapters.postgres.cart_decisions import CartOutcome
from adapters.postgres.inventory_outcomes import decode, encode
from adapters.postgres.outbox import OUTBOX_CHANNEL
from domain.inventory import Changes, Reservation, Stock
from domain.inventory_commands import Done, Outcome, ReservationView
from domain.inventory_slots import slot_of_reservation

_COMMIT = f"""
WITH stock_rows AS (
    INSERT INTO stock (variant_id, warehouse_id, available, reserved, sold, version, initial,
                       updated_at)
    SELECT u.v, u.w, u.a, u.r, u.s, u.ver, 0, now()
    FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::int[], $6::bigint[])
         AS u(v, w, a, r, s, ver)
    ON CONFLICT (variant_id, warehouse_id) DO UPDATE SET available = EXCLUDED.available,
        reserved = EXCLUDED.reserved, sold = EXCLUDED.sold, version = EXCLUDED.version,
        updated_at = now()
    RETURNING 1
), movements AS (
    INSERT INTO inventory_movements (variant_id, warehouse_id, kind, quantity, reservation_id,
        reason, available_after, reserved_after, sold_after)
    SELECT * FROM unnest($7::bigint[], $8::text[], $9::text[], $10::int[], $11::text[],
                         $12::text[], $13::int[], $14::int[], $15::int[])
    RETURNING 1
), new_reservations AS (
    -- a plain INSERT: an id that exists already (a replayed key) fails the whole statement
    INSERT INTO reservations (reservation_id, cart_id, partition, slot, status, lines,
                              expires_at)
    SELECT u.id, u.cart, $16, u.slot, u.status, u.lines::jsonb, to_timestamp(u.exp / 1000.0)
    FROM unnest($17::text[], $18::text[], $19::text[], $20::text[], $21::bigint[],
                $28::int[]) AS u(id, cart, status, lines, exp, slot)
    RETURNING 1
), closed_reservations AS (
    UPDATE reservations r SET status = u.status, updated_at = now()
    FROM unnest($26::text[], $27::text[]) AS u(id, status)
    WHERE r.reservation_id = u.id
    RETURNING 1
), ops AS (
    INSERT INTO inventory_ops (op_key, partition, outcome)
    SELECT u.k, $16, u.o::jsonb FROM unnest($22::text[], $23::text[]) AS u(k, o)
    RETURNING 1
), events AS (
    INSERT INTO outbox (event_type, aggregate_id, payload)
    SELECT 'inventory.changed', u.v, jsonb_build_object('variant_id', u.v::text,
                                                         'status', u.status)
    FROM unnest($24::bigint[], $25::text[]) AS u(v, status)
    RETURNING event_id
)
SELECT pg_notify('{OUTBOX_CHANNEL}', last::text)
FROM (SELECT max(event_id) AS last FROM events) e WHERE last IS NOT NULL
"""

class StorageRejected(Exception):
    """PostgreSQL refused a value of the batch (out of a column's range, a character text
    cannot hold): the batch is not written, and no retry of it can succeed."""


_RESERVATIONS = """
SELECT r.reservation_id, r.cart_id, r.status, r.lines,
       (extract(epoch FROM r.expires_at) * 1000)::bigint AS exp
FROM reservations r
"""


class InventoryStore:
    def __init__(self, dsn: str, partition: int) -> None:
        self.dsn = dsn
        self.partition = partition
        self.conn: asyncpg.Connection | None = None

    async def reconnect(self) -> None:
        """A fresh connection (after a failure the old one may be in any state)."""
        if self.conn is not None:
            with contextlib.suppress(Exception):
                self.conn.terminate()
        self.conn = None
        self.conn = await connect(
            self.dsn, server_settings={"application_name": f"aisle-inventory-{self.partition}"})

    async def close(self) -> None:
        if self.conn is not None:
            await self.conn.close()

    @property
    def db(self) -> asyncpg.Connection:
        assert self.conn is not None, "reconnect() first"
        return self.conn

    async def warehouses(self) -> dict[str, int | None]:
        """Every warehouse, and the seller owning it (None: the platform's)."""
        rows = await self.db.fetch("SELECT warehouse_id, seller_id FROM warehouses")
        return {r["warehouse_id"]: r["seller_id"] for r in rows}

    async def load_variants(self, ids: list[int]) -> dict[int, dict[str, Stock]]:
        """Stock rows of the variants that exist (a variant with no rows maps to {})."""
        rows = await self.db.fetch(
            """SELECT v.variant_id, s.warehouse_id, s.available, s.reserved, s.sold, s.initial,
                      s.version
               FROM unnest($1::bigint[]) AS k(id)
               JOIN product_variants v ON v.variant_id = k.id
               LEFT JOIN stock s ON s.variant_id = v.variant_id""",
            ids,
        )
        out: dict[int, dict[str, Stock]] = {}
        for r in rows:
            stock = out.setdefault(int(r["variant_id"]), {})
            if r["warehouse_id"] is not None:
                stock[r["warehouse_id"]] = Stock(r["available"], r["reserved"], r["sold"],
                                                 r["initial"], r["version"])
        return out

    async def decide_carts(self, wanted: Mapping[str, CartOutcome]) -> dict[str, CartOutcome]:
        """Each cart's decision (`wanted` recorded where there is none yet)."""
        return await cart_decisions.decide(self.db, wanted)

    async def owned_slots(self) -> set[int]:
        """The hash slots the map gives this partition."""
        rows = await self.db.fetch(
            "SELECT slot FROM inventory_slots WHERE partition = $1", self.partition)
        return {int(r["slot"]) for r in rows}

    async def open_reservations(self, slots: set[int]) -> list[Reservation]:
        rows = await self.db.fetch(
            _RESERVATIONS + "WHERE r.slot = ANY($1::int[]) AND r.status = 'OPEN'",
            sorted(slots))
        return [_reservation(r) for r in rows]

    async def hand_over(self, slots: list[int], target: int) -> list[int]:
        """Gives these of our slots to partition `target` (those no longer ours are left
        alone: a retried handoff moves nothing twice). The slots it moved."""
        async with self.db.transaction():
            rows = await self.db.fetch(
                """UPDATE inventory_slots SET partition = $3, moved_at = now()
                   WHERE partition = $1 AND slot = ANY($2::int[]) RETURNING slot""",
                self.partition, slots, target)
            if rows:
                await self.db.execute(
                    "INSERT INTO inventory_slot_moves (source, target, slots) "
                    "VALUES ($1, $2, $3)", self.partition, target, len(rows))
        return sorted(int(r["slot"]) for r in rows)

    async def reservations(self, ids: list[str]) -> list[Reservation]:
        rows = await self.db.fetch(
            _RESERVATIONS + "JOIN unnest($1::text[]) AS k(id) ON r.reservation_id = k.id", ids)
        return [_reservation(r) for r in rows]

    async def decided(self, keys: Mapping[str, str | None]) -> dict[str, Outcome]:
        """Outcomes already decided for these op keys. `keys` maps a reserve's key to its
        reservation id: a successful reserve is recorded by its reservation row alone, and
        answered as it was first answered (OPEN, its lines and deadline: nothing but the
        status changes on a reservation row), as a partition that remembers the key answers
        it; a GET tells the reservation's status now."""
        rids = [(k, r) for k, r in keys.items() if r is not None]
        rows = await self.db.fetch(
            """SELECT o.op_key AS key, o.outcome, NULL AS reservation_id, NULL AS cart_id,
                      NULL AS status, NULL::jsonb AS lines, NULL::bigint AS exp
               FROM unnest($1::text[]) AS k(key) JOIN inventory_ops o ON o.op_key = k.key
               UNION ALL
               SELECT k.key, NULL, r.reservation_id, r.cart_id, 'OPEN', r.lines,
                      (extract(epoch FROM r.expires_at) * 1000)::bigint
               FROM unnest($2::text[], $3::text[]) AS k(key, rid)
               JOIN reservations r ON r.reservation_id = k.rid""",
            list(keys), [k for k, _ in rids], [r for _, r in rids])
        return {r["key"]: decode(r["outcome"]) if r["outcome"] is not None
                else Done(ReservationView.of(_reservation(r))) for r in rows}

    async def commit(self, changes: Changes, outcomes: Mapping[str, Outcome]) -> None:
        """Stock rows, ledger, reservations, decided ops and status events: one statement.
        StorageRejected if PostgreSQL refuses a value of it (nothing is written then)."""
        try:
            await self._commit(changes, outcomes)
        except asyncpg.exceptions.DataError as exc:
            raise StorageRejected(str(exc)) from exc

    async def _commit(self, changes: Changes, outcomes: Mapping[str, Outcome]) -> None:
        stock = list(changes.stock.items())
        mv = changes.movements
        res = [r for r in changes.reservations.values() if r.reservation_id in changes.created]
        closed = [r for r in changes.reservations.values()
                  if r.reservation_id not in changes.created]
        flips = list(changes.status_flips.items())
        await self.db.execute(
            _COMMIT,
            [k[0] for k, _ in stock], [k[1] for k, _ in stock],
            [s.available for _, s in stock], [s.reserved for _, s in stock],
            [s.sold for _, s in stock], [s.version for _, s in stock],
            [m.variant_id for m in mv], [m.warehouse_id for m in mv], [m.kind for m in mv],
            [m.quantity for m in mv], [m.reservation_id for m in mv], [m.reason for m in mv],
            [m.after.available for m in mv], [m.after.reserved for m in mv],
            [m.after.sold for m in mv],
            self.partition,
            [r.reservation_id for r in res], [r.cart_id for r in res], [r.status for r in res],
            [json.dumps(r.lines) for r in res], [r.expires_at_ms for r in res],
            list(outcomes), [encode(o) for o in outcomes.values()],
            [v for v, _ in flips], [s for _, s in flips],
            [r.reservation_id for r in closed], [r.status for r in closed],
            [slot_of_reservation(r.reservation_id) for r in res],
        )


def _reservation(r: asyncpg.Record) -> Reservation:
    lines = [(int(v), str(w), int(q)) for v, w, q in r["lines"]]
    return Reservation(r["reservation_id"], lines, int(r["exp"]), r["status"], r["cart_id"])
