"""Hash slots: the plan that rebalances them, and the ids that name them."""

from __future__ import annotations

from collections import Counter

import pytest

from domain.inventory_commands import Adjust, GetReservation, ReadStock, Release
from domain.inventory_decisions import slots_of
from domain.inventory_slots import (
    SLOTS,
    cart_id,
    initial_owners,
    partitions_of,
    plan,
    reservation_id,
    slot_of,
    slot_of_reservation,
    slots_of_cart,
)


def _apply(owners: list[int], n: int) -> tuple[list[int], int]:
    after = list(owners)
    moved = 0
    for m in plan(owners, n):
        for s in m.slots:
            assert after[s] == m.source  # a move takes slots from the partition holding them
            after[s] = m.target
        moved += len(m.slots)
    return after, moved


@pytest.mark.parametrize(("before", "after"), [(8, 8), (4, 5), (8, 3), (3, 8), (1, 7),
                                               (7, 1), (6, 4)])
def test_a_plan_balances_and_moves_only_what_it_must(before: int, after: int) -> None:
    owners = initial_owners(before)
    got, moved = _apply(owners, after)
    counts = Counter(got)
    assert sorted(counts) == list(range(after))  # 0..after-1, each holding slots
    assert max(counts.values()) - min(counts.values()) <= 1  # even
    # the least any plan can move: what must leave the partitions that go away or that hold
    # more than their share
    share = [SLOTS // after + (1 if k < SLOTS % after else 0) for k in range(after)]
    held = Counter(owners)
    least = sum(c for k, c in held.items() if k >= after) + sum(
        max(c - share[k], 0) for k, c in held.items() if k < after)
    assert moved == least
    assert partitions_of(got) == after
    assert _apply(got, after)[1] == 0  # balanced already: nothing to do


def test_a_plan_from_an_uneven_map_and_its_chunks() -> None:
    owners = [0] * (SLOTS - 10) + [1] * 10  # everything on one partition
    moves = plan(owners, 2, chunk=1000)
    assert all(len(m.slots) <= 1000 for m in moves)
    got, moved = _apply(owners, 2)
    assert Counter(got) == {0: SLOTS // 2, 1: SLOTS // 2} and moved == SLOTS // 2 - 10
    with pytest.raises(ValueError):
        plan(owners, 0)


def test_the_initial_map_of_a_power_of_two_matches_the_old_hash_modulo() -> None:
    from domain.hashing import bucket_of

    owners = initial_owners(8)
    for v in (1, 2, 12345678901234, 2**62 + 7):
        assert owners[slot_of(v)] == bucket_of(v, 8)


def test_cart_and_reservation_ids_name_their_slots() -> None:
    cart = cart_id("0123456789abcdef0123", [300, 5, 16383, 5])
    assert cart == "r0123456789abcdef0123.0005012c3fff"
    assert slots_of_cart(cart) == [5, 300, 16383]
    rid = reservation_id(cart, 300)
    assert rid == cart + "/s012c" and slot_of_reservation(rid) == 300
    for bad in ("", "r0123.0001", "r0123456789abcdef0123.", "r0123456789abcdef0123.0002000",
                "r0123456789abcdef0123.00020001",  # not ascending
                "r0123456789abcdef0123.4000",  # past the last slot
                "R0123456789abcdef0123.0001"):
        assert slots_of_cart(bad) is None, bad
    assert slot_of_reservation("x/s4000") is None and slot_of_reservation("x/p1") is None
    assert slot_of_reservation("x/szzzz") is None


def test_commands_name_the_slots_their_owner_must_answer() -> None:
    a, b = 11, 2**40 + 3
    assert slots_of(Adjust("k", a, "W", 1, "r")) == {slot_of(a)}
    assert slots_of(ReadStock((a, b))) == {slot_of(a), slot_of(b)}
    rid = reservation_id(cart_id("0" * 20, [slot_of(b)]), slot_of(b))
    assert slots_of(Release("k", rid)) == {slot_of(b)}
    assert slots_of(GetReservation("nonsense")) == set()


def test_a_reservation_must_live_in_the_slot_its_id_names() -> None:
    from domain.inventory import Item, PartitionState, Stock
    from domain.inventory_commands import Done, Refused, Reserve
    from domain.inventory_decisions import decide

    a, b = 11, 12
    assert slot_of(a) != slot_of(b)
    st = PartitionState(lambda: 0)
    st.warehouses = {"W"}
    st.load_variant(a, {"W": Stock(5)})
    st.load_variant(b, {"W": Stock(5)})
    cart = cart_id("0" * 20, [slot_of(a), slot_of(b)])
    split = decide(st, Reserve("k1", reservation_id(cart, slot_of(a)),
                               (Item(a, 1, None), Item(b, 1, None)), 1000, cart))
    assert isinstance(split, Refused) and split.code == "validation_failed"
    wrong = decide(st, Reserve("k2", reservation_id(cart, slot_of(b)), (Item(a, 1, None),),
                               1000, cart))
    assert isinstance(wrong, Refused)
    ok = decide(st, Reserve("k3", reservation_id(cart, slot_of(a)), (Item(a, 1, None),),
                            1000, cart))
    assert isinstance(ok, Done)
    st.forget([a], [reservation_id(cart, slot_of(a))])
    assert not st.knows(a) and st.reservations == {}
