"""List price changes: the variant's price, its history row and a `price.changed` event."""

from __future__ import annotations

import dataclasses

from adapters.postgres import Conn
from adapters.postgres.outbox import OUTBOX_CHANNEL
from domain.errors import Conflict, ValidationFailed
from domain.inventory import UnknownVariant


@dataclasses.dataclass(frozen=True)
class PriceChange:
    variant_id: int
    product_id: int
    old_cents: int
    new_cents: int
    reason: str
    change_id: int


_PRICE_CHANGE = f"""
WITH v AS (
    UPDATE product_variants SET price_cents = $3
    WHERE variant_id = $1 AND price_cents = $2
    RETURNING variant_id, product_id
), h AS (
    INSERT INTO price_history (variant_id, old_cents, new_cents, reason)
    SELECT variant_id, $2, $3, $4 FROM v
    RETURNING change_id
), e AS (
    INSERT INTO outbox (event_type, aggregate_id, payload)
    SELECT 'price.changed', v.product_id, jsonb_build_object(
        'product_id', v.product_id::text, 'variant_id', v.variant_id::text,
        'old_cents', $2::bigint, 'new_cents', $3::bigint, 'reason', $4::text)
    FROM v
    RETURNING event_id
)
SELECT v.product_id, h.change_id, pg_notify('{OUTBOX_CHANNEL}', e.event_id::text) AS notified
FROM v, h, e
"""


async def record_price_change(conn: Conn, variant_id: int, old_cents: int, new_cents: int,
                              reason: str) -> PriceChange | None:
    """Sets the variant's list price from `old_cents` to `new_cents`, with its price_history
    row and a `price.changed` outbox event (aggregate: the product), in one statement. None
    when the prices are equal (nothing to change). Conflict (price_changed) when the price is
    no longer `old_cents`; NotFound for an unknown variant."""
    if old_cents < 0 or new_cents < 0 or not 0 < len(reason) <= 64:
        raise ValidationFailed({"new_cents": "prices must not be negative; reason 1 to 64 chars"})
    if old_cents == new_cents:
        return None
    row = await conn.fetchrow(_PRICE_CHANGE, variant_id, old_cents, new_cents, reason)
    if row is None:
        current = await conn.fetchval(
            "SELECT price_cents FROM product_variants WHERE variant_id = $1", variant_id)
        if current is None:
            raise UnknownVariant(f"variant {variant_id} not found")
        raise Conflict(f"variant {variant_id} costs {current} cents now, not {old_cents}",
                       code="price_changed", current_cents=current)
    return PriceChange(variant_id, row["product_id"], old_cents, new_cents, reason,
                       row["change_id"])
