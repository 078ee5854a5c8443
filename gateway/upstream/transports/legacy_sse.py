"""A legacy HTTP+SSE (2024-11-05) MCP server: one GET event stream plus POSTs to its `endpoint`.

The server sends an `endpoint` event naming where to POST messages (same origin as the
configured URL, or the connection is refused: a backend must not steer the gateway — and its
credential — elsewhere); its answers and notifications arrive as `message` events on the stream.
Like stdio, that is ONE session shared by every caller, multiplexed by `mux.py`. Requests use the
gateway's one ClientSession (SSRF guard, no redirects) and carry the server's credential.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from gateway.backend_auth import inject
from gateway.credentials import CredentialError, CredentialStore
from gateway.upstream import codec
from gateway.upstream.transports.mux import Channel, Multiplexer, Unavailable
from gateway.upstream.transports.stdio_process import StdioLimits

if TYPE_CHECKING:
    from gateway.registry import ServerConfig

log = logging.getLogger(__name__)


class SseChannel(Channel):
    """An open event stream and the POST endpoint it announced."""

    def __init__(self, server: SseServer, resp: aiohttp.ClientResponse, endpoint: URL,
                 parser: codec.SSEParser, early: list[codec.SSEEvent]) -> None:
        self.server, self.resp, self.endpoint = server, resp, endpoint
        self.parser, self.early = parser, early

    async def send(self, message: dict[str, Any]) -> None:
        """POST one message to the announced endpoint (the answer comes on the stream)."""
        headers = {"Content-Type": "application/json"}
        query: dict[str, str] = {}
        body = inject(await self.server.injection(), headers, query, message)
        url = self.endpoint.update_query(query) if query else self.endpoint
        try:
            async with self.server.session.post(url, data=codec.encode(body), headers=headers,
                                                allow_redirects=False, timeout=self.server.http_timeout) as resp:
                if resp.status >= 300:
                    raise Unavailable(f"legacy SSE server {self.server.name} refused a message with HTTP {resp.status}")
        except aiohttp.ClientError as exc:
            raise Unavailable(f"legacy SSE server {self.server.name}: {type(exc).__name__}") from None

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """The `message` events of the stream until it closes."""
        limit = self.server.limits.max_message_bytes
        pending = list(self.early)
        try:
            while True:
                for event in pending:
                    if len(event.data) > limit:
                        raise ValueError("event past the size cap")
                    message = codec.event_message(event)
                    if message is not None:
                        yield message
                if self.parser.pending > limit:
                    raise ValueError("event past the size cap")
                chunk = await self.resp.content.readany()
                if not chunk:
                    return
                pending = self.parser.feed(chunk)
        except (aiohttp.ClientError, ValueError) as exc:
            log.warning("legacy SSE stream ended: %s", type(exc).__name__, extra={"server": self.server.name})

    async def close(self) -> None:
        """Close the stream."""
        self.resp.close()

    def ended(self) -> str:
        """Streams just close."""
        return "stream closed"


class SseServer(Multiplexer):
    """A supervised connection to a legacy HTTP+SSE server, shared by every caller."""

    kind = "legacy SSE server"

    def __init__(self, config: ServerConfig, limits: StdioLimits, session: aiohttp.ClientSession,
                 credentials: CredentialStore | None) -> None:
        super().__init__(config.name, limits)
        assert config.sse_url is not None
        self.config, self.url = config, URL(config.sse_url)
        self.session, self.credentials = session, credentials
        self.http_timeout = aiohttp.ClientTimeout(total=None, sock_connect=config.timeout, sock_read=config.timeout)

    async def injection(self) -> Any:
        """The server's credential for one request (refreshed oauth2 tokens included)."""
        if self.credentials is None:
            return None
        try:
            return await self.credentials.injection(self.config)
        except CredentialError as exc:
            raise Unavailable(f"credential unavailable: {exc}") from None

    async def _open(self) -> Channel:
        headers = {"Accept": "text/event-stream"}
        query: dict[str, str] = {}
        inject(await self.injection(), headers, query, {})
        url = self.url.update_query(query) if query else self.url
        try:
            resp = await self.session.get(url, headers=headers, allow_redirects=False,
                                          timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.config.timeout))
        except aiohttp.ClientError as exc:
            raise Unavailable(f"cannot reach backend: {type(exc).__name__}") from None
        if resp.status != 200 or resp.content_type != "text/event-stream":
            resp.close()
            raise Unavailable(f"event stream refused with HTTP {resp.status}")
        parser = codec.SSEParser()
        try:
            async with asyncio.timeout(self.config.timeout):
                while True:
                    chunk = await resp.content.readany()
                    if not chunk or parser.pending > 65536:
                        raise Unavailable("no endpoint event on the stream")
                    events = parser.feed(chunk)
                    at = next((i for i, e in enumerate(events) if e.event == "endpoint"), None)
                    if at is not None:
                        break
        except (TimeoutError, aiohttp.ClientError, Unavailable) as exc:
            resp.close()
            detail = exc.message if isinstance(exc, Unavailable) else type(exc).__name__
            raise Unavailable(f"no usable endpoint event: {detail}") from None
        endpoint = self.url.join(URL(events[at].data.strip()))
        if endpoint.origin() != self.url.origin():
            resp.close()
            raise Unavailable("endpoint event names another origin; refused")
        return SseChannel(self, resp, endpoint, parser, events[at + 1:])
