"""Offers of a variant, the item the rules price, and the buy box that picks the offer shown."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable

from domain.errors import ValidationFailed


@dataclasses.dataclass(frozen=True)
class Offer:
    """One seller's offer of a variant (the product's own seller has one too)."""

    seller_id: int
    variant_id: int
    price_cents: int
    available: int
    seller_rating: float | None = None
    # the warehouse holding this seller's units (None: the listing seller's own offer, whose
    # units are in the platform's warehouses, or an offer made before offers had stock)
    warehouse_id: str | None = None


@dataclasses.dataclass(frozen=True)
class Item:
    """What the rules need to know about a variant as sold by one seller."""

    variant_id: int
    product_id: int
    seller_id: int
    list_price_cents: int
    category_ids: frozenset[int] = frozenset()  # the product's category and its ancestors
    brand: str | None = None

    def sold_by(self, offer: Offer) -> Item:
        """The same variant bought through `offer`: that seller, at that seller's price."""
        if offer.variant_id != self.variant_id:
            raise ValidationFailed({"seller_id": f"offer is for variant {offer.variant_id}"})
        return dataclasses.replace(self, seller_id=offer.seller_id,
                                   list_price_cents=offer.price_cents)


def holding(offers: Iterable[Offer], seller_id: int, units: int) -> tuple[Offer, ...]:
    """The offers as a buyer who holds `units` of `seller_id`'s already sees them: those
    units count as available to that seller."""
    return tuple(dataclasses.replace(o, available=o.available + units)
                 if o.seller_id == seller_id else o for o in offers)


@dataclasses.dataclass(frozen=True)
class BuyBox:
    winner: Offer | None  # None when no offer has stock
    others: tuple[Offer, ...]  # every other offer, in buy-box order, those without stock last


def buy_box(offers: Iterable[Offer],
            charged: Callable[[Offer], int] = lambda o: o.price_cents) -> BuyBox:
    """Among offers with stock: lowest price, then best seller rating (unrated last), then
    lowest seller id. `charged`: what a unit bought through the offer costs the shopper (by
    default the offer's own price; `listing.priced_buy_box` counts each seller's deals and
    rule, as a quote charges them)."""
    ranked = sorted(offers, key=lambda o: (o.available <= 0, charged(o),
                                           -(o.seller_rating if o.seller_rating is not None
                                             else -1.0), o.seller_id))
    if ranked and ranked[0].available > 0:
        return BuyBox(ranked[0], tuple(ranked[1:]))
    return BuyBox(None, tuple(ranked))
