"""Prices in cents: charm endings, filling missing prices, compare-at ("was") prices."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
G = npt.NDArray[np.generic]

_FILL_SIGMA = 0.6  # spread (log space) of filled-in prices around their category's median
_DEFAULT_MEDIAN_CENTS = 2_499
_COMPARE_SHARE = 0.15  # products shown with a compare-at price
_MIN_SUPPORT = 5  # known prices a group needs before its median is used


def charm_cents(dollars: F64) -> I64:
    """Rounded to a price ending in .99 (at least 0.99), as int64 cents."""
    whole = np.maximum(np.rint(np.asarray(dollars, dtype=np.float64)), 1.0)
    return (whole * 100 - 1).astype(np.int64)


def group_medians(groups: list[G], cents: I64, known: B) -> F64:
    """Per row: the median known price of its most specific group with enough known prices
    (`groups` from specific to general), else of the whole catalog."""
    out = np.full(len(cents), float(np.median(cents[known])) if known.any()
                  else _DEFAULT_MEDIAN_CENTS)
    done = np.zeros(len(cents), bool)
    for level in groups:
        codes, inverse = np.unique(level, return_inverse=True)
        for g in range(len(codes)):
            rows = (inverse == g) & ~done
            real = cents[(inverse == g) & known]
            if rows.any() and len(real) >= _MIN_SUPPORT:
                out[rows] = float(np.median(real))
                done |= rows
    return out


def fill_prices(cents: I64, known: B, groups: list[G],
                z: F64) -> I64:
    """Unknown prices drawn log-normally around their group's median real price (z: a
    standard normal draw per row, so the fill is fixed by the caller's keys)."""
    medians = group_medians(groups, cents, known)
    drawn = charm_cents(medians / 100.0 * np.exp(_FILL_SIGMA * z))
    return np.where(known, cents, drawn).astype(np.int64)


def compare_prices(cents: I64, u_pick: F64, u_markup: F64) -> I64:
    """A compare-at price 15-60 % above the price for a share of rows; -1 for the rest."""
    up = charm_cents(cents / 100.0 * (1.15 + 0.45 * u_markup))
    up = np.maximum(up, cents + 100)
    return np.where(u_pick < _COMPARE_SHARE, up, -1).astype(np.int64)
