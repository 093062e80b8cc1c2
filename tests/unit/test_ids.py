import threading

from hypothesis import given
from hypothesis import strategies as st

from domain.ids import (
    EPOCH_MS,
    MAX_SEQUENCE,
    SnowflakeGenerator,
    id_timestamp_ms,
    id_worker,
)


class FakeClock:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def __call__(self) -> int:
        return self.ms


def test_ids_encode_time_and_worker() -> None:
    clock = FakeClock(EPOCH_MS + 123_456)
    gen = SnowflakeGenerator(worker_id=517, clock=clock)
    a = gen.next_id()
    assert id_timestamp_ms(a) == EPOCH_MS + 123_456
    assert id_worker(a) == 517
    assert a > 0


def test_ids_are_time_ordered() -> None:
    clock = FakeClock(EPOCH_MS + 10)
    gen = SnowflakeGenerator(worker_id=1, clock=clock)
    first = gen.next_id()
    clock.ms += 5
    second = gen.next_id()
    assert second > first
    assert id_timestamp_ms(second) == EPOCH_MS + 15


def test_clock_going_backwards_never_repeats_or_decreases() -> None:
    clock = FakeClock(EPOCH_MS + 1_000)
    gen = SnowflakeGenerator(worker_id=3, clock=clock)
    before = [gen.next_id() for _ in range(10)]
    clock.ms -= 500  # NTP step back
    after = [gen.next_id() for _ in range(10)]
    ids = before + after
    assert ids == sorted(ids)
    assert len(set(ids)) == 20


def test_sequence_overflow_borrows_next_millisecond() -> None:
    clock = FakeClock(EPOCH_MS + 7)
    gen = SnowflakeGenerator(worker_id=0, clock=clock)
    block = gen.next_block(MAX_SEQUENCE + 1 + 5)
    assert len(set(block.tolist())) == len(block)
    assert id_timestamp_ms(int(block[-1])) == EPOCH_MS + 8
    nxt = gen.next_id()  # clock still at 7: must continue after the borrowed slots
    assert nxt > int(block[-1])


def test_no_duplicates_under_thread_concurrency() -> None:
    gen = SnowflakeGenerator(worker_id=9)
    out: list[list[int]] = [[] for _ in range(8)]

    def work(i: int) -> None:
        for _ in range(2_000):
            out[i].append(gen.next_id())
        out[i].extend(gen.next_block(3_000).tolist())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [x for chunk in out for x in chunk]
    assert len(every) == 8 * 5_000
    assert len(set(every)) == len(every)
    for chunk in out:  # each thread sees increasing ids
        assert chunk[:2_000] == sorted(chunk[:2_000])


@given(st.lists(st.tuples(st.integers(-2_000, 2_000), st.integers(0, 5_000)), max_size=30))
def test_any_clock_walk_gives_unique_increasing_ids(steps: list[tuple[int, int]]) -> None:
    clock = FakeClock(EPOCH_MS + 1_000_000)
    gen = SnowflakeGenerator(worker_id=42, clock=clock)
    seen: list[int] = []
    for delta, n in steps:
        clock.ms += delta
        seen.extend(gen.next_block(n).tolist())
    assert seen == sorted(seen)
    assert len(set(seen)) == len(seen)
    assert all(id_worker(x) == 42 for x in seen)
