"""Running the client matrix: one session per (client, endpoint, server) row, cached; each cell's
assertions on what the client saw and what the backend received (matrix_cells.py has the table)."""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.mcp.catalog import wrap_uri
from tests.fixtures import matrix_servers as ms
from tests.integration import matrix_clients as clients
from tests.integration.gateway_harness import Stack
from tests.integration.matrix_cells import (
    CLIENTS,
    ENDPOINTS,
    FEATURES,
    PROFILES,
    RESTART,
    Cell,
    fill,
)
from tests.integration.mcp_helpers import ADMIN

LISTEN_SECONDS = 10.0
MODES = {"python": "legacy", "python2026": "2026-07-28"}  # the Python SDK client, in either era
EVIDENCE_SECONDS = 10.0  # how long a backend may take to record what it was sent (another process)


@dataclass
class Row:
    """One session's report and the messages its backend received meanwhile."""

    report: dict[str, Any]
    mark: int


def text(result: Any) -> str:
    """The text of a tool result or prompt (every text content joined)."""
    if not isinstance(result, dict):
        return ""
    parts = result.get("content") or [m.get("content") for m in result.get("messages") or []]
    parts = parts if isinstance(parts, list) else [parts]
    return "".join(p.get("text", "") for p in parts if isinstance(p, dict))


class Matrix:
    """The gateway, the servers, and every row's session, run once."""

    def __init__(self, stack: Stack, tmp: Path, http: dict[str, ms.HttpServer], records: dict[str, ms.Recorder],
                 files: Path) -> None:
        self.stack, self.tmp, self.http, self.records, self.files = stack, tmp, http, records, files
        self.rows: dict[tuple[str, str, str], Row] = {}
        self.restarted = 0  # the record mark taken when the last restart was done
        self.restarts: dict[str, asyncio.Future[dict[tuple[str, str], tuple[Any, int, list[int]]]]] = {}

    def url(self, endpoint: str, server: str) -> str:
        """The gateway endpoint an agent uses."""
        return self.stack.url + ("/mcp" if endpoint == "mcp" else f"/servers/{server}/mcp")

    def public_uri(self, cell: Cell, uri: str) -> str:
        """A backend resource's URI as the endpoint lists it."""
        return wrap_uri(cell.server, uri) if cell.endpoint == "mcp" else uri

    def spec(self, cell: Cell, feature: str | None = None) -> dict[str, Any]:
        """The cell's profile entry, filled in; `name` carries the endpoint's prefix."""
        found = dict(fill(PROFILES[cell.server][feature or cell.feature], cell.tag, str(self.files)))
        prefix = f"{cell.server}__" if cell.endpoint == "mcp" else ""
        for key in ("name", "grow"):
            if key in found:
                found["public"] = prefix + found[key]
        if "call" in found:
            found["call"] = {**found["call"], "name": prefix + found["call"]["name"]}
        return found

    async def row(self, cell: Cell) -> Row:
        """The row's session (run on first use): every feature the table lets this row run."""
        key = (cell.client, cell.endpoint, cell.server)
        if key not in self.rows:
            features = [f for f in FEATURES if f != "restart"
                        and (Cell(*key, f).reason() or ("", ""))[0] != "skip"]
            mark = self.records[cell.server].mark()
            if cell.client == "inspector":
                report = await self._inspector(cell, features)
            else:
                steps = [s for f in features for s in self._steps(Cell(*key, f))]
                report = await self._run(cell, {"tag": cell.tag, "steps": steps})
            self.rows[key] = Row(report, mark)
        return self.rows[key]

    def _steps(self, cell: Cell) -> list[dict[str, Any]]:
        spec, key = self.spec(cell), cell.feature
        if key == "tools":
            return [{"op": "tools", "key": "tools.list"},
                    {"op": "call", "key": key, "name": spec["public"], "arguments": spec["arguments"]}]
        if key == "resources":
            return [{"op": "resources", "key": key, "uri": self.public_uri(cell, spec["uri"])}]
        if key == "prompts":
            return [{"op": "prompt", "key": key, "name": spec["public"], "arguments": spec["arguments"]}]
        if key in ("sampling", "elicitation"):
            return [{"op": "call", "key": key, "name": spec["public"], "arguments": spec["arguments"]}]
        if key in ("progress", "cancellation"):
            return [{"op": "progress" if key == "progress" else "cancel", "key": key, "name": spec["public"],
                     "arguments": spec["arguments"]}]
        listen = {"op": "listen", "key": key, "method": spec["method"], "seconds": LISTEN_SECONDS,
                  **({"call": spec["call"]} if "call" in spec else {})}
        return [listen, {"op": "tools", "key": "list_changed.tools"}]

    async def _run(self, cell: Cell, plan: dict[str, Any]) -> dict[str, Any]:
        return await self._run_with(cell, plan, lambda label: self._act(cell, label))

    async def _run_with(self, cell: Cell, plan: dict[str, Any], on_wait: clients.OnWait) -> dict[str, Any]:
        url, token = self.url(cell.endpoint, cell.server), self.stack.token(ADMIN)
        if cell.client == "ts":
            return await clients.run_ts(url, token, plan, on_wait)
        return await clients.run_python(url, token, plan, on_wait, MODES[cell.client])

    async def _act(self, cell: Cell, label: str) -> None:
        """The test's part at a client's pause: change the backend's catalog, or restart the backend."""
        if label == "list_changed":
            grow = self.spec(cell, "list_changed").get("grow")
            if grow:  # directly at the backend: no call through the gateway runs meanwhile
                async with httpx2.AsyncClient(timeout=clients.HTTP_TIMEOUT) as http, Client(
                        streamable_http_client(self.http[cell.server].url, http_client=http), mode="legacy") as c:
                    await c.call_tool("grow", {"name": grow})
        elif label == "restart":
            if cell.server in self.http:
                await asyncio.to_thread(self.http[cell.server].restart)
            else:
                for pid in ms.stdio_pids(self.records[cell.server]):
                    os.kill(pid, signal.SIGKILL)
            self.restarted = self.records[cell.server].mark()
            if cell.server not in ("everything", "fast"):
                await self._reachable(cell.server)

    async def _reachable(self, server: str) -> None:
        """Until the gateway reaches the restarted server again (a REST call by the admin succeeds).

        A stdio or SSE server is ONE shared connection the gateway re-opens with back-off (and fails
        fast meanwhile); the agents' sessions are what the cell is about, not that window."""
        spec = PROFILES[server]["tools"]
        body = {"tool_name": spec["name"], "parameters": fill(spec["arguments"], "probe", str(self.files))}
        async with asyncio.timeout(40):
            while True:
                status, _, _ = await self.stack.call("POST", f"/mcp/invoke?mcp_server={server}", json=body)
                if status == 200:
                    return
                await asyncio.sleep(0.2)

    async def _inspector(self, cell: Cell, features: list[str]) -> dict[str, Any]:
        """One Inspector CLI command per feature, all at once (each with its own HOME: it writes a catalog)."""
        url, token = self.url(cell.endpoint, cell.server), self.stack.token(ADMIN)

        async def one(feature: str) -> Any:
            spec = self.spec(cell, feature)
            pairs = [f"{k}={v}" for k, v in spec.get("arguments", {}).items()]
            if feature == "tools":
                args = ["--method", "tools/call", "--tool-name", spec["public"], *(["--tool-arg", *pairs] if pairs else [])]
            elif feature == "resources":
                args = ["--method", "resources/read", "--uri", self.public_uri(cell, spec["uri"])]
            else:
                args = ["--method", "prompts/get", "--prompt-name", spec["public"],
                        *(["--prompt-args", *pairs] if pairs else [])]
            home = self.tmp / f"inspector-{cell.endpoint}-{cell.server}-{feature}"
            home.mkdir(exist_ok=True)
            answer = await clients.run_inspector(home, url, token, *args)
            return {"read": answer} if feature == "resources" else ({"got": answer} if feature == "prompts" else answer)

        return dict(zip(features, await asyncio.gather(*(one(f) for f in features)), strict=True))

    async def restart(self, cell: Cell) -> tuple[dict[str, Any], int, list[int]]:
        """The cell's session, calling before and after its backend restarted; (report, mark, old stdio pids).

        Every restart cell of a server runs at once and shares ONE restart (several in a row within
        30 s would rightly count as a crash loop for a stdio or SSE server)."""
        if cell.server not in self.restarts:
            self.restarts[cell.server] = asyncio.ensure_future(self._restart_all(cell.server))
        found = (await self.restarts[cell.server])[(cell.client, cell.endpoint)]
        if isinstance(found[0], BaseException):
            raise found[0]
        return found  # type: ignore[return-value]

    async def _restart_all(self, server: str) -> dict[tuple[str, str], tuple[Any, int, list[int]]]:
        rows = [(c, e) for c in CLIENTS for e in ENDPOINTS if Cell(c, e, server, "restart").reason() is None]
        waiting = {"left": len(rows)}
        done = asyncio.Event()
        pids = [] if server in self.http else ms.stdio_pids(self.records[server])
        mark = self.records[server].mark()

        async def arrived() -> None:
            waiting["left"] -= 1
            if waiting["left"] == 0:
                await self._act(Cell(CLIENTS[0], ENDPOINTS[0], server, "restart"), "restart")
                done.set()
            await done.wait()

        async def one(client: str, endpoint: str) -> tuple[Any, int, list[int]]:
            cell = Cell(client, endpoint, server, "restart")
            name = (f"{server}__" if endpoint == "mcp" else "") + RESTART[server]
            arguments = fill(PROFILES[server]["tools"]["arguments"], cell.tag, str(self.files))
            plan = {"tag": cell.tag, "steps": [
                {"op": "call", "key": "before", "name": name, "arguments": arguments},
                {"op": "pause", "key": "restart"},
                {"op": "heal", "key": "after", "name": name, "arguments": arguments}]}
            try:
                return await self._run_with(cell, plan, lambda label: arrived()), mark, pids
            except Exception as exc:  # noqa: BLE001 - the cell reports it; the others must not wait on it
                if not done.is_set():
                    await arrived()
                return exc, mark, pids

        results = await asyncio.gather(*(one(c, e) for c, e in rows))
        return dict(zip(rows, results, strict=True))

    async def check(self, cell: Cell) -> None:
        """Run the cell's row (once) and assert the cell."""
        from tests.integration import matrix_checks

        await matrix_checks.check(self, cell)
