"""Raw JSON-RPC helpers for MCP endpoint tests (both eras)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT

from tests.integration.gateway_harness import Stack

ADMIN, DEV = "admin@example.com", "dev@example.com"
ACCEPT = "application/json, text/event-stream"
MODERN = "2026-07-28"
META = {"io.modelcontextprotocol/protocolVersion": MODERN, "io.modelcontextprotocol/clientCapabilities": {}}


async def rpc(stack: Stack, path: str, body: dict[str, Any], subject: str | None = ADMIN,
              headers: dict[str, str] | None = None) -> tuple[int, Any, Any]:
    """POST one message; decode a JSON or SSE answer into the JSON-RPC response."""
    hdrs = {**stack.headers(subject), "Accept": ACCEPT, "Content-Type": "application/json", **(headers or {})}
    async with stack.session.post(stack.url + path, json=body, headers=hdrs) as resp:
        text = await resp.text()
        if resp.content_type == "text/event-stream":
            # An empty `data:` is an SSE priming event (TypeScript SDK servers send one first).
            messages = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
            answer: Any = next((m for m in messages if "id" in m and "method" not in m), None)
        else:
            answer = json.loads(text) if text else None
        return resp.status, answer, resp.headers


async def initialize(stack: Stack, path: str, subject: str = ADMIN, capabilities: dict[str, Any] | None = None) -> str:
    body = {"jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": capabilities or {},
                       "clientInfo": {"name": "t", "version": "1"}}}
    status, answer, headers = await rpc(stack, path, body, subject)
    assert status == 200 and answer["result"]["protocolVersion"] == "2025-11-25", answer
    sid = headers["Mcp-Session-Id"]
    note = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    status, _, _ = await rpc(stack, path, note, subject, {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"})
    assert status == 202
    return sid


def session_headers(sid: str) -> dict[str, str]:
    return {"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-11-25"}


def modern_headers(method: str, name: str | None = None) -> dict[str, str]:
    h = {"MCP-Protocol-Version": MODERN, "Mcp-Method": method}
    if name is not None:
        h["Mcp-Name"] = name
    return h


@asynccontextmanager
async def sdk_session(stack: Stack, path: str, subject: str, mode: str) -> AsyncIterator[ClientSession]:
    """An initialized (legacy) or discovered (modern) SDK session to the gateway."""
    # the SDK's own default limits (as `Client(url)` has), not httpx2's bare 5 s to the response head
    timeout = httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT)
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {stack.token(subject)}"}, timeout=timeout)
    async with http, streamable_http_client(stack.url + path, http_client=http) as (read, write):
        async with ClientSession(read, write) as session:
            if mode == "legacy":
                await session.initialize()
            else:
                await session.discover()
            yield session
