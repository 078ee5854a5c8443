"""Header hygiene: a security-relevant header sent twice is refused (400), an oversized one too (431).

Two `Authorization` headers would let a proxy and the gateway disagree about who the caller is.
Header values are never echoed or logged: messages name the header and its size only.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from gateway.middlewares.refuse import refuse

# Lower-case names; every `Mcp-*` header (Mcp-Session-Id, Mcp-Method, Mcp-Name, Mcp-Param-*,
# Mcp-Protocol-Version) is covered by the prefix.
SINGLE_HEADERS = frozenset({
    "authorization", "proxy-authorization", "cookie", "host", "origin", "content-type", "content-length",
    "transfer-encoding", "content-encoding", "last-event-id", "sec-fetch-site", "x-request-id",
})
MCP_PREFIX = "mcp-"
# aiohttp's own per-field limit is this many times the documented one; above it aiohttp answers.
PARSER_CEILING_FACTOR = 4


def duplicated(names: list[str]) -> list[str]:
    """Security-relevant header names present more than once (case-insensitive), in first-seen order."""
    seen: dict[str, int] = {}
    for name in names:
        low = name.lower()
        if low in SINGLE_HEADERS or low.startswith(MCP_PREFIX):
            seen[low] = seen.get(low, 0) + 1
    return [n for n, count in seen.items() if count > 1]


def oversized(items: Sequence[tuple[bytes, bytes]], limit: int) -> tuple[str, int] | None:
    """(name, size in bytes) of the first header whose value is over `limit`, else None."""
    for name, value in items:
        if len(value) > limit:
            return name.decode("latin-1"), len(value)
    return None


class ScrubParserErrors(logging.Filter):
    """Rewrite aiohttp's "Error handling request" records to the peer and error class: the exception
    text quotes the offending line (a bearer token, say)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None and isinstance(exc, HttpProcessingError):
            peer = record.args[0] if isinstance(record.args, tuple) and record.args else None
            record.msg = "refused an unparseable request from %s: %s (status %s)"
            record.args = (peer, type(exc).__name__, getattr(exc, "code", 400))
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


PARSER_LOG = logging.getLogger("gateway.http_parser")
if not any(isinstance(f, ScrubParserErrors) for f in PARSER_LOG.filters):
    PARSER_LOG.addFilter(ScrubParserErrors())


def server_limits(max_header_bytes: int) -> dict[str, Any]:
    """aiohttp handler_args: parser limits above ours (so our 431 answers the band in between),
    and a logger whose parser-error records never carry header bytes."""
    ceiling = max(max_header_bytes * PARSER_CEILING_FACTOR, 8190)
    # max_line_size (the request line: method, URL) keeps aiohttp's default: only fields grow.
    return {"max_field_size": ceiling, "logger": PARSER_LOG}


def header_refusal(request: web.Request, max_header_bytes: int) -> web.Response | None:
    """400 for a duplicated security-relevant header, 431 for a header value over the limit, else None."""
    raw = request.raw_headers
    names = [k.lower() for k, _ in raw]
    if len(set(names)) != len(names):  # some name repeats (rare): is it one that must not?
        twice = duplicated([k.decode("latin-1") for k in names])
        if twice:
            return refuse(request, 400, "duplicate_header", f"header sent more than once: {', '.join(twice)}")
    big = oversized(raw, max_header_bytes)
    if big is not None:
        name, size = big
        return refuse(
            request, 431, "header_too_large",
            f"header {name} is {size} bytes; the limit is {max_header_bytes} bytes",
        )
    return None
