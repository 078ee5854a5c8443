"""Pure codec: SSE parsing, JSON-RPC framing, era evidence, result normalisation."""

from __future__ import annotations

import pytest

from gateway.upstream import codec
from gateway.upstream.codec import SSEEvent, SSEParser

SSE_CASES = [
    ("lf", b"event: message\ndata: {}\n\n", [SSEEvent("message", "{}")]),
    ("crlf", b"event: message\r\ndata: {}\r\n\r\n", [SSEEvent("message", "{}")]),
    ("cr only", b"data: a\rdata: b\r\r", [SSEEvent("message", "a\nb")]),
    ("comment keep-alive", b": ping\r\n\r\ndata: x\r\n\r\n", [SSEEvent("message", "x")]),
    ("multi-line data", b"data: {\"a\":\ndata: 1}\n\n", [SSEEvent("message", '{"a":\n1}')]),
    ("no space after colon", b"data:x\n\n", [SSEEvent("message", "x")]),
    ("only one leading space stripped", b"data:  x\n\n", [SSEEvent("message", " x")]),
    ("default event type", b"data: x\n\n", [SSEEvent("message", "x")]),
    ("custom event", b"event: other\ndata: x\n\n", [SSEEvent("other", "x")]),
    ("id and retry", b"id: 7\nretry: 500\ndata: x\n\n", [SSEEvent("message", "x", "7", 500)]),
    ("event without data is not dispatched", b"event: message\n\ndata: y\n\n", [SSEEvent("message", "y")]),
    ("empty data line dispatches empty data", b"data:\n\n", [SSEEvent("message", "")]),
    ("unknown field ignored", b"foo: bar\ndata: x\n\n", [SSEEvent("message", "x")]),
    ("unterminated event dropped", b"data: x\n", []),
    ("two events", b"data: 1\n\ndata: 2\n\n", [SSEEvent("message", "1"), SSEEvent("message", "2")]),
    ("id persists", b"id: 1\ndata: a\n\ndata: b\n\n", [SSEEvent("message", "a", "1"), SSEEvent("message", "b", "1")]),
]


@pytest.mark.parametrize(("name", "payload", "expected"), SSE_CASES, ids=[c[0] for c in SSE_CASES])
def test_sse_whole(name: str, payload: bytes, expected: list[SSEEvent]) -> None:
    assert codec.parse_sse(payload) == expected


@pytest.mark.parametrize(("name", "payload", "expected"), SSE_CASES, ids=[c[0] for c in SSE_CASES])
def test_sse_byte_by_byte(name: str, payload: bytes, expected: list[SSEEvent]) -> None:
    # Chunk boundaries anywhere (including between CR and LF) must not change the result.
    parser = SSEParser()
    events = []
    for i in range(len(payload)):
        events += parser.feed(payload[i : i + 1])
    events += parser.close()
    assert events == expected


def test_sse_trailing_cr_at_close() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r\r") == []  # the last CR might be half of a CRLF
    assert parser.close() == [SSEEvent("message", "x")]


def test_sse_crlf_split_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: x\r") == []
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r\n") == [SSEEvent("message", "x")]


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("tools/call", {"name": "echo"}, {"Mcp-Name": "echo"}),
        ("prompts/get", {"name": "p"}, {"Mcp-Name": "p"}),
        ("resources/read", {"uri": "file:///a"}, {"Mcp-Name": "file:///a"}),
        ("tools/list", {}, {}),
        ("tools/call", {"name": "héllo"}, {"Mcp-Name": "=?base64?aMOpbGxv?="}),
        ("tools/call", {"name": " pad"}, {"Mcp-Name": "=?base64?IHBhZA==?="}),
    ],
)
def test_routing_headers(method: str, params: dict, expected: dict) -> None:
    headers = codec.routing_headers(method, params)
    assert headers == {"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": method, **expected}


def test_modern_meta_copies_and_keeps_existing_meta() -> None:
    params = {"name": "x", "_meta": {"progressToken": "t"}}
    out = codec.with_modern_meta(params, {})
    assert params == {"name": "x", "_meta": {"progressToken": "t"}}  # caller's dict untouched
    assert out["_meta"] == {
        "progressToken": "t",
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": {},
    }


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ({"id": 0, "result": {"supportedVersions": ["2026-07-28"]}}, ["2026-07-28"]),
        ({"id": 0, "error": {"code": -32022, "data": {"supported": ["2026-07-28"]}}}, ["2026-07-28"]),
        ({"id": 0, "error": {"code": -32022, "data": {"supported": ["2025-11-25"]}}}, ["2025-11-25"]),
        ({"id": 0, "error": {"code": -32020, "message": "mismatch"}}, ["2026-07-28"]),
        ({"id": "server-error", "error": {"code": -32600, "message": "Missing session ID"}}, None),
        ({"id": 0, "error": {"code": -32601}}, None),
        ({"id": 0, "result": {}}, None),
        ("garbage", None),
    ],
)
def test_modern_evidence(message: object, expected: list[str] | None) -> None:
    assert codec.modern_evidence(message) == expected


@pytest.mark.parametrize(
    ("message", "rid", "expected"),
    [
        ({"jsonrpc": "2.0", "id": 1, "result": {}}, 1, True),
        ({"jsonrpc": "2.0", "id": 1, "error": {}}, 1, True),
        ({"jsonrpc": "2.0", "id": 2, "result": {}}, 1, False),
        ({"jsonrpc": "2.0", "id": 1, "method": "x"}, 1, False),
        ({"jsonrpc": "2.0", "method": "notifications/progress"}, 1, False),
    ],
)
def test_is_response_to(message: dict, rid: int, expected: bool) -> None:
    assert codec.is_response_to(message, rid) is expected


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            {"content": [], "isError": False, "resultType": "complete",
             "_meta": {"io.modelcontextprotocol/serverInfo": {"name": "x"}}},
            {"content": [], "isError": False},
        ),
        (
            {"content": [], "resultType": "complete", "_meta": {"io.modelcontextprotocol/serverInfo": {}, "k": 1}},
            {"content": [], "_meta": {"k": 1}},
        ),
        ({"content": [], "isError": True}, {"content": [], "isError": True}),
        ({"resultType": "input_required", "inputRequests": {}}, {"resultType": "input_required", "inputRequests": {}}),
    ],
)  # fmt: skip
def test_normalise_result(result: dict, expected: dict) -> None:
    assert codec.normalise_result(result) == expected


def _error(code: int, message: str = "x", rid: object = 1) -> dict:
    return {"jsonrpc": "2.0", "id": rid, "error": {"code": code, "message": message}}


@pytest.mark.parametrize(
    ("status", "answer", "expected"),
    [
        (404, _error(-32600, "Session not found", None), True),  # the spec's answer (Python SDK)
        (404, None, True),
        # server-everything after a restart: 400, -32000, our own id echoed back.
        (400, _error(-32000, "Bad Request: No valid session ID provided"), True),
        (400, _error(-32000, "Bad Request: No valid session ID provided", None), True),
        (400, None, True),  # a plain-text 400 (older Python SDK servers)
        (400, _error(-32602, "Invalid params"), False),  # the message's fault: a new session changes nothing
        (400, _error(-32601, "Method not found"), False),
        (400, _error(-32700, "Parse error", None), False),
        (200, _error(-32000), False),
        (401, None, False),
        (500, None, False),
    ],
)
def test_session_refused(status: int, answer: object, expected: bool) -> None:
    assert codec.session_refused(status, answer) is expected


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (codec.SSEEvent(event="message", data='{"jsonrpc": "2.0", "method": "x"}'), {"jsonrpc": "2.0", "method": "x"}),
        (codec.SSEEvent(event="endpoint", data='{"a": 1}'), None),  # another event type
        (codec.SSEEvent(event="message", data=""), None),  # a keep-alive
        (codec.SSEEvent(event="message", data="{not json"), None),  # malformed: skipped, not fatal
        (codec.SSEEvent(event="message", data="[1, 2]"), None),  # JSON, but not a message object
    ],
)
def test_event_message_is_lenient(event: codec.SSEEvent, expected: object) -> None:
    assert codec.event_message(event) == expected
