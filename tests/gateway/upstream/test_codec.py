"""gateway.upstream.codec, the JSON-RPC module: framing, the answer check, era evidence, normalisation."""

from __future__ import annotations

import pytest

from gateway.upstream import codec
from gateway.upstream.errors import UpstreamError
from gateway.upstream.sse import Event


@pytest.mark.parametrize(
    ("method", "params", "expected"),
    [
        ("tools/call", {"name": "echo"}, {"Mcp-Name": "echo"}),
        ("prompts/get", {"name": "p"}, {"Mcp-Name": "p"}),
        ("resources/read", {"uri": "file:///a"}, {"Mcp-Name": "file:///a"}),
        ("tools/list", {}, {}),
        ("tools/call", {"name": "héllo"}, {"Mcp-Name": "=?base64?aMOpbGxv?="}),
        ("tools/call", {"name": " pad"}, {"Mcp-Name": "=?base64?IHBhZA==?="}),
        ("tools/call", {"name": "=?x"}, {"Mcp-Name": "=?base64?PT94?="}),  # would read as encoded
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
        ({"jsonrpc": "2.0", "id": 7, "result": {}}, None, True),  # None: the answer to any request
        ({"jsonrpc": "2.0", "method": "x"}, None, False),
        ("garbage", None, False),
    ],
)
def test_is_response_to(message: dict, rid: int | None, expected: bool) -> None:
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
        (Event(b"", event="message", data='{"jsonrpc": "2.0", "method": "x"}'), {"jsonrpc": "2.0", "method": "x"}),
        (Event(b"", event="endpoint", data='{"a": 1}'), None),  # another event type
        (Event(b"", event="message", data=""), None),  # a keep-alive
        (Event(b"", event="message", data="{not json"), None),  # malformed: skipped, not fatal
        (Event(b"", event="message", data="[1, 2]"), None),  # JSON, but not a message object
    ],
)
def test_event_message_is_lenient(event: Event, expected: object) -> None:
    assert codec.event_message(event) == expected


def _pages(*results: object) -> tuple[list[object], object]:
    """A `page` callable answering `results` in turn, and the params it was asked with."""
    asked: list[object] = []
    answers = iter(results)

    async def page(params: object) -> object:
        asked.append(params)
        return next(answers)

    return asked, page


async def test_every_page_follows_cursors() -> None:
    asked, page = _pages({"tools": [{"name": "a"}, "junk"], "nextCursor": "c1"}, {"tools": [{"name": "b"}]})
    assert await codec.every_page("s", "tools/list", page) == [{"name": "a"}, {"name": "b"}]
    assert asked == [None, {"cursor": "c1"}]


@pytest.mark.parametrize(("results", "match"), [
    (({"prompts": [], "nextCursor": "x"}, {"prompts": [], "nextCursor": "x"}), "cursor repeats"),
    (({"prompts": [], "nextCursor": {"not": "a string"}},), "not a string"),
    (({"prompts": None},), "has no prompts list"),
    (("garbage",), "has no prompts list"),
])  # fmt: skip
async def test_every_page_refuses_a_looping_or_malformed_backend(results: tuple, match: str) -> None:
    _, page = _pages(*results)
    with pytest.raises(UpstreamError, match=match):
        await codec.every_page("s", "prompts/list", page)


async def test_every_page_stops_after_max_pages() -> None:
    _, page = _pages(*({"resources": [], "nextCursor": f"c{i}"} for i in range(codec.MAX_PAGES + 1)))
    with pytest.raises(UpstreamError, match=f"exceeded {codec.MAX_PAGES} pages"):
        await codec.every_page("s", "resources/list", page)


@pytest.mark.parametrize(("limits", "match"), [
    ({"max_items": 3}, "more than 3 items"),
    ({"max_bytes": 40}, "more than 40 bytes"),
])  # fmt: skip
async def test_every_page_counts_all_pages_against_one_listings_limits(limits: dict, match: str) -> None:
    # Each page is small; together they pass the cap: no further page is read, nothing is returned.
    asked, page = _pages(*({"tools": [{"name": f"t{i}"}, {"name": f"u{i}"}], "nextCursor": f"c{i}"} for i in range(9)))
    with pytest.raises(codec.ListTooLarge, match=match) as caught:
        await codec.every_page("s", "tools/list", page, **limits)
    assert len(asked) == 2 and caught.value.items == 4


async def test_every_page_within_its_limits_returns_everything() -> None:
    _, page = _pages({"tools": [{"name": "a"}], "nextCursor": "c"}, {"tools": [{"name": "b"}]})
    assert await codec.every_page("s", "tools/list", page, max_items=2, max_bytes=30) == [{"name": "a"}, {"name": "b"}]
