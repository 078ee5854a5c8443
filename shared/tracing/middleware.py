"""The tracing server middleware: continue the caller's W3C trace, one SERVER span per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from shared.tracing.otlp import Rendered, rendered
from shared.tracing.spans import Tracer, current_span
from shared.tracing.traceparent import TRACEPARENT, TRACESTATE, parse, parse_tracestate

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BOUND = 1024  # distinct (method, route, status) attribute sets kept rendered


def server_middleware(tracer: Tracer, route_of: Callable[[web.Request], str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Open the request's span (a child of a valid incoming `traceparent`) as the current span."""

    seen: dict[tuple[str, str, int], tuple[Rendered]] = {}

    @web.middleware
    async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = request.headers
        parent = parse(headers.getall(TRACEPARENT)) if TRACEPARENT in headers else None
        # The spec: tracestate is read only when traceparent was valid.
        state = parse_tracestate(headers.getall(TRACESTATE, ())) if parent is not None else None
        method, route = request.method, route_of(request)
        span = tracer.server_span(f"{method} {route}", parent, state)
        token = current_span.set(span)
        # The status as `Outcome` records it, written out: its object and coroutine per request
        # were a tenth of the calls tracing adds.
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        finally:
            current_span.reset(token)
            # Rendered once per (method, route, status): the status is an int, and an attribute
            # set holding a number costs a type check per span in the encoder (1 == True).
            key = (method, route, status)
            try:
                span.attributes = seen[key]
            except KeyError:
                if len(seen) >= BOUND:  # methods are the caller's choice: bounded
                    seen.clear()
                span.attributes = seen[key] = rendered(("http.request.method", method, "http.route", route,
                                                        "http.response.status_code", status))
            if status >= 500:  # HTTP semantic conventions: only 5xx is a server span error
                span.error = f"HTTP {status}"
            span.finish()

    return tracing_middleware
