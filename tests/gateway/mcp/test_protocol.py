"""Table tests for gateway.mcp.protocol: message parsing, era detection, modern-era validation."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from multidict import CIMultiDict

from gateway.mcp import protocol as p

META = {p.META_VERSION: "2026-07-28", p.META_CAPABILITIES: {}}


def modern(method: str, **params: object) -> p.Message:
    return p.parse_message({"jsonrpc": "2.0", "id": 1, "method": method, "params": {**params, "_meta": META}})


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, "request"),
        ({"jsonrpc": "2.0", "id": "a", "method": "tools/list"}, "request"),
        ({"jsonrpc": "2.0", "method": "notifications/initialized"}, "notification"),
        ({"jsonrpc": "2.0", "id": 3, "result": {}}, "response"),
        ({"jsonrpc": "2.0", "id": 3, "error": {"code": 1, "message": "x"}}, "response"),
    ],
)
def test_parse_message_kinds(body: dict, kind: str) -> None:
    assert p.parse_message(body).kind == kind


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ([{"jsonrpc": "2.0", "id": 1, "method": "ping"}], p.INVALID_REQUEST),
        ({"id": 1, "method": "ping"}, p.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": True, "method": "ping"}, p.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 1, "method": ""}, p.INVALID_REQUEST),
        ({"jsonrpc": "2.0", "id": 1, "method": "ping", "params": [1]}, p.INVALID_PARAMS),
        ("text", p.INVALID_REQUEST),
    ],
)
def test_parse_message_rejects(body: object, code: int) -> None:
    with pytest.raises(p.RpcFailure) as info:
        p.parse_message(body)
    assert info.value.code == code and info.value.status == 400


@pytest.mark.parametrize(
    ("body", "headers", "era"),
    [
        ({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}, {}, "handshake"),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {p.H_SESSION: "x"}, "handshake"),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"_meta": META}}, {}, "modern"),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {p.H_VERSION: "2026-07-28"}, "modern"),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {p.H_VERSION: "2025-11-25"}, "handshake"),
        ({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}, {}, "handshake"),
    ],
)
def test_detect_era(body: dict, headers: dict, era: str) -> None:
    assert p.detect_era(p.parse_message(body), headers) == era


def headers_for(method: str, name: str | None = None, version: str = "2026-07-28") -> CIMultiDict[str]:
    h = CIMultiDict({p.H_VERSION: version, p.H_METHOD: method})
    if name is not None:
        h[p.H_NAME] = name
    return h


def test_modern_headers_accepts_matching_headers() -> None:
    p.check_headers(modern("tools/call", name="t"), headers_for("tools/call", "t"), "modern")


def test_modern_headers_accepts_base64_name() -> None:
    uri = "file:///naïve.txt"
    wrapped = "=?base64?" + base64.b64encode(uri.encode()).decode() + "?="
    msg = modern("resources/read", uri=uri)
    p.check_headers(msg, headers_for("resources/read", wrapped), "modern")


@pytest.mark.parametrize(
    ("msg", "headers", "code"),
    [
        (p.parse_message({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}), headers_for("tools/list"),
         p.INVALID_PARAMS),
        (modern("tools/list"), headers_for("tools/call"), p.HEADER_MISMATCH),
        (modern("tools/list"), CIMultiDict({p.H_METHOD: "tools/list"}), p.HEADER_MISMATCH),
        (modern("tools/call", name="a"), headers_for("tools/call", "b"), p.HEADER_MISMATCH),
        (modern("tools/call", name="a"), headers_for("tools/call"), p.HEADER_MISMATCH),
        (modern("prompts/get", name="a"), headers_for("prompts/get", "=?base64?!!?="), p.HEADER_MISMATCH),
    ],
)
def test_modern_headers_rejects(msg: p.Message, headers: CIMultiDict[str], code: int) -> None:
    with pytest.raises(p.RpcFailure) as info:
        p.check_headers(msg, headers, "modern")
    assert info.value.code == code and info.value.status == 400


def test_unknown_version_lists_supported() -> None:
    msg = p.parse_message({"jsonrpc": "2.0", "id": 1, "method": "tools/list",
                           "params": {"_meta": {p.META_VERSION: "2099-01-01", p.META_CAPABILITIES: {}}}})
    with pytest.raises(p.RpcFailure) as info:
        p.check_headers(msg, headers_for("tools/list", version="2099-01-01"), "modern")
    assert info.value.code == p.UNSUPPORTED_VERSION
    assert info.value.data == {"supported": ["2026-07-28"], "requested": "2099-01-01"}


@pytest.mark.parametrize(
    ("accept", "ok"),
    [
        ("application/json, text/event-stream", True),
        ("text/event-stream;q=1, application/json;q=0.9", True),
        ("*/*", True),
        ("application/json", False),
        ("text/event-stream", False),
        (None, False),
    ],
)
def test_accepts_post(accept: str | None, ok: bool) -> None:
    assert p.accepts_post(accept) is ok


@pytest.mark.parametrize(
    ("origin", "allow", "host", "ok"),
    [
        (None, [], "127.0.0.1:8000", True),
        ("http://127.0.0.1:8000", [], "127.0.0.1:8000", True),
        ("http://localhost:8000", [], "localhost:8000", True),
        ("http://evil.example", [], "evil.example", False),  # DNS rebinding: same host, not loopback
        ("http://evil.example", [], "127.0.0.1:8000", False),
        ("https://app.example", ["https://app.example"], "gw.example", True),
        ("https://other.example", ["https://app.example"], "gw.example", False),
        ("https://any.example", ["*"], "gw.example", True),
    ],
)
def test_origin_allowed(origin: str | None, allow: list[str], host: str, ok: bool) -> None:
    assert p.origin_allowed(origin, allow, host) is ok


@pytest.mark.parametrize(
    ("requested", "answer"),
    [("2025-06-18", "2025-06-18"), ("2025-03-26", "2025-03-26"), ("1999-01-01", "2025-11-25"), (None, "2025-11-25")],
)
def test_negotiate(requested: object, answer: str) -> None:
    assert p.negotiate(requested) == answer


def test_result_type_by_era() -> None:
    assert p.with_result_type({"tools": []}, "modern") == {"tools": [], "resultType": "complete"}
    assert p.with_result_type({"tools": [], "resultType": "complete", "ttlMs": 5}, "handshake") == {"tools": []}
    listed = p.with_result_type({"tools": [], "cacheScope": "public"}, "modern", "tools/list")
    assert listed == {"tools": [], "resultType": "complete", "ttlMs": 0, "cacheScope": "private"}


@pytest.mark.parametrize(
    "body",
    [
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}},
        {"jsonrpc": "2.0", "id": "a", "method": "tools/list"},
        {"jsonrpc": "2.0", "id": True, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 1.5, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": None, "method": "tools/list"},
        {"jsonrpc": "2.0", "id": 1, "method": ""},
        {"jsonrpc": "2.0", "id": 1, "method": 5},
        {"jsonrpc": "2.0", "id": 1, "method": "m", "params": [1]},
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 3, "result": {}},
        {"jsonrpc": "1.0", "id": 1, "method": "m"},
        [{"jsonrpc": "2.0", "id": 1, "method": "m"}],
    ],
)
def test_fast_path_agrees_with_full_check(body: object) -> None:
    """parse_message's fast path answers exactly what the full check answers."""

    def outcome(parse: object) -> tuple:
        try:
            msg = parse(body)  # type: ignore[operator]
        except p.RpcFailure as failure:
            return ("fail", failure.code, failure.message)
        return (msg.kind, msg.id, msg.method, msg.params)

    assert outcome(p.parse_message) == outcome(p._parse_slow)


def test_message_fields() -> None:
    msg = p.parse_message({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {"name": "a"}})
    assert (msg.kind, msg.id, msg.method, msg.params) == ("request", 4, "tools/call", {"name": "a"})
    assert p.parse_message({"jsonrpc": "2.0", "id": 4, "result": {}}).method == ""


def test_headers_match_case_insensitively() -> None:
    msg = modern("tools/call", name="t")
    headers = CIMultiDict({"mcp-protocol-version": "2026-07-28", "MCP-METHOD": "tools/call", "mcp-name": "t"})
    p.check_headers(msg, headers, "modern")
    assert p.detect_era(msg, headers) == "modern"


def test_accepts_post_cached_answer_is_the_same() -> None:
    for _ in range(2):
        assert p.accepts_post("application/json, text/event-stream")
        assert not p.accepts_post("application/json")
        assert p.accepts_post("*/*")
        assert not p.accepts_post(None)


def _msg(body: dict) -> p.Message:
    return p.parse_message({"jsonrpc": "2.0", **body})


@pytest.mark.parametrize(("body", "headers"), [
    ({"id": 1, "method": "tools/call", "params": {"name": "echo"}}, {}),
    ({"id": 1, "method": "tools/call", "params": {"name": "echo"}}, {"Mcp-Method": "tools/call", "Mcp-Name": "echo"}),
    ({"id": 1, "method": "resources/read", "params": {"uri": "memo://a"}}, {"Mcp-Name": "=?base64?bWVtbzovL2E=?="}),
    ({"method": "notifications/initialized"}, {"Mcp-Method": "notifications/initialized"}),
])
def test_routing_headers_that_agree_pass(body: dict, headers: dict) -> None:
    p.check_headers(_msg(body), CIMultiDict(headers), "handshake")


@pytest.mark.parametrize(("body", "headers"), [
    ({"id": 1, "method": "tools/call", "params": {"name": "delete"}}, {"Mcp-Method": "tools/list"}),
    ({"id": 1, "method": "tools/call", "params": {"name": "delete"}}, {"Mcp-Name": "echo"}),
    ({"id": 1, "method": "tools/list"}, {"Mcp-Name": "echo"}),  # a name the body does not carry
    ({"id": 1, "result": {}}, {"Mcp-Method": "tools/call"}),
    ({"id": 1, "method": "tools/call", "params": {"name": "echo"}},
     [("Mcp-Method", "tools/call"), ("Mcp-Method", "tools/list")]),
    ({"id": 1, "method": "tools/call", "params": {"name": "echo"}}, [("Mcp-Name", "echo"), ("Mcp-Name", "rm")]),
])
def test_routing_headers_that_disagree_are_32020(body: dict, headers: Any) -> None:
    with pytest.raises(p.RpcFailure) as exc:
        p.check_headers(_msg(body), CIMultiDict(headers), "handshake")
    assert exc.value.code == p.HEADER_MISMATCH and exc.value.status == 400


@pytest.mark.parametrize(("value", "encoded"), [
    ("echo", "echo"), ("file:///a b", "file:///a b"), ("naïve", "=?base64?bmHDr3Zl?="),
    (" lead", "=?base64?IGxlYWQ=?="), ("=?x", "=?base64?PT94?="), ("a\nb", "=?base64?YQpi?="),
])
def test_rebuilt_routing_headers(value: str, encoded: str) -> None:
    assert p.encode_header(value) == encoded
    assert p.decode_header(encoded) == value
    msg = _msg({"id": 1, "method": "prompts/get", "params": {"name": value}})
    assert p.routing_headers(msg) == {"Mcp-Method": "prompts/get", "Mcp-Name": encoded}
    assert p.routing_headers(_msg({"id": 1, "method": "tools/list"})) == {"Mcp-Method": "tools/list"}


def test_modern_envelope_is_checked_before_headers() -> None:
    """The spec's order: a 2026-07-28 request without `_meta` is −32602 even when its headers disagree."""
    bare = p.parse_message({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    with pytest.raises(p.RpcFailure) as info:
        p.check_headers(bare, CIMultiDict({p.H_METHOD: "tools/call"}), "modern")
    assert info.value.code == p.INVALID_PARAMS
