"""`Mcp-Param-*` headers (2026-07-28 `x-mcp-header`): checked against the body, rebuilt from it. Pure.

A header could claim one value while the body carries another, so the client's are never copied:
any it sends must equal what the tool's schema and the arguments give (−32020 otherwise), and what
is forwarded is rebuilt from the body.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from gateway.mcp import protocol

PREFIX = "Mcp-Param-"
X_MCP_HEADER = "x-mcp-header"


def declared(schema: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], str]]:
    """(argument path, header token) of every `x-mcp-header` reachable through `properties` chains."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return
    for key, sub in props.items():
        if not isinstance(sub, dict):
            continue
        token = sub.get(X_MCP_HEADER)
        if isinstance(token, str) and token:
            yield (*path, key), token
        yield from declared(sub, (*path, key))


def _render(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return None


def _at(arguments: Any, path: tuple[str, ...]) -> Any:
    node = arguments
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def expected(schema: Any, arguments: Any) -> dict[str, str]:
    """The `Mcp-Param-*` headers a call with `arguments` carries for a tool with input `schema`."""
    out: dict[str, str] = {}
    for path, token in declared(schema):
        rendered = _render(_at(arguments, path))
        if rendered is not None:
            out[PREFIX + token] = protocol.encode_header(rendered) if rendered else ""
    return out


def sent(headers: Mapping[str, str]) -> dict[str, str]:
    """The client's `Mcp-Param-*` headers, names lower-cased; −32020 for one sent twice."""
    low = PREFIX.lower()
    out: dict[str, str] = {}
    for key, value in headers.items():
        name = key.lower()
        if name.startswith(low):
            if name in out:
                raise protocol.RpcFailure(protocol.HEADER_MISMATCH, f"{name} header appears more than once")
            out[name] = value
    return out


def check(client: Mapping[str, str], wanted: Mapping[str, str]) -> None:
    """The client's headers (lower-cased names) must be exactly `wanted`, values compared decoded; −32020 else."""
    folded = {k.lower(): v for k, v in wanted.items()}
    for name in sorted(set(client) | set(folded)):
        have, want = client.get(name), folded.get(name)
        if have is None or want is None or protocol.decode_header(have) != protocol.decode_header(want):
            raise protocol.RpcFailure(protocol.HEADER_MISMATCH, f"{name} header does not match the body's arguments")
