"""`/servers/{name}/mcp` GET and DELETE: a passthrough session's server→client stream and its end."""

from __future__ import annotations

from aiohttp import web

from gateway.keys import MCP_STATE, UPSTREAM
from gateway.mcp import endpoint, enforce
from gateway.mcp.endpoint import principal, refused, session_gone, session_request
from gateway.mcp.passthrough import ENDPOINT, session_refused
from gateway.mcp.sessions import Session
from gateway.mcp.state import McpState
from gateway.mcp.streams import (
    ClientGone,
    forward_headers,
    masked_answer,
    relay_answer,
    returned_headers,
    until_disconnect,
)
from gateway.registry import ServerConfig
from gateway.upstream.sender import read_capped


async def _session(request: web.Request, state: McpState, action: str) -> tuple[ServerConfig, Session]:
    """A GET's or DELETE's server (once the caller may see it) and session; refusals raise."""
    session_request(request, state, action)
    server = await enforce.visible_server(request)
    return server, endpoint.open_session(request, state, server.name)


async def get(request: web.Request) -> web.StreamResponse:
    """The handshake era's server→client stream (resumable with Last-Event-ID); 405 for 2026-07-28."""
    state: McpState = request.app[MCP_STATE]
    try:
        server, session = await _session(request, state, "mcp_stream")
        state.metrics.messages.labels(ENDPOINT, "GET", "handshake").inc()
        if session.bridged:
            return web.Response(status=405, headers={"Allow": "POST, DELETE"})
        with endpoint.stream_slot(state, principal(request).subject, session.sid):
            return await _relay_stream(request, state, server, session)
    except ClientGone:
        return web.Response(status=499)
    except Exception as exc:
        return refused(request, exc, server=request.match_info["name"])


async def _relay_stream(request: web.Request, state: McpState, server: ServerConfig,
                        session: Session) -> web.StreamResponse:
    headers = forward_headers(request.headers, session.upstream_id)
    forms = request.app[UPSTREAM].credentials.forms(server)
    resp = await request.app[UPSTREAM].send(server, "GET", headers, None, stream=True)
    async with resp:
        if resp.status != 200 or resp.content_type != "text/event-stream":
            body = await read_capped(resp, server.name, state.settings.mcp_max_response_bytes)
            if session.upstream_id and session_refused(resp.status, body):
                raise session_gone()
            return web.Response(body=masked_answer(body, forms), status=resp.status, headers=returned_headers(resp.headers))
        # Nothing is written while the backend is quiet, so watch for the client leaving.
        return await until_disconnect(request, relay_answer(request, state, ENDPOINT, resp, None, None, server.name,
                                                            forms=forms))


async def delete(request: web.Request) -> web.StreamResponse:
    """End a session: the backend's too, then the gateway's (on every replica sharing the database)."""
    state: McpState = request.app[MCP_STATE]
    try:
        server, session = await _session(request, state, "mcp_session_end")
        status = 200
        if session.upstream_id and not session.bridged:
            headers = forward_headers(request.headers, session.upstream_id)
            resp = await request.app[UPSTREAM].send(server, "DELETE", headers, None)
            async with resp:
                status = resp.status if resp.status < 500 else 502
        await state.end(ENDPOINT, session)
        return web.Response(status=status)
    except Exception as exc:
        return refused(request, exc, server=request.match_info["name"])

