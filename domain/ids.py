"""Snowflake ids: 64-bit, time-ordered, unique per worker.

Layout (most significant first): 1 sign bit (0) | 41 bits milliseconds since EPOCH_MS |
10 bits worker id | 12 bits sequence. 4,096 ids per millisecond per worker.

The generator keeps a logical clock that never moves backwards: if the wall clock goes back
(NTP step, VM migration) it keeps issuing from the last timestamp it used, and when a
millisecond's 4,096 sequence numbers run out it borrows the next millisecond instead of
sleeping. Ids therefore stay unique and increasing whatever the clock does; they run at most
slightly ahead of real time and fall back in step as the wall clock catches up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
WORKER_BITS = 10
SEQUENCE_BITS = 12
MAX_WORKER = (1 << WORKER_BITS) - 1
MAX_SEQUENCE = (1 << SEQUENCE_BITS) - 1


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class SnowflakeGenerator:
    def __init__(self, worker_id: int, clock: Callable[[], int] = wall_clock_ms) -> None:
        if not 0 <= worker_id <= MAX_WORKER:
            raise ValueError(f"worker_id must be in 0..{MAX_WORKER}, got {worker_id}")
        self.worker_id = worker_id
        self._clock = clock
        self._lock = threading.Lock()
        self._last_ms = -1
        self._seq = 0

    def next_id(self) -> int:
        return int(self.next_block(1)[0])

    def next_block(self, n: int) -> np.ndarray:
        """n consecutive ids (sorted ascending) as an int64 array, in one lock acquisition."""
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            now = self._clock() - EPOCH_MS
            if now > self._last_ms:  # fresh millisecond
                self._last_ms, self._seq = now, 0
            elif self._seq > MAX_SEQUENCE:  # this millisecond is used up: borrow the next
                self._last_ms, self._seq = self._last_ms + 1, 0
            # position of the first id, counted in sequence slots from ms 0
            start = self._last_ms * (MAX_SEQUENCE + 1) + self._seq
            end = start + n
            self._last_ms, self._seq = divmod(end, MAX_SEQUENCE + 1)
        slots = np.arange(start, end, dtype=np.int64)
        ms, seq = np.divmod(slots, MAX_SEQUENCE + 1)
        return (ms << (WORKER_BITS + SEQUENCE_BITS)) | (self.worker_id << SEQUENCE_BITS) | seq


def id_timestamp_ms(snowflake: int) -> int:
    """Unix milliseconds at which an id was made (per its generator's logical clock)."""
    return (snowflake >> (WORKER_BITS + SEQUENCE_BITS)) + EPOCH_MS


def id_worker(snowflake: int) -> int:
    return (snowflake >> SEQUENCE_BITS) & MAX_WORKER
