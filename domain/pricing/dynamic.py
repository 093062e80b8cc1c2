"""Dynamic pricing: a rule moves a variant's list price within [floor, ceiling] by its stock
and sales (the dynamic-pricing actor, on a schedule), and every unit price shown or quoted is
clamped into [floor, ceiling]."""

from __future__ import annotations

import dataclasses

from domain.errors import ValidationFailed
from domain.pricing._checks import check
from domain.pricing._money import FULL_BP, pct


@dataclasses.dataclass(frozen=True)
class DynamicRule:
    """Moves a variant's price within [floor, ceiling]. Scarce (stock <= low_stock) and selling
    fast (units sold in the last `window_s` >= hot_velocity): one step up by step_up_bp.
    Plentiful (stock >= high_stock) and selling slowly (<= cold_velocity): one step down by
    step_down_bp. Anything else: unchanged. A step is at least one cent."""

    variant_id: int
    seller_id: int
    floor_cents: int
    ceiling_cents: int
    low_stock: int
    high_stock: int
    hot_velocity: int
    cold_velocity: int
    step_up_bp: int
    step_down_bp: int
    window_s: int = 86_400

    def __post_init__(self) -> None:
        problems: dict[str, str] = {}
        if self.floor_cents < 0:
            problems["floor_cents"] = "must not be negative"
        if self.ceiling_cents < self.floor_cents:
            problems["ceiling_cents"] = "must not be below floor_cents"
        if not 0 <= self.low_stock < self.high_stock:
            problems["high_stock"] = "must be above low_stock, which must not be negative"
        if not 0 <= self.cold_velocity < self.hot_velocity:
            problems["hot_velocity"] = "must be above cold_velocity, which must not be negative"
        for name in ("step_up_bp", "step_down_bp"):
            if not 0 <= getattr(self, name) <= FULL_BP // 2:
                problems[name] = "must be 0 to 5000 basis points"
        if self.window_s < 1:
            problems["window_s"] = "must be at least 1"
        check(problems)

    def clamp(self, cents: int) -> int:
        return min(max(cents, self.floor_cents), self.ceiling_cents)


def _step(cents: int, bp: int) -> int:
    return max(1, pct(cents, bp)) if bp > 0 else 0


def dynamic_price(rule: DynamicRule, base_cents: int, stock: int, sales_velocity: int) -> int:
    """The next price from `base_cents` (one step at most), always within [floor, ceiling]."""
    if base_cents < 0:
        raise ValidationFailed({"base_cents": "must not be negative"})
    moved = base_cents
    if stock <= rule.low_stock and sales_velocity >= rule.hot_velocity:
        moved = base_cents + _step(base_cents, rule.step_up_bp)
    elif stock >= rule.high_stock and sales_velocity <= rule.cold_velocity:
        moved = base_cents - _step(base_cents, rule.step_down_bp)
    return rule.clamp(moved)
