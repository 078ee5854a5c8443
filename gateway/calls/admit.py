"""Admission of one tool call to one backend, after the PDP and before forwarding: the tool is in
the backend's catalog (exact name) and its arguments satisfy its inputSchema strictly, so what the
PDP decided on is what is forwarded, with the schema's types (docs/security/arguments.md).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from gateway.calls.validate import SchemaCache, SchemaUnsupported
from gateway.errors import GatewayError
from gateway.registry import ServerConfig
from gateway.upstream.sessions import Caller

log = logging.getLogger(__name__)

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class Refused(GatewayError, status=400, code="bad_request"):
    """A call refused before forwarding; `rpc_code` is its JSON-RPC error code on MCP routes."""

    rpc_code = INVALID_PARAMS


class UnknownTool(Refused, status=404, code="not_found"):
    """The tool is not in the backend's current catalog (names match exactly)."""

    @classmethod
    def of(cls, tool: str, server: str) -> UnknownTool:
        """The refusal of `tool` on `server`, worded alike wherever it is found missing."""
        return cls(f"unknown tool '{tool}' on MCP server '{server}'")


class InvalidArguments(Refused, status=400, code="invalid_arguments"):
    """The arguments do not satisfy the tool's inputSchema."""


class UncheckableSchema(Refused, status=502, code="unsupported_tool_schema"):
    """The backend's schema for the tool cannot be checked: its calls are refused (fail closed)."""

    rpc_code = INTERNAL_ERROR


class Catalogs(Protocol):
    """What admission needs of the upstream pool."""

    async def catalog(self, server: ServerConfig | str,
                      caller: Caller | None = None) -> Mapping[str, Mapping[str, Any]]: ...


async def admit(pool: Catalogs, schemas: SchemaCache, server: ServerConfig, tool: str, arguments: Any,
                caller: Caller | None = None) -> Mapping[str, Any]:
    """The tool's catalog entry; raise a Refused unless `tool` exists on `server` (as `caller`'s
    session lists it) and `arguments` fit its inputSchema."""
    definition = (await pool.catalog(server, caller)).get(tool)
    if definition is None:
        raise UnknownTool.of(tool, server.name)
    check_arguments(schemas, server, tool, definition, arguments)
    return definition


def check_arguments(schemas: SchemaCache, server: ServerConfig, tool: str, definition: Mapping[str, Any],
                    arguments: Any) -> None:
    """The pure half of `admit`: the arguments against one catalog entry."""
    if not server.validate_arguments:
        return
    if arguments is None:
        arguments = {}  # MCP: arguments may be omitted
    if not isinstance(arguments, dict):
        raise InvalidArguments(f"invalid arguments for tool '{tool}': (arguments): must be an object")
    try:
        problems = schemas.for_tool(definition).problems(arguments)
    except SchemaUnsupported as exc:
        log.warning("call refused: unusable input schema",
                    extra={"server": server.name, "tool": tool, "reason": str(exc)})
        raise UncheckableSchema(
            f"tool '{tool}' on MCP server '{server.name}' has an input schema the gateway cannot "
            f"check ({exc}); its calls are refused") from None
    if problems:
        raise InvalidArguments(f"invalid arguments for tool '{tool}': {'; '.join(problems)}",
                               details={"problems": problems})


def refused_everywhere(refusals: Mapping[str, Refused], targets: Sequence[str]) -> InvalidArguments | None:
    """In a broadcast, the InvalidArguments to answer with when every target refused the call and at
    least one because the arguments are invalid: a bad broadcast is answered like a bad single call."""
    if not targets or any(t not in refusals for t in targets):
        return None
    return next((e for e in refusals.values() if isinstance(e, InvalidArguments)), None)
