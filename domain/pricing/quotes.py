"""The quote: the exact price of an order, each line's unit price through list -> deal ->
dynamic, then the coupon split across the lines it applies to; every step is recorded."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Literal, TypedDict

from domain.pricing._checks import aware, check
from domain.pricing._money import CURRENCY
from domain.pricing.coupons import Coupon, CouponUsage, allocate, coupon_discount, validate_coupon
from domain.pricing.deals import Deal
from domain.pricing.dynamic import DynamicRule
from domain.pricing.listing import UnitPrice, unit_price
from domain.pricing.offers import Item

MAX_LINES = 100
MAX_LINE_QUANTITY = 10_000


class ListStep(TypedDict):
    step: Literal["list"]
    unit_cents: int


class DealStep(TypedDict):
    step: Literal["deal"]
    unit_cents: int
    deal_id: str | None


class RuleBounds(TypedDict):
    floor_cents: int
    ceiling_cents: int


class DynamicStep(TypedDict):
    step: Literal["dynamic"]
    unit_cents: int
    rule: RuleBounds | None


class CouponStep(TypedDict):
    step: Literal["coupon"]
    discount_cents: int
    code: str | None


class QuotedLineJson(TypedDict):
    variant_id: str
    seller_id: str
    quantity: int
    unit_cents: int
    breakdown: list[ListStep | DealStep | DynamicStep | CouponStep]
    subtotal_cents: int
    coupon_cents: int
    total_cents: int


class QuotePayload(TypedDict):
    """A quote, JSON-ready: ids as strings, integer cents."""

    currency: str
    coupon: str | None
    lines: list[QuotedLineJson]
    subtotal_cents: int
    discount_cents: int
    total_cents: int
    priced_at: str  # ISO 8601


@dataclasses.dataclass(frozen=True)
class Line:
    item: Item
    quantity: int


@dataclasses.dataclass(frozen=True)
class QuotedLine:
    item: Item
    quantity: int
    unit: UnitPrice
    subtotal_cents: int  # unit.dynamic_cents * quantity
    coupon_cents: int  # this line's share of the coupon's discount
    total_cents: int  # subtotal_cents - coupon_cents

    def to_json(self, coupon_code: str | None) -> QuotedLineJson:
        u = self.unit
        rule: RuleBounds | None = None if u.rule is None else {
            "floor_cents": u.rule.floor_cents, "ceiling_cents": u.rule.ceiling_cents}
        return {
            "variant_id": str(self.item.variant_id), "seller_id": str(self.item.seller_id),
            "quantity": self.quantity, "unit_cents": u.dynamic_cents,
            "breakdown": [
                {"step": "list", "unit_cents": u.list_cents},
                {"step": "deal", "unit_cents": u.deal_cents,
                 "deal_id": None if u.deal is None else str(u.deal.deal_id)},
                {"step": "dynamic", "unit_cents": u.dynamic_cents, "rule": rule},
                {"step": "coupon", "discount_cents": self.coupon_cents,
                 "code": coupon_code if self.coupon_cents else None},
            ],
            "subtotal_cents": self.subtotal_cents, "coupon_cents": self.coupon_cents,
            "total_cents": self.total_cents,
        }


@dataclasses.dataclass(frozen=True)
class Quote:
    lines: tuple[QuotedLine, ...]
    coupon_code: str | None
    subtotal_cents: int  # sum of line subtotals (after deals and rules)
    discount_cents: int  # the coupon's discount
    total_cents: int  # what the order pays
    priced_at: datetime

    def to_payload(self) -> QuotePayload:
        """JSON-ready (ids as strings, integer cents): what a quote token signs."""
        return {"currency": CURRENCY, "coupon": self.coupon_code,
                "lines": [line.to_json(self.coupon_code) for line in self.lines],
                "subtotal_cents": self.subtotal_cents, "discount_cents": self.discount_cents,
                "total_cents": self.total_cents, "priced_at": self.priced_at.isoformat()}


def quote(lines: Sequence[Line], deals: Iterable[Deal], rules: Iterable[DynamicRule],
          coupon: Coupon | None, usage: CouponUsage | None, now: datetime) -> Quote:
    """The exact price of an order: list -> deal -> dynamic per unit, then the coupon split
    across the lines it applies to. ValidationFailed for bad lines, CouponRejected for a coupon
    that cannot be used."""
    problems = aware(now=now)
    if not 1 <= len(lines) <= MAX_LINES:
        problems["items"] = f"1 to {MAX_LINES} items"
    for i, line in enumerate(lines):
        if not 1 <= line.quantity <= MAX_LINE_QUANTITY:
            problems[f"items.{i}.quantity"] = f"must be 1 to {MAX_LINE_QUANTITY}"
        if line.item.list_price_cents < 0:
            problems[f"items.{i}.price"] = "must not be negative"
    check(problems)
    deals = tuple(deals)
    by_key = {(r.variant_id, r.seller_id): r for r in rules}
    units = [unit_price(ln.item, deals, by_key.get((ln.item.variant_id, ln.item.seller_id)), now)
             for ln in lines]
    subtotals = [u.dynamic_cents * ln.quantity for u, ln in zip(units, lines, strict=True)]
    shares = [0] * len(lines)
    if coupon is not None:
        eligible = validate_coupon(coupon, [(ln.item, s) for ln, s in zip(lines, subtotals,
                                                                          strict=True)],
                                   usage or CouponUsage(), now)
        weights = [subtotals[i] for i in eligible]
        split = allocate(coupon_discount(coupon, sum(weights)), weights)
        for i, share in zip(eligible, split, strict=True):
            shares[i] = share
    quoted = tuple(QuotedLine(ln.item, ln.quantity, u, s, c, s - c)
                   for ln, u, s, c in zip(lines, units, subtotals, shares, strict=True))
    subtotal, discount = sum(subtotals), sum(shares)
    return Quote(quoted, None if coupon is None else coupon.code, subtotal, discount,
                 subtotal - discount, now)
