"""Tracing: W3C trace context in and out, our own small spans, OTLP/HTTP (JSON) export.

With `MCPGW_OTEL_ENDPOINT` set, each service builds a `Tracer` (sampler + bounded span buffer), which its
request-outcome middleware (shared/outcome.py) uses to continue an incoming `traceparent` and make
the request's span current, and an exporter task (`tracing_ctx`) that batches finished spans to `{endpoint}/v1/traces`.
Below the middleware, `span(name)` opens a child (token check, PDP call, backend call),
`inject(headers)` adds `traceparent` to an outgoing request (`outgoing` starts a CLIENT span
without a `Span` object and adds its own), and logs and audit rows read
`current_trace_id()`. Unset, nothing is built or installed, and the touch points cost one
context-variable read. No OpenTelemetry SDK: its per-span machinery cost a quarter of the
gateway's CPU per call (docs/benchmarks.md).

    traceparent.py  W3C parse/format (pure)      spans.py  Span, Tracer, span/inject
    otlp.py         JSON encoding, Exporter, metrics
    fragments.py    a span's name, kind, flags and attributes as cached JSON text (its tail)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import NamedTuple

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry

from shared.common_settings import CommonSettings
from shared.tracing.otlp import Exporter, TracingMetrics, parse_headers
from shared.tracing.spans import (
    CLIENT,
    INTERNAL,
    OFF,
    Span,
    Tracer,
    child_tail,
    current_span,
    current_trace_id,
    inject,
    outgoing,
    span,
)

__all__ = ["CLIENT", "INTERNAL", "OFF", "Span", "Tracer", "Tracing", "child_tail", "current_span", "current_trace_id", "inject", "outgoing",
           "setup", "span", "tracing_ctx"]


class Tracing(NamedTuple):
    """What a service installs when tracing is on."""

    tracer: Tracer
    ctx: Callable[[web.Application], AsyncIterator[None]]


def setup(service: str, settings: CommonSettings, registry: CollectorRegistry,
          version: str | None = None) -> Tracing | None:
    """The tracer and exporter context of a service (`version` becomes `service.version`); None
    (nothing) without an endpoint. The tracer goes to the service's request-outcome middleware."""
    if not settings.otel_endpoint:
        return None
    tracer = Tracer(service, settings.otel_sample_ratio)
    metrics = TracingMetrics(registry, tracer)
    tracer.on_drop = metrics.buffer_full
    headers = parse_headers(settings.otel_headers.get()) if settings.otel_headers else {}
    ctx = tracing_ctx(tracer, settings.otel_endpoint, metrics, version, headers)
    return Tracing(tracer, ctx)


def tracing_ctx(tracer: Tracer, endpoint: str, metrics: TracingMetrics, version: str | None = None,
                headers: dict[str, str] | None = None) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running the exporter; at exit it exports what is buffered, then stops.

    Its own small ClientSession, not the app's: the exporter starts first and stops last (the
    spans of everything else's shutdown go out too), and the collector is the operator's, not a
    backend (no SSRF guard or backend credentials apply)."""

    async def ctx(_app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=5, sock_connect=2)
        async with aiohttp.ClientSession(timeout=timeout, cookie_jar=aiohttp.DummyCookieJar(), trust_env=False,
                                         headers=headers) as session:
            exporter = Exporter(tracer, endpoint, session, metrics, version)
            task = asyncio.create_task(exporter.run(), name=f"otlp-export-{tracer.service}")
            try:
                yield
            finally:
                await exporter.stop(task)

    return ctx
