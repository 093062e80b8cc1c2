"""Money and discounts: integer cents, percentages in basis points (1500 = 15.00%), a
percentage of a price rounded half up to the cent."""

from __future__ import annotations

from typing import Literal, get_args

CURRENCY = "USD"
FULL_BP = 10_000
Kind = Literal["percent", "fixed"]


def pct(cents: int, bp: int) -> int:
    """`bp` basis points of `cents`, rounded half up."""
    return (cents * bp + FULL_BP // 2) // FULL_BP


def discounted(kind: str, amount: int, cents: int) -> int:
    return max(0, cents - (pct(cents, amount) if kind == "percent" else amount))


def kind_problems(kind: str, amount: int) -> dict[str, str]:
    if kind not in get_args(Kind):
        return {"kind": "must be percent or fixed"}
    if kind == "percent" and not 1 <= amount <= FULL_BP:
        # (a stored FULL_BP still loads; writes take at most FULL_BP - 1: pricing_admin)
        return {"amount": f"percent amounts are basis points (1000 = 10 %), 1 to {FULL_BP - 1}"}
    if kind == "fixed" and amount < 1:
        return {"amount": "fixed amounts are cents, at least 1"}
    return {}
