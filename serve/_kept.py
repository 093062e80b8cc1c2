"""A process's short-lived copies: kept until they expire, at most a bound of them."""

from __future__ import annotations

from typing import TypeVar

K = TypeVar("K")
V = TypeVar("V")


def keep_until(kept: dict[K, tuple[float, V]], key: K, expires: float, value: V,
               now: float, bound: int) -> None:
    """`value` kept under `key` until `expires` (time.monotonic seconds). `kept` holds its
    entries in the order they were kept: the expired ones (at the front) are dropped first,
    then the oldest down to `bound`."""
    kept.pop(key, None)
    while kept:
        oldest = next(iter(kept))
        if kept[oldest][0] > now and len(kept) < bound:
            break
        del kept[oldest]
    kept[key] = (expires, value)
