"""Hash slots: the fixed space that inventory partitions own parts of (as Redis Cluster's).

Every variant hashes to one of `SLOTS` slots for good; which partition owns a slot is data (a
map in PostgreSQL), changed only by a handoff. A reservation lives in one slot (a cart is one
reservation per slot it touches), so moving a slot moves its variants and the reservations on
them together, and nothing else.

Ids: a cart id names its slots (`r<20 hex>.<4 hex per slot, ascending>`), each of its
reservations is `<cart id>/s<4 hex>`: any caller can route one without asking anybody.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import TypeGuard

from domain.hashing import bucket_of

SLOTS = 16_384
MAX_PARTITIONS = 4_096  # at least 4 slots each

_CART_ID = re.compile(r"r[0-9a-f]{20}\.((?:[0-9a-f]{4}){1,100})", re.ASCII)


def slot_of(variant_id: int) -> int:
    return bucket_of(variant_id, SLOTS)


def initial_owners(partitions: int) -> list[int]:
    """The map a new deployment of `partitions` starts from: slot s on partition s mod n
    (for a power of two, the partition the variant's hash picks, as before slots)."""
    return [s % partitions for s in range(SLOTS)]


def cart_id(key_digest: str, slots: Iterable[int]) -> str:
    """`key_digest`: 20 hex digits from the idempotency key."""
    return f"r{key_digest}." + "".join(f"{s:04x}" for s in sorted(set(slots)))


def cart_of_key(key: str, variant_ids: Iterable[int]) -> str:
    """The id a reserve of these variants with this idempotency key answers (whatever the
    outcome: the same key, the same id)."""
    return cart_id(hashlib.sha256(key.encode()).hexdigest()[:20],
                   (slot_of(v) for v in variant_ids))


def slots_of_cart(cart: str) -> list[int] | None:
    """The slots a cart id names (ascending, distinct), or None if it is not a cart id."""
    m = _CART_ID.fullmatch(cart)
    if m is None:
        return None
    hexes = m.group(1)
    slots = [int(hexes[i:i + 4], 16) for i in range(0, len(hexes), 4)]
    if any(s >= SLOTS for s in slots) or slots != sorted(set(slots)):
        return None
    return slots


def spans_slots(cart: str | None) -> TypeGuard[str]:
    """A cart held in more than one slot (one reservation per slot, in several partitions):
    it closes whole, as its decision says (adapters.postgres.cart_decisions)."""
    slots = None if cart is None else slots_of_cart(cart)
    return slots is not None and len(slots) > 1


def reservation_id(cart: str, slot: int) -> str:
    return f"{cart}/s{slot:04x}"


def slot_of_reservation(reservation: str) -> int | None:
    """The slot a reservation id names (None for an id of another form)."""
    _, sep, tail = reservation.rpartition("/s")
    if not sep or len(tail) != 4:
        return None
    try:
        slot = int(tail, 16)
    except ValueError:
        return None
    return slot if slot < SLOTS else None


@dataclasses.dataclass(frozen=True)
class Move:
    """Slots handed from partition `source` to partition `target`."""

    source: int
    target: int
    slots: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class Rebalanced:
    """What a rebalance did."""

    partitions_before: int
    partitions: int
    slots_moved: int
    handoffs: int
    seconds: float


def plan(owners: Sequence[int], partitions: int, chunk: int = 1024) -> list[Move]:
    """The moves that take `owners` (slot -> partition) to `partitions` partitions
    0..partitions-1 holding SLOTS/partitions slots each (the first SLOTS % partitions of them
    one more), moving as few slots as that allows: a slot moves only off a partition that goes
    away or holds more than its share. Moves of at most `chunk` slots, sources in order."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise ValueError(f"partitions must be 1..{MAX_PARTITIONS}")
    base, extra = divmod(len(owners), partitions)
    want = [base + (1 if k < extra else 0) for k in range(partitions)]
    held: dict[int, list[int]] = defaultdict(list)
    for s, k in enumerate(owners):
        held[k].append(s)
    # what each kept partition keeps; the rest is free to give away
    free: list[tuple[int, int]] = []  # (source, slot)
    have = [0] * partitions
    for k in sorted(held):
        slots = held[k]
        keep = want[k] if k < partitions else 0
        # a partition over its share keeps its lowest slots: plans are deterministic
        have_k = min(len(slots), keep)
        if k < partitions:
            have[k] = have_k
        free.extend((k, s) for s in slots[have_k:])
    moves: dict[tuple[int, int], list[int]] = defaultdict(list)
    it = iter(free)
    for k in range(partitions):
        for _ in range(want[k] - have[k]):
            source, s = next(it)
            moves[(source, k)].append(s)
    out: list[Move] = []
    for (source, target), slots in sorted(moves.items()):
        for i in range(0, len(slots), chunk):
            out.append(Move(source, target, tuple(slots[i:i + chunk])))
    return out


def partitions_of(owners: Sequence[int]) -> int:
    """How many partitions a map names (they are numbered 0..n-1)."""
    return max(owners) + 1 if owners else 0
