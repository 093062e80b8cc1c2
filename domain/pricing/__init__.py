"""Pricing rules: pure functions over integer cents (no I/O, no Ray, no await).

Money is integer cents; percentages are basis points (1500 = 15.00%), and a percentage of a
price is rounded half up to the cent. Times are timezone-aware datetimes, passed in (`now`).

A line's unit price goes through these steps, each recorded in the quote:

  list     the price of the offer bought (the buy box picks it: the offer whose unit
           price after these steps is lowest, listing.py `priced_buy_box`): the product
           seller's variant price (which the dynamic-pricing actor moves on a schedule with
           `dynamic_price`, recording each change), or another seller's offer price.
  deal     the one active deal that gives the lowest price (deals.py; deals never stack),
           never below 0.
  dynamic  if the variant has a dynamic rule for this seller, the price is clamped into
           [floor, ceiling] (dynamic.py). So a deal never takes the unit price below the floor:
           a deal that would is cut back to the floor (the floor is the lowest unit price the
           seller accepts), and a list price above the ceiling is sold at the ceiling. PDP and
           search show this same unit price (listing.py: `unit_price`), so they never show
           what a quote won't charge.
  coupon   an order-level discount, split across the lines it applies to by largest remainder
           (exact cents; coupons.py). It may take a line below the floor (the floor bounds the
           unit price, the coupon reduces what the order pays) but never below 0.

quotes.py prices an order through these steps; tokens.py signs a quote (HMAC-SHA256 over
canonical JSON), so checkout charges exactly what was quoted.
"""

from domain.pricing._money import CURRENCY
from domain.pricing.coupons import (
    Coupon,
    CouponRejected,
    CouponUsage,
    allocate,
    check_coupon_usable,
    normalize_code,
    validate_coupon,
)
from domain.pricing.deals import Deal, best_deal
from domain.pricing.dynamic import DynamicRule, dynamic_price
from domain.pricing.listing import (
    charged_cents,
    compared_price,
    listing_price,
    priced_buy_box,
    unit_price,
)
from domain.pricing.offers import Item, Offer, buy_box, holding
from domain.pricing.quotes import Line, quote
from domain.pricing.tokens import (
    QuoteSummary,
    QuoteTokenRejected,
    SignedQuote,
    VerifiedQuote,
    read_quote,
    sign_quote,
    verify_quote,
)

__all__ = [
    "CURRENCY",
    "Coupon",
    "CouponRejected",
    "CouponUsage",
    "Deal",
    "DynamicRule",
    "Item",
    "Line",
    "Offer",
    "QuoteSummary",
    "QuoteTokenRejected",
    "SignedQuote",
    "VerifiedQuote",
    "allocate",
    "best_deal",
    "buy_box",
    "charged_cents",
    "check_coupon_usable",
    "compared_price",
    "dynamic_price",
    "holding",
    "listing_price",
    "normalize_code",
    "priced_buy_box",
    "quote",
    "read_quote",
    "sign_quote",
    "unit_price",
    "validate_coupon",
    "verify_quote",
]
