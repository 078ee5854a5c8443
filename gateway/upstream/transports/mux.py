"""One shared MCP session over a single-connection transport, multiplexed for many callers.

Used by stdio (a child's pipes) and legacy HTTP+SSE (a GET stream plus POSTs): both give the
gateway ONE session (initialized once per connection) that every caller shares. Each request
gets a gateway-unique id (and progress token) on the way in, mapped back on the way out, so
callers' ids never cross. Progress notifications go to the caller whose token they carry; other
notifications go to `listeners` (the GET streams). Requests from the server go to `relay` when
one is set (a connection of one caller's own, whose agent can answer: legacy SSE, see bridge.py);
otherwise, or when it has nobody to hand them to, they are answered here: `ping` → {},
`roots/list` → no roots, anything else (sampling, elicitation) → an error.

Failures: pending calls fail at once; the connection is reopened (first at once, then with
exponential back-off, reset after a healthy period). After `crash_loop_after` failures in a row a
call fails fast with `Unavailable` (503) until the back-off has passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from gateway.upstream import codec
from gateway.upstream.transports.channel import Channel, Unavailable, answer_server_request
from gateway.upstream.transports.stdio_process import StdioLimits, backoff
from shared.runtime import cancel_and_wait

__all__ = ["Channel", "Multiplexer", "Note", "Relay", "Unavailable", "answer_server_request"]
log = logging.getLogger(__name__)

Note = Callable[[dict[str, Any]], None]
Relay = Callable[[dict[str, Any]], bool]  # a server request handed on (True), or not taken (False)


@dataclass
class _Call:
    future: asyncio.Future[dict[str, Any]]
    on_note: Note | None = None
    token: codec.RequestId | None = None  # the caller's own progress token


@dataclass
class _Run:
    channel: Channel
    started: float
    reader: asyncio.Task[None] | None = None
    handshake: dict[str, Any] | None = None


class Multiplexer:
    """A supervised connection to one server, shared by every caller."""

    kind = "server"
    eager = True  # reconnect as soon as the connection ends (a caller's own connection waits for its next call)

    def __init__(self, name: str, limits: StdioLimits, capabilities: dict[str, Any] | None = None) -> None:
        self.name, self.limits = name, limits
        self.capabilities = capabilities or {}  # declared at initialize
        self.listeners: set[Note] = set()
        self.relay: Relay | None = None
        self.failures = 0
        self._run: _Run | None = None
        self._next_start = 0.0
        self._last_exit = ""
        self._ids = itertools.count(1)
        self._calls: dict[int, _Call] = {}
        self._lock = asyncio.Lock()
        self._closed = False
        self._tasks: set[asyncio.Task[Any]] = set()

    async def _open(self) -> Channel:
        """Open a new connection (start the process); raise Unavailable on failure."""
        raise NotImplementedError

    def for_caller(self, capabilities: dict[str, Any]) -> Multiplexer | None:
        """A connection of one caller's own declaring `capabilities`, or None: this server is shared."""
        return None

    @property
    def pending(self) -> int:
        """Calls waiting for the server's answer."""
        return len(self._calls)

    async def handshake(self) -> dict[str, Any]:
        """The server's `initialize` result, connecting first if needed."""
        run = await self._running()
        assert run.handshake is not None
        return run.handshake

    async def request(self, message: dict[str, Any], on_note: Note | None = None) -> dict[str, Any]:
        """Send a caller's request; return the server's response with the caller's id restored."""
        return await self._call(await self._running(), message, on_note)

    async def _call(self, run: _Run, message: dict[str, Any], on_note: Note | None = None) -> dict[str, Any]:
        gid = next(self._ids)
        call = _Call(asyncio.get_running_loop().create_future(), on_note)
        out = {**message, "id": gid}
        meta = (message.get("params") or {}).get("_meta")
        if isinstance(meta, dict) and "progressToken" in meta:
            call.token = meta["progressToken"]
            out["params"] = {**message["params"], "_meta": {**meta, "progressToken": gid}}
        self._calls[gid] = call
        try:
            await run.channel.send(out)
            response = await call.future
        except asyncio.CancelledError:
            if self._run is run and run.handshake is not None:  # tell the server to stop working for a caller who left
                self._background(run.channel.send({"jsonrpc": "2.0", "method": "notifications/cancelled",
                                                   "params": {"requestId": gid, "reason": "caller gone"}}))
            raise
        finally:
            self._calls.pop(gid, None)
        return {**response, "id": message.get("id")}

    async def notify(self, message: dict[str, Any]) -> None:
        """Forward a caller's notification."""
        await (await self._running()).channel.send(message)

    async def close(self) -> None:
        """End the connection for good."""
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        async with self._lock:
            run, self._run = self._run, None
            if run is not None:
                await self._stop(run, "gateway shutting down")

    async def disconnect(self) -> None:
        """Close the connection but not the server: the next request connects again."""
        async with self._lock:
            run, self._run = self._run, None
        if run is not None:
            await run.channel.close()
            await cancel_and_wait(run.reader)
            self._fail_calls(f"{self.kind} {self.name} disconnected")

    def _background(self, job: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda t: t.cancelled() or t.exception())  # failures are not news here

    # -- lifecycle ---------------------------------------------------------------------------

    def _live(self) -> _Run | None:
        run = self._run
        live = run is not None and run.handshake is not None and run.reader is not None and not run.reader.done()
        return run if live else None

    async def _running(self) -> _Run:
        if (run := self._live()) is not None:
            return run
        async with self._lock:
            if self._closed:
                raise Unavailable(f"{self.kind} {self.name} is shut down", 503)
            if (run := self._live()) is not None:
                return run
            wait = self._next_start - time.monotonic()
            if wait > 0:
                if self.failures >= self.limits.crash_loop_after:
                    raise Unavailable(
                        f"{self.kind} {self.name} is crash-looping ({self.failures} failed starts or "
                        f"crashes in a row, last: {self._last_exit}); next restart in {wait:.1f} s", 503)
                await asyncio.sleep(wait)
            return await self._start()

    async def _start(self) -> _Run:
        try:
            channel = await self._open()
        except Unavailable as exc:
            self._failed(exc.message)
            raise Unavailable(f"{self.kind} {self.name}: {exc.message}", exc.status) from None
        run = _Run(channel, time.monotonic())
        self._run = run
        run.reader = asyncio.create_task(self._read(run), name=f"mux-read-{self.name}")
        params = codec.initialize_params(self.capabilities)
        try:
            async with asyncio.timeout(30):
                reply = await self._call(run, codec.request_message(0, "initialize", params))
        except (Unavailable, TimeoutError) as exc:
            reason = "ended during initialize" if isinstance(exc, Unavailable) else "no initialize answer within 30 s"
            await self._stop(run, reason)
            raise Unavailable(f"{self.kind} {self.name} failed to start: {self._last_exit}", 502) from None
        except BaseException:  # the caller left (an agent's disconnect): no child, no secret outlives it
            await asyncio.shield(self._stop(run, "start cancelled"))
            raise
        result = reply.get("result")
        if not isinstance(result, dict) or not isinstance(result.get("protocolVersion"), str):
            await self._stop(run, "initialize refused")
            raise Unavailable(f"{self.kind} {self.name} refused initialize", 502)
        await channel.send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        run.handshake = result
        log.info("%s started", self.kind, extra={"server": self.name, "version": result["protocolVersion"]})
        return run

    def _failed(self, reason: str, uptime: float = 0.0) -> None:
        if uptime >= self.limits.healthy_seconds:
            self.failures = 0  # it ran well for a while: this crash starts a fresh count
        self.failures += 1
        self._last_exit = reason
        self._next_start = time.monotonic() + backoff(self.failures, self.limits.backoff_max)

    async def _stop(self, run: _Run, reason: str) -> None:
        if self._run is run:
            self._run = None
        await run.channel.close()
        if run.reader is not None and run.reader is not asyncio.current_task():
            run.reader.cancel()
            await asyncio.gather(run.reader, return_exceptions=True)
        if not self._closed:
            self._failed(f"{reason} ({run.channel.ended()})")
        self._fail_calls(f"{self.kind} {self.name} stopped: {reason}")

    def _fail_calls(self, message: str) -> None:
        for call in list(self._calls.values()):
            if not call.future.done():
                call.future.set_exception(Unavailable(message, 502))

    def _ended(self, run: _Run) -> None:
        """The connection ended: fail its calls, and reconnect unless we are shutting down."""
        if self._run is not run or self._closed:
            return
        self._run = None
        uptime = time.monotonic() - run.started
        self._fail_calls(f"{self.kind} {self.name} {run.channel.ended()} during the call")
        if run.handshake is None:
            return  # failed during start: _start reports it
        self._failed(f"{run.channel.ended()} after {uptime:.1f} s", uptime)
        if not self.eager:
            self._background(run.channel.close())
            return
        log.warning("%s ended; restarting", self.kind, extra={"server": self.name, "failures": self.failures})
        self._background(self._restart(run))

    async def _restart(self, run: _Run) -> None:
        await run.channel.close()  # reap it (and its group)
        with contextlib.suppress(Unavailable):
            await self._running()

    # -- messages ----------------------------------------------------------------------------

    async def _read(self, run: _Run) -> None:
        try:
            async for message in run.channel.messages():
                await self._dispatch(run, message)
        finally:
            self._ended(run)

    async def _dispatch(self, run: _Run, message: dict[str, Any]) -> None:
        method = message.get("method")
        if method is None:
            call = self._calls.get(message.get("id"))  # type: ignore[arg-type]
            if call is not None and not call.future.done():
                call.future.set_result(message)
            return
        if "id" in message:
            if self.relay is not None and self.relay(message):
                return
            # Answered beside the reader: a write waiting for the server to read must never stop
            # us reading what the server writes.
            self._background(run.channel.send(answer_server_request(message)))
            return
        params = message.get("params")
        if method == "notifications/progress" and isinstance(params, dict):
            call = self._calls.get(params.get("progressToken"))  # type: ignore[arg-type]
            if call is not None and call.on_note is not None:
                call.on_note({**message, "params": {**params, "progressToken": call.token}})
            return
        if method == "notifications/cancelled":
            return  # about one of the server's own requests, which we answered already
        for listener in list(self.listeners):
            listener(message)
