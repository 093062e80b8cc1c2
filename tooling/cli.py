"""What operators' scripts share: a service that does not answer is one line, not a
traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

import httpx


def run(prog: str, main: Callable[[], int]) -> int:
    """`main()`'s exit status; 1 with one line on stderr when the service gives no answer."""
    try:
        return main()
    except httpx.HTTPError as exc:
        print(f"{prog}: no answer from the service: {exc!r}", file=sys.stderr)
        return 1
