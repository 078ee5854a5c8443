"""The tracing server middleware: continue the caller's W3C trace, one SERVER span per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_urldispatcher import SystemRoute

from shared.tracing.otlp import Rendered, rendered
from shared.tracing.spans import Tracer, current_span
from shared.tracing.traceparent import TRACEPARENT, TRACESTATE, parse, parse_tracestate

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
BOUND = 1024  # distinct (method, route, status) attribute sets kept rendered


def server_middleware(tracer: Tracer, route_of: Callable[[web.Request], str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Open the request's span (a child of a valid incoming `traceparent`) as the current span."""

    # (method, route object, status) → the span's name and rendered attribute set. The route is
    # matched by aiohttp before any middleware runs and `match_info` is cached on the request by the
    # first reader (the access log, inside this one): a lookup by the route object costs one
    # property call where naming the route (`route_of`) costs five.
    seen: dict[tuple[str, object, int], tuple[str, tuple[Rendered]]] = {}

    @web.middleware
    async def tracing_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        headers = request.headers
        parent = parse(headers.getall(TRACEPARENT)) if TRACEPARENT in headers else None
        # The spec: tracestate is read only when traceparent was valid.
        state = parse_tracestate(headers.getall(TRACESTATE, ())) if parent is not None else None
        method = request.method
        span = tracer.server_span(method, parent, state)  # named at the end, when its route is known cheaply
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
            route = request.match_info.route
            key = (method, route, status)
            try:
                span.name, span.attributes = seen[key]
            except KeyError:
                name = route_of(request)
                span.name = f"{method} {name}"
                span.attributes = rendered(("http.request.method", method, "http.route", name,
                                            "http.response.status_code", status))
                # Unmatched requests carry a route object of their own (holding their exception): never kept.
                if route.__class__ is not SystemRoute:
                    if len(seen) >= BOUND:  # methods are the caller's choice: bounded
                        seen.clear()
                    seen[key] = (span.name, span.attributes)
            if status >= 500:  # HTTP semantic conventions: only 5xx is a server span error
                span.error = f"HTTP {status}"
            span.finish()

    return tracing_middleware
