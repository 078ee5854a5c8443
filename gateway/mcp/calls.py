"""`/mcp` tools/call on one backend with its server→client traffic relayed to the agent
(call_stream.py); `input_required` passed to a 2026-07-28 agent, asked of a 2025 one, or bridged
for a 2025-era backend (bridge.py). Every byte read for the call, across its rounds, counts against
MCPGW_GATEWAY_MCP_MAX_CALL_BYTES (docs/security/exhaustion.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable
from typing import Any

import aiohttp
from aiohttp import web

from gateway.calls import outcome
from gateway.errors import to_gateway_error
from gateway.keys import UPSTREAM
from gateway.masking import masked_response
from gateway.mcp import bridge, call_stream, links, protocol
from gateway.mcp.call_stream import ANSWER_TIMEOUT, Call, on_request, relay_notification
from gateway.mcp.endpoint import principal, result_or_error
from gateway.mcp.sealed_state import binding
from gateway.mcp.state import McpState
from gateway.mcp.streams import ClientGone
from gateway.registry import ServerConfig
from gateway.upstream import codec, sse
from gateway.upstream.client import LEGACY
from gateway.upstream.errors import (
    CallBudgetExceeded,
    UpstreamError,
    UpstreamRpcError,
)
from gateway.upstream.pool import UpstreamPool
from gateway.upstream.sender import read_capped

log = logging.getLogger(__name__)
LOG_LEVEL = "io.modelcontextprotocol/logLevel"  # 2026-07-28: log delivery is opt-in per request
MAX_ROUNDS = 8


async def call_tool(request: web.Request, state: McpState, server: ServerConfig, params: dict[str, Any], rid: protocol.RequestId,
                    era: protocol.Era, endpoint: str, turn: bridge.Turn) -> web.StreamResponse | dict[str, Any]:
    """Run tools/call on `server`, relaying its server→client traffic; the result or the SSE answer.

    `turn.held`: the call a 2026-07-28 retry continues (bridge.claimed), relayed on instead of a new one.
    Any other `requestState` must be one a 2026-07-28 backend issued for this same call (sealed_state.py).
    """
    if turn.held is None and "requestState" in params:
        params = state.seals.unsealed(params, _bound(request, server, params))  # else −32602, nothing sent
    call = Call(request, state, server, era, rid, endpoint)
    meta = dict(params.get("_meta") or {})
    call.client_token = meta.pop("progressToken", None)
    if turn.held is not None:
        return await _answered(call, bridge.resume(turn.held, call, params))
    upstream = protocol.without_meta(params)
    if era == "modern" and call.who.declared() and await _legacy(request, server, call):
        # A 2025-era backend may ask this agent mid-call: run the call where rounds can hold it.
        relay = bridge.HeldCall(request, state, server, era, rid, endpoint)
        started = bridge.Held(relay, _rounds(relay, upstream, _own_meta(relay, meta)), turn.owner)
        return await _answered(call, bridge.resume(started, call, None))
    return await _answered(call, _rounds(call, upstream, _own_meta(call, meta)))


def _own_meta(call: Call, meta: dict[str, Any]) -> dict[str, Any]:
    """The `_meta` the backend gets: our progress token; the agent's capabilities and log level."""
    own: dict[str, Any] = {"progressToken": call.token}
    if call.era == "modern":
        own[protocol.META_CAPABILITIES] = meta.get(protocol.META_CAPABILITIES) or {}
        if LOG_LEVEL in meta:
            own[LOG_LEVEL] = meta[LOG_LEVEL]
    else:
        # A 2025 agent filters with logging/setLevel (answered, not forwarded): ask for every level.
        # Its capabilities are those it declared at initialize (sealed in its session).
        own.update({protocol.META_CAPABILITIES: call.who.declared(), LOG_LEVEL: "debug"})
    return own


async def _legacy(request: web.Request, server: ServerConfig, call: Call) -> bool:
    """Whether the caller's client of `server` speaks the handshake era (detected now if need be)."""
    client = request.app[UPSTREAM].client(server, call.who)
    await client.ensure_era()
    return client.era == LEGACY


async def _rounds(call: Call, upstream: dict[str, Any], own: dict[str, Any]) -> dict[str, Any]:
    """The backend's result; a 2026-07-28 backend's input_required is answered by a 2025 agent here
    (asked on the stream, retried for it) and passed to a 2026-07-28 agent, its requestState sealed."""
    for _ in range(MAX_ROUNDS):
        upstream["_meta"] = dict(own)
        result = await _round(call, upstream)
        if result.get("resultType") != "input_required":
            return links.tool_result(call.server.name, result)
        if call.era == "modern":
            # Its requestState sealed for this subject, server, tool and arguments (sealed_state.py).
            return _sealed(call, upstream, result)
        upstream["inputResponses"] = await call_stream.ask_inputs(call, result.get("inputRequests") or {})
        if "requestState" in result:
            upstream["requestState"] = result["requestState"]
    raise UpstreamError(call.server.name, f"still asking for input after {MAX_ROUNDS} rounds")


def _bound(request: web.Request, server: ServerConfig, params: dict[str, Any]) -> bytes:
    return binding(principal(request).subject, server.name, "tools/call", params)


def _sealed(call: Call, upstream: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """A 2026-07-28 backend's input_required for the agent: its requestState in our envelope."""
    return call.state.seals.result(result, lambda: _bound(call.request, call.server, upstream))


async def _answered(call: Call, work: Awaitable[dict[str, Any]]) -> web.StreamResponse | dict[str, Any]:
    """`work`'s result as the agent's answer; a failure once the SSE answer started is its last event."""
    try:
        return await call.finish(await work)
    except ConnectionResetError:
        call.close()  # the agent left mid-answer: nothing to tell it, nothing to log
        raise ClientGone() from None
    except Exception as exc:
        if call.out is None or call.closed:
            call.close()
            raise
        # The SSE answer has started: the failure becomes its last event.
        await call.send(_as_error(call.rid, exc))
        await call.out.write_eof()
        call.close()
        return call.out
    except BaseException:
        call.close()
        raise


def _as_error(rid: protocol.RequestId, exc: Exception) -> dict[str, Any]:
    if isinstance(exc, protocol.RpcFailure):
        return protocol.error(rid, exc.code, exc.message, exc.data)
    mapped = to_gateway_error(exc)
    if mapped is None:
        raise exc
    return protocol.error(rid, protocol.INTERNAL_ERROR, mapped.message)


async def _round(call: Call, params: dict[str, Any]) -> dict[str, Any]:
    uid = "mcpgw-call-" + secrets.token_urlsafe(8)
    pool = call.request.app[UPSTREAM]
    message = codec.request_message(uid, "tools/call", params)
    try:
        return await _exchange(call, pool, message, uid)
    except UpstreamRpcError as exc:  # the backend's own 4xx answer to this call (client.open_stream)
        outcome.settle_tool(call.request, params.get("name", ""), call.server.name, False,
                            error={"code": exc.code, "message": exc.rpc_message})
        code = exc.code if isinstance(exc.code, int) else protocol.INTERNAL_ERROR
        raise protocol.RpcFailure(code, exc.rpc_message, exc.data, status=200) from None
    except asyncio.CancelledError:
        # A closed stream alone does not stop a 2025 backend: tell it, in the caller's own session.
        pool.client(call.server, call.who).cancel_soon(uid, "cancelled by the client")
        raise


async def _exchange(call: Call, pool: UpstreamPool, message: dict[str, Any], uid: str) -> dict[str, Any]:
    async with pool.turn(call.server, call.who), _listening(call, pool), \
            await pool.open_stream(call.server, message, caller=call.who) as resp:
        if resp.status >= 500 or resp.status == 401:
            raise UpstreamError(call.server.name, f"HTTP {resp.status}", resp.status)
        # The pool's cap (MCPGW_GATEWAY_MCP_MAX_RESPONSE_BYTES) holds here too: a whole JSON body,
        # one SSE event complete or still being assembled.
        limit = pool.max_response_bytes
        if resp.content_type != "text/event-stream":
            body = await read_capped(resp, call.server.name, limit, call.server.timeout)
            return _result(call, codec.decode(body, call.server.name), uid, resp.status, message["params"]["name"], body)
        budget = sse.Budget(pool.max_call_bytes, call.relayed)  # every round of the call together
        try:
            async for event in sse.events(resp, call.server.name, limit, budget=budget,
                                          idle_limit=call.server.timeout):
                found = await _on_event(call, pool, event, uid, resp)
                if found is not None:
                    return _result(call, found, uid, resp.status, message["params"]["name"], event.data)
        except CallBudgetExceeded:
            resp.close()
            pool.client(call.server, call.who).cancel_soon(uid, "call exceeded the gateway's byte budget")
            raise
        finally:
            call.relayed = budget.used
    raise UpstreamError(call.server.name, "event stream ended without a response", resp.status)


@contextlib.asynccontextmanager
async def _listening(call: Call, pool: UpstreamPool) -> AsyncIterator[None]:
    """While the call runs, also relay requests the backend sends on its session's GET stream
    (gateway/upstream/standalone.py), if the agent declared anything it could be asked."""
    if not call.who.declared():
        yield
        return
    client = pool.client(call.server, call.who)
    await client.ensure_era()
    async def relayed(msg: dict[str, Any]) -> None:
        await on_request(call, pool, masked_response(msg, pool.credentials.forms(call.server)))

    async with pool.get_streams.during(client, relayed):
        yield


def _result(call: Call, message: Any, uid: str, status: int, tool: str, raw: bytes | str | None) -> dict[str, Any]:
    if not codec.is_response_to(message, uid):
        raise UpstreamError(call.server.name, f"HTTP {status} without a JSON-RPC response", status)
    message = masked_response(message, call.request.app[UPSTREAM].credentials.forms(call.server), raw)  # its own text
    # Judged by the pipeline's rules (calls/outcome.py) before it is relayed: the SSE answer may be
    # written to the agent before the pipeline sees what the forward returns.
    outcome.settle_tool(call.request, tool, call.server.name, False, message.get("result"), message.get("error"))
    result = result_or_error(message)  # the backend's JSON-RPC error becomes the agent's
    return result if result.get("resultType") == "input_required" else dict(codec.normalise_result(result))


async def _on_event(call: Call, pool: UpstreamPool, event: sse.Event, uid: str,
                    resp: aiohttp.ClientResponse) -> dict[str, Any] | None:
    if event.event != "message" or not event.data:
        return None
    msg = codec.decode(event.data, call.server.name)
    if not isinstance(msg, dict):
        return None
    if codec.is_response_to(msg, uid):
        return msg
    method = msg.get("method")
    if not isinstance(method, str):
        return None
    msg = masked_response(msg, pool.credentials.forms(call.server), event.data)  # progress, logs, requests alike
    if "id" not in msg:
        relayed = relay_notification(msg, call.token, call.client_token)
        if relayed is not None:
            await call.send(relayed)
        return None
    await on_request(call, pool, msg)
    _patient(call, resp)
    return None


def _patient(call: Call, resp: aiohttp.ClientResponse) -> None:
    """While a relayed request waits for the agent, the backend waits for its answer: the stream's idle
    limit is the answer's (ANSWER_TIMEOUT), not the backend's `timeout`, until no request is outstanding."""
    conn = resp.connection
    asked = [t for t in call.tasks if not t.done()]
    if conn is None or conn.protocol is None or not asked:
        return
    protocol_ = conn.protocol

    def idle(limit: float) -> None:
        if resp.connection is conn:  # never a connection released to the pool (another request's now)
            protocol_.read_timeout = limit
            protocol_.start_timeout()

    def answered(_: object) -> None:
        if not any(not t.done() for t in call.tasks):
            idle(call.server.timeout)

    idle(max(call.server.timeout, ANSWER_TIMEOUT))
    for task in asked:
        task.add_done_callback(answered)
