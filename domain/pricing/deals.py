"""Deals: time-boxed discounts on every item in their scope; the best one applies (deals
never stack). A deal never makes an item free: where it would, it does not apply (a seller's
slip, as a price of 0 is)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from datetime import datetime
from typing import get_args

from domain.pricing._checks import aware, check
from domain.pricing._money import FULL_BP, Kind, discounted, kind_problems
from domain.pricing._scope import Scope, applies
from domain.pricing.offers import Item

MAX_DEAL_BP = FULL_BP - 1  # a new percent deal's most (stored ones of 10000 never apply)


@dataclasses.dataclass(frozen=True)
class Deal:
    """A time-boxed discount on every item in its scope, active in [starts_at, ends_at).
    `scope_value`: the product, category or seller id as text, or the brand (any case). A
    seller's deal (`seller_id`) applies only to that seller's offers of the items in scope."""

    deal_id: int
    scope: Scope
    scope_value: str
    kind: Kind
    amount: int
    starts_at: datetime
    ends_at: datetime
    seller_id: int | None = None  # a seller's deal: only what that seller sells

    def __post_init__(self) -> None:
        problems = kind_problems(self.kind, self.amount)
        if self.scope not in get_args(Scope):
            problems["scope"] = "must be product, category, brand or seller"
        if not self.scope_value:
            problems["scope_value"] = "must not be empty"
        problems |= aware(starts_at=self.starts_at, ends_at=self.ends_at)
        if "starts_at" not in problems and "ends_at" not in problems \
                and self.ends_at <= self.starts_at:
            problems["ends_at"] = "must be after starts_at"
        check(problems)

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at

    def price(self, cents: int) -> int:
        """The item's price under this deal; unchanged where the deal would make it free."""
        p = discounted(self.kind, self.amount, cents)
        return p if p > 0 else cents


def best_deal(deals: Iterable[Deal], item: Item, now: datetime) -> tuple[Deal | None, int]:
    """The active deal in scope that gives the lowest price, and that price (ties: lowest
    deal id). A deal that saves nothing is not applied: (None, list price)."""
    best: Deal | None = None
    price = item.list_price_cents
    for d in sorted(deals, key=lambda d: d.deal_id):
        if d.active(now) and applies(d.scope, d.scope_value, item) \
                and d.seller_id in (None, item.seller_id):
            p = d.price(item.list_price_cents)
            if p < price:
                best, price = d, p
    return best, price
