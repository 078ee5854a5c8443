"""W3C Trace Context (https://www.w3.org/TR/trace-context/): parse and format `traceparent`.

Parsing follows the spec's processing model: lowercase hex only; version `ff` is invalid; version
`00` is exactly 55 characters; a higher version may carry more fields after a `-`, of which only
the first four are read; an all-zero trace id or parent id is invalid; several `traceparent`
headers are invalid. Invalid means "no parent": the receiver starts a new trace.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_HEX = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
# tracestate: printable ASCII list members, at most 512 characters (the spec's propagation floor).
_TRACESTATE = re.compile(r"[\x20-\x7e]{1,512}")


class Parent(NamedTuple):
    """A caller's span context: where the request's server span hangs."""

    trace_id: str  # 32 lowercase hex
    span_id: str  # 16 lowercase hex
    sampled: bool


def parse(values: Sequence[str]) -> Parent | None:
    """The parent named by the request's `traceparent` header values, or None (absent or invalid)."""
    if len(values) != 1:
        return None
    value = values[0].strip(" \t")
    if len(value) < 55 or not _HEX.match(value):
        return None
    version = value[:2]
    if version == "ff" or (version == "00" and len(value) != 55) or (len(value) > 55 and value[55] != "-"):
        return None
    trace_id, span_id = value[3:35], value[36:52]
    if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    return Parent(trace_id, span_id, bool(int(value[53:55], 16) & 1))


def format_traceparent(trace_id: str, span_id: str, sampled: bool) -> str:
    """`traceparent` (version 00) for a span."""
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def parse_tracestate(values: Sequence[str]) -> str | None:
    """The caller's `tracestate`, combined across headers, when it is plain and short; else None."""
    if not values:
        return None
    value = ",".join(v.strip(" \t") for v in values)
    return value if _TRACESTATE.fullmatch(value) else None
