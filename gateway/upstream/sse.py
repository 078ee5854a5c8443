"""Server-Sent Events: the one parser, the one read loop over a backend's response, and the encoder.

`Parser.feed(bytes)` returns every block completed by that chunk (WHATWG EventSource rules: lines
end in CRLF, LF or CR; `:` lines are comments; several `data:` lines join with "\n"; a blank line
ends a block). Each `Event` keeps its raw bytes, so a relay can pass it on byte for byte, and its
parsed fields; `data` is None for a block with no data line (a keep-alive comment), which
EventSource would not dispatch. `id` is the stream's last event id, which persists across events.

`events(resp, …)` is the one loop that reads a backend's SSE answer, for every reader (a request's
answer, a relayed stream, GET streams, the legacy HTTP+SSE transport). An event past `limit` bytes
is handled by the caller's `oversized` policy: "fail" raises ResponseTooLarge (an answer cannot be
half-read), "skip" drops that event and reads on (a long-lived listener outlives one bad event).

A backend's `*/list_changed` is heard here, wherever it arrives (a call's answer, a relayed stream, a
GET or listen stream, a buffered body: `overheard`): a response the pool's request path registered
with `hear` tells its ear, so the catalog is re-read at once (upstream/changes.py). A cheap bytes
check comes first; only an event naming `list_changed` is parsed for it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import Literal

import aiohttp

from gateway.upstream import codec
from gateway.upstream.errors import (
    CallBudgetExceeded,
    ResponseTooLarge,
    UpstreamError,
    UpstreamTimeout,
)
from shared.jsonutil import dumps

Oversized = Literal["fail", "skip"]
_LINE_END = re.compile(r"\r\n|\r|\n")
SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    # Reverse proxies (nginx) must not buffer: notifications have to arrive as they happen.
    "X-Accel-Buffering": "no",
}
_CHANGED_MARK = b"list_changed"
# What to tell of a list change in a backend response the request path registered (sender.py): an
# attribute on the response itself, gone with it (a weak map cost a few Python calls per request).
_EAR = "_mcpgw_ear"


@dataclass(slots=True)
class Event:
    """One SSE block: its raw bytes (terminator included) and parsed fields."""

    raw: bytes
    data: str | None = None  # None: no data line (a comment or keep-alive), not an event to dispatch
    event: str = "message"
    id: str | None = None
    retry: int | None = None


class Parser:
    """Incremental parser; feed it bytes as they arrive (pure code, no I/O)."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._line = 0  # start of the line not yet ended
        self._id: str | None = None
        self._skipping = False

    @property
    def pending(self) -> int:
        """Bytes held for the block not yet complete."""
        return len(self._buf)

    def feed(self, chunk: bytes) -> list[Event]:
        """Consume `chunk`; return the blocks it completed."""
        self._buf += chunk
        return self._scan(eof=False)

    def close(self) -> list[Event]:
        """End of stream: a trailing CR still ends its line; an unterminated block is not returned
        (`rest()` still holds its bytes)."""
        return self._scan(eof=True)

    def rest(self) -> bytes:
        """The bytes of an unterminated last block (a relay forwards them as they are)."""
        return bytes(self._buf)

    def skip(self) -> None:
        """Drop the block being assembled, and the rest of it as it arrives."""
        unfinished = bytes(self._buf[self._line:])
        if len(unfinished) > 1:
            # A line in progress stays a line in progress (so its end is not taken for a blank
            # line), in two bytes at most: one placeholder and a CR that may be half of a CRLF.
            unfinished = b"x" + (b"\r" if unfinished.endswith(b"\r") else b"")
        self._buf, self._line, self._skipping = bytearray(unfinished), 0, True

    def _scan(self, eof: bool) -> list[Event]:
        buf, pos, start = self._buf, self._line, 0
        events: list[Event] = []
        size = len(buf)
        while pos < size:
            lf = buf.find(b"\n", pos)
            cr = buf.find(b"\r", pos, size if lf == -1 else lf)
            if cr != -1:
                if cr + 1 == size and not eof:
                    break  # may be the first half of a CRLF: wait for the next byte
                end, after = cr, cr + (2 if cr + 1 < size and buf[cr + 1] == 0x0A else 1)
            elif lf != -1:
                end, after = lf, lf + 1
            else:
                break
            if end == pos:  # a blank line ends the block
                if self._skipping:
                    self._skipping = False
                else:
                    events.append(self._block(bytes(buf[start:after])))
                start = after
            pos = after
        if start:
            del buf[:start]
        self._line = pos - start
        if self._skipping:
            self.skip()
        return events

    def _block(self, raw: bytes) -> Event:
        data: list[str] = []
        event, retry = "message", None
        for line in _LINE_END.split(raw.decode("utf-8", errors="replace")):  # not splitlines: U+2028 is data
            if not line or line[0] == ":":
                continue
            name, sep, value = line.partition(":")
            if sep and value.startswith(" "):
                value = value[1:]
            if name == "data":
                data.append(value)
            elif name == "event":
                event = value or "message"
            elif name == "id" and "\0" not in value:
                self._id = value
            elif name == "retry" and value.isdigit():
                retry = int(value)
        return Event(raw, "\n".join(data) if data else None, event, self._id, retry)


class Budget:
    """The bytes one call may read from its backend, across every round of it."""

    __slots__ = ("limit", "used")

    def __init__(self, limit: int, used: int = 0) -> None:
        self.limit, self.used = limit, used

    def spend(self, size: int, server: str, status: int) -> None:
        """Count `size` more bytes; CallBudgetExceeded once past the limit."""
        self.used += size
        if self.used > self.limit:
            raise CallBudgetExceeded(server, self.limit, status)


def hear(resp: aiohttp.ClientResponse, ear: Callable[[], None]) -> None:
    """Have `ear()` told of every list-change announcement read from `resp`, by any reader."""
    setattr(resp, _EAR, ear)


def _listen(ear: Callable[[], None], event: Event) -> None:
    if _CHANGED_MARK in event.raw:
        message = codec.event_message(event)
        if message is not None and message.get("method") in codec.LIST_CHANGED and "id" not in message:
            ear()


def overheard(resp: aiohttp.ClientResponse, body: bytes) -> None:
    """Listen to a whole SSE body read at once (sender.read_capped) as `events` listens to a stream."""
    ear = getattr(resp, _EAR, None)
    if ear is not None and _CHANGED_MARK in body and resp.content_type == "text/event-stream":
        for event in parse(body):
            _listen(ear, event)


def parse(payload: bytes) -> list[Event]:
    """Every complete block of a whole SSE body."""
    parser = Parser()
    return parser.feed(payload) + parser.close()


async def events(
    resp: aiohttp.ClientResponse, server: str, limit: int, *, oversized: Oversized = "fail",
    budget: Budget | None = None, parser: Parser | None = None, idle_limit: float | None = None,
) -> AsyncGenerator[Event, None]:
    """The blocks of a backend's SSE response as they complete; the one loop every reader uses.

    An event past `limit` bytes (complete, or still being assembled) fails or is skipped per
    `oversized`. Every byte read counts against a call's `budget` (CallBudgetExceeded past it: the
    caller drops the stream, which is its cancel). A stream idle past its read timeout (`idle_limit` names it)
    raises UpstreamTimeout; one that breaks off, UpstreamError. The unterminated tail at the end
    is not yielded (`parser.rest()` has it, for a relay that passes bytes on).
    """
    parser = parser if parser is not None else Parser()
    ear = getattr(resp, _EAR, None)
    try:
        async for chunk in resp.content.iter_any():
            if budget is not None:
                budget.spend(len(chunk), server, resp.status)
            for event in parser.feed(chunk):
                if len(event.raw) <= limit:
                    if ear is not None:
                        _listen(ear, event)
                    yield event
                elif oversized == "fail":
                    raise ResponseTooLarge(server, limit, resp.status)
            if parser.pending > limit:  # an event still being assembled: stop before it grows further
                if oversized == "fail":
                    raise ResponseTooLarge(server, limit, resp.status)
                parser.skip()
        for event in parser.close():
            if len(event.raw) <= limit:
                if ear is not None:
                    _listen(ear, event)
                yield event
    except aiohttp.ClientPayloadError:
        raise UpstreamError(server, "response stream broke off", resp.status) from None
    except TimeoutError:  # silent for the idle `timeout` mid-stream (sock_read)
        raise UpstreamTimeout(server, idle_limit) from None


def encode(data: str, *, event: str | None = "message", id: str | None = None) -> bytes:
    """One SSE event; multi-line data is split over several `data:` lines."""
    out = []
    if event:
        out.append(f"event: {event}")
    if id is not None:
        out.append(f"id: {id}")
    out.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(out) + "\n\n").encode()


def json_event(message: object, *, event: str | None = "message", id: str | None = None) -> bytes:
    """`encode(dumps_str(message))` without the text round trip: JSON from orjson has no line break,
    so the event has exactly one `data:` line."""
    head = f"event: {event}\n" if event else ""
    if id is not None:
        head += f"id: {id}\n"
    return head.encode() + b"data: " + dumps(message) + b"\n\n"
