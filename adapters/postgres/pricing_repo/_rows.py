"""Rows as the pricing rules' objects."""

from __future__ import annotations

from typing import SupportsFloat

import asyncpg

from domain.pricing import Coupon, DynamicRule, Offer

_RULE_FIELDS = ("floor_cents", "ceiling_cents", "low_stock", "high_stock", "hot_velocity",
                "cold_velocity", "step_up_bp", "step_down_bp", "window_s")


def rating(value: SupportsFloat | None) -> float | None:
    return None if value is None else float(value)


def offer(row: asyncpg.Record) -> Offer:
    """A row with variant_id, seller_id, price_cents, available and the seller's rating."""
    return Offer(row["seller_id"], row["variant_id"], row["price_cents"], row["available"],
                 rating(row["rating"]), row.get("warehouse_id"))


def dynamic_rule(row: asyncpg.Record) -> DynamicRule:
    """A dynamic_price_rules row with the product's seller_id."""
    return DynamicRule(row["variant_id"], row["seller_id"], *(row[f] for f in _RULE_FIELDS))


def coupon(row: asyncpg.Record) -> Coupon:
    return Coupon(row["code"], row["scope"], row["scope_value"], row["kind"], row["amount"],
                  row["min_spend_cents"], row["per_customer_limit"], row["global_limit"],
                  row["expires_at"], row["starts_at"])
