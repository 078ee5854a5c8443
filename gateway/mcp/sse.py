"""Server-Sent Events: an incremental parser and encoder for relaying MCP streams event by event.

The relay never waits for a stream to end: each complete event is forwarded as soon as its blank
line arrives, so progress notifications and server→client requests reach the agent in real time.
Only events carrying the answer a gateway must filter are decoded and re-encoded; everything else
passes through byte for byte (ids and `retry:` included, which resumption relies on).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_LINE_END = re.compile(rb"\r\n|\r|\n")


@dataclass
class Event:
    """One SSE event: its raw bytes (terminator included) and parsed fields."""

    raw: bytes
    data: str = ""
    event: str = "message"
    id: str | None = None

    @property
    def is_comment(self) -> bool:
        return not self.data and self.id is None and self.raw.lstrip().startswith(b":")


def parse_event(raw: bytes) -> Event:
    """Fields of one raw event block (per the WHATWG EventSource rules we need)."""
    ev = Event(raw=raw)
    data: list[str] = []
    for line in _LINE_END.split(raw):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        text = value.decode("utf-8", errors="replace")
        if name == b"data":
            data.append(text)
        elif name == b"event":
            ev.event = text
        elif name == b"id":
            ev.id = text
    ev.data = "\n".join(data)
    return ev


class Parser:
    """Feed bytes as they arrive; get back the complete events so far."""

    def __init__(self, limit: int = 16 * 1024 * 1024) -> None:
        self._buf = b""
        self._limit = limit

    def feed(self, chunk: bytes) -> list[Event]:
        """Complete events in `chunk` plus what was buffered; raises ValueError past `limit`."""
        self._buf += chunk
        events: list[Event] = []
        start = pos = 0
        buf = self._buf
        while True:
            match = _LINE_END.search(buf, pos)
            # A lone CR at the end may be the first half of CRLF: wait for the next byte.
            if match is None or (match.group() == b"\r" and match.end() == len(buf)):
                break
            if match.start() == pos:  # an empty line ends the event
                events.append(parse_event(buf[start:match.end()]))
                start = match.end()
            pos = match.end()
        self._buf = buf[start:]
        if len(self._buf) > self._limit:
            raise ValueError("SSE event larger than the relay limit")
        return events

    def rest(self) -> bytes:
        """Bytes of an unterminated last event (forwarded as-is at end of stream)."""
        return self._buf


def encode(data: str, *, event: str | None = "message", id: str | None = None) -> bytes:
    """One SSE event; multi-line data is split over several `data:` lines."""
    out = []
    if event:
        out.append(f"event: {event}")
    if id is not None:
        out.append(f"id: {id}")
    out.extend(f"data: {line}" for line in data.split("\n"))
    return ("\n".join(out) + "\n\n").encode()


SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache, no-transform",
    # Reverse proxies (nginx) must not buffer: notifications have to arrive as they happen.
    "X-Accel-Buffering": "no",
}
