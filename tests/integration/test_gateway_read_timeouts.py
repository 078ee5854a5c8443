"""Slowloris guards on the gateway's server side: a client trickling its headers is disconnected
after MCPGW_GATEWAY_HEADER_TIMEOUT, a body not complete within MCPGW_GATEWAY_BODY_TIMEOUT gets 408."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from yarl import URL

from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import ADMIN

ENV = {"MCPGW_GATEWAY_HEADER_TIMEOUT": "0.3", "MCPGW_GATEWAY_BODY_TIMEOUT": "0.3"}


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}, env=ENV) as s:
        yield s


async def _connect(stack: Stack) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    url = URL(stack.url)
    return await asyncio.open_connection(url.host, url.port)


async def test_trickled_headers_are_cut_off(stack: Stack) -> None:
    reader, writer = await _connect(stack)
    request = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 2000
    sent = 0

    async def trickle() -> None:  # one byte every 5 ms: ~10 s for the whole header, if allowed
        nonlocal sent
        for byte in request:
            writer.write(bytes([byte]))
            await writer.drain()
            sent += 1
            await asyncio.sleep(0.005)

    task = asyncio.create_task(trickle())
    try:
        async with asyncio.timeout(20):  # a safety bound for the test, not the figure under test
            # The gateway closed the connection: EOF, or a reset when it closed with our bytes unread.
            try:
                assert await reader.read() == b""
            except ConnectionResetError:
                pass
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        writer.close()
    assert sent < len(request)  # cut off while still trickling, although bytes kept coming


async def test_an_idle_connection_without_a_request_is_closed(stack: Stack) -> None:
    reader, writer = await _connect(stack)
    try:
        async with asyncio.timeout(10):
            assert await reader.read() == b""  # EOF: closed by the gateway
    finally:
        writer.close()


async def test_a_slow_body_gets_408_naming_the_setting(stack: Stack) -> None:
    reader, writer = await _connect(stack)
    token = stack.headers(ADMIN)["Authorization"]
    head = (f"POST /mcp/invoke?mcp_server=alpha HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")
    try:
        writer.write(head.encode() + b'{"tool_name": ')  # then nothing more
        await writer.drain()
        async with asyncio.timeout(10):
            status = await reader.readline()
            answer = await reader.read(4096)
    finally:
        writer.close()
    assert status.startswith(b"HTTP/1.1 408"), status
    assert b"MCPGW_GATEWAY_BODY_TIMEOUT" in answer and b"request_timeout" in answer


async def test_prompt_requests_are_unaffected(stack: Stack) -> None:
    status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=alpha", subject=ADMIN,
                                       json={"tool_name": "echo", "parameters": {"text": "hi"}})
    assert status == 200 and body["result"]["content"][0]["text"] == "hi", body
