"""A handshake-era backend asking a 2026-07-28 agent mid-call: its call held across the agent's retries.

A 2025-era backend asks (sampling, elicitation, roots) in the middle of a tools/call; a 2026-07-28
agent can only be asked by an `input_required` result that it answers with a retry. So the call to
such a backend runs in a task of its own (`Held`): when the backend asks, the agent's tools/call is
answered `input_required` — each request under a gateway id (`inputRequests`), and a `requestState`
the gateway mints (backchannel.HeldCalls) — while the backend's call stays open. The retry's
`inputResponses` are posted to the backend as the answers to its requests and the same call is
relayed on: it may ask again (another round), until its result answers the last retry.

The token is single-use and bound to the subject, server, tool and arguments (their canonical JSON: 1, 1.0
and true differ); anything else is
"Invalid or expired requestState" (−32602) and nothing is forwarded. A retry is decided again like
any call; refused, the held call is cancelled. Held calls are bounded per subject and in total, and
ended (the backend told `notifications/cancelled`) when no retry comes within
MCPGW_GATEWAY_MCP_INPUT_TIMEOUT, or when the agent disconnects during a round. They live on the
replica that started them; with peers configured a retry reaching another replica is decided there
and its rounds run here, relayed over the peer channel (peer_link.py, peer_listener.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from gateway.keys import PEERS
from gateway.mcp import peer_link, protocol
from gateway.mcp.backchannel import STATE_PREFIX, InvalidState, TooManyHeld, invalid_state
from gateway.mcp.call_stream import ANSWER_TIMEOUT, Call
from gateway.mcp.endpoint import principal
from gateway.mcp.peer_link import Remote, Writer
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.state import McpState
from gateway.upstream.errors import UpstreamError


@dataclass(frozen=True)
class Turn:
    """A `/mcp` tools/call as the bridge sees it: who may continue it, and the held call it continues."""

    owner: tuple[Any, ...]  # subject, the tool as the agent named it, its arguments (canonical JSON)
    held: Held | Remote | None = None  # Remote: another replica holds it (peer_link.py)


class HeldCall(Call):
    """The agent's side of a held call: notifications wait for the round in progress (dropped between
    rounds), requests become the round's `inputRequests`."""

    bridged = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asks: dict[str, dict[str, Any]] = {}  # unanswered requests by gateway id
        self.outbox: list[dict[str, Any]] = []
        self.attached = False
        self.wake = asyncio.Event()

    async def send(self, message: dict[str, Any]) -> None:
        """Queue a notification for the agent's request in progress, if any."""
        if self.attached:
            self.outbox.append(message)
            self.wake.set()

    async def ask(self, method: str, params: Any,
                  opened: tuple[str, asyncio.Future[dict[str, Any]]] | None = None) -> dict[str, Any]:
        """Make the request one of the next `input_required` result's and wait for the retry's answer."""
        gid, future = opened or self.open_request()
        self.asks[gid] = {"method": method, **({"params": params} if params is not None else {})}
        self.wake.set()
        try:
            async with asyncio.timeout(ANSWER_TIMEOUT):
                return await future
        finally:
            self.asks.pop(gid, None)
            self.state.pending.close(gid)


class Held:
    """One backend call held for a 2026-07-28 agent: the task relaying it, and who may continue it."""

    def __init__(self, call: HeldCall, work: Coroutine[Any, Any, dict[str, Any]], owner: tuple[Any, ...]) -> None:
        self.call, self.owner = call, owner
        self.resumed = False  # a round has it now (`resume`); a claimed call no round resumes is ended
        self.counted = False  # holds a place in the state's HeldCalls
        self.task = asyncio.get_running_loop().create_task(work)
        self.task.add_done_callback(_settled)
        self.task.add_done_callback(lambda _: call.wake.set())

    def end(self, reason: str) -> None:
        """Cancel the backend call (its relay tells a 2025 backend `notifications/cancelled`), once."""
        if not self.task.done():
            self.task.cancel(reason)
        self.call.close()
        if self.counted:
            self.counted = False
            self.call.state.held.give(self.owner[0])


def _settled(task: asyncio.Task[dict[str, Any]]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a call ended between rounds must not warn


@contextlib.contextmanager
def claimed(request: web.Request, state: McpState, params: dict[str, Any], era: protocol.Era) -> Iterator[Turn]:
    """The call's Turn; for a 2026-07-28 retry naming one of our requestStates, the held call it
    continues, ended if the retry is refused or fails before a round resumes it. RpcFailure (−32602)
    for a bad state, nothing forwarded."""
    token = params.get("requestState")
    if "requestState" in params and not isinstance(token, str):
        raise RpcFailure(protocol.INVALID_PARAMS, "requestState must be a string")
    # Arguments by their canonical JSON: Python's == takes 1, 1.0 and true for the same argument.
    arguments = orjson.dumps(params.get("arguments") or {}, option=orjson.OPT_SORT_KEYS)
    turn = Turn((principal(request).subject, params.get("name"), arguments))
    if era != "modern" or not isinstance(token, str) or not token.startswith(STATE_PREFIX):
        yield turn  # no state, or a 2026-07-28 backend's own (opened in calls.call_tool, sealed_state.py)
        return
    responses = params.get("inputResponses")
    if responses is not None and not isinstance(responses, dict):
        raise RpcFailure(protocol.INVALID_PARAMS, "inputResponses must be an object keyed by inputRequests' keys")
    peers = request.app.get(PEERS)
    address = peers.elsewhere(STATE_PREFIX, token) if peers is not None else None
    if peers is not None and address is not None:
        # Another replica's: decided here like any call, its round run by the owner, which checks the
        # binding (an invalid state is −32602 then, after the decision).
        remote = Remote(peers, address, token, turn.owner)
        try:
            yield Turn(turn.owner, remote)
        finally:
            if not remote.resumed:
                remote.end("the retry was refused")
        return
    try:
        held = state.held.claim(token, turn.owner)
    except InvalidState:
        raise invalid_state() from None
    assert isinstance(held, Held)
    held.resumed = False  # until this retry's round takes it
    try:
        yield Turn(turn.owner, held)
    finally:
        if not held.resumed:
            held.end("the retry was refused")


async def resume(held: Held | Remote, writer: Writer, params: dict[str, Any] | None) -> dict[str, Any]:
    """One round: deliver the retry's answers, then relay the held call on `writer` (the agent's request
    in progress) until it ends (its result) or asks (an `input_required` result, the call parked).
    A retry decided for another server than the held call's (the tool moved on a reload) ends it: −32602.
    Another replica's call: the round runs there (peer_link.resume)."""
    if isinstance(held, Remote):
        return await peer_link.resume(held, writer, params or {})
    if held.call.server.name != writer.server.name:
        held.end("the retry was decided for another server")
        raise invalid_state()
    held.resumed = True
    call = held.call
    _deliver(call, (params or {}).get("inputResponses") or {})
    # The round in progress is where the relay's findings go (its audit: calls/outcome.py), and
    # its progress token the one the backend's progress is renamed to.
    call.request, call.client_token, call.attached = writer.request, writer.client_token, True
    try:
        while True:
            while call.outbox:
                await writer.send(call.outbox.pop(0))
            if held.task.done():
                if held.task.cancelled():  # never a CancelledError out of a live handler
                    raise UpstreamError(call.server.name, "the held call was cancelled")
                result = held.task.result()
                held.end("finished")
                return result
            if call.asks:
                return _park(held)
            call.wake.clear()
            await call.wake.wait()
    except BaseException as exc:
        held.end("the agent left" if isinstance(exc, asyncio.CancelledError) else "the round failed")
        raise
    finally:
        call.attached = False
        call.outbox.clear()


def _deliver(call: HeldCall, responses: dict[str, Any]) -> None:
    """Hand each answered request its result (the relay posts it to the backend); others stay asked."""
    for gid, result in responses.items():
        if gid in call.asks and isinstance(result, dict):
            del call.asks[gid]
            call.state.pending.answer(call.who.subject, gid, {"jsonrpc": "2.0", "id": gid, "result": result})


def _park(held: Held) -> dict[str, Any]:
    state = held.call.state
    if not held.counted:
        try:
            state.held.take(held.owner[0])
        except TooManyHeld as exc:
            raise RpcFailure(protocol.INTERNAL_ERROR, str(exc), status=429) from None
        held.counted = True
    token = state.held.park(held)
    return {"resultType": "input_required", "inputRequests": dict(held.call.asks), "requestState": token}
