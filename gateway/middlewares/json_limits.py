"""JSON limits: every JSON request body is parsed once, here, and its shape checked at the edge.

A body beyond the `max_json_*` settings is refused (400; −32600 on the MCP endpoints) before the
PDP, a backend or the audit redactor sees it. The parsed body is kept under `JSON_BODY`; a body
that is not JSON is left to the handler, which answers its own parse error.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from gateway.errors import BadRequest, PayloadTooLarge, RequestTimeout
from gateway.keys import AUDIT_INFO, JSON_BODY
from gateway.middlewares.refuse import rpc_refusal

# The routes that speak JSON-RPC (gateway/routes/mcp.py): refusals there are JSON-RPC errors.
RPC_ROUTES = frozenset({"/mcp", "/servers/{name}/mcp"})


@dataclass(frozen=True, slots=True)
class JsonLimits:
    """The largest JSON request body shape accepted (gateway settings `max_json_*`)."""

    max_depth: int = 64
    max_string: int = 262_144
    max_items: int = 10_000


def shape_problem(value: Any, limits: JsonLimits) -> str | None:
    """What makes a parsed JSON value exceed `limits`, or None. Iterative: no recursion to exhaust."""
    max_depth, max_string, max_items = limits.max_depth, limits.max_string, limits.max_items
    kind = type(value)
    if kind is str:
        return _too_long(len(value), max_string)
    if kind is not dict and kind is not list:
        return None
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            return f"JSON body nested deeper than {max_depth} levels"
        size = len(node)
        if size > max_items:
            what = "object has" if type(node) is dict else "array has"
            return f"a JSON {what} {size} members; at most {max_items} are accepted"
        if type(node) is dict:
            for key in node:
                if len(key) > max_string:
                    return _too_long(len(key), max_string)
            items = node.values()
        else:
            items = node
        if size > _BULK:
            problem = _bulk(items, depth, stack, max_string)
            if problem is not None:
                return problem
            continue
        for item in items:
            kind = type(item)
            if kind is str:
                if len(item) > max_string:
                    return _too_long(len(item), max_string)
            elif kind is dict or kind is list:
                stack.append((item, depth + 1))
    return None


# Above this many members, member types are collected with C-level `map(type, ...)`: a long array
# of numbers then costs a few ns per element instead of a Python loop iteration each.
_BULK = 32


def _bulk(items: Any, depth: int, stack: list[tuple[Any, int]], max_string: int) -> str | None:
    kinds = set(map(type, items))
    if str in kinds:
        problem = _too_long(max([len(item) for item in items if type(item) is str]), max_string)
        if problem is not None:
            return problem
    if dict in kinds or list in kinds:
        stack.extend([(item, depth + 1) for item in items if type(item) is dict or type(item) is list])
    return None


def _too_long(length: int, max_string: int) -> str | None:
    return f"a JSON string of {length} characters; at most {max_string} are accepted" if length > max_string else None


async def read_json_body(request: web.Request, limits: JsonLimits, body_timeout: float = 30.0) -> web.Response | None:
    """Read the body once, within `body_timeout` (408, slow-body guard); parse a JSON body once and
    refuse it beyond `limits` (400). None to go on: the parse is cached under `JSON_BODY` (a body
    that is not JSON is left to the handler, which names the problem its way)."""
    if not request.body_exists:
        return None
    resource = request.match_info.route.resource
    rpc = resource is not None and resource.canonical in RPC_ROUTES
    try:
        if request.content.is_eof():  # all of it arrived with the headers: nothing to wait for
            raw = await request.read()
        else:
            async with asyncio.timeout(body_timeout):
                raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        if not rpc:
            raise
        return _refuse(request, 413, "request body too large", rpc)
    except TimeoutError:
        message = f"request body not received within {body_timeout:g} s (MCPGW_GATEWAY_BODY_TIMEOUT)"
        return _refuse(request, 408, message, rpc)
    body: Any = None
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" not in str(exc):
            return None
        problem: str | None = f"JSON body nested deeper than {limits.max_depth} levels"
    else:
        problem = shape_problem(body, limits)
    if problem is not None:
        return _refuse(request, 400, problem, rpc, body)
    request[JSON_BODY] = body
    return None


def _refuse(request: web.Request, status: int, message: str, rpc: bool, body: Any = None) -> web.Response:
    info = request.get(AUDIT_INFO)
    if info is not None:
        info.note(refused_body=message)
    if not rpc:
        raise {413: PayloadTooLarge, 408: RequestTimeout}.get(status, BadRequest)(message)
    if info is not None:
        info.error = f"invalid_request: {message}"
    rid = body.get("id") if isinstance(body, dict) else None
    return rpc_refusal(status, message, None if isinstance(rid, bool) or not isinstance(rid, str | int) else rid)
