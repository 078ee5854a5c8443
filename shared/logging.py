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
# The X-Request-ID the caller sent, kept apart from ours: a caller must not be able to make its log
# lines and audit rows share another request's id (ours is always minted here).
caller_request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller_request_id", default=None)

# The header that carries the request id between services (gateway -> PDP) and back to callers.
REQUEST_ID_HEADER = "X-Request-ID"
# Anything else (newlines, huge values) would end up in logs and audit rows verbatim.
_VALID_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def valid_request_id(value: str | None) -> str | None:
    """`value` when it is safe to log and store as a request id, else None."""
    return value if value and _VALID_ID.fullmatch(value) else None


def caller_request_id(stated: object = None) -> dict[str, str]:
    """`{"caller_request_id": …}` for an audit row's extra: the id the caller stated (in a request
    body, e.g. a PEP's evaluation context) or sent as X-Request-ID, when well-formed; else {}."""
    value = valid_request_id(stated if isinstance(stated, str) else None) or caller_request_id_var.get()
    return {"caller_request_id": value} if value else {}


def request_id_middleware(
    key: web.RequestKey[str] | None = None,
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Mint this request's id for the logging context and audit rows, and send it back.

    A caller's X-Request-ID is never our id (a caller could make its rows share another request's
    id); a well-formed one (`valid_request_id`: 1-64 of A-Z a-z 0-9 . _ : -) is kept apart as
    `caller_request_id` in log lines and audit rows, anything else is dropped.
    """

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        rid = os.urandom(16).hex()
        if key is not None:  # handlers that put the id in bodies or audit rows read it here
            request[key] = rid
        token = request_id_var.set(rid)
        caller = caller_request_id_var.set(valid_request_id(request.headers.get(REQUEST_ID_HEADER)))
        try:
            response = await handler(request)
        finally:
            caller_request_id_var.reset(caller)
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
        self._stamp = (-1, "")  # (second, its strftime): one tuple, swapped whole (lines are formatted unlocked)

    def format(self, record: logging.LogRecord) -> str:
        extras = {k: v for k, v in record.__dict__.items() if k not in _STANDARD and not k.startswith("_")}
        if record.exc_info:
            extras["exc"] = self.formatException(record.exc_info)
        return self.line(record.created, int(record.msecs), record.levelname, record.name, record.getMessage(), extras)

    def line(self, created: float, msecs: int, level: str, logger: str, msg: str, extras: dict[str, Any]) -> str:
        """The JSON line (no newline) for these fields: `format` and `direct_line` both use it."""
        second = int(created)
        cached, stamp = self._stamp
        if second != cached:  # strftime once per second, not per line
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
            self._stamp = (second, stamp)
        entry: dict[str, Any] = {
            "ts": f"{stamp}.{msecs:03d}Z",
            "level": level,
            "service": self.service,
            "logger": logger,
            "msg": msg,
        }
        rid = request_id_var.get()
        if rid:
            entry["request_id"] = rid
            caller = caller_request_id_var.get()
            if caller:
                entry["caller_request_id"] = caller
        trace_id = current_trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        entry.update(extras)
        try:
            return dumps(entry).decode()
        except TypeError:
            # An `extra=` value JSON cannot carry must not cost the whole log line.
            return dumps({k: v if _plain(v) else repr(v) for k, v in entry.items()}).decode()


def direct_handler(logger: logging.Logger, level: int) -> logging.StreamHandler[Any] | None:
    """The one stdout JSON handler a record of `logger` at `level` would reach, when nothing else
    (a filter, another handler, a parent in between, a custom LogRecord factory: it may redact)
    could see or change it; else None.

    Then `direct_line` writes the exact line `JsonFormatter` would, without building a LogRecord
    (caller lookup, thread and process names, ~30 calls): the access log's per-request cost.
    """
    if logger.handlers or logger.filters or not logger.propagate or logger.disabled \
            or logging.getLogRecordFactory() is not logging.LogRecord:
        return None
    root = logger.parent
    if root is not logging.root or len(root.handlers) != 1 or logging.root.manager.disable >= level:
        return None
    handler = root.handlers[0]
    if (type(handler) is not logging.StreamHandler or not getattr(handler, "_mcpgw", False)
            or type(handler.formatter) is not JsonFormatter or handler.filters or level < handler.level):
        return None
    return handler


def direct_line(handler: logging.StreamHandler[Any], level: int, logger: str, msg: str, extras: dict[str, Any]) -> None:
    """Write one line through `handler` (from `direct_handler`) as `handler.emit` would."""
    created = time.time()
    formatter = handler.formatter
    assert type(formatter) is JsonFormatter
    text = formatter.line(created, int((created - int(created)) * 1000), logging.getLevelName(level), logger, msg, extras)
    handler.acquire()
    try:
        handler.stream.write(text + handler.terminator)
        handler.stream.flush()
    except Exception:  # noqa: BLE001 - as logging does: a broken stdout never fails the request
        handler.handleError(logging.makeLogRecord({"msg": msg, "name": logger}))
    finally:
        handler.release()


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
