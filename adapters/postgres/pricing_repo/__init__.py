"""Pricing data in PostgreSQL: the inputs of a quote, coupon redemption, price changes.

The rules themselves are in domain/pricing/; this package reads their inputs (inputs.py,
listings.py) and writes their effects (coupons.py, accepted_quotes.py, price_changes.py,
repricing.py). Every
function takes a connection (own or from a pool) and is atomic by itself (one statement, or
one transaction, which nests as a savepoint inside a caller's).
"""

from adapters.postgres.pricing_repo.accepted_quotes import accept_quote, void_quote
from adapters.postgres.pricing_repo.coupons import (
    CouponNotFound,
    Redemption,
    load_coupon,
    redeem_coupon,
)
from adapters.postgres.pricing_repo.inputs import (
    PricingInputs,
    line_sources,
    load_pricing,
    load_product_pricing,
    offer_warehouses,
)
from adapters.postgres.pricing_repo.listings import Listings, listing_prices, listings
from adapters.postgres.pricing_repo.price_changes import PriceChange, record_price_change
from adapters.postgres.pricing_repo.repricing import reprice

__all__ = [
    "CouponNotFound",
    "Listings",
    "PriceChange",
    "PricingInputs",
    "Redemption",
    "accept_quote",
    "line_sources",
    "listing_prices",
    "listings",
    "load_coupon",
    "load_pricing",
    "load_product_pricing",
    "offer_warehouses",
    "record_price_change",
    "redeem_coupon",
    "reprice",
    "void_quote",
]
