"""The client matrix's clients: one plan (a list of steps) run by the official Python SDK client
in-process or by the TypeScript SDK client (tests/fixtures/ts_sdk_client.mjs) in Node, both
reporting what they saw in the same JSON shape; and the Inspector CLI, one command per step.

Steps (`op`): tools, call, progress, cancel, resources, prompt, listen (wait for a */list_changed
on the session's GET stream after the test acted), pause (the test acts), heal (call; on failure
open a new session and call again). `on_wait(label)` is the test acting at a pause or a listen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import MCP_DEFAULT_SSE_READ_TIMEOUT, MCP_DEFAULT_TIMEOUT
from mcp.shared.subscriptions import PromptsListChanged, ResourcesListChanged, ToolsListChanged

from tests.conformance import runner

SDK = runner.TOOLS / "@modelcontextprotocol" / "sdk"
TS_CLIENT = Path(__file__).resolve().parents[1] / "fixtures" / "ts_sdk_client.mjs"
TIMEOUT = 20.0
# The SDK's own default HTTP client's limits (create_mcp_http_client), as an agent using `Client(url)` has;
# httpx2's bare default (5 s to the response head) would fail a call the gateway answers in 6 s on a
# loaded machine, below the SDK's per-request limit (TIMEOUT) that a cell is meant to be bounded by.
HTTP_TIMEOUT = httpx2.Timeout(MCP_DEFAULT_TIMEOUT, read=MCP_DEFAULT_SSE_READ_TIMEOUT)
OnWait = Callable[[str], Awaitable[None]]


def dump(value: Any) -> Any:
    """An SDK model as the JSON the TypeScript client would print."""
    return value.model_dump(mode="json", by_alias=True, exclude_none=True) if hasattr(value, "model_dump") else value


async def run_ts(url: str, token: str, plan: dict[str, Any], on_wait: OnWait) -> dict[str, Any]:
    """Run the plan in the TypeScript SDK client; its report."""
    proc = await asyncio.create_subprocess_exec(
        str(runner.NODE), str(TS_CLIENT), str(SDK), url, json.dumps(plan),
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={"PATH": os.environ.get("PATH", ""), "MCPGW_TOKEN": token, "NO_COLOR": "1"},
    )
    assert proc.stdout is not None and proc.stdin is not None and proc.stderr is not None
    errors = asyncio.ensure_future(proc.stderr.read())
    last = b""
    try:
        async with asyncio.timeout(90):
            async for line in proc.stdout:
                last = line
                message = json.loads(line)
                if "wait" in message:
                    await on_wait(message["wait"])
                    proc.stdin.write(b"go\n")
                    await proc.stdin.drain()
            await proc.wait()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, (await errors).decode(errors="replace")
    report: dict[str, Any] = json.loads(last)
    return report


class _PythonRun:
    """State of one Python SDK client run (what the callbacks saw)."""

    def __init__(self, tag: str, mode: str) -> None:
        self.tag, self.mode = tag, mode
        self.report: dict[str, Any] = {"asked": [], "notified": []}
        self.heard: asyncio.Queue[str] = asyncio.Queue()

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        content = params.messages[0].content
        asked = content.text if isinstance(content, types.TextContent) else json.dumps(dump(content))
        self.report["asked"].append({"method": "sampling/createMessage", "asked": asked})
        return types.CreateMessageResult(role="assistant", model="matrix-model",
                                         content=types.TextContent(type="text", text=f"re: {asked}"))

    async def elicitation(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        schema = dump(getattr(params, "requested_schema", None)) or {}
        self.report["asked"].append({"method": "elicitation/create", "asked": params.message})
        props = schema.get("properties", {})
        content = {n: self.tag for n in schema.get("required", []) if props.get(n, {}).get("type") == "string"}
        return types.ElicitResult(action="accept", content=content)

    async def messages(self, message: Any) -> None:
        method = getattr(message, "method", None) or getattr(getattr(message, "root", None), "method", None)
        if isinstance(method, str) and method.endswith("/list_changed"):
            self.report["notified"].append(method)
            self.heard.put_nowait(method)


async def run_python(url: str, token: str, plan: dict[str, Any], on_wait: OnWait, mode: str = "legacy",
                     ) -> dict[str, Any]:
    """Run the plan in the official Python SDK client (`mode`: "legacy" is the 2025-11-25 handshake, as
    the others; "2026-07-28" the stateless era); its report."""
    run = _PythonRun(plan["tag"], mode)
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=HTTP_TIMEOUT) as http:
        client = await _python_connect(url, http, run).__aenter__()
        failed: BaseException | None = None
        try:
            run.report["protocolVersion"] = "2025-11-25" if mode == "legacy" else mode
            for step in plan["steps"]:
                try:
                    client, run.report[step["key"]] = await _python_step(client, step, run, on_wait, url, http)
                except Exception as exc:  # noqa: BLE001 - the report records it; the cell decides
                    run.report[step["key"]] = {"error": repr(exc)}
        except BaseException as exc:
            failed = exc
            raise
        finally:
            if failed is not None:
                # A transport task's failure cancels the step; told so, the client's exit raises that
                # failure instead (a bare CancelledError would abort the other cells of a shared restart).
                await client.__aexit__(type(failed), failed, failed.__traceback__)
            else:
                with contextlib.suppress(Exception):
                    await client.__aexit__(None, None, None)
    return run.report


def _python_connect(url: str, http: httpx2.AsyncClient, run: _PythonRun) -> Client:
    return Client(streamable_http_client(url, http_client=http), mode=run.mode, read_timeout_seconds=TIMEOUT,
                  sampling_callback=run.sampling, elicitation_callback=run.elicitation,
                  message_handler=run.messages)


async def _python_step(client: Client, step: dict[str, Any], run: _PythonRun, on_wait: OnWait, url: str,
                       http: httpx2.AsyncClient) -> tuple[Client, Any]:
    op = step["op"]
    if op == "tools":
        return client, [t.name for t in (await client.list_tools()).tools]
    if op == "call":
        return client, dump(await client.call_tool(step["name"], step["arguments"]))
    if op == "progress":
        notes: list[dict[str, Any]] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            notes.append({"progress": value, "total": total})

        result = await client.call_tool(step["name"], step["arguments"], progress_callback=progress)
        return client, {"result": dump(result), "notes": notes}
    if op == "cancel":
        return client, await _python_cancel(client, step)
    if op == "resources":
        uris = [str(r.uri) for r in (await client.list_resources()).resources]
        uri = step["uri"] if step["uri"] in uris else None
        return client, {"uris": uris, "uri": uri, "read": dump(await client.read_resource(uri)) if uri else None}
    if op == "prompt":
        names = [p.name for p in (await client.list_prompts()).prompts]
        return client, {"names": names, "got": dump(await client.get_prompt(step["name"], step["arguments"]))}
    if op == "listen" and run.mode != "legacy":
        return client, await _python_listen(client, step, run, on_wait)
    if op == "listen":
        while not run.heard.empty():
            run.heard.get_nowait()
        await _change(client, step, run, on_wait)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(step["seconds"]):
                while (method := await run.heard.get()) != step["method"]:
                    pass
                return client, method
        return client, None
    if op == "pause":
        await on_wait(step["key"])
        return client, None
    if op == "heal":
        try:
            return client, {"first": dump(await client.call_tool(step["name"], step["arguments"]))}
        except Exception as exc:  # noqa: BLE001 - the session is gone: the spec says start a new one
            with contextlib.suppress(Exception):
                await client.__aexit__(None, None, None)
            client = await _python_connect(url, http, run).__aenter__()
            second = dump(await client.call_tool(step["name"], step["arguments"]))
            return client, {"error": repr(exc), "sessionChanged": True, "second": second}
    raise AssertionError(f"unknown step {op}")


async def _change(client: Client, step: dict[str, Any], run: _PythonRun, on_wait: OnWait) -> None:
    """What a listen step waits on: its own call that changes the list, else the test changing it."""
    if "call" in step:
        run.report[f"{step['key']}.call"] = dump(await client.call_tool(step["call"]["name"], step["call"]["arguments"]))
    else:
        await on_wait(step["key"])


LISTEN_FLAGS = {"notifications/tools/list_changed": ("tools_list_changed", ToolsListChanged),
                "notifications/prompts/list_changed": ("prompts_list_changed", PromptsListChanged),
                "notifications/resources/list_changed": ("resources_list_changed", ResourcesListChanged)}


async def _python_listen(client: Client, step: dict[str, Any], run: _PythonRun, on_wait: OnWait) -> str | None:
    """2026-07-28: a `subscriptions/listen` stream for the kind, then the change, then its event."""
    flag, kind = LISTEN_FLAGS[step["method"]]
    async with client.listen(**{flag: True}) as sub:
        await _change(client, step, run, on_wait)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(step["seconds"]):
                async for event in sub:
                    if isinstance(event, kind):
                        run.report["notified"].append(step["method"])
                        return str(step["method"])
    return None


async def _python_cancel(client: Client, step: dict[str, Any]) -> dict[str, Any]:
    """Cancel the call once the backend shows it runs (its first progress note): the SDK sends
    `notifications/cancelled` for a request it abandons."""
    notes: list[dict[str, Any]] = []
    started = anyio.Event()

    async def progress(value: float, total: float | None, message: str | None) -> None:
        notes.append({"progress": value, "total": total})
        started.set()

    outcome: dict[str, Any] = {"notes": notes}
    async with anyio.create_task_group() as tg:
        async def call() -> None:
            try:
                outcome["result"] = dump(await client.call_tool(step["name"], step["arguments"],
                                                                progress_callback=progress))
            except anyio.get_cancelled_exc_class():
                outcome["error"] = "cancelled"
                raise

        tg.start_soon(call)
        with anyio.move_on_after(TIMEOUT):
            await started.wait()
        tg.cancel_scope.cancel()
    return outcome


async def run_inspector(home: Path, url: str, token: str, *args: str) -> dict[str, Any]:
    """One Inspector CLI command against `url` (Streamable HTTP); its JSON answer."""
    code, out = await runner.run_inspector(home, url, "--transport", "http",
                                           "--header", f"Authorization: Bearer {token}", *args, limit=30)
    assert code == 0, out
    answer: dict[str, Any] = json.loads(out[out.index("{"):])
    return answer
