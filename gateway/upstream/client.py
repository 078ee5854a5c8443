"""One backend's MCP client over Streamable HTTP, for both protocol eras.

Its session (era, id, handshake: session.py) is initialized again when the backend refuses it
(404, or 400 as after a TypeScript SDK server's restart: `codec.session_refused`); the refused
request is then sent again in the new session — whatever its method, since a refused message was
never run. Only headers built here are sent: nothing
from the agent's request reaches the backend except through `open_stream`'s explicit allowlist.
Every request goes out on the one request path (sender.py); answers are read by its `read_reply`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp

from gateway.upstream import codec, sse
from gateway.upstream.errors import BackendDisconnected, UpstreamError, UpstreamRpcError
from gateway.upstream.sender import Reply, read_capped
from gateway.upstream.session import ACCEPT, LEGACY, MODERN, BackendSession

__all__ = ["ACCEPT", "IDEMPOTENT", "LEGACY", "MODERN", "PASSTHROUGH_HEADERS", "BackendClient"]
# Agent headers a passthrough stream may carry; everything else (Authorization, Cookie, Host…) stays behind.
PASSTHROUGH_HEADERS = frozenset({"last-event-id", "mcp-param"})
# Requests that change nothing on a backend: sent again once when the connection closes before any answer
# (a keep-alive connection to a backend that just restarted). Others, tools/call first, may have run.
IDEMPOTENT = frozenset({"ping", "tools/list", "prompts/list", "resources/list", "resources/templates/list",
                        "resources/read", "prompts/get"})


class BackendClient(BackendSession):
    """MCP client for one backend: requests in its session (session.py), the refused session renewed."""

    async def request(self, method: str, params: dict[str, Any] | None = None) -> Reply:
        """Send one request and return the backend's reply (JSON-RPC errors included).

        The server's `timeout` is an idle limit, as on every path (docs/mcp.md): an exchange ends
        when the backend leaves it silent that long, however long it runs while it keeps sending
        (progress, logs, keep-alives).
        """
        await self.ensure_era()
        for resent in (False, True):
            try:
                message, opened = await self._open(method, params)
            except BackendDisconnected:
                if resent or method not in IDEMPOTENT:
                    raise
                continue
            if isinstance(opened, Reply):
                return opened
            async with opened as resp:
                reply = await self._read(message["id"], resp)
            assert reply is not None
            return reply
        raise AssertionError("unreachable")

    async def open_stream(
        self, message: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> aiohttp.ClientResponse:
        """POST `message` and return the unread response (caller must release it)."""
        await self.ensure_era()
        extra = {k: v for k, v in (headers or {}).items() if k.lower() in PASSTHROUGH_HEADERS}
        framed, opened = await self._open(message["method"], message.get("params"), message.get("id"), extra)
        if isinstance(opened, Reply):
            raise _refusal_error(self.server.name, opened.response, framed["id"], opened.status,
                                 self.credentials.forms(self.server))
        return opened

    async def _open(
        self, method: str, params: dict[str, Any] | None, request_id: codec.RequestId | None = None,
        extra: Mapping[str, str] | None = None,
    ) -> tuple[dict[str, Any], aiohttp.ClientResponse | Reply]:
        """POST a request in this client's session: the unread response, or the backend's 400/404 answer.

        A session the backend refused (codec.session_refused) is initialized again and the request
        sent once more: a refused message never ran, so whatever its method it cannot run twice.
        """
        for renewed in (False, True):
            # During a renewal the old id is still ours (see _initialize): a message framed with it is
            # refused as stale and, once the renewal is done, sent again in the new session.
            message, headers = self._frame(method, params, request_id)
            stale = self.session_id
            resp = await self._post(message, {**(extra or {}), **headers})
            if resp.status not in (400, 404) or not stale:
                return message, resp
            async with resp:  # the decoded 4xx body (None when it is not JSON)
                answer = codec.loads_or_none(await read_capped(resp, self.server.name, self.max_response_bytes,
                                                               self.server.timeout))
            if not codec.session_refused(resp.status, answer):
                if codec.is_response_to(answer, message["id"]):
                    return message, Reply(answer, resp.status)
                raise _refusal_error(self.server.name, answer, message["id"], resp.status,
                                     self.credentials.forms(self.server))
            if renewed:
                raise UpstreamError(self.server.name, f"backend keeps refusing its own new session (HTTP {resp.status})",
                                    resp.status)
            await self.renew_session(stale)
        raise AssertionError("unreachable")

    async def open_get(self) -> aiohttp.ClientResponse:
        """Open this session's 2025-era GET stream (caller must release it)."""
        return await self.http.send("GET", {"Accept": "text/event-stream", **self._session_headers()}, stream=True)

    async def listened(self, resp: aiohttp.ClientResponse) -> AsyncIterator[dict[str, Any]]:
        """The JSON-RPC messages of a long-lived listener stream (GET stream, `subscriptions/listen`):
        events that carry none are passed over, and an oversized one is skipped (sse.py), not fatal."""
        async for event in sse.events(resp, self.server.name, self.max_response_bytes, oversized="skip"):
            message = codec.event_message(event)
            if message is not None:
                yield message

    def _frame(
        self, method: str, params: dict[str, Any] | None, request_id: codec.RequestId | None = None
    ) -> tuple[dict[str, Any], dict[str, str]]:
        request_id = next(self._ids) if request_id is None else request_id
        if self.era == MODERN:
            params = codec.with_modern_meta(params, {})
            return codec.request_message(request_id, method, params), codec.routing_headers(method, params)
        return codec.request_message(request_id, method, params), self._session_headers()

def _refusal_error(server: str, answer: object, request_id: codec.RequestId, status: int,
                   forms: list[str]) -> UpstreamError:
    """A 4xx that is not about the session: the backend's JSON-RPC error to our request, else the status."""
    if codec.is_response_to(answer, request_id) and isinstance(answer.get("error"), dict):
        return UpstreamRpcError(server, answer["error"], forms, status)
    return UpstreamError(server, f"HTTP {status} without a JSON-RPC response", status)
