"""W3C traceparent/tracestate parsing against the spec's examples and the W3C test suite's malformed cases."""

from __future__ import annotations

import pytest

from shared.tracing.traceparent import Parent, format_traceparent, parse, parse_tracestate

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.mark.parametrize(("value", "expected"), [
    # The spec's own examples (section 3.2.2.5 / appendix).
    (f"00-{TRACE}-{SPAN}-01", Parent(TRACE, SPAN, True)),
    (f"00-{TRACE}-{SPAN}-00", Parent(TRACE, SPAN, False)),
    # Unknown flag bits are ignored; only "sampled" (0x01) is read.
    (f"00-{TRACE}-{SPAN}-09", Parent(TRACE, SPAN, True)),
    (f"00-{TRACE}-{SPAN}-fe", Parent(TRACE, SPAN, False)),
    # Optional whitespace around the value (the header grammar's OWS).
    (f" \t00-{TRACE}-{SPAN}-01\t ", Parent(TRACE, SPAN, True)),
    # A higher version: the first four fields are read, more fields after a dash are allowed.
    (f"cc-{TRACE}-{SPAN}-01", Parent(TRACE, SPAN, True)),
    (f"cc-{TRACE}-{SPAN}-01-what-the-future-will-be-like", Parent(TRACE, SPAN, True)),
])
def test_valid(value: str, expected: Parent) -> None:
    assert parse([value]) == expected


@pytest.mark.parametrize("value", [
    "",
    "00",
    f"ff-{TRACE}-{SPAN}-01",  # version ff is forbidden
    f"00-{TRACE}-{SPAN}-01-extra",  # version 00 is exactly 55 characters
    f"00-{TRACE}-{SPAN}-01x",
    f"cc-{TRACE}-{SPAN}-01.what-the-future-will-be-like",  # more data must follow a dash
    f"00-{TRACE.upper()}-{SPAN}-01",  # uppercase hex
    f"00-{TRACE}-{SPAN.upper()}-01",
    f"0A-{TRACE}-{SPAN}-01",
    f"00-{TRACE}-{SPAN}-0A",
    f"00-{'0' * 32}-{SPAN}-01",  # all-zero trace id
    f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
    f"00-{TRACE[:-1]}-{SPAN}-01",  # short trace id
    f"00-{TRACE}0-{SPAN}-01",  # long trace id
    f"00-{TRACE}-{SPAN[:-1]}-01",
    f"00-{TRACE}-{SPAN}-1",
    f"00_{TRACE}_{SPAN}_01",  # wrong delimiters
    f"00-{TRACE[:-1]}g-{SPAN}-01",  # non-hex characters
    f"00-{TRACE}-{SPAN[:-1]}.-01",
    f"000-{TRACE}-{SPAN}-01",
    f"00-{TRACE}-{SPAN}-01\n",  # a newline is not whitespace here (header injection)
])
def test_invalid_starts_a_new_trace(value: str) -> None:
    assert parse([value]) is None


def test_absent_or_duplicated_header_is_no_parent() -> None:
    assert parse([]) is None
    one = f"00-{TRACE}-{SPAN}-01"
    assert parse([one, one]) is None  # the W3C suite: duplicated traceparent restarts the trace


def test_format_round_trips() -> None:
    assert format_traceparent(TRACE, SPAN, True) == f"00-{TRACE}-{SPAN}-01"
    assert format_traceparent(TRACE, SPAN, False) == f"00-{TRACE}-{SPAN}-00"
    assert parse([format_traceparent(TRACE, SPAN, False)]) == Parent(TRACE, SPAN, False)


@pytest.mark.parametrize(("values", "expected"), [
    ([], None),
    (["congo=t61rcWkgMzE"], "congo=t61rcWkgMzE"),
    (["rojo=00f067aa0ba902b7", "congo=t61rcWkgMzE"], "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"),  # headers combine
    (["a=1\r\nx-injected: 1"], None),  # control characters are never forwarded
    (["a=" + "b" * 600], None),  # longer than the spec's 512-character propagation floor
])
def test_tracestate(values: list[str], expected: str | None) -> None:
    assert parse_tracestate(values) == expected
