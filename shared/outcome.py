"""One request-outcome middleware: the server span, a service's own record (the gateway's audit
event), the HTTP metrics and the access line of every request, from one frame per request.

Built once at startup from the parts that are on: without a tracer the untraced body is installed
and no tracing code runs per request. Effects in order, as separate middlewares had them: the span
is current while the handler runs (its logs carry the trace id), the record is finished next (the
audit event gets the trace id), then the metrics and access line, then the span ends.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from aiohttp import web

from shared.access_log import AccessWriter
from shared.metrics import route_name
from shared.tracing.fragments import decorated, rendered, tail
from shared.tracing.spans import _FLAGS_LOCAL, _FLAGS_REMOTE, SERVER, Tracer, current_span
from shared.tracing.traceparent import TRACEPARENT, TRACESTATE, parse, parse_tracestate

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[..., Awaitable[web.StreamResponse]]
Record = Callable[[str, str, int, float], None]
_NONE: tuple[web.RequestKey[Any], None, None] = (web.RequestKey("outcome_unused"), None, None)  # no recorder
BOUND = 1024  # distinct (method, route, status) span names and attribute sets kept rendered


class Recorder(NamedTuple):
    """A service's per-request record: `new()` is stored under `key` before the handler runs,
    `finish(request, record, status, start)` after it, before the access line."""

    key: web.RequestKey[Any]
    new: Callable[[], Any]
    finish: Callable[[web.Request, Any, int, float], None]


def outcome_middleware(record: Record, write: AccessWriter | None, recorder: Recorder | None = None,
                       tracer: Tracer | None = None) -> Middleware:
    """The request-outcome middleware of the parts given (`write` None: no access line; `tracer`
    None: the untraced body). The status is the response's, an HTTPException's, else 500."""
    if tracer is not None:
        return _traced(record, write, recorder, tracer)
    key, new, finish = recorder if recorder is not None else _NONE

    @web.middleware
    async def outcome_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        if new is not None:
            request[key] = kept = new()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if finish is not None:
                finish(request, kept, status, start)
            route = route_name(request)
            record(request.method, route, status, time.perf_counter() - start)
            if write is not None:
                write(request, route, status, start)

    return outcome_middleware


def _traced(record: Record, write: AccessWriter | None, recorder: Recorder | None, tracer: Tracer) -> Middleware:
    """The same, continuing the caller's W3C trace with one SERVER span per request made current.

    A body of its own rather than branches in the untraced one (the shape repeats on purpose): off,
    no tracing code runs per request; on, the span work is inline, with no call per hook."""
    # (method, route, status, remote parent) → the span's tail (name, kind, flags, attributes and
    # a 5xx status as OTLP/JSON text, fragments.py), rendered once. Routes are templates or
    # "unmatched" and methods are bounded below: the dict stays small.
    seen: dict[tuple[str, str, int, bool], str] = {}
    key, new, finish = recorder if recorder is not None else _NONE

    @web.middleware
    async def tracing_outcome_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        start = time.perf_counter()
        headers = request.headers
        parent = parse(headers.getall(TRACEPARENT)) if TRACEPARENT in headers else None
        # The spec: tracestate is read only when traceparent was valid.
        state = parse_tracestate(headers.getall(TRACESTATE, ())) if parent is not None else None
        method = request.method
        span = tracer.server_span(method, parent, state)  # named at the end, when its route is known
        # Current for the rest of this request's task (aiohttp runs each request in a task of its
        # own, with a copy of the context): no reset needed, the next request sets its own.
        current_span.set(span)
        if new is not None:
            request[key] = kept = new()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            if finish is not None:  # the span still current: the event carries its trace id
                finish(request, kept, status, start)
            route = route_name(request)
            record(method, route, status, time.perf_counter() - start)
            if write is not None:
                write(request, route, status, start)
            named = (method, route, status, span.remote_parent)
            try:
                found = seen[named]
            except KeyError:
                if len(seen) >= BOUND:  # methods are the caller's choice: bounded
                    seen.clear()
                # HTTP semantic conventions: only 5xx is a server span error.
                found = seen[named] = decorated(
                    tail(f"{method} {route}", SERVER, _FLAGS_REMOTE if span.remote_parent else _FLAGS_LOCAL,
                         rendered(("http.request.method", method, "http.route", route,
                                   "http.response.status_code", status))),
                    f"HTTP {status}" if status >= 500 else None, None)
            span.close(found)

    return tracing_outcome_middleware
