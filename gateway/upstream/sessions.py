"""Per-subject backend sessions for 2025-era backends: one agent's session state is never another's.

A 2025-era backend keeps state per `Mcp-Session-Id` (resources a tool created, log level,
subscriptions). Sharing one session between every agent leaked that state across users, so each
caller — a subject and the client capabilities its agent declared (sent upstream at initialize) —
gets its own `BackendClient` per backend. The table is bounded: at most `per_backend` sessions per
backend and `per_subject` per subject (the least recently used one is ended past that) and a
session unused for `idle` seconds is ended the next time the table is touched — never one with
requests in flight (`hold`, taken by the pool's `turn`: a held call's included). Ending sends the backend a DELETE for its session.
A 2026-07-28 backend is stateless and needs none of this: its callers share one client — except
a 2025-era agent that declared a capability the backend may use mid-call (`Caller.asks`): in
2026-07-28 a backend asks only through an `input_required` result, so such an agent gets a
2025-era session of its own on a backend that speaks both eras (FastMCP's ctx.elicit()).
"""

from __future__ import annotations

import contextlib
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import orjson

if TYPE_CHECKING:
    from gateway.registry import ServerConfig
    from gateway.upstream.client import BackendClient

# Client capabilities a backend may act on, with the sub-flags the protocol defines for each; anything
# else an agent declares (other names, unknown contents) is neither part of a caller's key nor sent upstream.
FORWARDED_CAPABILITIES: dict[str, tuple[str, ...]] = {
    "sampling": ("context", "tools"), "elicitation": ("form", "url"), "roots": ("listChanged",)}
# Per-caller sessions one subject may hold per backend (its own least recently used ends past that):
# a subject varying its declared capabilities must not fill the backend's table.
PER_SUBJECT = 8
K = TypeVar("K")


@dataclass(frozen=True)
class Caller:
    """Who a backend request is made for: the subject and its agent's declared capabilities (JSON)."""

    subject: str
    capabilities: str = "{}"
    handshake: bool = False  # its agent speaks the 2025 handshake era (asked on the call's stream)

    @classmethod
    def of(cls, subject: str, capabilities: object = None) -> Caller:
        """A caller with `capabilities` reduced to what a backend may use, in canonical form."""
        return cls(subject, canonical_capabilities(capabilities))

    @property
    def asks(self) -> bool:
        """A 2025-era agent a backend may ask mid-call (sampling, elicitation, roots): it needs a
        2025-era backend session, as a 2026-07-28 backend can only ask with `input_required`."""
        return self.handshake and self.capabilities != "{}"

    def declared(self) -> dict[str, Any]:
        """The capabilities to declare upstream."""
        value = orjson.loads(self.capabilities)
        return value if isinstance(value, dict) else {}


def canonical_capabilities(capabilities: object) -> str:
    """Sorted JSON of the forwarded capabilities and their known sub-flags (`{}`, or `true` for
    roots.listChanged); other contents are dropped, so the set of distinct callers stays small."""
    if not isinstance(capabilities, Mapping):
        return "{}"
    kept: dict[str, dict[str, Any]] = {}
    for name, flags in FORWARDED_CAPABILITIES.items():
        sub = capabilities.get(name)
        if isinstance(sub, dict):
            kept[name] = {f: True if f == "listChanged" else {} for f in flags
                          if (sub.get(f) is True if f == "listChanged" else isinstance(sub.get(f), dict))}
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode()


def idled(used: Iterable[tuple[K, float]], now: float, idle: float) -> list[K]:
    """The keys at the front of a least-recently-used-first table unused for `idle` seconds."""
    out = []
    for key, last in used:
        if now - last < idle:
            break
        out.append(key)
    return out


class _Entry:
    __slots__ = ("client", "used")

    def __init__(self, client: BackendClient, used: float) -> None:
        self.client, self.used = client, used


class SubjectSessions:
    """Bounded per-backend tables of per-caller clients, least recently used first."""

    def __init__(self, make: Callable[[ServerConfig, Caller], BackendClient], per_backend: int,
                 idle: float, clock: Callable[[], float] = time.monotonic, per_subject: int = PER_SUBJECT) -> None:
        self.make = make
        self.per_backend, self.per_subject = per_backend, per_subject
        self.idle = idle
        self.clock = clock
        self._tables: dict[str, OrderedDict[Caller, _Entry]] = {}
        self._busy: dict[tuple[str, Caller], int] = {}  # requests in flight (held calls too) per caller
        self.ended = 0  # sessions ended by eviction (a metric for tests and operators)

    def get(self, config: ServerConfig, caller: Caller) -> BackendClient:
        """The caller's client for `config`, created (and the table trimmed) when needed."""
        table = self._tables.setdefault(config.name, OrderedDict())
        now = self.clock()
        self._expire(config.name, table, now)
        entry = table.get(caller)
        if entry is not None and (entry.client.server is config or entry.client.server == config):
            entry.used = now
            table.move_to_end(caller)
            return entry.client
        if entry is not None:  # the backend's configuration changed: its old session goes
            self._end(table.pop(caller).client)
        client = self.make(config, caller)
        table[caller] = _Entry(client, now)
        # Past a bound the least recently used idle session ends (the subject's own first); a client
        # with requests in flight (or a held call parked on it) is never ended: the table may run over.
        mine = [c for c in table if c.subject == caller.subject]
        if len(mine) > self.per_subject:
            self._evict(config.name, table, mine)
        while len(table) > self.per_backend and self._evict(config.name, table, list(table)):
            pass
        return client

    @contextlib.contextmanager
    def hold(self, server: str, caller: Caller) -> Iterator[None]:
        """Mark `caller`'s session on `server` in use while the block runs (it is not ended meanwhile)."""
        key = (server, caller)
        self._busy[key] = self._busy.get(key, 0) + 1
        try:
            yield
        finally:
            left = self._busy[key] - 1
            if left:
                self._busy[key] = left
            else:
                del self._busy[key]

    def _evict(self, server: str, table: OrderedDict[Caller, _Entry], oldest_first: list[Caller]) -> bool:
        """End the first of `oldest_first` with nothing in flight (not the newest); False if none is."""
        for caller in oldest_first[:-1]:
            if (server, caller) not in self._busy:
                self._end(table.pop(caller).client)
                return True
        return False

    def count(self, server: str) -> int:
        """Per-caller sessions held for `server`."""
        return len(self._tables.get(server, ()))

    def clients(self) -> list[BackendClient]:
        """Every per-caller client held."""
        return [e.client for table in self._tables.values() for e in table.values()]

    def _expire(self, server: str, table: OrderedDict[Caller, _Entry], now: float) -> None:
        for caller in idled(((c, e.used) for c, e in table.items()), now, self.idle):
            if (server, caller) not in self._busy:
                self._end(table.pop(caller).client)

    def _end(self, client: BackendClient) -> None:
        self.ended += 1
        client.end_soon()

    def clear(self) -> list[BackendClient]:
        """Forget every session; the clients, for the caller to end."""
        out = self.clients()
        self._tables.clear()
        return out
