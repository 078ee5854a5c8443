"""A legacy HTTP+SSE (2024-11-05) MCP server: one GET event stream plus POSTs to its `endpoint`.

The server sends an `endpoint` event naming where to POST messages (same origin as the
configured URL, or the connection is refused: a backend must not steer the gateway — and its
credential — elsewhere); its answers and notifications arrive as `message` events on the stream.
Like stdio, that is ONE session shared by every caller, multiplexed by `mux.py`. Requests use the
gateway's backend ClientSession (SSRF guard, no redirects) and carry the server's credential; the
event stream holds a connection of the long-lived streams' pool (upstream/connections.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from gateway.credentials import CredentialStore
from gateway.upstream import codec, sse
from gateway.upstream.errors import StreamsExhausted, UpstreamError
from gateway.upstream.sender import Sender
from gateway.upstream.transports.mux import Channel, Multiplexer, Unavailable
from gateway.upstream.transports.stdio_process import StdioLimits

if TYPE_CHECKING:
    from gateway.registry import ServerConfig

log = logging.getLogger(__name__)
ENDPOINT_WINDOW = 65536  # bytes of other events a server may send before its `endpoint` event


class SseChannel(Channel):
    """An open event stream and the POST endpoint it announced."""

    def __init__(self, server: SseServer, resp: aiohttp.ClientResponse, endpoint: URL,
                 events: AsyncIterator[sse.Event]) -> None:
        self.server, self.resp, self.endpoint, self.events = server, resp, endpoint, events

    async def send(self, message: dict[str, Any]) -> None:
        """POST one message to the announced endpoint (the answer comes on the stream)."""
        name = self.server.name
        try:
            async with await self.server.http.send("POST", {"Content-Type": "application/json"}, message,
                                                   url=self.endpoint) as resp:
                if resp.status >= 300:
                    raise Unavailable(f"legacy SSE server {name} refused a message with HTTP {resp.status}")
        except (UpstreamError, aiohttp.ClientError) as exc:
            detail = exc.message if isinstance(exc, UpstreamError) else type(exc).__name__
            raise Unavailable(f"legacy SSE server {name}: {detail}") from None

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """The `message` events of the stream until it closes (an event past the size cap ends it)."""
        try:
            async for event in self.events:
                message = codec.event_message(event)
                if message is not None:
                    yield message
        except (UpstreamError, aiohttp.ClientError) as exc:
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
                 credentials: CredentialStore | None, capabilities: dict[str, Any] | None = None, *,
                 streams: aiohttp.ClientSession | None = None) -> None:
        super().__init__(config.name, limits, capabilities)
        assert config.sse_url is not None
        self.config, self.url = config, URL(config.sse_url)
        self.session, self.streams, self.credentials = session, streams or session, credentials
        self.http = Sender(config, session, credentials, config.sse_url, streams=self.streams)  # the one request path

    def for_caller(self, capabilities: dict[str, Any]) -> SseServer:
        """A connection of the caller's own (opened on its first request, not reopened until its next)."""
        own = SseServer(self.config, self.limits, self.session, self.credentials, capabilities, streams=self.streams)
        own.eager = False
        return own

    async def _open(self) -> Channel:
        try:
            resp = await self.http.send("GET", {"Accept": "text/event-stream"}, stream=True)
        except UpstreamError as exc:  # a full streams' pool is the gateway's limit (503), not the server's fault
            raise Unavailable(exc.message, 503 if isinstance(exc, StreamsExhausted) else 502) from None
        if resp.status != 200 or resp.content_type != "text/event-stream":
            resp.close()
            raise Unavailable(f"event stream refused with HTTP {resp.status}")
        # Past the size cap the stream ends ("fail"): a skipped answer would leave its call waiting.
        events = sse.events(resp, self.name, self.limits.max_message_bytes)
        try:
            async with asyncio.timeout(self.config.timeout):
                announced = await _endpoint(events)
        except (TimeoutError, UpstreamError, aiohttp.ClientError, Unavailable) as exc:
            resp.close()
            detail = exc.message if isinstance(exc, (Unavailable, UpstreamError)) else type(exc).__name__
            raise Unavailable(f"no usable endpoint event: {detail}") from None
        endpoint = self.url.join(URL(announced.strip()))
        if endpoint.origin() != self.url.origin():
            resp.close()
            raise Unavailable("endpoint event names another origin; refused")
        return SseChannel(self, resp, endpoint, events)


async def _endpoint(events: AsyncIterator[sse.Event]) -> str:
    """The data of the stream's `endpoint` event, looked for within ENDPOINT_WINDOW bytes."""
    seen = 0
    async for event in events:
        if event.event == "endpoint" and event.data is not None:
            return event.data
        seen += len(event.raw)
        if seen > ENDPOINT_WINDOW:
            break
    raise Unavailable("no endpoint event on the stream")
