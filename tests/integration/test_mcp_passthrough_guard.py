"""Issue 9 (3, 4): every message through `/servers/{name}/mcp` and `/mcp` is classified before it
reaches a backend. Real SDK backends (both eras), real PDP; each refusal is also checked on the
backend side: nothing arrived."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401  (fixtures)
from tests.integration.gateway_harness import Stack, audit_rows, caller_request_id, gateway_stack
from tests.integration.mcp_helpers import (
    ACCEPT,
    ADMIN,
    META,
    initialize,
    modern_headers,
    rpc,
    session_headers,
)

READER, NOBODY = "reader@example.com", "nobody@example.com"
BLIND = "blind@example.com"  # may call hostile's echo, but not see the server (no list_tools on it)
POLICY = """
roles:
  admin:
    permissions:
      - resource: "*"
        actions: ["*"]
  reader:
    permissions:
      - resource: "mcp:*:*"
        actions: ["list_servers", "list_tools", "server_info"]
      - resource: "mcp:*:echo"
        actions: ["invoke_tool"]
      - resource: "mcp:*:prompt/open"
        actions: ["get_prompt"]
      - resource: "mcp:*:resource/file%3A///public/*"
        actions: ["read_resource"]
      - resource: "mcp:hostile:method/tasks/list"
        actions: ["call_method"]
  blind:
    permissions:
      - resource: "mcp:hostile:echo"
        actions: ["invoke_tool"]
user_roles:
  admin@example.com: [admin]
  reader@example.com: [reader]
  blind@example.com: [blind]
default_policy: deny
"""
PT = "/servers/hostile/mcp"
TRAVERSALS = ("file:///public/../secret/keys.txt", "file:///public/%2e%2e/secret/keys.txt",
              "file:///public/%2E%2E/secret/keys.txt", "file:///public/..%2Fsecret/keys.txt",
              "file:///public/%252e%252e/secret/keys.txt", "file:///public/..\\secret\\keys.txt",
              "FILE:///public/../secret/keys.txt")


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend_factory: Callable[..., Backend]) -> AsyncIterator[Stack]:
    hostile = mcp_backend_factory("hostile", "hostile")
    legacy = mcp_backend_factory("hostile-legacy", "hostile-legacy")
    async with gateway_stack(tmp_path, pg_dsn, {"hostile": {"url": hostile.url}, "old": {"url": legacy.url}},
                             policy=POLICY, env={"MCPGW_GATEWAY_MCP_SESSION_SECRET": "test-secret"}) as s:
        s.backends = {"hostile": hostile, "old": legacy}
        yield s


def req(method: str, rid: int | None = 7, **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"jsonrpc": "2.0", "method": method, "params": params}
    if rid is not None:
        body["id"] = rid
    return body


def modern(method: str, rid: int | None = 7, **params: Any) -> dict[str, Any]:
    return req(method, rid, **params, _meta=META)


def received(backend: Backend, method: str) -> list[Any]:
    return [r.json() for r in backend.requests if r.body and (r.json() or {}).get("method") == method]


async def test_request_methods_sent_as_notifications_are_refused_never_forwarded(stack: Stack) -> None:
    backend = stack.backends["hostile"]
    sid = await initialize(stack, PT, ADMIN)
    backend.clear()
    for method, params in (("tools/call", {"name": "echo", "arguments": {"text": "x"}}), ("initialize", {}),
                           ("resources/read", {"uri": "file:///secret/keys.txt"}), ("tasks/get", {}), ("ping", {})):
        # 2025 era, in an admin's session; 2026 era, by a reader and by a caller who may see nothing.
        status, answer, _ = await rpc(stack, PT, req(method, None, **params), ADMIN, session_headers(sid))
        assert status == 400 and "notification" in answer["error"]["message"], (method, answer)
        status, answer, _ = await rpc(stack, PT, modern(method, None, **params), READER, modern_headers(method))
        assert status == 400 and "notification" in answer["error"]["message"], (method, answer)
        # A caller who may not even see the server gets the unknown-server answer (uniform unseen).
        status, answer, _ = await rpc(stack, PT, modern(method, None, **params), NOBODY, modern_headers(method))
        assert status == 404, (method, answer)
        status, _, _ = await rpc(stack, "/mcp", modern(method, None, **params), NOBODY, modern_headers(method))
        assert status == 400, method
    # A batch is refused whole (classification is per message).
    batch = [req("ping", 1), req("tools/call", None, name="echo")]
    async with stack.session.post(stack.url + PT, json=batch, headers={
            **stack.headers(ADMIN), **session_headers(sid), "Accept": ACCEPT}) as resp:
        assert resp.status == 400
    assert backend.methods() == []
    # 2026 era: client notifications (a cancel by a client-chosen id) are acknowledged and dropped.
    status, _, _ = await rpc(stack, PT, modern("notifications/cancelled", None, requestId=7), READER,
                             modern_headers("notifications/cancelled"))
    assert status == 202 and backend.methods() == []
    # 2025 era: the client's own notifications still pass, within its own backend session.
    status, _, _ = await rpc(stack, PT, req("notifications/cancelled", None, requestId=1), ADMIN, session_headers(sid))
    assert status == 202 and backend.methods() == ["notifications/cancelled"]


async def test_opening_a_session_needs_the_right_to_see_the_server(stack: Stack) -> None:
    backend = stack.backends["hostile"]
    backend.clear()
    body = req("initialize", 1, protocolVersion="2025-11-25", capabilities={}, clientInfo={"name": "t", "version": "1"})
    # A caller who may not see the server is told what an unknown server's caller is told.
    unknown_status, unknown, _ = await rpc(stack, "/servers/no-such-server/mcp", body, NOBODY)
    status, answer, headers = await rpc(stack, PT, body, NOBODY)
    assert (status, answer["error"]["code"]) == (unknown_status, unknown["error"]["code"]) == (404, -32602)
    assert "Mcp-Session-Id" not in headers
    status, answer, _ = await rpc(stack, PT, modern("server/discover", 1), NOBODY, modern_headers("server/discover"))
    assert status == 404 and answer["error"]["code"] == -32602
    assert backend.methods() == []
    assert (await initialize(stack, PT, READER)).startswith("gw1.")
    status, answer, _ = await rpc(stack, PT, modern("server/discover", 1), READER, modern_headers("server/discover"))
    assert status == 200 and "result" in answer


@pytest.mark.parametrize("era", ["handshake", "modern"])
async def test_completion_and_subscriptions_are_decided_like_their_target(stack: Stack, era: str) -> None:
    backend = stack.backends["hostile"]
    sid = await initialize(stack, PT, READER) if era == "handshake" else ""

    async def send(method: str, **params: Any) -> tuple[int, Any]:
        if era == "handshake":
            status, answer, _ = await rpc(stack, PT, req(method, **params), READER, session_headers(sid))
        else:
            name = params.get("uri") or params.get("name")
            status, answer, _ = await rpc(stack, PT, modern(method, **params), READER,
                                          modern_headers(method, name if method in ("resources/read",) else None))
        return status, answer

    backend.clear()
    status, answer = await send("completion/complete", ref={"type": "ref/prompt", "name": "secret"},
                                argument={"name": "topic", "value": "c"})
    assert answer["error"]["code"] == -32003
    assert received(backend, "completion/complete") == []
    status, answer = await send("completion/complete", ref={"type": "ref/prompt", "name": "open"},
                                argument={"name": "topic", "value": "c"})
    assert answer["result"]["completion"]["values"] == ["classified-launch-codes"]
    status, answer = await send("completion/complete", ref={"type": "ref/resource", "uri": "file:///public/{path}"},
                                argument={"name": "path", "value": "a"})
    assert "result" in answer
    if era == "handshake":  # resources/subscribe is a 2025-era method
        backend.clear()
        status, answer = await send("resources/subscribe", uri="file:///secret/keys.txt")
        assert answer["error"]["code"] == -32003 and received(backend, "resources/subscribe") == []
        status, answer = await send("resources/subscribe", uri="file:///public/a.txt")
        assert answer == {"jsonrpc": "2.0", "id": 7, "result": {}}
        status, answer = await send("resources/unsubscribe", uri="file:///secret/keys.txt")
        assert answer["error"]["code"] == -32003
    backend.clear()
    for uri in TRAVERSALS:
        for method in ("resources/read", "resources/subscribe"):
            status, answer = await send(method, uri=uri)
            assert status == 400 and answer["error"]["code"] == -32602, (method, uri, answer)
    status, answer = await send("completion/complete", ref={"type": "ref/resource", "uri": "file:///public/../{p}"},
                                argument={"name": "p", "value": "a"})
    assert status == 400
    assert backend.methods() == []
    status, answer = await send("resources/read", uri="file:///public/a.txt")
    assert answer["result"]["contents"][0]["text"] == "content"


async def test_unknown_methods_need_an_explicit_grant(stack: Stack) -> None:
    backend = stack.backends["hostile"]
    sid = await initialize(stack, PT, READER)
    backend.clear()
    status, answer, _ = await rpc(stack, PT, req("tasks/get", taskId="1"), READER, session_headers(sid))
    assert answer["error"]["code"] == -32601 and backend.methods() == []
    status, answer, _ = await rpc(stack, PT, modern("tasks/get", taskId="1"), READER, modern_headers("tasks/get"))
    assert status == 404 and answer["error"]["code"] == -32601 and backend.methods() == []
    # Granted by `call_method` on mcp:hostile:method/tasks/list: forwarded (the backend has no such method).
    status, answer, _ = await rpc(stack, PT, req("tasks/list"), READER, session_headers(sid))
    assert backend.methods() == ["tasks/list"] and answer["error"]["code"] == -32601
    # A denied unknown notification is refused at HTTP level, not forwarded.
    status, _, _ = await rpc(stack, PT, req("notifications/x", None), READER, session_headers(sid))
    assert status == 400 and backend.methods() == ["tasks/list"]


async def test_routing_headers_are_checked_in_both_eras_and_rebuilt_from_the_body(stack: Stack) -> None:
    backend = stack.backends["hostile"]
    sid = await initialize(stack, PT, READER)
    backend.clear()
    call = req("tools/call", name="echo", arguments={"text": "hi"})
    for headers in ({"Mcp-Method": "tools/list"}, {"Mcp-Name": "evil"}, {"Mcp-Method": "tools/call", "Mcp-Name": "x"}):
        status, answer, _ = await rpc(stack, PT, call, READER, {**session_headers(sid), **headers})
        assert status == 400 and answer["error"]["code"] == -32020, headers
    assert backend.methods() == []
    # Agreeing headers pass; the 2025-era backend gets none of the client's Mcp-* headers.
    status, answer, _ = await rpc(stack, PT, call, READER, {**session_headers(sid), "Mcp-Method": "tools/call",
                                                             "Mcp-Name": "echo", "Mcp-Param-Target": "prod"})
    assert answer["result"]["content"][0]["text"] == "echo: hi"
    sent = backend.requests[-1].headers
    assert not any(h.startswith(("mcp-method", "mcp-name", "mcp-param-")) for h in sent)
    # 2026 era: routing headers rebuilt from the checked body; an Mcp-Param-* the tool does not declare is refused.
    backend.clear()
    status, answer, _ = await rpc(stack, PT, modern("tools/call", name="echo", arguments={"text": "hi"}), READER,
                                  modern_headers("tools/call", "echo"))
    assert status == 200, answer
    sent = backend.requests[-1].headers
    assert sent["mcp-method"] == "tools/call" and sent["mcp-name"] == "echo"
    backend.clear()
    status, answer, _ = await rpc(stack, PT, modern("tools/call", name="echo", arguments={"text": "hi"}), READER,
                                  {**modern_headers("tools/call", "echo"), "Mcp-Param-Target": "prod"})
    assert status == 400 and answer["error"]["code"] == -32020 and received(backend, "tools/call") == []


async def test_mcp_param_headers_are_checked_against_the_schema_and_rebuilt(stack: Stack) -> None:
    backend = stack.backends["hostile"]
    call = modern("tools/call", name="route", arguments={"region": "eu", "text": "x"})
    for value in ("us", "=?base64?dXM=?="):  # a claim the body does not make, plain or encoded
        backend.clear()
        status, answer, _ = await rpc(stack, PT, call, ADMIN, {**modern_headers("tools/call", "route"),
                                                                "Mcp-Param-Region": value})
        assert status == 400 and answer["error"]["code"] == -32020
        assert received(backend, "tools/call") == []
    backend.clear()
    status, answer, _ = await rpc(stack, PT, call, ADMIN, {**modern_headers("tools/call", "route"),
                                                            "mcp-param-region": "=?base64?ZXU=?="})
    assert status == 200 and answer["result"]["content"][0]["text"] == "route: x", answer
    # The SDK backend itself validates the header against its schema: it got the rebuilt one.
    assert [r.headers["mcp-param-region"] for r in backend.requests if r.json().get("method") == "tools/call"] == ["eu"]


async def test_legacy_backend_reached_by_a_modern_client_is_guarded_the_same(stack: Stack) -> None:
    backend = stack.backends["old"]
    backend.clear()
    for uri in TRAVERSALS[:3]:
        status, answer, _ = await rpc(stack, "/servers/old/mcp", modern("resources/read", uri=uri), READER,
                                      modern_headers("resources/read", uri))
        assert status == 400 and answer["error"]["code"] == -32602
    status, answer, _ = await rpc(stack, "/servers/old/mcp", modern("tools/call", None, name="echo"), READER,
                                  modern_headers("tools/call", "echo"))
    assert status == 400
    assert received(backend, "resources/read") == [] and received(backend, "tools/call") == []


async def test_aggregated_endpoint_refuses_traversal_and_decides_completion(stack: Stack) -> None:
    backend = stack.backends["hostile"]
    sid = await initialize(stack, "/mcp", READER)
    backend.clear()
    for uri in TRAVERSALS[:5]:
        status, answer, _ = await rpc(stack, "/mcp", req("resources/read", uri=f"mcpgw://hostile/{uri}"), READER,
                                      session_headers(sid))
        assert answer["error"]["code"] == -32602, (uri, answer)
        status, answer, _ = await rpc(stack, "/mcp", req("resources/subscribe", uri=f"mcpgw://hostile/{uri}"),
                                      READER, session_headers(sid))
        assert answer["error"]["code"] == -32602, (uri, answer)
    status, answer, _ = await rpc(stack, "/mcp", req("completion/complete", ref={"type": "ref/prompt",
                                                                                "name": "hostile__secret"},
                                                     argument={"name": "topic", "value": "c"}),
                                  READER, session_headers(sid))
    assert answer["error"]["code"] == -32003
    assert received(backend, "resources/read") == received(backend, "completion/complete") == []
    status, answer, _ = await rpc(stack, "/mcp", req("tools/call", None, name="hostile__echo"), READER,
                                  {**session_headers(sid), "Mcp-Method": "tools/call"})
    assert status == 400
    status, answer, _ = await rpc(stack, "/mcp", req("tools/list"), READER, {**session_headers(sid),
                                                                               "Mcp-Method": "tools/call"})
    assert status == 400 and answer["error"]["code"] == -32020


async def test_listen_is_decided_on_every_subscribed_uri(stack: Stack) -> None:
    backend = stack.backends["hostile"]
    backend.clear()
    for subject, uris, code in ((READER, ["file:///public/a.txt", "file:///secret/keys.txt"], -32003),
                                (READER, ["file:///public/../secret/keys.txt"], -32602),
                                (NOBODY, [], -32602)):  # may not see the server: "unknown server"
        body = modern("subscriptions/listen", notifications={"resourceSubscriptions": uris})
        status, answer, _ = await rpc(stack, PT, body, subject, modern_headers("subscriptions/listen"))
        assert answer["error"]["code"] == code, (subject, uris, answer)
    assert backend.methods() == []


async def test_a_duplicate_key_reaches_the_backend_only_as_decided(stack: Stack) -> None:
    """A body naming a key twice is decided by its last value (the gateway's parser keeps the last);
    the backend gets the gateway's re-serialised message, never the raw bytes, so a backend keeping the
    first value (`evil:tool`, an argument of another type) cannot act on what was not decided.
    Passthrough and /mcp alike."""
    backend = stack.backends["hostile"]
    meta = json.dumps(META)
    for path, tool in ((PT, "echo"), ("/mcp", "hostile__echo")):
        backend.clear()
        raw = ('{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"evil:tool","name":"' + tool
               + '","arguments":{"text":1,"text":"hi"},"_meta":' + meta + "}}").encode()
        hdrs = {**stack.headers(READER), "Accept": ACCEPT, "Content-Type": "application/json",
                **modern_headers("tools/call", tool)}
        async with stack.session.post(stack.url + path, data=raw, headers=hdrs) as resp:
            assert resp.status == 200 and "echo: hi" in await resp.text(), path
        calls = [r for r in backend.requests if r.body and (r.json() or {}).get("method") == "tools/call"]
        assert len(calls) == 1, path
        assert b"evil:tool" not in calls[0].body and b'"text":1' not in calls[0].body.replace(b" ", b""), calls[0].body
        assert calls[0].json()["params"]["arguments"] == {"text": "hi"}


async def _audited_call(stack: Stack, dsn: str, path: str, tool: str, subject: str) -> tuple[int, Any, Any]:
    """(status, answer, audit row) of one modern tools/call on `path`."""
    rid = uuid.uuid4().hex
    status, answer, _ = await rpc(stack, path, modern("tools/call", name=tool, arguments={"text": "hi"}), subject,
                                  {**modern_headers("tools/call", tool), "X-Request-ID": rid})
    rows = [r for r in await audit_rows(stack, dsn) if caller_request_id(r) == rid]
    assert len(rows) == 1, rows
    return status, answer, rows[0]


async def test_a_call_allowed_on_a_server_the_caller_may_not_see_is_not_found(stack: Stack, pg_dsn: str) -> None:
    """The call itself is allowed, the server is hidden: the same 404 as an unknown server, audited
    as the denial it is, nothing forwarded."""
    backend = stack.backends["hostile"]
    backend.clear()
    status, answer, row = await _audited_call(stack, pg_dsn, PT, "echo", BLIND)
    assert status == 404 and "unknown or disabled MCP server 'hostile'" in answer["error"]["message"], answer
    assert row["decision"] == "deny" and row["mcp_server"] == "hostile", dict(row)
    assert received(backend, "tools/call") == []


async def test_a_denied_call_on_a_visible_server_is_refused(stack: Stack, pg_dsn: str) -> None:
    backend = stack.backends["hostile"]
    backend.clear()
    status, answer, row = await _audited_call(stack, pg_dsn, PT, "route", READER)  # reader may call echo only
    refused = answer.get("error") or answer["result"]  # a modern-era denial is an isError result
    assert "error" in answer or refused.get("isError") and "Denied" in json.dumps(refused), answer
    assert row["decision"] == "deny" and row["status"] == "denied" and row["tool"] == "route", dict(row)
    assert received(backend, "tools/call") == []


async def test_a_call_to_an_unknown_server_is_not_found_and_audited_as_no_allow(stack: Stack, pg_dsn: str) -> None:
    """Even for a caller allowed everything: nothing was forwarded, so the row does not say "allow"."""
    status, answer, row = await _audited_call(stack, pg_dsn, "/servers/nosuch/mcp", "echo", ADMIN)
    assert status == 404 and "unknown or disabled MCP server 'nosuch'" in answer["error"]["message"], answer
    assert row["decision"] == "deny" and row["status"] == "error", dict(row)
