"""Coupons: order-level discounts by code, checked for expiry, usage limits, scope and
minimum spend, and split across the lines they apply to by largest remainder (exact cents)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import get_args

from domain.errors import ValidationFailed
from domain.pricing._checks import aware, check
from domain.pricing._money import Kind, kind_problems, pct
from domain.pricing._scope import CouponScope, applies
from domain.pricing.offers import Item


@dataclasses.dataclass(frozen=True)
class Coupon:
    """A code for a discount on the lines in its scope (`cart`: every line). Limits of None
    are unlimited. `min_spend_cents` is checked against the lines it applies to."""

    code: str
    scope: CouponScope
    scope_value: str | None
    kind: Kind
    amount: int
    min_spend_cents: int
    per_customer_limit: int | None
    global_limit: int | None
    expires_at: datetime
    starts_at: datetime | None = None  # None: usable at once

    def __post_init__(self) -> None:
        problems = kind_problems(self.kind, self.amount)
        if self.scope not in get_args(CouponScope):
            problems["scope"] = "must be cart, product, category, brand or seller"
        elif (self.scope == "cart") != (self.scope_value is None):
            problems["scope_value"] = "required for every scope but cart, and only then"
        if self.min_spend_cents < 0:
            problems["min_spend_cents"] = "must not be negative"
        for name in ("per_customer_limit", "global_limit"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                problems[name] = "must be at least 1, or none"
        problems |= aware(expires_at=self.expires_at)
        if self.starts_at is not None:
            problems |= aware(starts_at=self.starts_at)
            if not problems and self.starts_at >= self.expires_at:
                problems["expires_at"] = "must be after starts_at"
        check(problems)


@dataclasses.dataclass(frozen=True)
class CouponUsage:
    times_used: int = 0  # by everyone
    customer_times_used: int = 0  # by the customer asking


class CouponRejected(ValidationFailed):
    """`reason`: expired | limit_reached | customer_limit_reached | not_applicable | min_spend."""

    code = "coupon_rejected"

    def __init__(self, coupon_code: str, reason: str, detail: str) -> None:
        super().__init__({"coupon": detail}, f"coupon {coupon_code} cannot be used: {detail}")
        self.reason = reason
        self.data = {"reason": reason}


def normalize_code(code: str) -> str:
    return code.strip().upper()


def check_coupon_usable(coupon: Coupon, usage: CouponUsage, now: datetime) -> None:
    """Expiry and usage limits (what redemption checks again under a lock)."""
    if coupon.starts_at is not None and now < coupon.starts_at:
        raise CouponRejected(coupon.code, "not_started", "not valid yet")
    if now >= coupon.expires_at:
        raise CouponRejected(coupon.code, "expired", "expired")
    if coupon.global_limit is not None and usage.times_used >= coupon.global_limit:
        raise CouponRejected(coupon.code, "limit_reached", "usage limit reached")
    if coupon.per_customer_limit is not None \
            and usage.customer_times_used >= coupon.per_customer_limit:
        raise CouponRejected(coupon.code, "customer_limit_reached",
                             "already used the most times allowed per customer")


def validate_coupon(coupon: Coupon, lines: Sequence[tuple[Item, int]], usage: CouponUsage,
                    now: datetime) -> list[int]:
    """Indices of the (item, line subtotal) pairs the coupon applies to; CouponRejected
    (field "coupon") when it cannot be used, checked in this order: expired, limits, not
    applicable to any item, below minimum spend."""
    check_coupon_usable(coupon, usage, now)
    eligible = [i for i, (item, _) in enumerate(lines)
                if applies(coupon.scope, coupon.scope_value, item)]
    if not eligible:
        raise CouponRejected(coupon.code, "not_applicable", "not applicable to any item")
    spend = sum(lines[i][1] for i in eligible)
    if spend < coupon.min_spend_cents:
        raise CouponRejected(coupon.code, "min_spend",
                             f"below the minimum spend of {coupon.min_spend_cents} cents")
    return eligible


def coupon_discount(coupon: Coupon, eligible_cents: int) -> int:
    """The order's discount: never all of what the coupon applies to (at most that less a
    cent: a coupon, as a deal, never gives an order away, whether by a fixed amount larger
    than the lines or a percent rounded up to all of them)."""
    off = pct(eligible_cents, coupon.amount) if coupon.kind == "percent" else coupon.amount
    return max(0, min(off, eligible_cents - 1))


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """`total` split in proportion to `weights` by largest remainder (ties: earlier first):
    the shares sum to `total` exactly, and none exceeds its weight when total <= sum."""
    whole = sum(weights)
    if not 0 <= total <= whole or any(w < 0 for w in weights):
        raise ValidationFailed({"total": f"must be 0 to {whole}; weights must not be negative"})
    if whole == 0:
        return [0] * len(weights)
    shares = [total * w // whole for w in weights]
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % whole), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares
