"""`/mcp` against a backend shaped like real servers: shortened names, schema-checked broadcast, links."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from gateway.app import create_app
from gateway.mcp import naming
from gateway.settings import load_gateway_settings
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.fixtures.faithful_backend import DOC, EVENTS, LONG_TOOL
from tests.fixtures.server_everything import needs_everything, server_everything
from tests.integration.gateway_harness import Stack, gateway_stack, start_site
from tests.integration.mcp_helpers import (
    ACCEPT,
    ADMIN,
    initialize,
    rpc,
    sdk_session,
    session_headers,
)

LINK = f"mcpgw://fm/{DOC}"


@pytest.fixture(scope="module")
def faithful(mcp_backend_factory: Callable[..., Backend]) -> Backend:
    return mcp_backend_factory("faithful", "fm-faithful")


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend, faithful: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(
        tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}, "fm": {"url": faithful.url}},
        env={"MCPGW_GATEWAY_MCP_SESSION_SECRET": "test-secret"},
    ) as s:
        yield s


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_every_listed_name_is_callable_including_shortened_ones(stack: Stack, mode: str) -> None:
    async with sdk_session(stack, "/mcp", ADMIN, mode) as s:
        names = {t.name for t in (await s.list_tools()).tools}
        read_text, long_named = naming.public_name("fm", "files.read_text"), naming.public_name("fm", LONG_TOOL)
        assert read_text.startswith("fm__files_read_text_") and len(long_named) == 64
        assert {read_text, long_named} <= names
        result = await s.call_tool(read_text, {"path": "/a"})
        assert not result.is_error and result.content[0].text == "text of /a"
        result = await s.call_tool(long_named, {"topic": "t"})
        assert not result.is_error and result.content[0].text == "summary of t"
        prompts = {p.name for p in (await s.list_prompts()).prompts}
        prompt = naming.public_name("fm", "summary.of.files")
        assert prompt in prompts and prompt.startswith("fm__summary_of_files_")
        got = await s.get_prompt(prompt)
        assert got.messages[1].content.text == "Summarise it."


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_broadcast_name_only_where_the_servers_schemas_agree(stack: Stack, mode: str) -> None:
    async with sdk_session(stack, "/mcp", ADMIN, mode) as s:
        tools = {t.name: t for t in (await s.list_tools()).tools}
        assert "add" in tools and "echo" not in tools  # echo(text) on alpha, echo(count) on fm
        assert tools["add"].input_schema == tools["alpha__add"].input_schema == tools["fm__add"].input_schema
        both = await s.call_tool("add", {"a": 2, "b": 3})
        assert not both.is_error and "succeeded on 2/2 servers" in both.content[0].text
        with pytest.raises(MCPError, match="Unknown tool: echo"):
            await s.call_tool("echo", {"text": "hi"})
        assert (await s.call_tool("fm__echo", {"count": 4})).content[0].text == "4"


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_resource_links_point_into_the_gateway_and_read_back(stack: Stack, mode: str) -> None:
    async with sdk_session(stack, "/mcp", ADMIN, mode) as s:
        result = await s.call_tool("fm__links", {})
        assert not result.is_error
        _, link, embedded = result.content
        assert link.type == "resource_link" and str(link.uri) == LINK
        assert embedded.type == "resource" and str(embedded.resource.uri) == LINK
        assert result.structured_content["doc"]["uri"] == LINK
        assert result.structured_content["uri"] == DOC  # a plain string is the tool's data, not a link
        read = await s.read_resource(LINK)  # the link is readable where the agent got it
        assert [(str(c.uri), c.text) for c in read.contents] == [(LINK, "the doc")]
        got = await s.get_prompt(naming.public_name("fm", "summary.of.files"))
        assert str(got.messages[0].content.resource.uri) == LINK


@pytest.fixture(scope="module")
def everything_url() -> Iterator[str]:
    with server_everything() as url:
        yield url


@needs_everything
async def test_server_everything_resource_links_are_readable_through_the_gateway(
    tmp_path: Path, pg_dsn: str, everything_url: str,
) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"every": {"url": everything_url}}) as stack, \
            sdk_session(stack, "/mcp", ADMIN, "legacy") as s:
        result = await s.call_tool("every__get-resource-links", {"count": 2})
        assert not result.is_error
        uris = [str(c.uri) for c in result.content if c.type == "resource_link"]
        assert len(uris) == 2 and all(u.startswith("mcpgw://every/demo://resource/") for u in uris), uris
        for uri in uris:
            read = await s.read_resource(uri)
            assert [str(c.uri) for c in read.contents] == [uri]
        ref = await s.call_tool("every__get-resource-reference", {"resourceType": "Text", "resourceId": 1})
        embedded = [c for c in ref.content if c.type == "resource"]
        assert embedded and str(embedded[0].resource.uri).startswith("mcpgw://every/demo://resource/")


async def test_a_2025_clients_cancel_reaches_the_backend_handler(
    stack: Stack, faithful: Backend, caplog: pytest.LogCaptureFixture,
) -> None:
    seen = EVENTS[faithful.name]
    seen.started.clear(), seen.cancelled.clear(), seen.finished.clear()
    sid = await initialize(stack, "/mcp")
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call",
            "params": {"name": "fm__wait_cancel", "arguments": {"seconds": 60}}}
    pending = asyncio.ensure_future(rpc(stack, "/mcp", call, headers=session_headers(sid)))
    assert await asyncio.to_thread(seen.started.wait, 20)
    # Another session naming the same id cancels nothing.
    other = await initialize(stack, "/mcp")
    cancel = {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7, "reason": "x"}}
    assert (await rpc(stack, "/mcp", cancel, headers=session_headers(other)))[0] == 202
    assert not pending.done() and not seen.cancelled.is_set()
    status, _, _ = await rpc(stack, "/mcp", cancel, headers=session_headers(sid))
    assert status == 202
    assert await asyncio.to_thread(seen.cancelled.wait, 20)  # the backend's handler was cancelled
    status, answer, _ = await asyncio.wait_for(pending, 20)
    assert status == 200 and answer is None  # no JSON-RPC response for a cancelled request
    assert not seen.finished.is_set()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records


async def test_a_client_leaving_mid_stream_logs_no_error(
    stack: Stack, caplog: pytest.LogCaptureFixture,
) -> None:
    sid = await initialize(stack, "/mcp")
    call = {"jsonrpc": "2.0", "id": 8, "method": "tools/call",
            "params": {"name": "fm__stall", "arguments": {"seconds": 0.5}, "_meta": {"progressToken": "p"}}}
    hdrs = {**stack.headers(ADMIN), "Accept": ACCEPT, **session_headers(sid)}
    async with stack.session.post(stack.url + "/mcp", json=call, headers=hdrs) as resp:
        assert resp.content_type == "text/event-stream"
        assert b"notifications/progress" in await resp.content.readuntil(b"\n\n")
        resp.connection.transport.close()  # the agent goes away while the backend still works
    # The gateway's handler ends when the backend answers; its audit row says the client left.
    for _ in range(200):
        rows = [json.loads(line) for line in stack.audit_file.read_text().splitlines()] \
            if stack.audit_file.exists() else []
        if any("client disconnected" in str(r.get("error")) for r in rows):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the gateway never recorded the departed client")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.records


@pytest.mark.parametrize("path", ["/servers/fm/mcp", "/mcp"])
async def test_a_backend_stalling_mid_stream_ends_the_stream_with_an_error_event(
    tmp_path: Path, pg_dsn: str, faithful: Backend, path: str,
) -> None:
    name = "fm__stall" if path == "/mcp" else "stall"
    async with gateway_stack(tmp_path, pg_dsn, {"fm": {"url": faithful.url, "timeout": 1}}) as stack:
        sid = await initialize(stack, path)
        call = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
                "params": {"name": name, "arguments": {"seconds": 30}, "_meta": {"progressToken": "p"}}}
        hdrs = {**stack.headers(ADMIN), "Accept": ACCEPT, **session_headers(sid)}
        async with stack.session.post(stack.url + path, json=call, headers=hdrs) as resp:
            assert resp.status == 200 and resp.content_type == "text/event-stream"
            # The stream ends (well before the backend's 30 s) as a well-formed chunked body.
            body = await asyncio.wait_for(resp.read(), 15)
        events = [json.loads(line[5:]) for line in body.decode().splitlines() if line.startswith("data:")]
        assert events[0]["method"] == "notifications/progress"
        last = events[-1]
        assert last["id"] == 9 and last["error"]["code"] == -32603, last
        assert "timed out" in last["error"]["message"] or "within 1 s" in last["error"]["message"], last
        assert b"HTTP/1.1" not in body  # no second response written into the body
        # The connection is still good for the next request.
        ping = {"jsonrpc": "2.0", "id": 10, "method": "ping"}
        assert (await rpc(stack, path, ping, headers=session_headers(sid)))[1]["result"] == {}


async def test_the_python_sdk_abandoning_a_call_cancels_the_backend_handler(stack: Stack, faithful: Backend) -> None:
    seen = EVENTS[faithful.name]
    seen.started.clear(), seen.cancelled.clear(), seen.finished.clear()
    async with sdk_session(stack, "/mcp", ADMIN, "legacy") as s:
        async with anyio.create_task_group() as group:
            group.start_soon(s.call_tool, "fm__wait_cancel", {"seconds": 60})
            assert await asyncio.to_thread(seen.started.wait, 20)
            group.cancel_scope.cancel()  # the SDK sends notifications/cancelled for its request
        assert await asyncio.to_thread(seen.cancelled.wait, 20)
        assert not seen.finished.is_set()
        assert (await s.call_tool("fm__echo", {"count": 1})).content[0].text == "1"  # the session goes on


async def test_a_shortened_name_listed_by_one_replica_is_callable_on_another(stack: Stack) -> None:
    # Another gateway process in all but name: same registry, PDP, issuer and session secret.
    replica = create_app(load_gateway_settings(environ={
        "MCPGW_GATEWAY_ISSUER": stack.issuer.issuer, "MCPGW_GATEWAY_AUDIENCE": "mcpgw",
        "MCPGW_GATEWAY_ENVIRONMENT": "development", "MCPGW_GATEWAY_PDP_URL": stack.pdp_url,
        "MCPGW_GATEWAY_SERVERS_FILE": str(stack.settings.servers_file), "MCPGW_AUDIT_POSTGRES": "false",
        "MCPGW_GATEWAY_MCP_SESSION_SECRET": "test-secret",
    }, dotenv=None))
    runner_b, url_b = await start_site(replica)
    try:
        sid = await initialize(stack, "/mcp")  # listed on replica A
        listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        _, answer, _ = await rpc(stack, "/mcp", listing, headers=session_headers(sid))
        shortened = [t["name"] for t in answer["result"]["tools"] if t["name"].startswith("fm__files_read_text_")]
        assert len(shortened) == 1
        call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": shortened[0], "arguments": {"path": "/b"}}}
        status, answer, _ = await rpc(dataclasses.replace(stack, url=url_b), "/mcp", call,
                                      headers=session_headers(sid))  # called on replica B, which never listed it
        assert status == 200 and answer["result"]["content"][0]["text"] == "text of /b", answer
    finally:
        await runner_b.cleanup()
