"""gateway.mcp.sse: incremental parsing across chunk boundaries, encoding round trip."""

from __future__ import annotations

import pytest

from gateway.mcp import sse

STREAM = (
    b": ping\r\n\r\n"
    b"event: message\r\nid: 7\r\ndata: {\"a\":1}\r\n\r\n"
    b"retry: 100\nid: 8\ndata: line1\ndata: line2\n\n"
)


@pytest.mark.parametrize("size", [1, 2, 5, 13, len(STREAM)])
def test_parser_handles_any_chunking(size: int) -> None:
    parser = sse.Parser()
    events = []
    for i in range(0, len(STREAM), size):
        events += parser.feed(STREAM[i:i + size])
    assert [e.is_comment for e in events] == [True, False, False]
    assert events[1].id == "7" and events[1].data == '{"a":1}' and events[1].event == "message"
    assert events[2].id == "8" and events[2].data == "line1\nline2"
    assert b"".join(e.raw for e in events) == STREAM  # byte-exact passthrough
    assert parser.rest() == b""


def test_unterminated_tail_is_kept() -> None:
    parser = sse.Parser()
    assert parser.feed(b"data: x\n") == []
    assert parser.rest() == b"data: x\n"


def test_limit() -> None:
    parser = sse.Parser(limit=10)
    with pytest.raises(ValueError):
        parser.feed(b"data: " + b"x" * 20)


def test_encode_round_trip() -> None:
    raw = sse.encode('{"x":\n1}', id="3")
    (event,) = sse.Parser().feed(raw)
    assert event.data == '{"x":\n1}' and event.id == "3"
