"""One HTTP/1.1 keep-alive connection to a backend, on an asyncio Protocol (lean.py pools them).

A request is one `transport.write` of the bytes `head` prepares (head and body: the caller's headers
checked — a CR, LF or NUL, or a name that is no token, refused — and framing headers the client's
own); the answer is parsed in
`data_received` by aiohttp's own C response parser (`HttpResponseParser`, llhttp: the parser
aiohttp's client runs), which handles the status line, headers (case-insensitive, duplicates
kept, folded lines, bounded sizes), Content-Length, chunked bodies with extensions and trailers,
bodies read until the connection closes, 1xx interim answers, and no body for HEAD, 204 and 304.
The body is an aiohttp `StreamReader`, and the answer a `LeanResponse`, an `aiohttp.ClientResponse`
in type: every reader (sse.events, read_capped, passthrough's relays) works on it unchanged.

Failures are aiohttp's exception types, so sender.py maps them as before: closed before the
answer began, `ServerDisconnectedError` (or `ClientOSError` on a reset); closed mid-body,
`ClientPayloadError`; a malformed head, `MalformedResponse`; idle past the read timeout,
`SocketTimeoutError` (a TimeoutError). The read timeout is an idle limit, as aiohttp's `sock_read`:
from the request's write to the head, then between reads; it pauses while flow control does.
One timer per request, moved only when it fires (each read just notes the time).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Protocol

import aiohttp
from aiohttp import RequestInfo
from aiohttp.base_protocol import BaseProtocol
from aiohttp.helpers import EMPTY_BODY_STATUS_CODES
from aiohttp.http import SERVER_SOFTWARE, HttpResponseParser, RawResponseMessage
from aiohttp.streams import EMPTY_PAYLOAD, StreamReader
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL


class Pool(Protocol):
    """What a connection tells its pool (lean.LeanPool): it can be reused, or it is gone."""

    def put_back(self, conn: Connection, keep: bool) -> None: ...

    def gone(self, conn: Connection) -> None: ...


class Origin(Protocol):
    """The origin a connection belongs to (lean.Origin): its pool, idle connections and count held."""

    idle: list[Connection]
    held: int

    @property
    def pool(self) -> Pool: ...

READ_BUFSIZE = 2**16  # the body's flow-control window, as aiohttp's default
MAX_LINE, MAX_FIELD, MAX_HEADERS = 8190, 8190, 128  # a response head's bounds, as aiohttp's
# Headers the client frames itself; one in a caller's headers is left out rather than sent twice.
_FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


def head(method: str, path: str, host: str, headers: dict[str, str], body: bytes | None) -> bytes:
    """A request's head (and body): the bytes written in one go. A CR, LF or NUL in a header, or a
    name that is not one token, is refused (ValueError), as aiohttp refuses it."""
    lines = [f"{method} {path} HTTP/1.1\r\nHost: {host}\r\n"]
    accept = typed = False
    for name, value in headers.items():
        low = name.lower()
        if "\r" in value or "\n" in value or "\0" in value or not _token(name):
            raise ValueError(f"header {name!r} has a character HTTP does not allow")
        if low in _FRAMING:
            continue
        accept = accept or low == "accept"
        typed = typed or low == "content-type"
        lines.append(f"{name}: {value}\r\n")
    if not accept:
        lines.append("Accept: */*\r\n")
    lines.append(f"User-Agent: {SERVER_SOFTWARE}\r\n")
    if body is not None:
        if not typed:
            lines.append("Content-Type: application/octet-stream\r\n")
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        return "".join(lines).encode() + body
    lines.append("Content-Length: 0\r\n\r\n" if method in _BODY_METHODS else "\r\n")
    return "".join(lines).encode()


_token = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+").fullmatch  # RFC 9110 token: what a header name may be


class MalformedResponse(aiohttp.ClientError):
    """A backend's response head or framing could not be parsed."""


class Connection(BaseProtocol):
    """One connection to an origin, one request at a time; `protocol` is itself (what
    mcp/calls.py's `_patient` reads to lengthen a stream's idle limit)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> None:
        super().__init__(loop)
        self.origin = origin
        self.read_timeout: float | None = None
        self.reused = False  # served a request before: a disconnect may be the server's idle close
        self.idle_since = 0.0
        self.lost: asyncio.Future[None] | None = None  # set when the pool waits for the close
        self._time = loop.time
        self._head: asyncio.Future[tuple[RawResponseMessage, StreamReader]] | None = None
        self._payload: StreamReader | None = None
        self._should_close = False
        self._head_only = False
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0  # when `_timer` fires

    @property
    def protocol(self) -> Connection:
        """This connection (aiohttp's Connection.protocol)."""
        return self

    def send(self, data: bytes, read_timeout: float | None, head_only: bool
             ) -> asyncio.Future[tuple[RawResponseMessage, StreamReader]]:
        """Write one request; a future of its response head and body stream."""
        assert self.transport is not None and self._head is None
        self._parser = HttpResponseParser(
            self, self._loop, READ_BUFSIZE, payload_exception=aiohttp.ClientPayloadError,
            response_with_body=not head_only, read_until_eof=True, max_line_size=MAX_LINE, max_field_size=MAX_FIELD,
            max_headers=MAX_HEADERS)
        self._head = head = self._loop.create_future()
        self._payload = None
        self._head_only = head_only
        self.read_timeout = read_timeout
        self.transport.write(data)
        self.start_timeout()
        return head

    def start_timeout(self) -> None:
        """(Re)start the idle clock with the current `read_timeout`. A timer still pending from an
        earlier request is kept when it fires no later than this one must (it re-arms itself then):
        back-to-back requests do not each make and cancel a timer."""
        self._last = now = self._time()
        if self.read_timeout:
            deadline = now + self.read_timeout
            if self._timer is None or self._deadline > deadline:
                if self._timer is not None:
                    self._timer.cancel()
                self._timer, self._deadline = self._loop.call_at(deadline, self._idle_check), deadline

    def _waiting(self) -> bool:
        """True while an answer is expected from the peer (its head, or more of its body)."""
        head, payload = self._head, self._payload
        return (head is not None and not head.done()) or (payload is not None and not payload.is_eof())

    def _idle_check(self) -> None:
        self._timer = None
        if not self.read_timeout or self.transport is None or not self._waiting():
            return
        if self._reading_paused:  # the reader is behind, not the peer: the clock starts again on resume
            self._last = self._time()
        deadline = self._last + self.read_timeout
        if self._time() < deadline:
            self._timer, self._deadline = self._loop.call_at(deadline, self._idle_check), deadline
            return
        self._fail(aiohttp.SocketTimeoutError("Timeout on reading data from socket"))

    def resume_reading(self, resume_parser: bool = True) -> None:
        """Flow control let go: the idle clock counts from now. (The body's reader calls this after
        every read; only the parser's pause, which comes with ours, leaves anything to resume.)"""
        if self._reading_paused:
            self._last = self._time()
            super().resume_reading(resume_parser)

    def _fail(self, exc: BaseException) -> None:
        """Give `exc` to whoever waits (the head, else the body) and close the connection."""
        self._should_close = True
        head, payload = self._head, self._payload
        if head is not None and not head.done():
            head.set_exception(exc)
        elif payload is not None and not payload.is_eof():
            payload.set_exception(exc)
        self._close()

    def _close(self) -> None:
        """Close now and leave the pool at once: the body's end may have put this connection back
        idle already (its EOF callback runs inside the parse), and a waiter woken by that must not
        take it before connection_lost, a tick later."""
        self._should_close = True
        if self.transport is not None:
            self.transport.close()
        self.origin.pool.gone(self)

    def data_received(self, data: bytes) -> None:
        """Parse what arrived; the first final response resolves the request's head."""
        if data:
            self._last = self._time()
        parser = self._parser
        if parser is None:  # bytes on an idle connection: nothing may come unasked
            self._close()
            return
        try:
            messages, _upgraded, _tail = parser.feed_data(data)
        except Exception as exc:
            self._fail(MalformedResponse(f"malformed response from backend: {type(exc).__name__}: {exc}"))
            return
        for message, payload in messages:
            if message.code == 101:  # we never ask to switch protocols: what follows is no HTTP of ours
                self._fail(MalformedResponse("backend switched protocols (101) unasked"))
                return
            if 100 <= message.code < 200:
                continue  # an interim answer (100 Continue, 103 Early Hints): the final one follows
            if message.should_close:
                self._should_close = True
            head = self._head
            if head is None or head.done() or self._payload is not None:
                self._fail(MalformedResponse("backend sent a response nobody asked for"))
                return
            if self._head_only or message.code in EMPTY_BODY_STATUS_CODES:
                payload = EMPTY_PAYLOAD
            self._payload = payload
            head.set_result((message, payload))

    def connection_lost(self, exc: BaseException | None) -> None:
        """The connection closed: a request still waiting for its head or body fails clearly."""
        self._should_close = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        head, payload, parser = self._head, self._payload, self._parser
        if head is not None and not head.done():
            head.set_exception(aiohttp.ServerDisconnectedError() if exc is None else aiohttp.ClientOSError(*exc.args))
        elif payload is not None and not payload.is_eof() and parser is not None:
            try:
                parser.feed_eof()  # a body read until the close ends here; a cut one raises
            except Exception as cut:
                payload.set_exception(aiohttp.ClientPayloadError(f"Response payload is not completed: {cut!r}"))
            else:
                if exc is not None and not payload.is_eof():
                    payload.set_exception(aiohttp.ClientPayloadError(f"Response payload is not completed: {exc!r}"))
        self._parser = None
        super().connection_lost(exc)
        self.origin.pool.gone(self)
        if self.lost is not None and not self.lost.done():
            self.lost.set_result(None)

    def finish(self, reuse: bool) -> None:
        """The response is done with: back to the pool when `reuse` and the answer was read to its end
        (a failed one closed the connection: `_fail`), else closed. Its idle timer, if any, finds
        nothing to wait for when it fires."""
        payload, transport = self._payload, self.transport
        keep = (reuse and not self._should_close and payload is not None and payload.is_eof()
                and transport is not None and not transport.is_closing() and not self._reading_paused)
        self._head, self._payload, self._parser = None, None, None
        if not keep:
            self._should_close = True
            if self.transport is not None:
                self.transport.close()
        self.origin.pool.put_back(self, keep)


class LeanResponse(aiohttp.ClientResponse):
    """A backend's answer on a lean `Connection`: an aiohttp ClientResponse to every reader, without
    its request machinery. Release or close it (or use `async with`) as any response."""

    def __init__(self, conn: Connection, message: RawResponseMessage, payload: StreamReader, method: str,
                 url: URL, headers: dict[str, str]) -> None:
        # ClientResponse.__init__ is not called: its state is for the aiohttp request path; what
        # its inherited readers (read, text, json, content_type) use is set here.
        self._conn: Connection | None = conn
        self.status, self.reason, self.version = message.code, message.reason, message.version
        self._headers, self._raw_headers = message.headers, message.raw_headers
        self.content = payload
        self.method, self._url, self._real_url = method, url, url
        self._sent = headers
        self._closed = self._released = False
        self._loop = conn._loop
        self._traces = []
        self._cache: dict[str, Any] = {}
        # As aiohttp does: the connection goes back to the pool once the body has arrived whole, read
        # or not, released or not (a reader that reads to the end and drops the response leaks nothing).
        payload.on_eof(self._arrived)

    def _arrived(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.finish(True)

    @property  # type: ignore[override]
    def headers(self) -> CIMultiDictProxy[str]:
        """The response headers."""
        return self._headers

    @property  # type: ignore[override]
    def request_info(self) -> RequestInfo:
        """What was sent (errors.sent_values masks its values in a quoted error)."""
        return RequestInfo(self._url, self.method, CIMultiDictProxy(CIMultiDict(self._sent)), self._real_url)

    @property
    def connection(self) -> Connection | None:  # type: ignore[override]
        """The connection while the response holds it, None once released."""
        return self._conn

    def release(self) -> Any:
        """Done reading: the connection goes back to the pool if the answer was read to its end."""
        self._done(True)

    def close(self) -> None:
        """Drop the connection (the backend reads a closed stream as the cancel)."""
        self._done(False)

    def _done(self, reuse: bool) -> None:
        self._closed = self._released = True
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.finish(reuse)

    async def __aenter__(self) -> LeanResponse:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._done(True)

    def __del__(self, _warnings: Any = None) -> None:
        # Never released. Only reached once nothing holds the response; while its body is still
        # arriving its payload's EOF callback does, so a dropped response keeps its pool slot until
        # the body ends or the connection closes (as aiohttp's does).
        if self._conn is not None and not self._loop.is_closed():
            self._done(False)
