"""The price of one unit, as product pages and search show it (list -> deal -> dynamic), and
what a listing shows for a product."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TypeAlias

from domain.pricing.deals import Deal, best_deal
from domain.pricing.dynamic import DynamicRule
from domain.pricing.offers import BuyBox, Item, Offer, buy_box

# a variant as a listing prices it: item as its listing seller sells it, compare-at cents,
# every offer, its rule
ListedVariant: TypeAlias = tuple[Item, int | None, Sequence[Offer], DynamicRule | None]


@dataclasses.dataclass(frozen=True)
class UnitPrice:
    list_cents: int
    deal: Deal | None
    deal_cents: int  # after the deal
    rule: DynamicRule | None
    dynamic_cents: int  # after the rule's floor and ceiling: what one unit costs


def unit_price(item: Item, deals: Iterable[Deal], rule: DynamicRule | None,
               now: datetime) -> UnitPrice:
    """list -> deal -> dynamic for one unit (the price PDP and search show)."""
    if rule is not None and (rule.variant_id, rule.seller_id) != (item.variant_id,
                                                                 item.seller_id):
        rule = None
    deal, after_deal = best_deal(deals, item, now)
    final = rule.clamp(after_deal) if rule is not None else after_deal
    return UnitPrice(item.list_price_cents, deal, after_deal, rule, final)


def priced_buy_box(item: Item, offers: Iterable[Offer], deals: Sequence[Deal],
                   rule: DynamicRule | None, now: datetime) -> BuyBox:
    """The buy box at the unit price each offer is charged at (list -> deal -> dynamic):
    `item` as its listing seller sells it, `rule` its listing seller's. A seller's deal
    counts, so an offer on a deal beats a cheaper list price that is dearer after it."""
    return buy_box(offers, lambda o: charged_cents(item, o, deals, rule, now))


def charged_cents(item: Item, offer: Offer, deals: Sequence[Deal], rule: DynamicRule | None,
                  now: datetime) -> int:
    """What a unit bought through `offer` costs (`item` as its listing seller sells it)."""
    return unit_price(item.sold_by(offer), deals, rule, now).dynamic_cents


def compared_price(own_offer: bool, compare_cents: int | None, list_cents: int,
                   unit_cents: int, on_deal: bool) -> int | None:
    """The price a shown price is compared with ("was"): the listing seller's compare-at price
    when it is above, else the price before a deal, else none."""
    if own_offer and compare_cents is not None and compare_cents > unit_cents:
        return compare_cents
    if on_deal and list_cents > unit_cents:
        return list_cents
    return None


def listing_price(variants: Iterable[ListedVariant], deals: Sequence[Deal],
                  now: datetime) -> tuple[int, int | None] | None:
    """What a listing (search result) shows for a product: the lowest buy-box unit price over
    its variants (item as its listing seller sells it, compare-at cents, offers, rule), with
    its `compared_price`. A variant out of stock everywhere counts at its listing seller's
    price (an out-of-stock product still shows one). None for no variants."""
    best: tuple[int, int | None] | None = None
    for item, compare, offers, rule in variants:
        winner = priced_buy_box(item, offers, deals, rule, now).winner
        sold = item.sold_by(winner) if winner is not None else item
        u = unit_price(sold, deals, rule, now)
        if best is None or u.dynamic_cents < best[0]:
            best = (u.dynamic_cents, compared_price(sold.seller_id == item.seller_id, compare,
                                                    u.list_cents, u.dynamic_cents,
                                                    u.deal is not None))
    return best
