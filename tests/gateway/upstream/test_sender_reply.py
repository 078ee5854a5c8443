"""gateway.upstream.sender (read_reply, answer_in): the answer to a request in a buffered JSON or SSE body (passthrough's read)."""

from __future__ import annotations

import pytest

from gateway.upstream.sender import answer_in

ANSWER = b'{"jsonrpc":"2.0","id":7,"result":{}}'
NOTE = b'{"jsonrpc":"2.0","method":"notifications/progress","params":{}}'
OTHER = b'{"jsonrpc":"2.0","id":8,"result":{}}'


def sse(*datas: bytes) -> bytes:
    return b"".join(b": ping\r\n\r\nevent: message\r\ndata: " + d + b"\r\n\r\n" for d in datas)


@pytest.mark.parametrize(("raw", "ctype", "rid", "expected"), [
    (ANSWER, "application/json", 7, {"jsonrpc": "2.0", "id": 7, "result": {}}),
    (b"{not json", "application/json", 7, None),
    (b"", "application/json", None, None),
    (sse(NOTE, OTHER, ANSWER), "text/event-stream", 7, {"jsonrpc": "2.0", "id": 7, "result": {}}),
    (sse(NOTE, OTHER), "text/event-stream", 7, None),  # another request's answer is not ours
    (sse(NOTE, OTHER), "text/event-stream", None, {"jsonrpc": "2.0", "id": 8, "result": {}}),  # None: any answer
    (sse(b"{broken", ANSWER), "text/event-stream", 7, {"jsonrpc": "2.0", "id": 7, "result": {}}),
    (b"data: " + ANSWER, "text/event-stream", 7, {"jsonrpc": "2.0", "id": 7, "result": {}}),  # body ends mid-event
])  # fmt: skip
def test_answer_in(raw: bytes, ctype: str, rid: int | None, expected: object) -> None:
    assert answer_in(raw, ctype, rid) == expected
