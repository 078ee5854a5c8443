"""The peer listener: where other replicas forward retries and answers for calls held here.

Three routes, POST only, each refused (401, nothing done) unless signed with the peers' key
within peers.WINDOW seconds, and bounded to the gateway's own body limit plus an envelope:
`/peer/v1/resume` (one round of a held call, claimed with the same owner binding a local retry
needs), `/peer/v1/answer` (a 2025 agent's answer, for the subject that opened the request) and
`/peer/v1/end` (a retry refused on the forwarding replica). It is no way around the gateway: it
reaches only what an agent's own replica has authenticated and decided, by ids minted here. It
writes no audit row: the forwarding replica's is the call's.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from gateway.errors import to_gateway_error
from gateway.keys import MCP_STATE, PEERS, SETTINGS
from gateway.mcp import bridge, peers
from gateway.mcp.backchannel import InvalidState, invalid_state
from gateway.mcp.peer_link import ANSWER, END, RESUME, owner_of
from gateway.mcp.protocol import RequestId, RpcFailure
from gateway.mcp.state import McpState
from gateway.mcp.streams import ClientGone, until_disconnect
from gateway.registry import ServerConfig
from gateway.settings import ANSWER_TIMEOUT, GatewaySettings, split_address

log = logging.getLogger(__name__)
ENVELOPE = 65_536  # a forward's own fields beyond the agent's body
LINE_MARGIN = 65_536


class PeerWriter:
    """The forwarding replica's agent request, as a round here writes to it: one JSON line a message."""

    def __init__(self, request: web.Request, server: ServerConfig, client_token: RequestId, out: web.StreamResponse) -> None:
        self.request, self.server, self.client_token, self.out = request, server, client_token, out

    async def send(self, message: dict[str, Any]) -> None:
        """Relay one notification to the forwarding replica."""
        await _line(self.out, {"send": message})


async def _line(out: web.StreamResponse, value: dict[str, Any]) -> None:
    await out.write(orjson.dumps(value) + b"\n")


class Handlers:
    """The peer routes, over the gateway's MCP state and the peers' key."""

    def __init__(self, state: McpState, key: bytes, body_timeout: float) -> None:
        self.state, self.key, self.body_timeout = state, key, body_timeout

    async def _body(self, request: web.Request, *fields: str) -> dict[str, Any]:
        """The verified forward: 401 unless signed, 400 unless a JSON object with `fields` as strings."""
        if not peers.fresh(time.time(), request.headers.get(peers.SIGNATURE)):
            log.warning("unsigned or stale peer forward refused", extra={"peer": request.remote})
            raise web.HTTPUnauthorized(text="peer forward not signed with the peers' key")  # body never read
        try:
            async with asyncio.timeout(self.body_timeout):
                data = await request.read()
        except TimeoutError:
            raise web.HTTPRequestTimeout(text="peer forward body not received in time") from None
        if not peers.verify(self.key, time.time(), request.path, data, request.headers.get(peers.SIGNATURE)):
            log.warning("unsigned or badly signed peer forward refused", extra={"peer": request.remote})
            raise web.HTTPUnauthorized(text="peer forward not signed with the peers' key")
        try:
            body = orjson.loads(data)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not all(isinstance(body.get(f), str) for f in fields):
            raise web.HTTPBadRequest(text=f"a peer forward needs {', '.join(fields)} as strings")
        return body

    def _claim(self, body: dict[str, Any]) -> bridge.Held | None:
        try:
            held = self.state.held.claim(body["state"], owner_of(body))
        except InvalidState:
            return None
        assert isinstance(held, bridge.Held)
        return held

    async def resume(self, request: web.Request) -> web.StreamResponse:
        """One round of a held call for a retry another replica decided."""
        body = await self._body(request, "state", "subject", "arguments", "server")
        if not isinstance(body.get("inputResponses"), dict):
            raise web.HTTPBadRequest(text="inputResponses must be an object")
        out = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await out.prepare(request)
        held = self._claim(body)
        if held is None or held.call.server.name != body["server"]:
            if held is not None:
                held.end("the retry was decided for another server")
            await _line(out, {"error": _rpc_error(invalid_state())})
            return out
        held.resumed = False
        writer = PeerWriter(held.call.request, held.call.server, body.get("progressToken"), out)
        try:
            result = await until_disconnect(request, bridge.resume(held, writer, body))
            await _line(out, {"result": result})
        except RpcFailure as failure:
            await _line(out, {"error": _rpc_error(failure)})
        except (ClientGone, ConnectionResetError):
            return out  # the forwarding replica's agent left: the round ended the call
        except Exception as exc:
            mapped = to_gateway_error(exc)
            if mapped is None:
                log.exception("a forwarded round failed")
            await _line(out, {"failed": {"message": mapped.message if mapped else "the held call failed",
                                         "status": mapped.status if mapped else 502}})
        finally:
            if not held.resumed:
                held.end("the retry was refused")
        return out

    async def answer(self, request: web.Request) -> web.Response:
        """A 2025 agent's answer to a request opened here, for the subject that opened it."""
        body = await self._body(request, "subject", "id")
        message = body.get("message")
        answered = isinstance(message, dict) and self.state.pending.answer(body["subject"], body["id"], message)
        return web.json_response({"answered": answered})

    async def end(self, request: web.Request) -> web.Response:
        """A retry refused where it landed: the held call ends, if the binding is the owner's."""
        body = await self._body(request, "state", "subject", "arguments")
        held = self._claim(body)
        if held is not None:
            held.end(str(body.get("reason") or "the retry was refused"))
        return web.json_response({"ended": held is not None})


def _rpc_error(failure: RpcFailure) -> dict[str, Any]:
    return {"code": failure.code, "message": failure.message, "data": failure.data, "status": failure.status}


def peer_app(state: McpState, key: bytes, settings: GatewaySettings) -> web.Application:
    """The listener's own small app: three signed routes and nothing of the gateway's middlewares, with
    the gateway's body limit (plus the envelope) and its header and body read timeouts (slowloris)."""
    app = web.Application(client_max_size=settings.max_body_bytes + ENVELOPE,
                          handler_args={"keepalive_timeout": settings.header_timeout})
    handlers = Handlers(state, key, settings.body_timeout)
    app.router.add_post(RESUME, handlers.resume)
    app.router.add_post(ANSWER, handlers.answer)
    app.router.add_post(END, handlers.end)
    return app


def peer_key(secret: str) -> bytes:
    """The HMAC key of the peer channel, derived from MCPGW_GATEWAY_PEER_SECRET (else the session secret:
    the label keeps the two keys apart)."""
    return hashlib.sha256(b"mcpgw peer channel\0" + secret.encode()).digest()


def advertised(settings: GatewaySettings, bound_port: int) -> str:
    """The address other replicas reach this one at: the advertised one, else the listen host; port 0 = bound."""
    parsed = split_address(settings.peer_advertise or settings.peer_listen or "")
    assert parsed is not None  # settings.finalize checked it
    host, port = parsed
    host = f"[{host}]" if ":" in host else host
    return f"{host}:{port or bound_port}"


async def peers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Cleanup ctx: with MCPGW_GATEWAY_PEER_LISTEN set, the peer listener and the forwarding client."""
    settings = app[SETTINGS]
    secret = settings.peer_secret or settings.mcp_session_secret
    if not settings.peer_listen or secret is None:
        yield
        return
    state = app[MCP_STATE]
    key = peer_key(secret.get())
    runner = web.AppRunner(peer_app(state, key, settings), access_log=None)
    await runner.setup()
    try:
        listen = split_address(settings.peer_listen)
        assert listen is not None
        await web.TCPSite(runner, listen[0] or None, listen[1]).start()
        bound = runner.addresses[0][1]
        timeout = aiohttp.ClientTimeout(connect=5, sock_read=ANSWER_TIMEOUT + 30)
        link = peers.Peers(key, advertised(settings, bound), aiohttp.ClientSession(timeout=timeout),
                           settings.mcp_max_response_bytes + LINE_MARGIN)
        app[PEERS] = link
        state.pending.route = state.held.route = link.route
        log.info("peer listener started", extra={"listen": settings.peer_listen, "advertised": link.address})
        try:
            yield
        finally:
            await link.close()
    finally:
        await runner.cleanup()
