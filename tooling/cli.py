"""What operators' scripts share: a service that does not answer, or answers with something
other than JSON (an ingress's HTML 503), is one line, not a traceback."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Any

import httpx

# JSON-like: a service's answer, a load's result, a request's query parameters
Json = dict[str, Any]


class NotJson(Exception):
    """The service answered, but not with JSON (a proxy's error page, a wrong --url)."""

    def __init__(self, r: httpx.Response) -> None:
        text = " ".join(r.text.split())[:160]
        super().__init__(
            f"HTTP {r.status_code} from {r.request.url} is not a JSON object: {text!r}")


def answer(r: httpx.Response) -> Json:
    """`r`'s JSON body; NotJson (one line from `run`) when it has none."""
    try:
        body = r.json()
    except json.JSONDecodeError:
        raise NotJson(r) from None
    if not isinstance(body, dict):
        raise NotJson(r)
    return body


class ServiceRefused(RuntimeError):
    """The service answered an error (4xx/5xx): its JSON error's message and fields (and
    what else it names, as a generation's problems), in one line."""

    def __init__(self, method: str, path: str, status: int, text: str) -> None:
        self.status = status
        try:
            err = json.loads(text)["error"]
            message = str(err.get("message") or err.get("code") or text[:300])
            fields = err.get("fields") or {}
            rest = {k: v for k, v in err.items() if k not in ("code", "message", "fields")}
        except (ValueError, KeyError, TypeError, AttributeError):
            message, fields, rest = repr(" ".join(text.split())[:300]), {}, {}  # an HTML page
        detail = "; ".join(f"{k}: {v}" for k, v in fields.items()) if isinstance(
            fields, dict) else ""
        super().__init__(f"{method} {path}: HTTP {status}: {message}"
                         + (f" ({detail})" if detail else "")
                         + (f" {json.dumps(rest, separators=(',', ':'))}" if rest else ""))


def answered(r: httpx.Response) -> Json:
    """`r`'s JSON body when it is a success (2xx); ServiceRefused (one line from `run`) when
    it is an error, NotJson when it is not JSON."""
    if r.status_code >= 400:
        raise ServiceRefused(r.request.method, r.request.url.path, r.status_code, r.text)
    return answer(r)


def run(prog: str, main: Callable[[], int],
        expected: tuple[type[Exception], ...] = ()) -> int:
    """`main()`'s exit status; 1 with one line on stderr when the service gives no answer or
    one that is not JSON, or `main` fails with one of the `expected` errors (a refusal, a
    file that cannot be written: a reason, not a traceback)."""
    refusals: tuple[type[Exception], ...] = (NotJson, ServiceRefused, *expected)
    try:
        return main()
    except httpx.HTTPError as exc:
        print(f"{prog}: no answer from the service: {exc!r}", file=sys.stderr)
        return 1
    except refusals as exc:
        print(f"{prog}: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1


def whole_number(lo: int, hi: int, what: str) -> Callable[[str], int]:
    """An argparse type: a whole number from `lo` to `hi`, refused before anything starts
    ("a port is 1 to 65535, got 0")."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not lo <= n <= hi:
            raise argparse.ArgumentTypeError(f"{what} is {lo} to {hi}, got {n}")
        return n
    return parse
