"""The one request path to a backend over HTTP: every POST, GET and DELETE the gateway sends goes here.

`Sender.send` adds the backend's own credential (backend_auth: header, query or body), never
follows a redirect (it would resend the credential to a host the registry never approved), treats
the server's `timeout` as an idle limit (connect, and each read unless the response is a stream
left open on purpose), refreshes an oauth2 token the backend answered 401 to and sends once more
(a 401 means the request did not run), and maps failures to `UpstreamError` (502),
`UpstreamTimeout` (504) or `BackendDisconnected` (a keep-alive connection closed before any answer:
idempotent requests may be sent again). Callers read the response and release it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from gateway.backend_auth import inject
from gateway.credentials import CredentialError, CredentialStore
from gateway.upstream.errors import (
    BackendDisconnected,
    ResponseTooLarge,
    UpstreamError,
    UpstreamTimeout,
)
from shared import tracing
from shared.jsonutil import dumps

if TYPE_CHECKING:
    from gateway.registry import ServerConfig


class Sender:
    """Requests to one backend, over the gateway's one ClientSession."""

    def __init__(self, server: ServerConfig, session: aiohttp.ClientSession,
                 credentials: CredentialStore | None, url: str | None = None) -> None:
        self.server, self.session, self.credentials = server, session, credentials
        # Built once: parsing the URL and building the timeouts on every call showed in profiles.
        self.url = URL(url or server.url)
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=server.timeout, sock_read=server.timeout)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, sock_connect=server.timeout)

    async def send(self, method: str, headers: dict[str, str], message: dict[str, Any] | None = None, *,
                   url: URL | None = None, stream: bool = False) -> aiohttp.ClientResponse:
        """Send one request (`headers` are ours to extend); the unread response.

        `stream` lifts the read timeout: a GET stream may stay quiet as long as the backend likes.
        """
        resp = await self._send(method, dict(headers), message, url, stream)
        if resp.status == 401 and self.credentials is not None and self.server.auth.method == "oauth2":
            resp.release()  # the cached token may have been revoked: fetch a new one, once
            self.credentials.invalidate_token(self.server.name)
            resp = await self._send(method, dict(headers), message, url, stream)
        return resp

    async def _send(self, method: str, headers: dict[str, str], message: dict[str, Any] | None,
                    url: URL | None, stream: bool) -> aiohttp.ClientResponse:
        name = self.server.name
        try:
            injection = await self.credentials.injection(self.server) if self.credentials is not None else None
        except CredentialError as exc:
            raise UpstreamError(name, f"credential unavailable: {exc}") from None
        query: dict[str, str] = {}
        if message is not None:
            message = inject(injection, headers, query, message)
        else:
            inject(injection, headers, query, {})
        target = url or self.url
        if query:
            target = target.update_query(query)
        rpc = str(message.get("method", "")) if message is not None else ""
        traced = message is not None and tracing.current_span.get() is not None  # off: no attributes built
        try:
            # One span per backend JSON-RPC message, to the response head; `traceparent` goes with it.
            with tracing.span(f"backend {name}", True, {"mcp.server": name, "mcp.method": rpc}) \
                    if traced else tracing.OFF:
                tracing.inject(headers)
                return await self.session.request(
                    method, target, headers=headers, data=None if message is None else dumps(message),
                    timeout=self._stream_timeout if stream else self._timeout, allow_redirects=False,
                )
        except TimeoutError:  # silent for `timeout` before the response headers
            raise UpstreamTimeout(name, self.server.timeout) from None
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise BackendDisconnected(name, f"cannot reach backend: {type(exc).__name__}") from None
        except aiohttp.ClientError as exc:
            raise UpstreamError(name, f"cannot reach backend: {type(exc).__name__}") from None


async def read_capped(resp: aiohttp.ClientResponse, server: str, limit: int, idle_limit: float | None = None) -> bytes:
    """A whole (non-SSE) body, refused past `limit` bytes: a declared length before reading, else
    at the first chunk that crosses it, so a huge or endless body never sits in memory. A body
    that breaks off is an UpstreamError; one idle past its read timeout (`idle_limit`), UpstreamTimeout."""
    if resp.content_length is not None and resp.content_length > limit:
        raise ResponseTooLarge(server, limit, resp.status)
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in resp.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise ResponseTooLarge(server, limit, resp.status)
            chunks.append(chunk)
    except aiohttp.ClientPayloadError:
        raise UpstreamError(server, "response stream broke off", resp.status) from None
    except TimeoutError:
        raise UpstreamTimeout(server, idle_limit) from None
    return b"".join(chunks)
