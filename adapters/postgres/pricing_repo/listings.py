"""Listing prices: what search results and documents show per product, priced by the engine."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime

from adapters.postgres import Conn
from adapters.postgres.pricing_repo.inputs import load_pricing
from domain.pricing import listing_price
from domain.pricing.listing import ListedVariant


@dataclasses.dataclass(frozen=True)
class Listings:
    """What listings show of some variants' products, priced by the engine now."""

    prices: dict[int, tuple[int, int | None]]  # product -> (cents, cents before it)
    # when the first deal they were priced with ends or the next deal in scope starts (None:
    # no deal touches them): the moment they may stop being true without any write
    until: datetime | None
    # variant -> the warehouses of other sellers whose offers of it are live (an offer
    # withdrawn, or a seller suspended, leaves units there that nobody can buy)
    offered_from: dict[int, tuple[str, ...]]


async def listing_prices(conn: Conn, variant_ids: Sequence[int],
                         now: datetime) -> dict[int, tuple[int, int | None]]:
    """What listings show per product (search results and documents): the pricing engine's
    lowest buy-box price over the product's sellable variants among these, with the price
    before it (`domain.pricing.listing_price`), in cents."""
    return (await listings(conn, variant_ids, now)).prices


async def listings(conn: Conn, variant_ids: Sequence[int], now: datetime) -> Listings:
    """`listing_prices`, with when they may change and the warehouses of live offers."""
    if not variant_ids:
        return Listings({}, None, {})
    inputs = await load_pricing(conn, variant_ids, now)
    by_product: dict[int, list[ListedVariant]] = {}
    offered_from: dict[int, tuple[str, ...]] = {}
    for v, vp in inputs.variants.items():
        by_product.setdefault(vp.item.product_id, []).append(
            (vp.item, vp.compare_price_cents, vp.offers, vp.rule))
        if live := tuple(sorted({o.warehouse_id for o in vp.offers if o.warehouse_id
                                 and o.seller_id != vp.item.seller_id})):
            offered_from[v] = live
    out = {}
    for pid, variants in by_product.items():
        shown = listing_price(variants, inputs.deals, now)
        if shown is not None:
            out[pid] = shown
    changes = [d.ends_at for d in inputs.deals]
    if inputs.next_deal_start is not None:
        changes.append(inputs.next_deal_start)
    return Listings(out, min(changes, default=None), offered_from)
