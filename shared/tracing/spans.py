"""Our own minimal spans: slots objects while open, flat tuples in a bounded buffer once finished.

A span is ids, name, kind, start/end (ns since the epoch), a few attributes and an error flag. The
`Tracer` decides sampling (parent-based: a caller's flag is followed; a new trace is sampled when
the low 64 bits of its random trace id fall under the ratio, as OpenTelemetry's TraceIdRatioBased
does), keeps finished sampled spans in a list of bounded length (a full buffer drops the span and
counts it: a request never waits for export) and wakes the exporter when a batch is ready.
Unsampled spans still get ids, so `traceparent` (flag 00) and the trace id in logs work alike.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from contextvars import ContextVar
from time import time_ns
from types import TracebackType
from typing import Any

from shared.tracing.fragments import TAILS, decorated, tail
from shared.tracing.traceparent import Parent, format_traceparent

# OTLP SpanKind values.
INTERNAL, SERVER, CLIENT = 1, 2, 3

current_span: ContextVar[Span | None] = ContextVar("mcpgw_span", default=None)

_LOW64 = (1 << 64) - 1
_ZERO_ID, _ONE_ID = "0" * 16, "0" * 15 + "1"
_ZERO_TRACE, _ONE_TRACE = "0" * 32, "0" * 31 + "1"
_POOL = 4096  # hex digits drawn at once: 256 span ids
# OTLP Span.flags of a recorded span: sampled (bit 0), "is-remote known" (bit 8), parent remote (bit 9).
_FLAGS_LOCAL, _FLAGS_REMOTE = 0x101, 0x301

# A finished span as the buffer keeps it: trace_id, span_id, parent_id (None: a root), start_ns, end_ns,
# and its tail: name, kind, flags, attributes (and traceState, status) as OTLP/JSON text, rendered
# once per distinct set (fragments.py). One flat tuple of strings and numbers: the garbage
# collector stops tracking it at its first pass, so thousands of spans waiting for export add
# nothing to later collections (a nested tuple would).
Finished = tuple[str, str, str | None, int, int, str]
# A span's attributes: a flat key, value, key, value... tuple (the hot path: no dict built), or a dict.
Attributes = tuple[Any, ...] | dict[str, Any] | None


class Span:
    """One operation; a context manager that is the current span while it is open."""

    __slots__ = ("tracer", "trace_id", "span_id", "parent_id", "remote_parent", "sampled", "tracestate",
                 "name", "kind", "start", "end", "attributes", "error", "_token")

    def __init__(self, tracer: Tracer, trace_id: str, parent_id: str | None, sampled: bool, name: str,
                 kind: int, attributes: Attributes, tracestate: str | None = None) -> None:
        self.tracer = tracer
        self.trace_id = trace_id
        # 16 hex digits cut from the tracer's pool of random ones: no function call per span.
        at = tracer.drawn
        if at >= _POOL:
            at = tracer.refill()
        tracer.drawn = at + 16
        span_id = tracer.pool[at:at + 16]
        self.span_id = span_id if span_id != _ZERO_ID else _ONE_ID  # all-zero is an invalid id
        self.parent_id = parent_id
        self.remote_parent = False
        self.sampled = sampled
        self.tracestate = tracestate
        self.name = name
        self.kind = kind
        self.attributes = attributes
        self.error: str | None = None  # the status message of an ERROR status
        self.start = time_ns()
        self.end = 0

    @property
    def traceparent(self) -> str:
        """The W3C `traceparent` that makes a callee's span a child of this one."""
        return format_traceparent(self.trace_id, self.span_id, self.sampled)

    def child(self, name: str, kind: int = INTERNAL, attributes: Attributes = None) -> Span:
        """A new span under this one (same trace, same sampling decision)."""
        return Span(self.tracer, self.trace_id, self.span_id, self.sampled, name, kind, attributes, self.tracestate)

    def finish(self) -> None:
        """End the span and hand it to the tracer as a `Finished` tuple (sampled spans only)."""
        self.end = end = time_ns()
        if self.sampled:
            flags = _FLAGS_REMOTE if self.remote_parent else _FLAGS_LOCAL
            try:
                found = TAILS[(self.name, self.kind, flags, self.attributes)]
            except (KeyError, TypeError):
                found = tail(self.name, self.kind, flags, self.attributes)
            if self.error is not None or self.tracestate:
                found = decorated(found, self.error, self.tracestate)
            self.tracer.record((self.trace_id, self.span_id, self.parent_id, self.start, end, found))

    def close(self, found: str) -> None:
        """End the span with its tail rendered by the caller (the server middleware caches its own)."""
        self.end = end = time_ns()
        if self.sampled:
            if self.tracestate:
                found = decorated(found, None, self.tracestate)
            # Tracer.record, inlined: a call per span costs as much as the rest of this branch.
            tracer = self.tracer
            buffer = tracer.buffer
            held = len(buffer)
            if held < tracer.capacity:
                buffer.append((self.trace_id, self.span_id, self.parent_id, self.start, end, found))
                if held + 1 == tracer.batch_size:
                    tracer.ready.set()
            else:
                tracer.record((self.trace_id, self.span_id, self.parent_id, self.start, end, found))

    def new_id(self) -> str:
        """A span id for a child recorded later with `record_rendered` (no `Span` object)."""
        tracer = self.tracer
        at = tracer.drawn
        if at >= _POOL:
            at = tracer.refill()
        tracer.drawn = at + 16
        span_id = tracer.pool[at:at + 16]
        return span_id if span_id != _ZERO_ID else _ONE_ID

    def record_rendered(self, span_id: str | None, start: int, found: str, error: str | None = None) -> None:
        """Record a finished child that started at `start` (ns) and ends now, without a `Span` object
        (nothing below it needed one; `span_id` from `outgoing`, else a new one), its tail rendered by
        the caller (`child_tail`): the audit emit and the backend request keep theirs by event type and
        JSON-RPC method, looked up by one string."""
        if self.sampled:
            if error is not None or self.tracestate:
                found = decorated(found, error, self.tracestate)
            if span_id is None:
                span_id = self.new_id()
            # Tracer.record, inlined: a call per span costs as much as the rest of this branch.
            tracer = self.tracer
            buffer = tracer.buffer
            held = len(buffer)
            if held < tracer.capacity:
                buffer.append((self.trace_id, span_id, self.span_id, start, time_ns(), found))
                if held + 1 == tracer.batch_size:
                    tracer.ready.set()
            else:
                tracer.record((self.trace_id, span_id, self.span_id, start, time_ns(), found))

    def __enter__(self) -> Span:
        self._token = current_span.set(self)
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        current_span.reset(self._token)
        if exc_type is not None:
            self.error = exc_type.__name__  # the type only: an exception's text may carry secrets
        self.finish()


class Tracer:
    """One service's sampler and bounded span buffer (no I/O: the exporter drains it)."""

    # A POST costs the instructions of ~150 spans encoded: batches of 2,048 (~720 KB of JSON;
    # OpenTelemetry's default is 512), and room for ~2 s of spans at full load (~4,000 spans/s,
    # ~3 MB) while one is posted.
    def __init__(self, service: str, ratio: float, capacity: int = 8192, batch_size: int = 2048,
                 on_drop: Callable[[int], None] | None = None) -> None:
        self.service = service
        self._bound = round(ratio * (1 << 64))
        self.capacity = capacity
        self.batch_size = batch_size
        self.buffer: list[Finished] = []
        self.dropped = 0
        self.on_drop = on_drop
        self.ready = asyncio.Event()  # a batch is waiting (or the exporter is asked to stop)
        self.pool = ""  # random hex digits; ids are cut from it in order (Span.__init__)
        self.drawn = _POOL

    def refill(self) -> int:
        """Draw a new pool of random hex digits from the OS's CSPRNG (one syscall per 256 span ids: ids
        must not be guessable, as W3C Trace Context asks); the offset to cut from."""
        self.pool = os.urandom(_POOL // 2).hex()
        self.drawn = 0
        return 0

    def server_span(self, name: str, parent: Parent | None, tracestate: str | None = None,
                    attributes: Attributes = None) -> Span:
        """The span of an incoming request: a child of the caller's span, or the root of a new trace."""
        if parent is None:
            at = self.drawn
            if at > _POOL - 32:
                at = self.refill()
            self.drawn = at + 32
            trace_id = self.pool[at:at + 32]
            if trace_id == _ZERO_TRACE:  # all-zero is an invalid id
                trace_id = _ONE_TRACE
            bound = self._bound
            # Ratio 1 and 0 need no arithmetic; in between, the low 64 bits decide (TraceIdRatioBased).
            sampled = bound > _LOW64 or (bound > 0 and int(trace_id[16:], 16) < bound)
            return Span(self, trace_id, None, sampled, name, SERVER, attributes)
        span = Span(self, parent.trace_id, parent.span_id, parent.sampled, name, SERVER, attributes, tracestate)
        span.remote_parent = True
        return span

    def record(self, span: Finished) -> None:
        """Keep a finished span for export; drop and count it when the buffer is full."""
        buffer = self.buffer
        if len(buffer) >= self.capacity:
            self.dropped += 1
            if self.on_drop is not None:
                self.on_drop(1)
            return
        buffer.append(span)
        if len(buffer) == self.batch_size:
            self.ready.set()

    def take(self) -> list[Finished]:
        """Up to one batch of spans, removed from the buffer (oldest first)."""
        batch = self.buffer[:self.batch_size]
        del self.buffer[:self.batch_size]
        return batch


def span(name: str, client: bool = False, attributes: Attributes = None) -> Span | _Off:
    """A CLIENT/INTERNAL child of the current span (use with `with`); the shared no-op when tracing is off."""
    parent = current_span.get()
    if parent is None:
        return OFF
    return Span(parent.tracer, parent.trace_id, parent.span_id, parent.sampled, name, CLIENT if client else INTERNAL,
                attributes, parent.tracestate)  # Span.child, one call fewer


def child_tail(memo: dict[str, str], key: str, name: str, kind: int, attributes: tuple[Any, ...]) -> str:
    """A child span's tail, kept in the caller's `memo` under one string `key` (e.g. the JSON-RPC
    method) for `record_rendered`: callers look there first (`memo.get(key) or child_tail(...)`),
    so a hit builds no attribute tuple. Cleared past 256 keys (keys may be a caller's choice)."""
    if len(memo) >= 256:
        memo.clear()
    found = memo[key] = tail(name, kind, _FLAGS_LOCAL, attributes)
    return found


def outgoing(parent: Span, headers: dict[str, str] | Any) -> tuple[str, int]:
    """A CLIENT child of `parent` for one outgoing request, as its span id and start (ns): its
    `traceparent` (and the caller's `tracestate`) added to `headers`. No `Span` object, nothing made
    current (nothing below it opens a span): the caller ends it with `parent.record_rendered(span_id,
    start, tail, error)`."""
    tracer = parent.tracer  # Span.new_id, inlined (a call per backend request)
    at = tracer.drawn
    if at >= _POOL:
        at = tracer.refill()
    tracer.drawn = at + 16
    span_id = tracer.pool[at:at + 16]
    if span_id == _ZERO_ID:
        span_id = _ONE_ID
    headers["traceparent"] = f"00-{parent.trace_id}-{span_id}-{'01' if parent.sampled else '00'}"
    if parent.tracestate:
        headers["tracestate"] = parent.tracestate
    return span_id, time_ns()


class _Off:
    """The shared no-op span context: `with span(...) as sp` gives None when tracing is off."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


OFF = _Off()


def inject(headers: dict[str, str] | Any) -> None:
    """Add `traceparent` (and the caller's `tracestate`) for the current span to outgoing headers."""
    current = current_span.get()
    if current is not None:  # Span.traceparent written out: two calls fewer per outgoing request
        headers["traceparent"] = f"00-{current.trace_id}-{current.span_id}-{'01' if current.sampled else '00'}"
        if current.tracestate:
            headers["tracestate"] = current.tracestate


def current_trace_id() -> str | None:
    """The trace id of the request being handled (logs, audit rows), or None."""
    current = current_span.get()
    return current.trace_id if current is not None else None


