"""Size runs for apparel and shoes: a product gets a contiguous window of its scheme's sizes."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

# scheme: (sizes, fewest, most) sizes offered per product
SCHEMES: dict[str, tuple[list[str], int, int]] = {
    "apparel": (["XS", "S", "M", "L", "XL", "XXL"], 3, 5),
    "kids": (["4", "5", "6", "7", "8", "10", "12", "14"], 3, 5),
    "baby": (["Newborn", "0-3 Months", "3-6 Months", "6-9 Months", "12 Months", "18 Months",
              "24 Months"], 3, 5),
    "shoes_men": (["7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12", "13"], 4, 6),
    "shoes_women": (["5", "5.5", "6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "11"],
                    4, 6),
    "shoes_kids": (["10", "11", "12", "13", "1Y", "2Y", "3Y", "4Y", "5Y"], 4, 6),
}
NAMES = list(SCHEMES)
_ALL = pa.array([s for sizes, _, _ in SCHEMES.values() for s in sizes], pa.string())
_LEN = np.array([len(v[0]) for v in SCHEMES.values()])
_OFFSET = np.cumsum(_LEN) - _LEN
_LO = np.array([v[1] for v in SCHEMES.values()])
_HI = np.array([v[2] for v in SCHEMES.values()])


def scheme_index(name: str | None) -> int:
    """-1 for no sizes."""
    return -1 if name is None else NAMES.index(name)


def size_counts(scheme: I64, u: F64) -> I64:
    """Sizes offered per product (1 variant when the scheme is -1)."""
    s = np.maximum(scheme, 0)
    n = _LO[s] + np.floor(u * (_HI[s] - _LO[s] + 1)).astype(np.int64)
    return np.where(scheme < 0, 1, n)


def size_values(scheme: I64, u_start: F64, parent: I64, position: I64,
                counts: I64) -> pa.Array:
    """The size of each variant row (null where its product has no sizes)."""
    s = np.maximum(scheme, 0)
    start = np.floor(u_start * (_LEN[s] - counts + 1)).astype(np.int64)
    idx = _OFFSET[s[parent]] + start[parent] + position
    sizes = pc.take(_ALL, pa.array(idx))
    return pc.if_else(pa.array(scheme[parent] < 0), pa.scalar(None, pa.string()), sizes)
