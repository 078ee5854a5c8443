"""The bridge's caller sessions: bounded per server, idle ones ended, each with its running calls.

A session of a legacy SSE server owns a connection (`Multiplexer.for_caller`), so what the server
keeps per session stays with one caller and its requests (sampling, elicitation, roots) reach that
caller's agent: `BridgeSession.relay` hands each to the session's oldest running call (on that
call's answer stream) or, with none, to the session's GET streams; with neither, the connection
answers it itself (channel.answer_server_request). A stdio server's sessions share its one child.

Bounds, the same as the gateway's per-subject sessions (upstream/sessions.py, whose eviction
DELETEs the bridge session): at most `per_server` own connections per server (BridgeHost opens no
more: later callers share the server's connection; the least recently used ends past it), and a session unused for `idle` seconds ends the next time the
table is touched. Ending a session cancels its calls and closes its connection (the event stream).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from gateway.upstream import codec
from gateway.upstream.sessions import idled
from gateway.upstream.transports.mux import Multiplexer

MAX_SESSIONS = 10_000  # every server together (a stdio session costs a dict; an own connection is bounded per server)


@dataclass
class BridgeCall:
    """A request running in a session; `notes` takes its progress and, on an own connection, the server's requests."""

    task: asyncio.Task[dict[str, Any]]
    notes: asyncio.Queue[dict[str, Any]] | None
    asked: Callable[[], None] | None = None  # told when the server's request is relayed on it


class BridgeSession:
    """One caller's session on a bridged server."""

    __slots__ = ("server", "own", "used", "calls")

    def __init__(self, server: str, own: Multiplexer | None, used: float) -> None:
        self.server, self.own, self.used = server, own, used
        self.calls: dict[codec.RequestId | None, BridgeCall] = {}
        if own is not None:
            own.relay = self.relay

    def relay(self, message: dict[str, Any]) -> bool:
        """Hand the server's request to the oldest running call, else to the GET streams; False if nobody took it."""
        for call in self.calls.values():
            if call.notes is not None and not call.task.done():
                try:
                    call.notes.put_nowait(message)
                    if call.asked is not None:
                        call.asked()
                    return True
                except asyncio.QueueFull:
                    continue
        if self.own is not None and self.own.listeners:
            for listener in list(self.own.listeners):
                listener(message)
            return True
        return False

    def end(self) -> None:
        """Cancel the session's calls (its connection is closed by the table's owner)."""
        for call in self.calls.values():
            call.task.cancel()


class SessionTable:
    """Bridge sessions by id, least recently used first."""

    def __init__(self, per_server: int, idle: float, close: Callable[[Multiplexer], object],
                 clock: Callable[[], float] = time.monotonic, limit: int = MAX_SESSIONS) -> None:
        self.per_server, self.idle, self.close, self.clock, self.limit = per_server, idle, close, clock, limit
        self._sessions: OrderedDict[str, BridgeSession] = OrderedDict()
        self._own: dict[str, int] = {}  # own connections per server
        self.ended = 0  # sessions ended by the bounds (not by DELETE)

    def __len__(self) -> int:
        return len(self._sessions)

    def own(self, server: str) -> int:
        """Own connections held for `server`."""
        return self._own.get(server, 0)

    def add(self, server: str, own: Multiplexer | None) -> str:
        """A new session's id; the least recently used sessions end past the bounds."""
        now = self.clock()
        self._expire(now)
        sid = secrets.token_urlsafe(16)
        self._sessions[sid] = BridgeSession(server, own, now)
        if own is not None:
            self._own[server] = self._own.get(server, 0) + 1
            while self._own[server] > self.per_server:
                oldest = next(k for k, s in self._sessions.items() if s.server == server and s.own is not None)
                self._evict(oldest)
        while len(self._sessions) > self.limit:
            self._evict(next(iter(self._sessions)))
        return sid

    def get(self, sid: str | None) -> BridgeSession | None:
        """The session `sid` (now its most recently used), or None when unknown or ended."""
        now = self.clock()
        self._expire(now)
        session = self._sessions.get(sid) if sid else None
        if session is not None and sid is not None:
            session.used = now
            self._sessions.move_to_end(sid)
        return session

    def pop(self, sid: str | None) -> BridgeSession | None:
        """End session `sid` (DELETE); None when unknown."""
        session = self._remove(sid) if sid else None
        if session is not None:
            self._finish(session)
        return session

    def drop_server(self, server: str) -> None:
        """End every session of `server` (removed, disabled or reconfigured)."""
        for sid in [k for k, s in self._sessions.items() if s.server == server]:
            self.pop(sid)

    def clear(self) -> None:
        """End every session (shutdown)."""
        for sid in list(self._sessions):
            self.pop(sid)

    def _expire(self, now: float) -> None:
        for sid in idled(((k, s.used) for k, s in self._sessions.items()), now, self.idle):
            self._evict(sid)

    def _evict(self, sid: str) -> None:
        self.ended += 1
        self.pop(sid)

    def _remove(self, sid: str) -> BridgeSession | None:
        session = self._sessions.pop(sid, None)
        if session is not None and session.own is not None:
            self._own[session.server] -= 1
        return session

    def _finish(self, session: BridgeSession) -> None:
        session.end()
        if session.own is not None:
            self.close(session.own)
