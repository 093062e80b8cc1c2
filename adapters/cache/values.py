"""What the cache stores: values as JSON (orjson), each loaded with its own lifetime."""

from __future__ import annotations

from typing import TypeAlias, TypeVar

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY
V = TypeVar("V")


def dumps(value: object) -> bytes:
    return orjson.dumps(value, option=_OPTIONS)


loads = orjson.loads  # JSON (bytes or text) -> the value

Loaded: TypeAlias = dict[str, tuple[V, int]]  # key -> (value, lifetime in ms; 0: do not store)
