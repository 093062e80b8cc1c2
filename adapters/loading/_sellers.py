"""Synthetic sellers, and which seller lists which product (mostly by brand)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from adapters.loading.frames import SELLERS, IdSource, table

_FIRST = ["Northwind", "Blue Harbor", "Summit", "Cedar", "Brightline", "Copper Kettle",
          "Evergreen", "Ironwood", "Lakeside", "Maple & Main", "Orbit", "Pioneer", "Redwood",
          "Silver Birch", "Tidewater", "Urban", "Vantage", "Westfield", "Golden Gate",
          "Highland", "Keystone", "Liberty", "Meridian", "Oak Street", "Prairie", "Riverbend",
          "Sterling", "Trailhead", "Union Square", "Windmill"]
_SECOND = ["Goods", "Outfitters", "Supply", "Trading", "Depot", "Emporium", "Direct", "Market",
           "Wholesale", "Retail", "Collective", "Warehouse", "Exchange", "Provisions", "Store",
           "Mercantile", "Distributors", "Shop", "Traders", "Bazaar"]
_SUFFIX = ["", " Co.", " LLC", " Inc.", " Ltd."]
_OFF_BRAND_SHARE = 0.25  # products listed by a seller other than the brand's home seller


def seller_count(n_products: int) -> int:
    """50 sellers for small catalogs, growing with √n, at most 500."""
    return int(min(500, max(50, round(math.sqrt(n_products) / 2))))


def make_sellers(n: int, ids: IdSource, rng: np.random.Generator) -> pa.Table:
    combos = rng.choice(len(_FIRST) * len(_SECOND), size=n, replace=False)
    first = pa.array(_FIRST).take(pa.array(combos // len(_SECOND)))
    second = pa.array(_SECOND).take(pa.array(combos % len(_SECOND)))
    suffix = pa.array(_SUFFIX).take(pa.array(rng.integers(0, len(_SUFFIX), n)))
    names = pc.binary_join_element_wise(pc.binary_join_element_wise(first, second, " "),
                                        suffix, "")
    rating = np.round(3.4 + 1.6 * rng.beta(5.0, 1.6, n), 2)
    return table(SELLERS, seller_id=ids(n), name=names, rating=rating)


def assign_sellers(brand_hash: np.ndarray, has_brand: np.ndarray, u_off: np.ndarray,
                   u_pick: np.ndarray, n_sellers: int) -> np.ndarray:
    """Seller index per product: the brand's home seller, or (no brand, or a share of
    resellers) a seller picked by `u_pick`. All inputs are per product."""
    home = (brand_hash % np.uint64(n_sellers)).astype(np.int64)
    other = np.floor(u_pick * n_sellers).astype(np.int64)
    return np.where(has_brand & (u_off >= _OFF_BRAND_SHARE), home, other)
