"""Helpers shared by the REST handlers: input checks, policy checks, timed backend calls."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from aiohttp import web

from gateway.calls import audit as record
from gateway.calls import pipeline
from gateway.calls.audit import audit
from gateway.calls.call import Call, Entry
from gateway.errors import BadRequest, Denied
from gateway.gwaudit import AuditInfo
from gateway.keys import JSON_BODY, PRINCIPAL
from gateway.registry import ServerConfig
from gateway.upstream.sessions import Caller
from shared.auth import Principal
from shared.authzen import Resource, server_resource
from shared.jsonutil import loads


def principal(request: web.Request) -> Principal:
    """The authenticated caller (set by the auth middleware)."""
    return request[PRINCIPAL]


def query_server(request: web.Request) -> str:
    """The required `mcp_server` query parameter."""
    name = request.query.get("mcp_server", "").strip()
    if not name:
        raise BadRequest("query parameter 'mcp_server' is required")
    return name


async def json_object(request: web.Request, *, allow_empty: bool = False) -> dict[str, Any]:
    """The body as a JSON object, or 400 naming the problem."""
    if JSON_BODY in request:  # parsed (and its shape checked) by the JSON limits middleware
        body = request[JSON_BODY]
    else:
        raw = await request.read()
        if not raw.strip():
            if allow_empty:
                return {}
            raise BadRequest("request body is empty; expected a JSON object")
        try:
            body = loads(raw)
        except ValueError as exc:
            raise BadRequest(f"malformed JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, got {type(body).__name__}")
    return body


def field(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], *, required: bool = False, default: Any = None) -> Any:
    """One body field with its type checked; 400 names the field."""
    if name not in body or body[name] is None:
        if required:
            raise BadRequest(f"field '{name}' is required")
        return default
    value = body[name]
    if not isinstance(value, kind) or (kind is str and not value):
        expected = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise BadRequest(f"field '{name}' must be a non-empty {expected}" if kind is str else f"field '{name}' must be a {expected}")
    return value


def string_list(body: Mapping[str, Any], name: str) -> list[str] | None:
    """An optional list of non-empty strings."""
    value = field(body, name, list)
    if value is not None and not all(isinstance(v, str) and v for v in value):
        raise BadRequest(f"field '{name}' must be a list of non-empty strings")
    return value


async def allowed(request: web.Request, action: str, names: Sequence[str]) -> list[str]:
    """The servers among `names` on which the caller may `action` (a server-level action), in one PDP request."""
    found = await pipeline.decisions(request, principal(request), [(action, server_resource(n), None) for n in names])
    return [n for n, d in zip(names, found, strict=True) if d.allowed]


async def authorize(request: web.Request, action: str, resource: Resource) -> None:
    """Ask the PDP about a request that is not a call (lists, info), recorded for audit: Denied when refused."""
    decision = (await pipeline.decisions(request, principal(request), [(action, resource, None)]))[0]
    record.checked(audit(request), decision)
    if not decision.allowed:
        raise Denied(decision, f"'{action}' on '{resource.id}' is not permitted")


def audited(request: web.Request, action: str, server: str | None = None, tool: str | None = None) -> AuditInfo:
    """The request's audit record, named before anything can fail (a tool call refused for its body
    is still an `invoke_tool`); the pipeline fills in the rest of a call once it is described."""
    info = audit(request)
    info.action, info.mcp_server, info.tool = action, server, tool
    return info


def tool_call(request: web.Request, entry: Entry, tool: str, arguments: dict[str, Any],
              targets: tuple[str, ...], *, broadcast: bool = False) -> Call:
    """A REST tool call for the pipeline (gateway/calls): the caller's own subject upstream."""
    who = principal(request)
    return Call(entry, who, Caller.of(who.subject), "invoke_tool", tool, targets, arguments, broadcast)


def public_url(url: str) -> str:
    """A backend URL without userinfo or query (either may hold a credential)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def server_summary(server: ServerConfig) -> dict[str, Any]:
    """The `/mcp/servers` entry for one backend (same keys as the gateway this replaces)."""
    return {
        "name": server.name,
        # A bridged (stdio/SSE) server's `url` is the gateway's internal endpoint, whose path is a secret.
        "url": f"stdio://{server.name}" if server.stdio else public_url(server.sse_url or server.url),
        "type": server.type,
        "enabled": server.enabled,
        "description": server.description,
        "tags": list(server.tags),
    }


def elapsed_ms(start: float) -> float:
    """Milliseconds since `start` (perf_counter), rounded for JSON."""
    return round((time.perf_counter() - start) * 1000, 3)
