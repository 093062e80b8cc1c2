"""Randomness keyed by strings: the draws for a product depend only on its key and the seed.

So a product gets the same filled-in price, review spread and sizes whether it is loaded from
the whole file or from a subset of it. Each `stream` is an independent draw per key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def key_hashes(keys: Iterable[str | None], seed: int, count: int) -> np.ndarray:
    """A uint64 per key (None hashes like the empty string), salted with the seed."""
    salt = (seed & _M64).to_bytes(8, "little")
    return np.fromiter(
        (int.from_bytes(hashlib.blake2b((k or "").encode(), digest_size=8, key=salt).digest(),
                        "little") for k in keys),
        dtype=np.uint64, count=count,
    )


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer (wrapping uint64 arithmetic on arrays)."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class Keyed:
    """Independent uniform/normal/integer draws per key, one stream number per purpose."""

    def __init__(self, hashes: np.ndarray) -> None:
        self.hashes = hashes.astype(np.uint64, copy=False)

    def __len__(self) -> int:
        return len(self.hashes)

    def uniform(self, stream: int) -> np.ndarray:
        offset = np.uint64((stream * _GOLDEN + 1) & _M64)
        bits = _mix(self.hashes + offset)
        return (bits >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))

    def normal(self, stream: int) -> np.ndarray:
        u1 = self.uniform(2 * stream + 10_001)
        u2 = self.uniform(2 * stream + 10_002)
        return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2 * np.pi * u2)
