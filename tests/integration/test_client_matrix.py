"""Client matrix (issue 10): real clients × servers nobody here wrote × both MCP endpoints × features.

Clients: the official Python SDK client, the TypeScript SDK client (@modelcontextprotocol/sdk), the
Inspector CLI. Servers: server-everything over Streamable HTTP (`everything`) and legacy HTTP+SSE
(`everysse`), a FastMCP server (`fast`), server-memory and server-filesystem over stdio launched by
the gateway (`memory`, `files`). Endpoints: `/mcp` and passthrough `/servers/{name}/mcp`.

Every cell is a test id `client-endpoint-server-feature`: it runs, or is an explicit skip (the
client or server has no such feature) or strict xfail (a gateway limitation) with the reason, so a
missing cell is visible. A cell asserts what the client saw AND what the backend itself received
(matrix_servers.Recorder). One gateway, one process per server, one client session per
(client, server, endpoint) whose report every feature cell of that row reads; restart cells run
their own session and restart the backend mid-way.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from gateway.keys import UPSTREAM
from tests.conformance import runner
from tests.fixtures import matrix_servers as ms
from tests.fixtures.pg import create_database, drop_database
from tests.integration import matrix_cells as cells
from tests.integration.gateway_harness import gateway_stack
from tests.integration.matrix_clients import run_python
from tests.integration.matrix_run import Matrix, text
from tests.integration.mcp_helpers import ADMIN, initialize, rpc, session_headers

# `make test` sets MCPGW_REQUIRE_NODE_TOOLS=1: there a missing tool is a failure, never a skip.
pytestmark = [
    pytest.mark.skipif(not ms.node_tools_installed() and not runner.REQUIRED,
                       reason="Node tools not installed (make tools)"),
    pytest.mark.asyncio(loop_scope="module"),
]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def matrix(tmp_path_factory: pytest.TempPathFactory, pg_server_dsn: str) -> AsyncIterator[Matrix]:
    from gateway.mcp import listen

    tmp = tmp_path_factory.mktemp("matrix")
    files = tmp / "files"
    files.mkdir()
    for tag in cells.all_tags():
        (files / f"{tag}.txt").write_text(f"hello {tag}")
    http = {"everything": ms.everything(tmp, "streamableHttp"), "everysse": ms.everything(tmp, "sse"),
            "fast": ms.fastmcp(tmp)}
    memory, memory_record = ms.stdio(tmp, "memory", ms.MEMORY, MEMORY_FILE_PATH=str(tmp / "memory.jsonl"))
    filesystem, files_record = ms.stdio(tmp, "files", ms.FILESYSTEM, str(files))
    servers = {"everything": {"url": http["everything"].url}, "everysse": {"type": "sse", "url": http["everysse"].url},
               "fast": {"url": http["fast"].url}, "memory": memory, "files": filesystem}
    name = "t_" + uuid.uuid4().hex[:16]
    db = await create_database(pg_server_dsn, name)
    patch = pytest.MonkeyPatch()
    patch.setattr(listen, "POLL_SECONDS", 0.2)  # the shared catalog poller: list changes within 0.2 s
    try:
        for server in http.values():
            server.start()
        async with gateway_stack(tmp, db, servers) as stack:
            records = {**{n: s.record for n, s in http.items()}, "memory": memory_record, "files": files_record}
            yield Matrix(stack, tmp, http, records, files)
    finally:
        patch.undo()
        for server in http.values():
            server.stop()
        await drop_database(pg_server_dsn, name)


@pytest.mark.parametrize("cell", cells.PARAMS)
async def test_cell(matrix: Matrix, cell: cells.Cell) -> None:
    await matrix.check(cell)


async def test_a_listing_without_capabilities_does_not_hide_capability_tools_on_passthrough(matrix: Matrix) -> None:
    """server-everything offers its sampling tool only to sessions that declared sampling. A client
    declaring nothing lists /mcp first (as the Inspector CLI does); a passthrough agent that declared
    sampling must still be admitted to call it (the catalog is its own session's, not the last one listed)."""
    stack = matrix.stack
    sid = await initialize(stack, "/mcp")
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
    status, answer, _ = await rpc(stack, "/mcp", listing, headers=session_headers(sid))
    assert status == 200 and "everything__trigger-sampling-request" not in {t["name"] for t in answer["result"]["tools"]}
    stack.app[UPSTREAM].tool_names.forget("everything")  # as once the cached catalog expired
    status, answer, _ = await rpc(stack, "/mcp", listing, headers=session_headers(sid))
    assert status == 200, answer
    plan = {"tag": "after-a-bare-listing", "steps": [
        {"op": "call", "key": "sampled", "name": "trigger-sampling-request",
         "arguments": {"prompt": "after-a-bare-listing", "maxTokens": 20}}]}
    report = await run_python(matrix.url("passthrough", "everything"), stack.token(ADMIN), plan, _no_wait)
    assert "re: " in text(report["sampled"]) and "after-a-bare-listing" in text(report["sampled"]), report


async def _no_wait(label: str) -> None:
    raise AssertionError(f"nothing to wait for ({label})")


async def test_a_backend_request_that_cannot_be_relayed_is_refused_at_once(matrix: Matrix) -> None:
    """A 2026-07-28 agent reaches server-everything on passthrough through the bridge, which carries
    requests only: the backend's sampling request is answered with an error at once (it used to wait,
    and the agent with it, for the timeouts)."""
    record = matrix.records["everything"]
    since = record.mark()
    plan = {"tag": "over-the-bridge", "steps": [
        {"op": "call", "key": "sampled", "name": "trigger-sampling-request",
         "arguments": {"prompt": "over-the-bridge", "maxTokens": 20}}]}
    report = await run_python(matrix.url("passthrough", "everything"), matrix.stack.token(ADMIN), plan, _no_wait,
                              "2026-07-28")
    assert report["sampled"].get("isError") is True, report
    assert "sampling/createMessage cannot be relayed" in text(report["sampled"]), report
    refusals = [m for m in record.messages(since) if "method" not in m and (m.get("error") or {}).get("code") == -32601]
    assert refusals, record.messages(since)  # the backend got our answer
