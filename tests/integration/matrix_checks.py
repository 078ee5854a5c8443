"""What each matrix cell asserts: the client's view, then the backend's own record of it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from tests.fixtures import matrix_servers as ms
from tests.integration.matrix_cells import Cell
from tests.integration.matrix_run import EVIDENCE_SECONDS, Matrix, text

Message = dict[str, Any]


async def seen(record: ms.Recorder, since: int, wanted: Callable[[Message], bool], what: str) -> Message:
    """The first message the backend received after `since` that is `wanted` (waiting for the
    backend process to write it down, up to EVIDENCE_SECONDS)."""
    async with asyncio.timeout(EVIDENCE_SECONDS):
        while True:
            found = next((m for m in record.messages(since) if wanted(m)), None)
            if found is not None:
                return found
            await asyncio.sleep(0.05)
    raise AssertionError(f"the backend never received {what}")  # pragma: no cover - timeout raises


def is_call(name: str, arguments: dict[str, Any]) -> Callable[[Message], bool]:
    """A tools/call of `name` with (at least) these arguments."""
    def wanted(m: Message) -> bool:
        params = m.get("params") or {}
        got = params.get("arguments") or {}
        return m.get("method") == "tools/call" and params.get("name") == name and \
            all(got.get(k) == v for k, v in arguments.items())
    return wanted


def is_answer(test: Callable[[dict[str, Any]], bool]) -> Callable[[Message], bool]:
    """A response the client sent the backend (to its sampling / elicitation request)."""
    return lambda m: "method" not in m and isinstance(m.get("result"), dict) and test(m["result"])


def ok(result: Any, says: str, where: str) -> None:
    """A successful result whose text contains `says`."""
    assert isinstance(result, dict) and "error" not in result and not result.get("isError"), (where, result)
    assert says in text(result), (where, says, result)


async def check(matrix: Matrix, cell: Cell) -> None:
    """Assert one cell."""
    if cell.feature == "restart":
        await _restart(matrix, cell)
        return
    row = await matrix.row(cell)
    got, spec = row.report.get(cell.feature), matrix.spec(cell)
    record, since = matrix.records[cell.server], row.mark
    if cell.feature == "tools":
        ok(got, spec["says"], "tools/call")
        if cell.client != "inspector":
            assert spec["public"] in row.report["tools.list"], row.report["tools.list"]
        await seen(record, since, is_call(spec["name"], spec["arguments"]), f"tools/call {spec['name']}")
    elif cell.feature == "resources":
        assert isinstance(got, dict) and got.get("read"), got
        contents = got["read"].get("contents") or []
        assert contents and spec["says"] in (contents[0].get("text") or ""), got
        if cell.client != "inspector":
            assert got["uri"] == matrix.public_uri(cell, spec["uri"]), got["uris"]  # listed as such
        await seen(record, since, lambda m: m.get("method") == "resources/read"
                   and (m.get("params") or {}).get("uri") == spec["uri"], f"resources/read {spec['uri']}")
    elif cell.feature == "prompts":
        ok(got and got.get("got"), spec["says"], "prompts/get")
        await seen(record, since, lambda m: m.get("method") == "prompts/get"
                   and (m.get("params") or {}).get("name") == spec["name"], f"prompts/get {spec['name']}")
    elif cell.feature == "sampling":
        ok(got, spec["says"], "sampling tool")
        assert cell.tag in text(got), got
        assert [a["method"] for a in row.report["asked"]].count("sampling/createMessage") >= 1
        await seen(record, since, is_answer(lambda r: cell.tag in str((r.get("content") or {}).get("text"))
                                            and r.get("model") == "matrix-model"), "our sampling answer")
    elif cell.feature == "elicitation":
        ok(got, spec["says"], "elicitation tool")
        await seen(record, since, is_answer(lambda r: r.get("action") == "accept"
                                            and cell.tag in (r.get("content") or {}).values()), "our elicitation answer")
    elif cell.feature == "progress":
        assert isinstance(got, dict) and "error" not in got, got
        assert not got["result"].get("isError"), got
        assert [(n["progress"], n["total"]) for n in got["notes"]] == [(1, 3), (2, 3), (3, 3)], got
        await seen(record, since, lambda m: is_call(spec["name"], spec["arguments"])(m)
                   and "progressToken" in ((m.get("params") or {}).get("_meta") or {}), "a progress token")
    elif cell.feature == "cancellation":
        assert isinstance(got, dict) and got.get("notes") and "result" not in got, got  # it ran, then never finished
        call = await seen(record, since, is_call(spec["name"], spec["arguments"]), f"tools/call {spec['name']}")
        # 2025-11-25 backends are told by notifications/cancelled; FastMCP (spoken to in 2026-07-28 on
        # /mcp, where cancelling is closing the stream) writes down that its handler was cancelled.
        await seen(record, since, lambda m: (m.get("method") == "notifications/cancelled"
                                             and (m.get("params") or {}).get("requestId") == call.get("id"))
                   or (m.get("tool") == spec["name"] and m.get("cancelled") is True),
                   f"the cancellation of request {call.get('id')}")
    elif cell.feature == "list_changed":
        assert got == spec["method"], (row.report.get("notified"), got)
        if "grow" in spec:  # and the agent's next list has the new tool
            assert spec["public"] in row.report["list_changed.tools"], row.report["list_changed.tools"]
        else:
            await seen(record, since, is_call(spec["call"]["name"].rpartition("__")[2], {}), "the changing call")


async def _restart(matrix: Matrix, cell: Cell) -> None:
    report, since, pids = await matrix.restart(cell)
    says = matrix.spec(cell, "tools")["says"]
    ok(report["before"], says, "before the restart")
    after = report["after"]
    assert isinstance(after, dict) and "first" in after or "second" in after, after
    if cell.endpoint == "mcp" or "first" in after:
        ok(after.get("first"), says, f"same session after the restart: {after}")  # /mcp heals the session itself
    else:
        assert "404" in after["error"] or "not found" in after["error"].lower(), after  # spec: start again
        ok(after["second"], says, "new session after the restart")
    record, spec = matrix.records[cell.server], matrix.spec(cell, "tools")
    assert matrix.restarted >= since
    await seen(record, matrix.restarted, is_call(spec["name"], spec["arguments"]), "the call after the restart")
    if pids:
        assert not set(pids) & set(ms.stdio_pids(record)), "the stdio server was not restarted"
