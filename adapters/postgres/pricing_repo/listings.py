"""Listing prices: what search results and documents show per product, priced by the engine."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from adapters.postgres import Conn
from adapters.postgres.pricing_repo.inputs import load_pricing
from domain.pricing import listing_price
from domain.pricing.listing import ListedVariant


async def listing_prices(conn: Conn, variant_ids: Sequence[int],
                         now: datetime) -> dict[int, tuple[int, int | None]]:
    """What listings show per product (search results and documents): the pricing engine's
    lowest buy-box price over the product's sellable variants among these, with the price
    before it (`domain.pricing.listing_price`), in cents."""
    return (await listing_prices_until(conn, variant_ids, now))[0]


async def listing_prices_until(conn: Conn, variant_ids: Sequence[int], now: datetime
                               ) -> tuple[dict[int, tuple[int, int | None]], datetime | None]:
    """`listing_prices`, and when the first deal they were priced with ends or the next deal
    in scope starts (None: no deal touches them): the moment they may stop being true without
    any write."""
    if not variant_ids:
        return {}, None
    inputs = await load_pricing(conn, variant_ids, now)
    by_product: dict[int, list[ListedVariant]] = {}
    for vp in inputs.variants.values():
        by_product.setdefault(vp.item.product_id, []).append(
            (vp.item, vp.compare_price_cents, vp.offers, vp.rule))
    out = {}
    for pid, variants in by_product.items():
        shown = listing_price(variants, inputs.deals, now)
        if shown is not None:
            out[pid] = shown
    changes = [d.ends_at for d in inputs.deals]
    if inputs.next_deal_start is not None:
        changes.append(inputs.next_deal_start)
    return out, min(changes, default=None)
