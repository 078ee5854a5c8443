"""Admission of one tool call to one backend: the tool is in the backend's catalog (exact name)
and its arguments satisfy the tool's inputSchema strictly. Shared by every entry point.

Runs after the PDP has allowed the call and before anything is forwarded: a caller the policy
refuses learns nothing about the catalog (403, no backend asked), and the arguments the PDP decided
on are exactly those forwarded, now known to have the schema's types (no string standing in for a
number that a lax backend would coerce). See docs/security/arguments.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from gateway.broadcast import run_calls
from gateway.calls.validate import SchemaCache, SchemaUnsupported
from gateway.errors import GatewayError
from gateway.registry import ServerConfig

log = logging.getLogger(__name__)

INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603


class Refused(GatewayError, status=400, code="bad_request"):
    """A call refused before forwarding; `rpc_code` is its JSON-RPC error code on MCP routes."""

    rpc_code = INVALID_PARAMS


class UnknownTool(Refused, status=404, code="not_found"):
    """The tool is not in the backend's current catalog (names match exactly)."""


class InvalidArguments(Refused, status=400, code="invalid_arguments"):
    """The arguments do not satisfy the tool's inputSchema."""


class UncheckableSchema(Refused, status=502, code="unsupported_tool_schema"):
    """The backend's schema for the tool cannot be checked: its calls are refused (fail closed)."""

    rpc_code = INTERNAL_ERROR


class Catalogs(Protocol):
    """What admission needs of the upstream pool."""

    async def catalog(self, server: ServerConfig | str) -> Mapping[str, Mapping[str, Any]]: ...


async def admit(pool: Catalogs, schemas: SchemaCache, server: ServerConfig, tool: str, arguments: Any) -> None:
    """Raise a Refused unless `tool` exists on `server` and `arguments` fit its inputSchema."""
    definition = (await pool.catalog(server)).get(tool)
    if definition is None:
        raise UnknownTool(f"unknown tool '{tool}' on MCP server '{server.name}'")
    check_arguments(schemas, server, tool, definition, arguments)


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


async def admit_many(
    pool: Catalogs, schemas: SchemaCache, servers: Mapping[str, ServerConfig], names: Sequence[str], tool: str,
    arguments: Any, *, deadline: float, describe_error: Callable[[BaseException], str],
) -> tuple[list[str], dict[str, str]]:
    """(targets admitted, {target: why not}) for a broadcast; each target checked on its own catalog.

    When nothing is admitted because the arguments are invalid, that InvalidArguments is raised:
    a broadcast of a bad call is answered like a single bad call.
    """
    async def check(name: str) -> Refused | None:
        try:
            await admit(pool, schemas, servers[name], tool, arguments)
        except Refused as exc:
            return exc
        return None

    checked, failed = await run_calls(names, check, timeouts={n: servers[n].timeout for n in names if n in servers},
                                      deadline=max(deadline, 0.001), describe_error=describe_error)
    refusals = {n: e for n, e in checked.items() if e is not None}
    admitted = [n for n in names if n in checked and checked[n] is None]
    invalid = [e for e in refusals.values() if isinstance(e, InvalidArguments)]
    if names and not admitted and invalid:
        raise invalid[0]
    return admitted, {**{n: e.message for n, e in refusals.items()}, **failed}
