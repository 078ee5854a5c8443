"""The agent's side of one relayed `/mcp` tools/call (calls.py runs the backend's side).

Its answer turns into an SSE stream on the first thing relayed; progress (`notifications/progress`,
the gateway's own token mapped back to the agent's) and log messages go to the agent as they come.
Server→client requests (sampling, elicitation, roots) are sent on that stream under a gateway id
(backchannel.py) and the agent's answer is posted back to the backend's session; beyond the
subject's pending limit they are refused to the backend at once, on the reading task.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from typing import Any

from aiohttp import web

from gateway.keys import ANSWER_STREAM
from gateway.mcp import protocol
from gateway.mcp.backchannel import TooManyPending
from gateway.mcp.endpoint import caller
from gateway.mcp.state import McpState
from gateway.registry import ServerConfig
from gateway.settings import ANSWER_TIMEOUT
from gateway.upstream import sse
from gateway.upstream.errors import UpstreamError
from gateway.upstream.pool import UpstreamPool

log = logging.getLogger(__name__)
RELAYED = frozenset({"notifications/progress", "notifications/message"})


class Call:
    """One relayed tools/call: the agent's side of the stream, opened on first need."""

    bridged = False  # a 2026-07-28 agent can be asked mid-call only through a held call (bridge.py)

    def __init__(self, request: web.Request, state: McpState, server: ServerConfig, era: protocol.Era, rid: protocol.RequestId,
                 endpoint: str) -> None:
        self.request, self.state, self.server, self.era, self.rid = request, state, server, era, rid
        self.endpoint = endpoint
        self.who = caller(request)  # fixed for the call: its backend session, however many rounds
        self.out: web.StreamResponse | None = None
        self.token = "mcpgw-progress-" + secrets.token_urlsafe(8)
        self.client_token: protocol.RequestId = None
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False
        self.relayed = 0  # bytes read from the backend for this call, every round together

    async def send(self, message: dict[str, Any]) -> None:
        """Write one message to the agent, switching the answer to SSE the first time."""
        if self.out is None:
            self.out = web.StreamResponse(status=200, headers=sse.SSE_HEADERS)
            self.state.metrics.streams_open.labels(self.endpoint).inc()
            self.request[ANSWER_STREAM] = self.out
            await self.out.prepare(self.request)
        await self.out.write(sse.json_event(message))

    async def finish(self, result: dict[str, Any]) -> web.StreamResponse | dict[str, Any]:
        """The final answer: a plain result when nothing was streamed, else its last SSE event."""
        if self.out is None:
            self.close()
            return result
        try:
            body = protocol.result(self.rid, protocol.with_result_type(result, self.era, "tools/call"))
            await self.out.write(sse.json_event(body))
            await self.out.write_eof()
        finally:
            self.close()
        return self.out

    def close(self) -> None:
        """Stop helper tasks and count the stream closed (once)."""
        for task in self.tasks:
            task.cancel()
        if self.out is not None and not self.closed:
            self.closed = True
            self.state.metrics.streams_open.labels(self.endpoint).dec()

    def open_request(self) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        """A pending slot for one server→client request (TooManyPending past the subject's limit)."""
        return self.state.pending.open(self.who.subject)

    async def ask(self, method: str, params: Any,
                  opened: tuple[str, asyncio.Future[dict[str, Any]]] | None = None) -> dict[str, Any]:
        """Send a server→client request to the agent and wait for its JSON-RPC response."""
        gid, future = opened or self.open_request()
        try:
            await self.send({"jsonrpc": "2.0", "id": gid, "method": method, "params": params})
            async with asyncio.timeout(ANSWER_TIMEOUT):
                return await future
        finally:
            self.state.pending.close(gid)


async def ask_inputs(call: Call, requests: dict[str, Any]) -> dict[str, Any]:
    """Ask a 2025 agent each input request of an `input_required` result; their results by key."""
    async def one(key: str, req: dict[str, Any]) -> tuple[str, Any]:
        try:
            answer = await call.ask(str(req.get("method")), req.get("params"))
        except TooManyPending as exc:
            raise UpstreamError(call.server.name, str(exc)) from None
        if "result" not in answer:
            err: dict[str, Any] = answer["error"] if isinstance(answer.get("error"), dict) else {}
            raise UpstreamError(call.server.name, f"agent refused {req.get('method')}: {err.get('message', '')}")
        return key, answer["result"]

    wanted = {k: r for k, r in requests.items() if isinstance(r, dict)}
    if len(wanted) > call.state.pending.subjects.limit:  # could never all be pending at once
        raise UpstreamError(call.server.name, str(TooManyPending(call.state.pending.subjects.limit)))
    tasks = [asyncio.ensure_future(one(k, r)) for k, r in wanted.items()]
    try:
        return dict(await asyncio.gather(*tasks))
    finally:
        for task in tasks:  # one refusal ends the round: the others stop waiting (and free their slots)
            task.cancel()


async def on_request(call: Call, pool: UpstreamPool, msg: dict[str, Any]) -> None:
    """A backend's server→client request (from the call's stream or its session's GET stream):
    relayed to the agent in a task under a pending slot, or refused to the backend here and now."""
    if call.era == "modern" and not call.bridged:
        await _refuse(call, pool, msg, protocol.METHOD_NOT_FOUND,
                      "the gateway cannot relay this request to a 2026-07-28 client mid-call")
        return
    try:
        opened = call.open_request()
    except TooManyPending as exc:
        await _refuse(call, pool, msg, protocol.INTERNAL_ERROR, str(exc))
        return
    task = asyncio.get_running_loop().create_task(_back_channel(call, pool, msg, opened))
    call.tasks.add(task)
    task.add_done_callback(call.tasks.discard)
    # A task cancelled before its first step never runs `ask`'s finally: free the slot here too.
    task.add_done_callback(lambda _: call.state.pending.close(opened[0]))


def relay_notification(msg: dict[str, Any], ours: str, theirs: Any) -> dict[str, Any] | None:
    """A backend's notification as the agent should see it, or None when it is not for the agent.

    Progress is relayed only for this call's own token, renamed to the agent's (none: dropped).
    """
    method = msg.get("method")
    if method not in RELAYED:
        return None
    params: dict[str, Any] = msg["params"] if isinstance(msg.get("params"), dict) else {}
    if method == "notifications/progress":
        if params.get("progressToken") != ours or theirs is None:
            return None
        return {**msg, "params": {**params, "progressToken": theirs}}
    return msg


async def _refuse(call: Call, pool: UpstreamPool, msg: dict[str, Any], code: int, message: str) -> None:
    """Answer a backend's server→client request with an error, here and now (no task, no slot)."""
    await _post_answer(call, pool, protocol.error(msg["id"], code, message))


async def _back_channel(call: Call, pool: UpstreamPool, msg: dict[str, Any],
                        opened: tuple[str, asyncio.Future[dict[str, Any]]]) -> None:
    """Relay a 2025-era backend's request to the agent and post the answer back to the backend."""
    try:
        reply = await call.ask(str(msg["method"]), msg.get("params"), opened)
    except (TimeoutError, ConnectionError) as exc:
        reply = protocol.error(None, protocol.INTERNAL_ERROR, f"no answer from the client ({type(exc).__name__})")
    answer = {k: v for k, v in reply.items() if k in ("result", "error")}
    await _post_answer(call, pool, {"jsonrpc": "2.0", "id": msg["id"], **answer})


async def _post_answer(call: Call, pool: UpstreamPool, answer: dict[str, Any]) -> None:
    status = await pool.client(call.server, call.who).send_response(answer)
    if status >= 400:
        log.warning("backend refused a relayed answer", extra={"server": call.server.name, "status": status})
