"""Resource subscriptions through `/mcp`: 2025-era `resources/subscribe` delivered on the session's
GET stream and 2026-07-28 `subscriptions/listen` `resourceSubscriptions`, against real low-level SDK
backends of both eras that send `notifications/resources/updated` when their `touch` tool runs."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.mcp.catalog import wrap_uri
from tests.fixtures.backend_server import Backend
from tests.fixtures.backends import mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, audit_rows, caller_request_id, gateway_stack
from tests.integration.mcp_helpers import (
    ACCEPT,
    ADMIN,
    DEV,
    META,
    initialize,
    modern_headers,
    rpc,
    session_headers,
)

UPDATED = "notifications/resources/updated"


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend_factory: Any) -> AsyncIterator[tuple[Stack, dict[str, Backend]]]:
    backends = {"leg": mcp_backend_factory("subscribe-legacy", "subs-legacy"),
                "mod": mcp_backend_factory("subscribe", "subs-modern")}
    async with gateway_stack(tmp_path, pg_dsn, {n: {"url": b.url} for n, b in backends.items()}) as s:
        yield s, backends


def _req(rid: Any, method: str, params: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": method, "params": params}


async def _touch(stack: Stack, sid: str, server: str, uri: str) -> None:
    status, answer, _ = await rpc(stack, "/mcp", _req(7, "tools/call", {"name": f"{server}__touch",
                                                                          "arguments": {"uri": uri}}),
                                  headers=session_headers(sid))
    assert status == 200 and f"touched {uri}" in json.dumps(answer), answer


async def _next_update(stream: Any) -> dict[str, Any]:
    async for line in stream.content:
        if line.startswith(b"data:"):
            message = json.loads(line[5:])
            if message.get("method") == UPDATED:
                return message
    raise AssertionError("stream ended without a resources/updated")


def _get(stack: Stack, sid: str) -> Any:
    hdrs = {**stack.headers(ADMIN), "Accept": "text/event-stream", **session_headers(sid)}
    return stack.session.get(stack.url + "/mcp", headers=hdrs)


async def test_initialize_advertises_resource_subscribe(stack: tuple[Stack, dict[str, Backend]]) -> None:
    s, _ = stack
    status, answer, _ = await rpc(s, "/mcp", _req(1, "initialize", {
        "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}))
    assert answer["result"]["capabilities"]["resources"]["subscribe"] is True


@pytest.mark.parametrize("server", ["leg", "mod"])
async def test_2025_subscribe_delivers_renamed_update_on_get_stream(
        stack: tuple[Stack, dict[str, Backend]], server: str) -> None:
    s, backends = stack
    sid = await initialize(s, "/mcp")
    async with _get(s, sid) as stream:
        assert stream.status == 200
        status, answer, _ = await rpc(s, "/mcp", _req(2, "resources/subscribe", {"uri": wrap_uri(server, "memo://a")}),
                                      headers=session_headers(sid))
        assert status == 200 and answer["result"] == {}, answer
        await _touch(s, sid, server, "memo://b")  # not subscribed: never delivered
        await _touch(s, sid, server, "memo://a")
        update = await _next_update(stream)
    assert update["params"]["uri"] == f"mcpgw://{server}/memo://a"
    if server == "leg":
        subscribes = [r.json()["params"] for r in backends["leg"].requests
                      if r.body and r.json().get("method") == "resources/subscribe"]
        assert subscribes == [{"uri": "memo://a"}]


async def test_denied_subscribe_is_32003_and_reaches_no_backend(stack: tuple[Stack, dict[str, Backend]]) -> None:
    s, backends = stack
    sid = await initialize(s, "/mcp", DEV)
    for server in ("leg", "mod"):
        status, answer, _ = await rpc(s, "/mcp", _req(2, "resources/subscribe", {"uri": wrap_uri(server, "memo://a")}),
                                      DEV, session_headers(sid))
        assert status == 200 and answer["error"]["code"] == -32003, answer
    for backend in backends.values():
        assert not {"resources/subscribe", "subscriptions/listen"} & set(backend.methods())


async def test_unsubscribe_stops_updates(stack: tuple[Stack, dict[str, Backend]]) -> None:
    s, backends = stack
    sid = await initialize(s, "/mcp")
    a, b = wrap_uri("leg", "memo://a"), wrap_uri("leg", "memo://b")
    async with _get(s, sid) as stream:
        assert (await rpc(s, "/mcp", _req(2, "resources/subscribe", {"uri": a}), headers=session_headers(sid)))[0] == 200
        await _touch(s, sid, "leg", "memo://a")
        assert (await _next_update(stream))["params"]["uri"] == a
        status, answer, _ = await rpc(s, "/mcp", _req(3, "resources/unsubscribe", {"uri": a}),
                                      headers=session_headers(sid))
        assert status == 200 and answer["result"] == {}
        assert "resources/unsubscribe" in backends["leg"].methods()  # the last subscriber went
        await _touch(s, sid, "leg", "memo://a")  # no longer followed
        assert (await rpc(s, "/mcp", _req(4, "resources/subscribe", {"uri": b}), headers=session_headers(sid)))[0] == 200
        await _touch(s, sid, "leg", "memo://b")
        # The next update on the stream is b's: a's touch after unsubscribe was not delivered.
        assert (await _next_update(stream))["params"]["uri"] == b


async def test_delete_drops_the_session_subscriptions(stack: tuple[Stack, dict[str, Backend]]) -> None:
    s, backends = stack
    sid = await initialize(s, "/mcp")
    uri = wrap_uri("leg", "memo://a")
    assert (await rpc(s, "/mcp", _req(2, "resources/subscribe", {"uri": uri}), headers=session_headers(sid)))[0] == 200
    hdrs = {**s.headers(ADMIN), **session_headers(sid)}
    async with s.session.delete(s.url + "/mcp", headers=hdrs) as resp:
        assert resp.status == 200
    assert "resources/unsubscribe" in backends["leg"].methods()


@pytest.mark.parametrize("server", ["mod", "leg"])
async def test_2026_listen_with_resource_subscriptions_receives_update(
        stack: tuple[Stack, dict[str, Backend]], server: str) -> None:
    s, _ = stack
    uri = wrap_uri(server, "memo://a")
    wanted = {"resourceSubscriptions": [uri, "mcpgw://nosuch/memo://a"], "toolsListChanged": True}
    body = _req("listen-1", "subscriptions/listen", {"notifications": wanted, "_meta": META})
    hdrs = {**s.headers(ADMIN), "Accept": ACCEPT, "Content-Type": "application/json",
            **modern_headers("subscriptions/listen")}
    async with s.session.post(s.url + "/mcp", json=body, headers=hdrs) as stream:
        assert stream.status == 200
        async for line in stream.content:
            if line.startswith(b"data:"):
                ack = json.loads(line[5:])
                break
        assert ack["params"]["notifications"] == {"toolsListChanged": True, "resourceSubscriptions": [uri]}
        call = _req(8, "tools/call", {"name": f"{server}__touch", "arguments": {"uri": "memo://a"}, "_meta": META})
        status, answer, _ = await rpc(s, "/mcp", call, headers=modern_headers("tools/call", f"{server}__touch"))
        assert status == 200, answer
        update = await _next_update(stream)
    assert update["params"]["uri"] == uri
    assert update["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "listen-1"


READER_POLICY = """
roles:
  reader:
    permissions:
      - resource: "mcp:*:*"
        actions: ["list_servers", "list_tools", "server_info"]
      - resource: "mcp:mod:resource/memo%3A//a"
        actions: ["read_resource"]
user_roles:
  reader@example.com: [reader]
default_policy: deny
"""


async def _pdp_requests(stack: Stack) -> float:
    _, text, _ = await stack.call("GET", "/metrics", subject=None)
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("mcpgw_gateway_pdp_request_duration_seconds_count"))


async def _listen_ack(s: Stack, subject: str, uris: list[str], rid: str) -> dict[str, Any]:
    body = _req("listen-2", "subscriptions/listen", {"notifications": {"resourceSubscriptions": uris}, "_meta": META})
    hdrs = {**s.headers(subject), "Accept": ACCEPT, "Content-Type": "application/json", "X-Request-ID": rid,
            **modern_headers("subscriptions/listen")}
    async with s.session.post(s.url + "/mcp", json=body, headers=hdrs) as stream:
        assert stream.status == 200
        async for line in stream.content:
            if line.startswith(b"data:"):
                return dict(json.loads(line[5:]))
    raise AssertionError("no acknowledgement")


async def test_listen_decides_every_uri_in_one_pdp_request_and_audits_each(
        tmp_path: Path, pg_dsn: str, mcp_backend_factory: Any) -> None:
    backend = mcp_backend_factory("subscribe", "subs-reader")
    allowed, denied = wrap_uri("mod", "memo://a"), [wrap_uri("mod", "memo://b"), wrap_uri("mod", "memo://c")]
    async with gateway_stack(tmp_path, pg_dsn, {"mod": {"url": backend.url}}, policy=READER_POLICY) as s:
        before = await _pdp_requests(s)
        await _listen_ack(s, "reader@example.com", [], uuid.uuid4().hex)
        asked_for_nothing = await _pdp_requests(s) - before
        rid = uuid.uuid4().hex
        before = await _pdp_requests(s)
        # The denied URIs come last: one of them used to mark the whole stream denied.
        ack = await _listen_ack(s, "reader@example.com", [allowed, *denied], rid)
        assert await _pdp_requests(s) - before == asked_for_nothing + 1  # three URIs, one PDP request
        assert ack["params"]["notifications"] == {"resourceSubscriptions": [allowed]}, ack
        async with asyncio.timeout(10):  # the row is written once the stream has ended
            while not (rows := [r for r in await audit_rows(s, pg_dsn) if caller_request_id(r) == rid]):  # noqa: ASYNC110
                await asyncio.sleep(0.02)
    (row,) = rows
    extra = json.loads(row["extra"])
    # Not a denial (the stream was served); its end by the client is what the status tells.
    assert row["event_type"] == "mcp_request" and row["status"] != "denied" and row["decision"] is None, dict(row)
    assert (extra["resources_allowed"], extra["resources_denied"]) == ([allowed], denied), extra
