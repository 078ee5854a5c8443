"""The one request path to a backend over HTTP: every POST, GET and DELETE the gateway sends goes here.

`Sender.send` adds the backend's own credential (backend_auth: header, query or body), never
follows a redirect (it would resend the credential to a host the registry never approved), treats
the server's `timeout` as an idle limit (connect, and each read unless the response is a stream
left open on purpose), refreshes an oauth2 token the backend answered 401 to and sends once more
(a 401 means the request did not run), registers each response with the client's `ear` (a
`*/list_changed` any reader meets in it is heard: sse.hear), and maps failures to `UpstreamError` (502),
`UpstreamTimeout` (504) or `BackendDisconnected` (a keep-alive connection closed before any answer:
idempotent requests may be sent again). Callers read the response and release it. The bytes go out
on the session's lean HTTP/1.1 client (lean.py, http1.py: a `LeanResponse`, an aiohttp
ClientResponse to every reader) when the session is `create_session`'s and the URL http(s); on the
aiohttp client otherwise.

`read_reply` reads the answer to one request from a JSON body or an SSE stream (sse.events): the
message `codec.is_response_to` names; notifications before it are kept (at most MAX_NOTES);
server→client requests on a call's stream are relayed by mcp/calls.py instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from gateway.backend_auth import inject
from gateway.credentials import CredentialError, CredentialStore
from gateway.upstream import codec, sse
from gateway.upstream.connections import Connector, PoolFull
from gateway.upstream.errors import (
    BackendDisconnected,
    ResponseTooLarge,
    StreamsExhausted,
    UpstreamError,
    UpstreamTimeout,
)
from gateway.upstream.lean import LeanPool, Origin
from shared import tracing
from shared.jsonutil import dumps

if TYPE_CHECKING:
    from gateway.registry import ServerConfig

LEAN_SCHEMES = frozenset({"http", "https"})
LISTEN = "subscriptions/listen"  # 2026-07-28's long-lived stream: a POST answered by events while it stays open
# Notifications kept on a Reply (the rest are counted against the call's budget, then dropped).
MAX_NOTES = 100
# Best-effort requests that outlive their caller (cancels, session ends), kept in `_background` so the GC does
# not collect them mid-flight, and awaited briefly when the pool closes (`drain_background`).
_background: set[asyncio.Task[None]] = set()


def in_background(work: Coroutine[Any, Any, None]) -> None:
    """Run `work` as a task the pool's `close` waits for."""
    task = asyncio.get_running_loop().create_task(work)
    _background.add(task)
    task.add_done_callback(_background.discard)


async def drain_background(limit: float = 2.0) -> None:
    """Wait (up to `limit` seconds) for this loop's background cancels and session ends to finish."""
    mine = {task for task in _background if task.get_loop() is asyncio.get_running_loop()}
    if mine:
        await asyncio.wait(mine, timeout=limit)


class Sender:
    """Requests to one backend over the gateway's backend ClientSession; long-lived streams (a GET
    stream, `subscriptions/listen`) over `streams`, a pool of their own that never queues
    (connections.py): a stream finding it full is StreamsExhausted (503) at once."""

    def __init__(self, server: ServerConfig, session: aiohttp.ClientSession,
                 credentials: CredentialStore | None, url: str | None = None, *,
                 streams: aiohttp.ClientSession | None = None,
                 ear: Callable[[], None] | None = None) -> None:
        self.server, self.session, self.credentials = server, session, credentials
        self.streams = streams or session
        self.ear = ear  # told of a list change the backend announces in any response (the pool's `heard`)
        # Built once: parsing the URL and building the timeouts on every call showed in profiles.
        self.url = URL(url or server.url)
        # `connect` bounds the wait for a free pooled connection too: a starved pool fails (504), never hangs.
        self._timeout = aiohttp.ClientTimeout(total=None, connect=server.timeout, sock_connect=server.timeout,
                                              sock_read=server.timeout)
        self._stream_timeout = aiohttp.ClientTimeout(total=None, connect=server.timeout, sock_connect=server.timeout)
        self._span_tails: dict[str, str] = {}  # JSON-RPC method → its backend span's rendered tail
        # Requests and streams go out on their session's lean HTTP/1.1 client (lean.py) when it has one
        # (connections.create_session's), else on aiohttp (a session made elsewhere, another scheme).
        self.lean, self._origin = _lean(session, self.url)
        self.lean_streams, self._stream_origin = _lean(self.streams, self.url)

    async def send(self, method: str, headers: dict[str, str], message: dict[str, Any] | None = None, *,
                   url: URL | None = None, stream: bool = False) -> aiohttp.ClientResponse:
        """Send one request (`headers` are ours to extend); the unread response.

        `stream` (a GET stream), like a `subscriptions/listen`, is a long-lived stream: it goes out
        on the streams' pool, and without a read timeout (it may stay quiet as long as the backend likes).
        """
        resp = await self._send(method, dict(headers), message, url, stream)
        if resp.status == 401 and self.credentials is not None and self.server.auth.method == "oauth2":
            resp.release()  # the cached token may have been revoked: fetch a new one, once
            self.credentials.invalidate_token(self.server.name)
            resp = await self._send(method, dict(headers), message, url, stream)
        if self.ear is not None:
            sse.hear(resp, self.ear)
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
        # One CLIENT span per backend JSON-RPC message, to the response head, named by the
        # `traceparent` that goes with it; not made current (nothing below it opens a span).
        parent = tracing.current_span.get()
        traced = None  # the span the backend span is recorded under, when there is one
        if parent is not None:
            if message is not None:  # its id and start; recorded with its name and attributes below
                span_id, started = tracing.outgoing(parent, headers)
                rpc = str(message.get("method", ""))
                found = self._span_tails.get(rpc) or tracing.child_tail(
                    self._span_tails, rpc, f"backend {name}", tracing.CLIENT, ("mcp.server", name, "mcp.method", rpc))
                traced = parent
            else:  # a GET stream or a session's DELETE: the request's own span is the parent
                tracing.inject(headers)
        # A stream holds its connection while it stays open: it must not take one that calls need.
        standing = stream or (message is not None and message.get("method") == LISTEN)
        try:
            lean = self.lean_streams if standing else self.lean
            resp: aiohttp.ClientResponse
            if lean is not None:
                origin = (self._stream_origin if standing else self._origin) if target is self.url else None
                resp = await lean.request(
                    method, target, headers, None if message is None else dumps(message), connect_limit=self.server.timeout,
                    read_timeout=None if standing else self.server.timeout, origin=origin)
            else:
                resp = await (self.streams if standing else self.session).request(
                    method, target, headers=headers, data=None if message is None else dumps(message),
                    timeout=self._stream_timeout if standing else self._timeout, allow_redirects=False,
                )
        except BaseException as exc:
            if traced is not None:  # the type only: an exception's text may carry secrets
                traced.record_rendered(span_id, started, found, type(exc).__name__)
            mapped = _mapped(exc, name, self.server.timeout)
            if mapped is None:
                raise
            raise mapped from None
        if traced is not None:
            traced.record_rendered(span_id, started, found)
        return resp


def _lean(session: aiohttp.ClientSession, url: URL) -> tuple[LeanPool | None, Origin | None]:
    """The lean client of `session` for `url`, with its origin; (None, None): aiohttp sends."""
    connector = session.connector
    if not isinstance(connector, Connector) or url.scheme not in LEAN_SCHEMES:
        return None, None
    return connector.lean, connector.lean.origin(url)


def _mapped(exc: BaseException, name: str, timeout: float | None) -> Exception | None:
    """The upstream error a failed request becomes; None: raise it as it is (e.g. cancellation)."""
    if isinstance(exc, PoolFull):
        return StreamsExhausted(name, exc.limit, exc.per_host)
    if isinstance(exc, TimeoutError):  # silent for `timeout` before the response headers
        return UpstreamTimeout(name, timeout)
    if isinstance(exc, (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)):
        return BackendDisconnected(name, f"cannot reach backend: {type(exc).__name__}")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamError(name, f"cannot reach backend: {type(exc).__name__}")
    return None


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
    body = b"".join(chunks)
    sse.overheard(resp, body)  # an SSE body read whole (passthrough) is listened to as a stream is
    return body


@dataclass
class Reply:
    """A backend's answer: the JSON-RPC response plus notifications that came before it."""

    response: dict[str, Any]
    status: int
    notifications: list[dict[str, Any]] = field(default_factory=list)


async def read_reply(resp: aiohttp.ClientResponse, server: str, request_id: codec.RequestId, *, limit: int,
                     budget: sse.Budget | None = None, idle_limit: float | None = None,
                     on_request: Callable[[dict[str, Any]], None] | None = None) -> Reply | None:
    """The reply to `request_id` in `resp`; None for a JSON body that holds none (the caller decides
    what its status means). An SSE stream without one, or malformed JSON, is an UpstreamError.
    `on_request` gets each request the backend sends on the stream (sampling, elicitation)."""
    if resp.content_type == "text/event-stream":
        notes: list[dict[str, Any]] = []
        async with contextlib.aclosing(sse.events(resp, server, limit, budget=budget, idle_limit=idle_limit)) as events:
            async for event in events:
                if event.event != "message" or not event.data:
                    continue
                message = codec.decode(event.data, server)
                if codec.is_response_to(message, request_id):
                    await _drain(resp)
                    return Reply(message, resp.status, notes)
                if isinstance(message, dict) and "method" in message and "id" in message and on_request:
                    on_request(message)
                if isinstance(message, dict) and "method" in message and len(notes) < MAX_NOTES:
                    notes.append(message)
        raise UpstreamError(server, "event stream ended without a response", resp.status)
    if resp.content_type != "application/json":
        return None
    body = codec.decode(await read_capped(resp, server, limit, idle_limit), server)
    return Reply(body, resp.status) if codec.is_response_to(body, request_id) else None


def answer_in(raw: bytes, content_type: str, request_id: codec.RequestId | None = None) -> Any:
    """The JSON-RPC response (to `request_id`, or any) in a buffered JSON or SSE body; None if none."""
    if content_type != "text/event-stream":
        return codec.loads_or_none(raw)
    for event in sse.parse(raw + b"\n\n"):  # a whole body: a last event missing its blank line still counts
        message = codec.event_message(event)
        if codec.is_response_to(message, request_id):
            return message
    return None


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read the end of an SSE stream the server closes right after the response (the usual case),
    so the keep-alive connection can be reused; a stream still open after 20 ms is just closed."""
    if resp.content.at_eof():
        return
    try:
        async with asyncio.timeout(0.02):
            await resp.content.read()
    except (TimeoutError, aiohttp.ClientError):
        pass
