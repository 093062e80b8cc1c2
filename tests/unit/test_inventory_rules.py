"""The partition state machine, alone: examples and hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.errors import ValidationFailed
from domain.inventory import (
    InsufficientStock,
    Item,
    PartitionState,
    ReservationClosed,
    ReservationNotFound,
    Stock,
    UnknownVariant,
    stock_status,
)

V1, V2 = 101, 202


class Clock:
    def __init__(self) -> None:
        self.ms = 1_000_000

    def __call__(self) -> int:
        return self.ms


def state(clock: Clock | None = None) -> PartitionState:
    s = PartitionState(clock or Clock(), low_stock_threshold=5)
    s.warehouses = {"WH_01", "WH_02", "WH_03"}
    s.load_variant(V1, {"WH_01": Stock(10, initial=10), "WH_02": Stock(4, initial=4)})
    s.load_variant(V2, {"WH_01": Stock(3, initial=3)})
    return s


def test_reserve_takes_from_the_fullest_warehouse_and_splits() -> None:
    s = state()
    r = s.reserve("r1", [Item(V1, 12)], ttl_ms=60_000)
    assert r.lines == [(V1, "WH_01", 10), (V1, "WH_02", 2)]
    assert (s.stock[V1]["WH_01"].available, s.stock[V1]["WH_01"].reserved) == (0, 10)
    assert s.stock[V1]["WH_02"].available == 2


def test_named_warehouse_is_the_only_one_used() -> None:
    s = state()
    with pytest.raises(InsufficientStock) as err:
        s.reserve("r1", [Item(V1, 5, "WH_02")], ttl_ms=1)
    assert err.value.items == [{"variant_id": str(V1), "requested": 5, "available": 4,
                                "warehouse_id": "WH_02"}]


def test_reservation_is_all_or_nothing_and_names_every_short_item() -> None:
    s = state()
    with pytest.raises(InsufficientStock) as err:
        s.reserve("r1", [Item(V1, 2), Item(V2, 4)], ttl_ms=1)
    assert err.value.items == [{"variant_id": str(V2), "requested": 4, "available": 3}]
    assert s.stock[V1]["WH_01"].available == 10  # V1 untouched
    assert s.drain().movements == []


def test_release_deduct_and_closed_reservations() -> None:
    s = state()
    s.reserve("a", [Item(V1, 3)], ttl_ms=1_000)
    s.reserve("b", [Item(V1, 2)], ttl_ms=1_000)
    s.release("a")
    s.deduct("b")
    st1 = s.stock[V1]["WH_01"]
    assert (st1.available, st1.reserved, st1.sold) == (8, 0, 2)
    with pytest.raises(ReservationClosed):
        s.deduct("a")
    with pytest.raises(ReservationClosed):
        s.release("b")


def test_expiry_with_an_injected_clock() -> None:
    clock = Clock()
    s = state(clock)
    s.reserve("short", [Item(V2, 2)], ttl_ms=1_000)
    s.reserve("long", [Item(V2, 1)], ttl_ms=5_000)
    clock.ms += 999
    assert s.expire() == []
    clock.ms += 1
    expired = s.expire()
    assert [(r.reservation_id, r.status) for r in expired] == [("short", "EXPIRED")]
    assert "short" not in s.reservations  # out of memory; the change goes to PostgreSQL
    assert s.stock[V2]["WH_01"].available == 2
    changes = s.drain()
    assert [m.kind for m in changes.movements] == ["RESERVE", "RESERVE", "EXPIRE"]
    assert changes.reservations["short"].status == "EXPIRED"
    s.deduct("long")  # closed before its deadline: leaves memory at the deadline, unchanged
    clock.ms += 4_000
    assert s.expire() == [] and s.reservations == {}
    assert s.stock[V2]["WH_01"].sold == 1


def test_adjust_creates_rows_and_refuses_negative_stock() -> None:
    s = state()
    s.adjust(V2, "WH_03", 7, "restock")
    assert s.stock[V2]["WH_03"].available == 7
    with pytest.raises(InsufficientStock):
        s.adjust(V2, "WH_01", -4, "cycle count")
    with pytest.raises(ValidationFailed):
        s.adjust(V2, "WH_99", 1, "restock")
    with pytest.raises(UnknownVariant):
        s.adjust(999, "WH_01", 1, "restock")


def test_status_flips_are_reported() -> None:
    s = state()
    s.reserve("r", [Item(V2, 3)], ttl_ms=1)
    assert s.drain().status_flips == {V2: "OUT_OF_STOCK"}
    s.release("r")
    assert s.drain().status_flips == {V2: "LOW_STOCK"}
    s.adjust(V1, "WH_01", 1, "restock")
    assert s.drain().status_flips == {}  # IN_STOCK before and after


def test_stock_status_and_hint() -> None:
    assert stock_status(0, 5) == ("OUT_OF_STOCK", "0")
    assert stock_status(5, 5) == ("LOW_STOCK", "5")
    assert stock_status(12, 5) == ("IN_STOCK", "12")
    assert stock_status(50, 5) == ("IN_STOCK", "50+")


ops = st.lists(st.one_of(
    st.tuples(st.just("reserve"), st.sampled_from([V1, V2]), st.integers(1, 12),
              st.sampled_from([None, "WH_01", "WH_02"])),
    st.tuples(st.just("release"), st.integers(0, 30)),
    st.tuples(st.just("deduct"), st.integers(0, 30)),
    st.tuples(st.just("adjust"), st.sampled_from([V1, V2]), st.sampled_from(["WH_01", "WH_03"]),
              st.integers(-8, 8)),
    st.tuples(st.just("tick"), st.integers(0, 3_000)),
), max_size=60)


@settings(max_examples=300)
@given(ops)
def test_invariants_hold_for_any_sequence(seq: list[tuple]) -> None:  # type: ignore[type-arg]
    clock = Clock()
    s = state(clock)
    adjustments: dict[tuple[int, str], int] = {}
    made: list[str] = []
    for op in seq:
        try:
            if op[0] == "reserve":
                made.append(f"r{len(made)}")
                s.reserve(made[-1], [Item(op[1], op[2], op[3])], ttl_ms=2_000)
            elif op[0] in ("release", "deduct") and made:
                rid = made[op[1] % len(made)]
                s.release(rid) if op[0] == "release" else s.deduct(rid)
            elif op[0] == "adjust" and op[3] != 0:
                s.adjust(op[1], op[2], op[3], "count")
                adjustments[(op[1], op[2])] = adjustments.get((op[1], op[2]), 0) + op[3]
            elif op[0] == "tick":
                clock.ms += op[1]
                s.expire()
        except (InsufficientStock, ReservationClosed, ReservationNotFound):
            pass
        for v, rows in s.stock.items():
            for w, x in rows.items():
                assert x.available >= 0 and x.reserved >= 0 and x.sold >= 0
                assert x.available + x.reserved + x.sold == x.initial + adjustments.get((v, w), 0)
        open_held: dict[tuple[int, str], int] = {}
        for r in s.reservations.values():
            if r.status == "OPEN":
                for v, w, q in r.lines:
                    open_held[(v, w)] = open_held.get((v, w), 0) + q
        assert {k: x.reserved for k, x in
                (((v, w), x) for v, rows in s.stock.items() for w, x in rows.items())
                if x.reserved} == open_held


@given(st.lists(st.tuples(st.sampled_from([V1, V2]), st.integers(1, 5)), min_size=1, max_size=4))
def test_reserve_then_release_restores_the_state(items: list[tuple[int, int]]) -> None:
    s = state()
    before = {v: {w: (x.available, x.reserved, x.sold) for w, x in rows.items()}
              for v, rows in s.stock.items()}
    try:
        s.reserve("r", [Item(v, q) for v, q in items], ttl_ms=1_000)
    except InsufficientStock:
        return
    s.release("r")
    after = {v: {w: (x.available, x.reserved, x.sold) for w, x in rows.items()}
             for v, rows in s.stock.items()}
    assert after == before


def test_a_sellers_own_warehouse_is_taken_only_when_named() -> None:
    """Offer stock: a warehouse a seller owns holds its units; a reservation naming no
    warehouse (the listing seller's sale) never takes them, one naming it takes only them."""
    s = state()
    s.warehouses |= {"s-7"}
    s.owned = {"s-7": 7}
    s.load_variant(V2, {"WH_01": Stock(1, initial=1), "s-7": Stock(50, initial=50)})
    with pytest.raises(InsufficientStock):
        s.reserve("r1", [Item(V2, 2)], ttl_ms=1000)  # only 1 of the listing seller's
    r = s.reserve("r2", [Item(V2, 2, "s-7")], ttl_ms=1000)
    assert r.lines == [(V2, "s-7", 2)]
    assert s.offered(V2) == {"s-7": 48}
    assert s.reserve("r3", [Item(V2, 1)], ttl_ms=1000).lines == [(V2, "WH_01", 1)]


def test_set_available_states_the_units_exactly() -> None:
    s = state()
    s.warehouses |= {"s-7"}
    s.owned = {"s-7": 7}
    s.reserve("r1", [Item(V1, 3, "WH_02")], ttl_ms=1000)
    # 9 on hand, 3 of them held: 6 more can be sold
    assert s.set_available(V1, "WH_02", 9, "seller says").available == 6
    assert (s.stock[V1]["WH_02"].reserved, s.stock[V1]["WH_02"].initial) == (3, 4)
    before = len(s.drain().movements)
    assert s.set_available(V1, "WH_02", 9, "again").available == 6  # no change, no movement
    assert s.set_available(V1, "WH_02", 2, "fewer than held").available == 0
    assert s.set_available(V1, "WH_02", 9, "back").available == 6
    s.drain()
    assert s.set_available(V1, "s-7", 0, "none yet").available == 0  # no row made for 0
    assert len(s.drain().movements) == 0 and before == 2 and "s-7" not in s.stock[V1]
    assert s.set_available(V1, "s-7", 5, "five").available == 5
    with pytest.raises(ValidationFailed):
        s.set_available(V1, "s-7", -1, "negative")


def test_a_due_reservation_of_a_cart_over_several_slots_closes_as_the_cart_was_decided() -> None:
    clock = Clock()
    s = state(clock)
    shared = "r0123456789abcdef0123.00010002"  # a cart over slots 1 and 2
    s.reserve("kept", [Item(V1, 2)], ttl_ms=1_000, cart_id=shared)
    s.reserve("sold", [Item(V2, 1)], ttl_ms=1_000, cart_id="r" + "1" * 20 + ".00010003")
    s.reserve("alone", [Item(V1, 1)], ttl_ms=1_000, cart_id="r" + "2" * 20 + ".0001")
    s.reserve("later", [Item(V1, 1)], ttl_ms=9_000, cart_id="r" + "3" * 20 + ".00010004")
    assert s.due_carts() == set()
    clock.ms += 1_000
    assert s.due_carts() == {shared, "r" + "1" * 20 + ".00010003"}  # not the one-slot cart
    # undecided: a cart over several slots waits; a one-slot reservation expires by itself
    assert [r.reservation_id for r in s.expire()] == ["alone"]
    assert s.reservations["kept"].status == "OPEN"
    assert s.due_carts() == {shared, "r" + "1" * 20 + ".00010003"}
    expired = s.expire({shared: "EXPIRED", "r" + "1" * 20 + ".00010003": "COMMITTED"})
    assert [(r.reservation_id, r.status) for r in expired] == [("kept", "EXPIRED")]
    assert s.stock[V2]["WH_01"].sold == 1 and s.stock[V2]["WH_01"].reserved == 0
    assert s.stock[V1]["WH_01"].reserved + s.stock[V1]["WH_02"].reserved == 1  # "later"
    assert s.due_carts() == set() and set(s.reservations) == {"later"}
    kinds = [(m.kind, m.reservation_id) for m in s.drain().movements]
    assert ("DEDUCT", "sold") in kinds and ("EXPIRE", "kept") in kinds
    clock.ms += 8_000
    assert s.expire({"r" + "3" * 20 + ".00010004": "RELEASED"})[0].status == "RELEASED"
