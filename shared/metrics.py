"""Prometheus metrics: one registry per app, the HTTP recorder (used by shared/outcome.py) and a
`/metrics` handler.

Every series either service exposes starts with `mcpgw_` (process metrics included:
`mcpgw_process_resident_memory_bytes`, ...), plus `mcpgw_build_info{service,version,python}`.
Counters carry no `_created` series: prometheus_client's switch for that is process-wide, and
this module is imported by both services before any metric is made.
"""

from __future__ import annotations

import platform
from collections.abc import Awaitable, Callable
from importlib import metadata
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

from shared.keys import REGISTRY

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

PREFIX = "mcpgw"
disable_created_metrics()

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def version() -> str:
    """The installed mcpgw version (\"unknown\" when run from a source tree without metadata)."""
    try:
        return metadata.version("mcpgw")
    except metadata.PackageNotFoundError:
        return "unknown"


def service_registry(service: str) -> CollectorRegistry:
    """A fresh registry with process metrics (memory, CPU, fds) and the build-info gauge."""
    registry = CollectorRegistry()
    ProcessCollector(namespace=PREFIX, registry=registry)
    info = Gauge(f"{PREFIX}_build_info", "Build information (value 1)", ["service", "version", "python"],
                 registry=registry)
    info.labels(service, version(), platform.python_version()).set(1)
    return registry


class HttpMetrics:
    """Request count and latency by route and status, registered on the app's own registry."""

    def __init__(self, registry: CollectorRegistry, namespace: str) -> None:
        self.requests = Counter(
            f"{namespace}_http_requests_total", "HTTP requests", ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            f"{namespace}_http_request_duration_seconds", "HTTP request latency", ["method", "route"],
            buckets=LATENCY_BUCKETS, registry=registry,
        )


def route_name(request: web.Request) -> str:
    """The matched route template (bounded cardinality), not the raw path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def http_recorder(metrics: HttpMetrics) -> Callable[[str, str, int, float], None]:
    """`record(method, route, status, seconds)`: count and time one finished request."""
    # Children by label values: `labels()` takes a lock and builds tuples on every call, which
    # showed in the gateway's hot-path profile. Prometheus keeps every child anyway.
    counters: dict[tuple[str, str, str], Any] = {}
    timers: dict[tuple[str, str], Any] = {}

    def record(method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, str(status))
        counter = counters.get(key)
        if counter is None:
            counter = counters[key] = metrics.requests.labels(*key)
        counter.inc()
        timer = timers.get(key[:2])
        if timer is None:
            timer = timers[key[:2]] = metrics.latency.labels(*key[:2])
        timer.observe(seconds)

    return record


async def metrics_handler(request: web.Request) -> web.Response:
    """Expose the app's registry in the Prometheus text format."""
    body = generate_latest(request.app[REGISTRY])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
