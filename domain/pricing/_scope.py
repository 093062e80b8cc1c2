"""Which items a deal or a coupon applies to."""

from __future__ import annotations

from typing import Literal

from domain.pricing.offers import Item

Scope = Literal["product", "category", "brand", "seller"]
CouponScope = Literal["cart", "product", "category", "brand", "seller"]


def applies(scope: str, value: str | None, item: Item) -> bool:
    if scope == "cart":
        return True
    if scope == "brand":
        return item.brand is not None and item.brand.casefold() == (value or "").casefold()
    if scope == "category":
        return any(str(c) == value for c in item.category_ids)
    return value == str(item.product_id if scope == "product" else item.seller_id)
