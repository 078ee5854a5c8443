"""One stdio MCP server: a supervised child process and a JSON-RPC multiplexer over its pipes.

The child holds ONE MCP session (initialized once per process); many gateway callers share it.
Each request gets a gateway-unique id (and progress token) on the way in, mapped back on the
way out, so callers' ids never cross. Progress notifications go to the caller whose token they
carry; other notifications go to `listeners` (the GET streams). Requests from the child are
answered here: `ping` → {}, `roots/list` → no roots, anything else (sampling, elicitation) → an
error, since there is no agent to relay them to.

Crashes: pending calls fail at once; the child is restarted (first at once, then with exponential
back-off, reset after a healthy period). After `crash_loop_after` failures in a row a call fails
fast with `StdioUnavailable` (503) until the back-off has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.credentials import CredentialError
from gateway.registry import StdioConfig
from gateway.upstream.transports import stdio_process as proc_mod
from gateway.upstream.transports.stdio_process import StdioLimits

log = logging.getLogger(__name__)

HANDSHAKE_VERSION = "2025-11-25"
CLIENT_INFO = {"name": "mcpgw", "version": "0.1.0"}
Note = Callable[[dict[str, Any]], None]


class StdioUnavailable(Exception):
    """The child is not running (or crashed mid-call); `status` is the HTTP status to answer."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass
class _Call:
    future: asyncio.Future[dict[str, Any]]
    on_note: Note | None = None
    token: Any = None  # the caller's own progress token


@dataclass
class _Child:
    proc: asyncio.subprocess.Process
    started: float
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    handshake: dict[str, Any] | None = None


class StdioServer:
    """A supervised stdio MCP server shared by every caller."""

    def __init__(self, name: str, config: StdioConfig, limits: StdioLimits, environ: Any) -> None:
        self.name, self.config, self.limits, self.environ = name, config, limits, environ
        self.listeners: set[Note] = set()
        self.failures = 0
        self.starts = 0
        self._child: _Child | None = None
        self._next_start = 0.0
        self._last_exit = ""
        self._ids = itertools.count(1)
        self._calls: dict[int, _Call] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        self._restart: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        """The running child's pid, if any."""
        return self._child.proc.pid if self._child else None

    async def handshake(self) -> dict[str, Any]:
        """The child's `initialize` result, starting the child first if needed."""
        child = await self._running()
        assert child.handshake is not None
        return child.handshake

    async def request(self, message: dict[str, Any], on_note: Note | None = None) -> dict[str, Any]:
        """Send a caller's request; return the child's response with the caller's id restored."""
        child = await self._running()
        gid = next(self._ids)
        call = _Call(asyncio.get_running_loop().create_future(), on_note)
        out = {**message, "id": gid}
        meta = (message.get("params") or {}).get("_meta")
        if isinstance(meta, dict) and "progressToken" in meta:
            call.token = meta["progressToken"]
            out["params"] = {**message["params"], "_meta": {**meta, "progressToken": gid}}
        self._calls[gid] = call
        try:
            self._write(child, out)
            response = await call.future
        except asyncio.CancelledError:
            if self._child is child:  # tell the child to stop working for a caller who left
                self._write(child, {"jsonrpc": "2.0", "method": "notifications/cancelled",
                                    "params": {"requestId": gid, "reason": "caller gone"}})
            raise
        finally:
            self._calls.pop(gid, None)
        return {**response, "id": message.get("id")}

    async def notify(self, message: dict[str, Any]) -> None:
        """Forward a caller's notification (cancellations carry the caller's gateway id already)."""
        self._write(await self._running(), message)

    async def close(self) -> None:
        """Stop the child for good (SIGTERM, then SIGKILL after the grace period)."""
        self._closed = True
        if self._restart is not None:
            self._restart.cancel()
        async with self._lock:
            child, self._child = self._child, None
            if child is not None:
                await self._stop(child, "gateway shutting down")

    # -- lifecycle ---------------------------------------------------------------------------

    async def _running(self) -> _Child:
        child = self._child
        if child is not None and child.handshake is not None and child.proc.returncode is None:
            return child
        async with self._lock:
            if self._closed:
                raise StdioUnavailable(f"stdio server {self.name} is shut down", 503)
            child = self._child
            if child is not None and child.handshake is not None and child.proc.returncode is None:
                return child
            wait = self._next_start - time.monotonic()
            if wait > 0:
                if self.failures >= self.limits.crash_loop_after:
                    raise StdioUnavailable(
                        f"stdio server {self.name} is crash-looping ({self.failures} failed starts or "
                        f"crashes in a row, last: {self._last_exit}); next restart in {wait:.1f} s", 503)
                await asyncio.sleep(wait)
            return await self._start()

    async def _start(self) -> _Child:
        try:
            env = proc_mod.child_env(self.config, self.environ)
        except CredentialError as exc:
            self._failed(f"credential unavailable: {exc}")
            raise StdioUnavailable(f"stdio server {self.name}: {exc}", 502) from None
        try:
            proc = await proc_mod.spawn(self.config, env, self.limits)
        except OSError as exc:
            self._failed(f"cannot run {self.config.command}: {exc.strerror or exc}")
            raise StdioUnavailable(f"stdio server {self.name}: {self._last_exit}", 502) from None
        self.starts += 1
        child = _Child(proc, time.monotonic())
        self._child = child
        assert proc.stdout is not None and proc.stderr is not None
        child.tasks = [
            asyncio.create_task(self._read(child), name=f"stdio-read-{self.name}"),
            asyncio.create_task(proc_mod.drain_stderr(proc.stderr, self.name, self.limits.stderr_lines_per_second),
                                name=f"stdio-stderr-{self.name}"),
        ]
        params = {"protocolVersion": HANDSHAKE_VERSION, "capabilities": {}, "clientInfo": CLIENT_INFO}
        try:
            async with asyncio.timeout(30):
                reply = await self._call_raw(child, "initialize", params)
        except (StdioUnavailable, TimeoutError) as exc:
            reason = "exited during initialize" if isinstance(exc, StdioUnavailable) else "no initialize answer within 30 s"
            await self._stop(child, reason)
            raise StdioUnavailable(f"stdio server {self.name} failed to start: {self._last_exit}", 502) from None
        result = reply.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("protocolVersion"), str):
            await self._stop(child, "initialize refused")
            raise StdioUnavailable(f"stdio server {self.name} refused initialize", 502)
        self._write(child, {"jsonrpc": "2.0", "method": "notifications/initialized"})
        child.handshake = result
        log.info("stdio server started", extra={"server": self.name, "pid": proc.pid,
                                                 "version": result["protocolVersion"]})
        return child

    async def _call_raw(self, child: _Child, method: str, params: dict[str, Any]) -> dict[str, Any]:
        gid = next(self._ids)
        call = _Call(asyncio.get_running_loop().create_future())
        self._calls[gid] = call
        try:
            self._write(child, {"jsonrpc": "2.0", "id": gid, "method": method, "params": params})
            return await call.future
        finally:
            self._calls.pop(gid, None)

    def _failed(self, reason: str, uptime: float = 0.0) -> None:
        if uptime >= self.limits.healthy_seconds:
            self.failures = 0  # it ran well for a while: this crash starts a fresh count
        self.failures += 1
        self._last_exit = reason
        self._next_start = time.monotonic() + proc_mod.backoff(self.failures, self.limits.backoff_max)

    async def _stop(self, child: _Child, reason: str) -> None:
        if self._child is child:
            self._child = None
        await proc_mod.stop(child.proc, self.limits.stop_grace)
        for task in child.tasks:
            task.cancel()
        await asyncio.gather(*child.tasks, return_exceptions=True)
        if not self._closed:
            self._failed(f"{reason} (exit code {child.proc.returncode})")
        self._fail_calls(f"stdio server {self.name} stopped: {reason}")

    def _fail_calls(self, message: str) -> None:
        for call in list(self._calls.values()):
            if not call.future.done():
                call.future.set_exception(StdioUnavailable(message, 502))

    def _exited(self, child: _Child) -> None:
        """The child's stdout closed: fail its calls, and restart it unless we are shutting down."""
        if self._child is not child or self._closed:
            return
        self._child = None
        uptime = time.monotonic() - child.started
        code = child.proc.returncode
        self._fail_calls(f"stdio server {self.name} exited during the call")
        if child.handshake is None:
            return  # failed during start: _start reports it
        self._failed(f"exited{'' if code is None else f' with code {code}'} after {uptime:.1f} s", uptime)
        log.warning("stdio server exited; restarting", extra={"server": self.name, "pid": child.proc.pid,
                                                              "failures": self.failures})
        self._restart = asyncio.create_task(self._restart_later(child), name=f"stdio-restart-{self.name}")

    async def _restart_later(self, child: _Child) -> None:
        await proc_mod.stop(child.proc, self.limits.stop_grace)  # reap it (and its group)
        for task in child.tasks:
            if task is not asyncio.current_task():
                task.cancel()
        with contextlib.suppress(StdioUnavailable):
            await self._running()

    # -- the pipes ---------------------------------------------------------------------------

    def _write(self, child: _Child, message: dict[str, Any]) -> None:
        stdin = child.proc.stdin
        if stdin is None or stdin.is_closing():
            raise StdioUnavailable(f"stdio server {self.name} is not running")
        stdin.write(orjson.dumps(message) + b"\n")

    async def _read(self, child: _Child) -> None:
        stdout = child.proc.stdout
        assert stdout is not None
        try:
            while line := await stdout.readline():
                try:
                    message = orjson.loads(line)
                except orjson.JSONDecodeError:
                    log.warning("stdio server wrote a non-JSON line", extra={"server": self.name})
                    continue
                if isinstance(message, dict):
                    self._dispatch(child, message)
        except ValueError:  # a line past max_message_bytes: the stream cannot be resynchronised
            log.error("stdio server sent an oversized message; restarting it", extra={"server": self.name})
            child.proc.kill()
        with contextlib.suppress(ProcessLookupError):
            await asyncio.wait_for(child.proc.wait(), 1.0)
        self._exited(child)

    def _dispatch(self, child: _Child, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:
            call = self._calls.get(message.get("id"))  # type: ignore[arg-type]
            if call is not None and not call.future.done():
                call.future.set_result(message)
            return
        if "id" in message:
            self._answer(child, message)
            return
        params = message.get("params")
        if method == "notifications/progress" and isinstance(params, dict):
            call = self._calls.get(params.get("progressToken"))  # type: ignore[arg-type]
            if call is not None and call.on_note is not None:
                call.on_note({**message, "params": {**params, "progressToken": call.token}})
            return
        if method == "notifications/cancelled":
            return  # about one of the child's own requests, which we answered already
        for listener in list(self.listeners):
            listener(message)

    def _answer(self, child: _Child, request: dict[str, Any]) -> None:
        method, rid = request.get("method"), request.get("id")
        if method == "ping":
            answer: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "result": {}}
        elif method == "roots/list":
            answer = {"jsonrpc": "2.0", "id": rid, "result": {"roots": []}}
        else:
            answer = {"jsonrpc": "2.0", "id": rid, "error": {
                "code": -32601, "message": f"{method} is not available: the gateway does not relay it to agents"}}
        with contextlib.suppress(StdioUnavailable):
            self._write(child, answer)
