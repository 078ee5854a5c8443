"""`/mcp` relays a backend's server→client traffic during tools/call: progress, log messages,
sampling — with the official SDK client in both eras against a real SDK backend."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import (
    ACCEPT,
    ADMIN,
    META,
    initialize,
    modern_headers,
    session_headers,
)


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}) as s:
        yield s


async def _sampler(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
    asked = params.messages[0].content.text  # type: ignore[union-attr]
    return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text=f"re: {asked}"),
                                     model="test-model")


@pytest.mark.parametrize("mode", ["legacy", "modern"])
async def test_sdk_client_gets_progress_logs_and_sampling_through_mcp(stack: Stack, mode: str) -> None:
    progress: list[tuple[float, str | None]] = []
    logs: list[Any] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        logs.append(params.data)

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {stack.token(ADMIN)}"})
    transport = streamable_http_client(stack.url + "/mcp", http_client=http)
    # The high-level Client drives input_required rounds (2026-07-28) with the same callback.
    client = Client(transport, mode="legacy" if mode == "legacy" else "2026-07-28", sampling_callback=_sampler,
                    logging_callback=on_log, log_level="debug")
    async with http, client:
        result = await client.call_tool("alpha__chatty", {"topic": "tides"}, progress_callback=on_progress)
    assert not result.is_error, result
    assert result.content[0].text == "llm said: re: tides"  # type: ignore[union-attr]
    assert progress == [(1, "thinking")]
    assert logs == ["chatty asked about tides"]


async def _post(stack: Stack, body: dict[str, Any], headers: dict[str, str]) -> Any:
    hdrs = {**stack.headers(ADMIN), "Accept": ACCEPT, "Content-Type": "application/json", **headers}
    return await stack.session.post(stack.url + "/mcp", json=body, headers=hdrs)


async def test_modern_client_gets_input_required_and_its_retry_reaches_the_backend(stack: Stack) -> None:
    """A 2026-07-28 agent sees the backend's input_required result as is and answers by a retry."""
    caps = {**META, "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}
    params: dict[str, Any] = {"name": "alpha__chatty", "arguments": {"topic": "moon"}, "_meta": caps}
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params}
    async with await _post(stack, call, modern_headers("tools/call", "alpha__chatty")) as resp:
        first = await resp.json()
    result = first["result"]
    assert result["resultType"] == "input_required"
    (key, req), = result["inputRequests"].items()
    assert req["method"] == "sampling/createMessage"
    answer = {"role": "assistant", "content": {"type": "text", "text": "full"}, "model": "m"}
    retry = {**call, "id": 6, "params": {**params, "inputResponses": {key: answer},
                                         "requestState": result["requestState"]}}
    async with await _post(stack, retry, modern_headers("tools/call", "alpha__chatty")) as resp:
        text = await resp.text()
    final = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")] or [json.loads(text)]
    assert final[-1]["result"]["content"][0]["text"] == "llm said: full"
    assert final[-1]["result"]["resultType"] == "complete"


async def test_answer_from_another_subject_is_not_delivered(stack: Stack) -> None:
    """A sampling request's gateway id answers only for the subject it was sent to."""
    sid = await initialize(stack, "/mcp", capabilities={"sampling": {}})
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "alpha__chatty", "arguments": {"topic": "x"}}}
    async with await _post(stack, call, session_headers(sid)) as resp:
        assert resp.content_type == "text/event-stream"
        async for line in resp.content:
            if line.startswith(b"data:"):
                msg = json.loads(line[5:])
                assert msg["method"] == "sampling/createMessage"
                assert msg["id"].startswith("mcpgw-req-")
                break
        pending = _pending(stack)
        reply = {"jsonrpc": "2.0", "id": msg["id"], "result": {"role": "assistant", "model": "m",
                                                             "content": {"type": "text", "text": "t"}}}
        assert not pending.answer("mallory@example.com", msg["id"], reply)
        assert pending.answer(ADMIN, msg["id"], reply)
        rest = (await resp.read()).decode()
    done = [json.loads(line[5:]) for line in rest.splitlines() if line.startswith("data:")]
    assert done[-1]["result"]["content"][0]["text"] == "llm said: t"
    assert len(pending) == 0


def _pending(stack: Stack) -> Any:
    from gateway.keys import MCP_STATE

    return stack.app[MCP_STATE].pending


@pytest.fixture
async def growing(tmp_path: Path, pg_dsn: str, mcp_backend_factory: Any, monkeypatch: pytest.MonkeyPatch,
                  ) -> AsyncIterator[Stack]:
    from gateway.mcp import listen

    monkeypatch.setattr(listen, "POLL_SECONDS", 0.1)
    backend = mcp_backend_factory("normal", "growing", tools=("echo", "grow"))
    async with gateway_stack(tmp_path, pg_dsn, {"gr": {"url": backend.url}}) as s:
        yield s


async def _first_event(resp: Any, method: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        async for line in resp.content:
            if line.startswith(b"data:"):
                msg = json.loads(line[5:])
                if msg.get("method") == method:
                    return msg
    raise AssertionError(f"stream ended before {method}")


async def _grow(stack: Stack, headers: dict[str, str], name: str, extra: dict[str, Any] | None = None) -> None:
    body = {"jsonrpc": "2.0", "id": 9, "method": "tools/call",
            "params": {"name": "gr__grow", "arguments": {"name": name}, **(extra or {})}}
    async with await _post(stack, body, headers) as resp:
        assert resp.status == 200
        await resp.read()


async def test_get_stream_carries_tools_list_changed(growing: Stack) -> None:
    stack = growing
    sid = await initialize(stack, "/mcp", capabilities={"sampling": {}})
    hdrs = {**stack.headers(ADMIN), "Accept": "text/event-stream", **session_headers(sid)}
    async with stack.session.get(stack.url + "/mcp", headers=hdrs) as stream:
        assert stream.status == 200
        await asyncio.sleep(0.3)  # the watcher has taken its first snapshot
        await _grow(stack, session_headers(sid), "fresh_a")
        assert await _first_event(stream, "notifications/tools/list_changed")


async def test_subscriptions_listen_acknowledges_and_notifies(growing: Stack) -> None:
    stack = growing
    listen_body = {"jsonrpc": "2.0", "id": "sub-1", "method": "subscriptions/listen",
                   "params": {"notifications": {"toolsListChanged": True}, "_meta": META}}
    async with await _post(stack, listen_body, modern_headers("subscriptions/listen")) as stream:
        assert stream.status == 200 and stream.content_type == "text/event-stream"
        ack = await _first_event(stream, "notifications/subscriptions/acknowledged")
        assert ack["params"]["notifications"] == {"toolsListChanged": True}
        await asyncio.sleep(0.3)
        await _grow(stack, modern_headers("tools/call", "gr__grow"), "fresh_b", {"_meta": META})
        note = await _first_event(stream, "notifications/tools/list_changed")
        assert note["params"]["_meta"]["io.modelcontextprotocol/subscriptionId"] == "sub-1"
