"""Where a request's time went, by stage (index, rerank, prices, stock...): measured in the
code that does each stage, answered in the standard `Server-Timing` header and exported as
`aisle_search_stage_ms` (actors/metrics.py). A stage reached twice in one request (a relaxed
search, a widened page) adds up; a stage run in another task of the same request (gathered,
to a thread) is counted too: the stages of a request are one object its tasks share.

    stages = Stages()
    with stages.current():
        answer = await handle(...)
    response.headers["Server-Timing"] = stages.header()

    with timed("rerank"):         # anywhere below: a no-op outside a request that measures
        order = await ranker.rank(...)

Tasks a request starts inherit its Stages (the context is copied): a `timed` block in a task
that outlives the answer (a shadow ranker, a coalesced send) would add to an answer already
sent, so time only the request's own awaits, and run such a task's work `untimed()`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from contextvars import ContextVar


@dataclasses.dataclass
class Stages:
    """Milliseconds of wall time per stage of one request, in the order first reached."""

    ms: dict[str, float] = dataclasses.field(default_factory=dict)

    def add(self, stage: str, ms: float) -> None:
        self.ms[stage] = self.ms.get(stage, 0.0) + ms

    def header(self) -> str:
        """The `Server-Timing` header's value (RFC: `name;dur=<ms>`, comma-separated)."""
        return ", ".join(f"{stage};dur={ms:.2f}" for stage, ms in self.ms.items())

    @contextlib.contextmanager
    def current(self) -> Iterator[Stages]:
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)


_current: ContextVar[Stages | None] = ContextVar("aisle_stages", default=None)


@contextlib.contextmanager
def timed(stage: str) -> Iterator[None]:
    """Adds the wall time of the block to `stage` of the request being measured, if any."""
    stages = _current.get()
    if stages is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        stages.add(stage, (time.perf_counter() - started) * 1000)


def add_timing(stage: str, ms: float) -> None:
    """Adds `ms` measured elsewhere (another process's own account of its part) to `stage`
    of the request being measured, if any."""
    stages = _current.get()
    if stages is not None:
        stages.add(stage, ms)


def parse_header(value: str) -> dict[str, float]:
    """A `Server-Timing` header back into {stage: ms} (what benchmarks read)."""
    out: dict[str, float] = {}
    for part in value.split(","):
        name, _, rest = part.strip().partition(";")
        for param in rest.split(";"):
            key, _, v = param.strip().partition("=")
            if name and key == "dur":
                out[name] = out.get(name, 0.0) + float(v)
    return out


@contextlib.contextmanager
def untimed() -> Iterator[None]:
    """Nothing in the block is timed for the request (work of a task that may outlive its
    answer: the task's own copy of the context is changed, not the request's)."""
    token = _current.set(None)
    try:
        yield
    finally:
        _current.reset(token)
