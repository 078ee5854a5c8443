"""OTLP/HTTP export, JSON encoding (`POST {endpoint}/v1/traces`, `Content-Type: application/json`).

The OTLP JSON mapping is proto3's JSON with OTLP's exceptions: trace and span ids are lowercase
hex (not base64), enum values are integers, 64-bit integers (times, intValue) are decimal strings,
field names are lowerCamelCase. An exporter task drains the tracer's buffer in batches, each
batch as soon as it is full and the rest every 5 seconds (OpenTelemetry's default schedule
delay), off the request path. A failed export drops its batch and
counts it (no retry queue that could grow): tracing never holds a request or memory hostage.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

import aiohttp
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import BytesPayload
from prometheus_client import CollectorRegistry, Counter, Gauge

from shared.jsonutil import dumps, loads
from shared.tracing.fragments import Rendered as Rendered
from shared.tracing.fragments import attribute
from shared.tracing.fragments import rendered as rendered
from shared.tracing.spans import Finished, Tracer

log = logging.getLogger(__name__)

SCOPE = {"name": "mcpgw"}
_SCOPE = dumps(SCOPE).decode()


def traces_url(endpoint: str) -> str:
    """The OTLP/HTTP traces URL of a collector base URL (as OTEL_EXPORTER_OTLP_ENDPOINT is read)."""
    return endpoint.rstrip("/") + "/v1/traces"


_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def parse_headers(value: str) -> dict[str, str]:
    """`key=value,key2=value2` (values URL-encoded), as OTEL_EXPORTER_OTLP_HEADERS is written.

    Errors name the problem and the key, never a value (values are credentials)."""
    headers: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not _TOKEN.fullmatch(key):
            raise ValueError(f"entry {len(headers) + 1} is not key=value with a header name as key")
        decoded = unquote(raw.strip())
        if any(c in decoded for c in "\r\n\0"):
            raise ValueError(f"the value of {key} holds a line break")
        headers[key] = decoded
    return headers


def span_parts(spans: Iterable[Finished]) -> list[str]:
    """OTLP Spans as JSON text, one string each: one f-string of ids, times and the span's tail
    (name, kind, flags, attributes, rendered once per distinct set: fragments.py); field order is
    free in JSON."""
    return [f'{{"traceId":"{trace_id}","spanId":"{span_id}","startTimeUnixNano":"{start}",'
            f'"endTimeUnixNano":"{end}",{found}}}' if parent_id is None else
            f'{{"traceId":"{trace_id}","spanId":"{span_id}","parentSpanId":"{parent_id}","startTimeUnixNano":"{start}",'
            f'"endTimeUnixNano":"{end}",{found}}}'
            for trace_id, span_id, parent_id, start, end, found in spans]


def spans_text(spans: Iterable[Finished]) -> str:
    """OTLP Spans as JSON text, comma-separated."""
    return ",".join(span_parts(spans))


def span_text(span: Finished) -> str:
    """One OTLP Span as JSON text."""
    return spans_text((span,))


def span_json(span: Finished) -> dict[str, Any]:
    """One OTLP Span, parsed back from `span_text` (tests and tools read spans this way)."""
    return loads(span_text(span))  # type: ignore[no-any-return]


def resource(service: str, version: str | None = None) -> str:
    """The OTLP Resource of a service as JSON text (`service.name` is `mcpgw-{service}`)."""
    attrs = {"service.name": f"mcpgw-{service}", "telemetry.sdk.name": "mcpgw", "telemetry.sdk.language": "python"}
    if version:
        attrs["service.version"] = version
    return dumps({"attributes": [attribute(k, v) for k, v in attrs.items()]}).decode()


def encode(res: str, spans: Iterable[Finished]) -> bytes:
    """An ExportTraceServiceRequest as OTLP JSON (`res` from `resource`)."""
    head, tail = f'{{"resourceSpans":[{{"resource":{res},"scopeSpans":[{{"scope":{_SCOPE},"spans":[', "]}]}]}"
    parts = span_parts(spans)
    if not parts:
        return (head + tail).encode()
    parts[0] = head + parts[0]  # one join and one encode copy the body, not four copies
    parts[-1] += tail
    return ",".join(parts).encode()


class TracingMetrics:
    """Exported/dropped span counters and the buffer depth, on the app's registry."""

    def __init__(self, registry: CollectorRegistry, tracer: Tracer) -> None:
        self.exported = Counter("mcpgw_tracing_exported_spans", "Spans accepted by the OTLP collector",
                                registry=registry)
        self.dropped = Counter("mcpgw_tracing_dropped_spans", "Spans lost: buffer full, export failed, rejected or shutdown",
                               ("reason",), registry=registry)
        for reason in ("buffer_full", "export_failed", "rejected", "shutdown"):
            self.dropped.labels(reason)
        self.buffered = Gauge("mcpgw_tracing_buffered_spans", "Spans waiting for export", registry=registry)
        self.buffered.set_function(lambda: len(tracer.buffer))
        self._full = self.dropped.labels("buffer_full")

    def buffer_full(self, n: int) -> None:
        """Count spans the full buffer refused."""
        self._full.inc(n)


class Exporter:
    """Drains a tracer's buffer to `{endpoint}/v1/traces` until stopped, then flushes what is left."""

    def __init__(self, tracer: Tracer, endpoint: str, session: aiohttp.ClientSession, metrics: TracingMetrics,
                 version: str | None = None, interval: float = 5.0) -> None:
        self.tracer = tracer
        self.url = traces_url(endpoint)
        self.session = session
        self.metrics = metrics
        self.resource = resource(tracer.service, version)
        self.interval = interval
        self.stopping = False
        self.failing = False  # log a failure once, and the recovery once, not every batch

    async def run(self) -> None:
        """Export full batches as they fill, the rest every `interval` seconds; return once stopped and flushed."""
        while True:
            tick = False
            try:
                await asyncio.wait_for(self.tracer.ready.wait(), self.interval)
            except TimeoutError:
                tick = True
            self.tracer.ready.clear()
            if self.stopping:
                await self.flush()
                return
            await self.export_buffered(full_only=not tick)

    async def export_buffered(self, full_only: bool = False) -> None:
        """Export the spans buffered at this moment, batch by batch (`full_only`: full batches only).

        Spans finished while a POST is in flight wait for a full batch or the next tick: chasing
        them posted a few dozen spans at a time under load, and a POST costs the CPU of hundreds
        of spans (~500 µs fixed on the shared bench machine, ~2 µs per span). Woken by a full
        batch, the remainder waits too: posting it then halved the spans per POST under load."""
        held, size = len(self.tracer.buffer), self.tracer.batch_size
        for _ in range(held // size if full_only else -(-held // size)):
            await self.export(self.tracer.take())

    async def flush(self) -> None:
        """Export everything buffered now, batch by batch, until the buffer is empty."""
        while batch := self.tracer.take():
            await self.export(batch)

    async def export(self, batch: list[Finished]) -> None:
        """POST one batch; count it exported, rejected (partial success) or dropped."""
        try:
            async with self.session.post(self.url, data=_Body(encode(self.resource, batch)),
                                         headers={"Content-Type": "application/json"}) as resp:
                body = await resp.read()
                if resp.status != 200:
                    raise _Failed(f"collector answered HTTP {resp.status}")
        except asyncio.CancelledError:  # stopped mid-POST at shutdown (`stop`'s limit): the batch is lost
            self.metrics.dropped.labels("shutdown").inc(len(batch))
            raise
        except Exception as exc:  # any failure (refused, timeout, non-200, a bug) drops this batch only
            self.metrics.dropped.labels("export_failed").inc(len(batch))
            if not self.failing:
                self.failing = True
                log.warning("trace export failed; spans dropped until the collector answers",
                            extra={"otel_url": self.url, "error": str(exc) or type(exc).__name__})
            return
        rejected = _rejected(body)
        self.metrics.dropped.labels("rejected").inc(rejected)
        self.metrics.exported.inc(len(batch) - rejected)
        if self.failing:
            self.failing = False
            log.info("trace export recovered", extra={"otel_url": self.url})

    async def stop(self, task: asyncio.Task[None], limit: float = 10.0) -> None:
        """Ask `run` to flush and return; give it `limit` seconds (the session's timeout), then cancel:
        the batch in flight and the spans still buffered count as dropped{reason="shutdown"}."""
        self.stopping = True
        self.tracer.ready.set()
        try:
            await asyncio.wait_for(task, limit)
        except TimeoutError:
            left = len(self.tracer.buffer)
            self.tracer.buffer.clear()
            self.metrics.dropped.labels("shutdown").inc(left)
            log.warning("trace export did not finish at shutdown; buffered spans dropped")


class _Failed(Exception):
    pass


class _Body(BytesPayload):
    """An export body sent after the request head, not joined to it: aiohttp writes a bytes body
    together with the buffered head as one joined copy of both (a copy of ~700 KB per batch)."""

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        writer.send_headers()
        await writer.write(self._value if content_length is None else self._value[:content_length])


def _rejected(body: bytes) -> int:
    """`partialSuccess.rejectedSpans` of an ExportTraceServiceResponse (JSON), else 0."""
    try:
        answer = loads(body) if body else {}
        return int(answer.get("partialSuccess", {}).get("rejectedSpans", 0))
    except (ValueError, AttributeError, TypeError):
        return 0  # a 200 with a body we cannot read (e.g. protobuf): accepted
