"""Structured JSON logging to stdout, with a request id carried in a context variable."""

from __future__ import annotations

import contextvars
import logging
import os
import re
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from shared.jsonutil import dumps
from shared.tracing import current_trace_id

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

# The header that carries the request id between services (gateway -> PDP) and back to callers.
REQUEST_ID_HEADER = "X-Request-ID"
# Anything else (newlines, huge values) would end up in logs and audit rows verbatim.
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def valid_request_id(value: str | None) -> str | None:
    """`value` when it is safe to log and store as a request id, else None."""
    return value if value and _VALID_ID.fullmatch(value) else None


def request_id_middleware(
    key: web.RequestKey[str] | None = None,
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Reuse a well-formed incoming request id (or mint one) for the logging context; echo it."""

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        rid = valid_request_id(request.headers.get(REQUEST_ID_HEADER)) or os.urandom(16).hex()
        if key is not None:  # handlers that put the id in bodies or audit rows read it here
            request[key] = rid
        token = request_id_var.set(rid)
        try:
            response = await handler(request)
        finally:
            request_id_var.reset(token)
        response.headers[REQUEST_ID_HEADER] = rid
        return response

    return middleware

# Attributes every LogRecord has; anything else was passed through `extra=` and is logged.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, msg, request_id, extras."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
        trace_id = current_trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        try:
            return dumps(entry).decode()
        except TypeError:
            # An `extra=` value JSON cannot carry must not cost the whole log line.
            return dumps({k: v if _plain(v) else repr(v) for k, v in entry.items()}).decode()


def _plain(value: Any) -> bool:
    try:
        dumps(value)
    except TypeError:
        return False
    return True


def setup_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Install one stdout handler on the root logger (idempotent)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_mcpgw", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stdout)
    handler._mcpgw = True  # type: ignore[attr-defined]
    if fmt == "json":
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
