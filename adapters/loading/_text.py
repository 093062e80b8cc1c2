"""Vectorized text hygiene, so loaded rows pass the same rules as the seller API.

Single-line fields: NFC, control characters and line/paragraph separators become spaces,
whitespace runs collapse, trimmed, cut to the column's length. Multi-line fields keep
newlines and tabs.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_SINGLE_LINE_JUNK = r"[\p{Cc}\x{2028}\x{2029}\s]+"
_MULTI_LINE_JUNK = r"[\x{0}-\x{8}\x{b}\x{c}\x{e}-\x{1f}\x{7f}-\x{9f}]"


def _as_string(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.string())


def clean_line(arr: pa.Array | pa.ChunkedArray, max_len: int) -> pa.Array:
    """Single-line text; empty results become null."""
    out = pc.utf8_normalize(_as_string(arr), form="NFC")
    out = pc.utf8_trim_whitespace(pc.replace_substring_regex(out, _SINGLE_LINE_JUNK, " "))
    out = pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(out, 0, max_len))
    return pc.if_else(pc.equal(out, ""), pa.scalar(None, pa.string()), out)


def clean_text(arr: pa.Array | pa.ChunkedArray, max_len: int) -> pa.Array:
    """Multi-line text; null becomes ''."""
    out = pc.utf8_normalize(pc.fill_null(_as_string(arr), ""), form="NFC")
    out = pc.replace_substring_regex(out, _MULTI_LINE_JUNK, "")
    out = pc.replace_substring(out, "\r\n", "\n")
    return pc.utf8_trim_whitespace(pc.utf8_slice_codeunits(out, 0, max_len))


def json_strings(arr: pa.Array) -> pa.Array:
    """Each value as a JSON string literal (quoted, escaped); nulls stay null."""
    encoded = pc.dictionary_encode(_as_string(arr))
    literals = pa.array([json.dumps(v, ensure_ascii=False) for v in encoded.dictionary.to_pylist()],
                        pa.string())
    return pc.take(literals, encoded.indices)


def attributes_json(**attrs: pa.Array | None) -> pa.Array:
    """JSON objects {name: value} per row from string columns; null values are left out."""
    members = [pc.binary_join_element_wise(json.dumps(name), json_strings(col), ": ")
               for name, col in attrs.items() if col is not None]
    if not members:
        raise ValueError("attributes_json needs at least one column")
    body = members[0]
    for member in members[1:]:  # (not null_handling="skip": pyarrow drops all-null rows)
        both = pc.binary_join_element_wise(body, member, ", ")
        body = pc.if_else(pc.is_null(body), member, pc.if_else(pc.is_null(member), body, both))
    return pc.binary_join_element_wise("{", pc.fill_null(body, ""), "}", "")


def digits(values: np.ndarray, width: int = 1) -> pa.Array:
    """Integers as decimal strings, zero-padded to `width`."""
    out = pa.array(values).cast(pa.string())
    return pc.utf8_lpad(out, width, "0") if width > 1 else out
