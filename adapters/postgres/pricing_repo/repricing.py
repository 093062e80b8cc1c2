"""The dynamic-pricing pass: each enabled rule's next price, recorded as a price change."""

from __future__ import annotations

from datetime import datetime

from adapters.postgres import Conn
from adapters.postgres.pricing_repo._rows import dynamic_rule
from adapters.postgres.pricing_repo.price_changes import PriceChange, record_price_change
from domain.errors import Conflict
from domain.pricing import dynamic_price

_REPRICING = """
SELECT r.*, p.seller_id, v.price_cents,
       COALESCE((SELECT sum(s.available) FROM stock s
                 JOIN warehouses w ON w.warehouse_id = s.warehouse_id
                 WHERE s.variant_id = r.variant_id AND w.seller_id IS NULL), 0)::int AS stock,
       COALESCE((SELECT sum(m.quantity) FROM inventory_movements m
                 JOIN warehouses w ON w.warehouse_id = m.warehouse_id
                 WHERE m.variant_id = r.variant_id AND m.kind = 'DEDUCT'
                   AND w.seller_id IS NULL
                   AND m.created_at > $1::timestamptz - make_interval(secs => r.window_s)),
                0)::int AS velocity
FROM dynamic_price_rules r
JOIN product_variants v ON v.variant_id = r.variant_id
JOIN products p ON p.product_id = v.product_id
WHERE r.enabled AND p.status = 'ACTIVE' AND v.status = 'ACTIVE' AND r.variant_id > $2
ORDER BY r.variant_id LIMIT $3
"""


async def reprice(conn: Conn, now: datetime, after_variant: int = 0,
                  limit: int = 500) -> tuple[list[PriceChange], int | None]:
    """One page of the dynamic-pricing pass (what the repricing actor runs on a schedule):
    each enabled rule's next price from stock and units sold (DEDUCTs) in its window, recorded
    with reason 'dynamic' when it moves. Returns the changes and the variant to continue after
    (None when this was the last page). A price changed meanwhile by its seller is left alone."""
    rows = await conn.fetch(_REPRICING, now, after_variant, limit)
    changes: list[PriceChange] = []
    for r in rows:
        new = dynamic_price(dynamic_rule(r), r["price_cents"], r["stock"], r["velocity"])
        try:
            change = await record_price_change(conn, r["variant_id"], r["price_cents"], new,
                                               "dynamic")
        except Conflict:
            continue
        if change is not None:
            changes.append(change)
    return changes, (rows[-1]["variant_id"] if len(rows) == limit else None)
