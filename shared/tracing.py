"""OpenTelemetry tracing: OTLP/HTTP export when MCPGW_OTEL_ENDPOINT is set, nothing at all when not.

Enabled, each service gets its own TracerProvider (no global state: tests build apps twice) and a
server middleware that continues an incoming W3C `traceparent`, opens a SERVER span per request,
and makes the tracer and the trace id available to the code below it through context variables:
`span(name)` opens a child span (token check, PDP call, backend call), `inject(headers)` adds
`traceparent` to an outgoing request (PDP, backends), and the JSON log formatter writes the trace id.
Disabled, the middleware is not installed and `span`/`inject` cost one context-variable read.

The SDK is the optional extra `otel` (`pip install 'mcpgw[otel]'`); setting the endpoint without it
is a configuration error at start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import AbstractContextManager
from contextvars import ContextVar
from typing import Any

from aiohttp import web

from shared.outcome import Outcome

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

tracer_var: ContextVar[Any] = ContextVar("mcpgw_tracer", default=None)
trace_id_var: ContextVar[str | None] = ContextVar("mcpgw_trace_id", default=None)


def available() -> bool:
    """Whether the OpenTelemetry SDK and OTLP exporter are installed."""
    try:
        import opentelemetry.exporter.otlp.proto.http.trace_exporter  # noqa: F401
        import opentelemetry.sdk.trace  # noqa: F401
    except ImportError:
        return False
    return True


class Tracing:
    """One service's provider, tracer and propagator."""

    def __init__(self, service: str, endpoint: str, ratio: float, exporter: Any = None) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        self.provider = TracerProvider(resource=Resource.create({"service.name": f"mcpgw-{service}"}),
                                       sampler=ParentBased(TraceIdRatioBased(ratio)))
        exporter = exporter or OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces", timeout=5)
        self.provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=1000))
        self.tracer = self.provider.get_tracer("mcpgw")
        self.propagator = TraceContextTextMapPropagator()

    def shutdown(self) -> None:
        """Export what is buffered, then stop."""
        self.provider.shutdown()


def tracing_ctx(service: str, endpoint: str | None, ratio: float,
                store: Callable[[Tracing], None]) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context: build the provider at start (when configured), flush it at exit."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        if not endpoint:
            yield
            return
        tracing = Tracing(service, endpoint, ratio)
        store(tracing)
        log.info("tracing on: OTLP/HTTP export", extra={"otel_endpoint": endpoint, "sample_ratio": ratio})
        try:
            yield
        finally:
            # Off the loop: the final export is a blocking HTTP call (to a collector that may even
            # be served by this very loop, as in tests).
            await asyncio.to_thread(tracing.shutdown)

    return ctx


def server_middleware(get: Callable[[web.Request], Tracing | None],
                      route_of: Callable[[web.Request], str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Continue the caller's trace (W3C traceparent) and open a SERVER span for the request."""
    from opentelemetry import context as otel_context
    from opentelemetry.trace import SpanKind, Status, StatusCode

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        tracing = get(request)
        if tracing is None:
            return await handler(request)
        parent = tracing.propagator.extract(request.headers)
        token = otel_context.attach(parent)
        route = route_of(request)
        try:
            with tracing.tracer.start_as_current_span(f"{request.method} {route}", kind=SpanKind.SERVER) as sp:
                tracer_token = tracer_var.set(tracing)
                ctx = sp.get_span_context()
                trace_token = trace_id_var.set(f"{ctx.trace_id:032x}" if ctx.is_valid else None)
                outcome = Outcome()
                try:
                    return await outcome.run(handler, request)
                finally:
                    status = outcome.status
                    sp.set_attribute("http.request.method", request.method)
                    sp.set_attribute("http.route", route)
                    sp.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        sp.set_status(Status(StatusCode.ERROR))
                    trace_id_var.reset(trace_token)
                    tracer_var.reset(tracer_token)
        finally:
            otel_context.detach(token)

    return middleware


OFF = contextlib.nullcontext()


def span(name: str, client: bool = False, attributes: dict[str, Any] | None = None) -> AbstractContextManager[Any]:
    """A CLIENT/INTERNAL child span of the current request's span; a shared no-op when tracing is off."""
    tracing = tracer_var.get()
    if tracing is None:
        return OFF
    from opentelemetry.trace import SpanKind

    kind = SpanKind.CLIENT if client else SpanKind.INTERNAL
    return tracing.tracer.start_as_current_span(name, kind=kind, attributes=attributes)  # type: ignore[no-any-return]


def inject(headers: MutableMapping[str, str]) -> None:
    """Add `traceparent` for the current span to outgoing headers (nothing when tracing is off)."""
    tracing = tracer_var.get()
    if tracing is not None:
        tracing.propagator.inject(headers)
