"""Stage timings of a request (serve/stages.py): what the Server-Timing header says."""

from __future__ import annotations

import asyncio
import time

from serve.stages import Stages, parse_header, timed


def test_stages_add_up_across_the_tasks_and_threads_of_one_request() -> None:
    async def work() -> None:
        with timed("index"):
            await asyncio.sleep(0.02)
        with timed("index"):  # a second index call (a relaxed search): added
            await asyncio.sleep(0.01)

        async def prices() -> None:
            with timed("prices"):
                await asyncio.sleep(0.015)

        def in_thread() -> None:
            with timed("rerank"):
                time.sleep(0.01)

        await asyncio.gather(prices(), asyncio.to_thread(in_thread))

    stages = Stages()
    with stages.current():
        asyncio.run(work())
    assert list(stages.ms) == ["index", "prices", "rerank"] or list(stages.ms) == [
        "index", "rerank", "prices"]
    assert 29 <= stages.ms["index"] < 1000
    assert 14 <= stages.ms["prices"] < 1000
    assert 9 <= stages.ms["rerank"] < 1000
    parsed = parse_header(stages.header())
    assert parsed.keys() == stages.ms.keys()
    assert all(abs(parsed[k] - stages.ms[k]) < 0.01 for k in parsed)


def test_outside_a_measured_request_timing_is_a_no_op() -> None:
    with timed("index"):
        pass
    other = Stages()
    with other.current():
        pass
    with timed("index"):  # the request's scope ended: nothing is added to it
        pass
    assert other.ms == {}


def test_parse_header_reads_what_others_write() -> None:
    assert parse_header("db;dur=53, app;dur=47.2;desc=\"x\", cache;desc=hit") == {
        "db": 53.0, "app": 47.2}
    assert parse_header("") == {}
