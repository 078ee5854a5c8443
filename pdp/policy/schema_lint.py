"""Warnings where a rule's argument condition cannot match the tool's own inputSchema: pure.

`equals: 1000000` on a property the schema types as string never holds (the gateway refuses a
number there, and the string "1000000" is not equal to the number): a deny rule written that way
silently does nothing. So does a pointer to a property the schema does not declare. A number
compared where the schema also admits a string is flagged too (the backend parses the text). These are
warnings, not errors: the policy is valid, the catalog may change, and a rule may target tools of
several servers. Used by `mcpgw policy validate --tools FILE | --gateway URL`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pdp.policy.model import ArgCondition, Condition, Policy
from pdp.policy.naming import glob_match, regex_full_match
from pdp.policy.values import as_bool, as_number

ANY = frozenset({"null", "boolean", "object", "array", "number", "integer", "string"})


@dataclass(frozen=True)
class Tool:
    """One tool of the catalog: its server ("*" when unknown), name and inputSchema."""

    server: str
    name: str
    schema: Mapping[str, Any]


@dataclass(frozen=True)
class LintWarning:
    """A condition that cannot match a tool's schema; `rule` is its index in `policy.rules`."""

    rule: int
    pointer: str
    message: str


def tools_from_json(doc: Any) -> list[Tool]:
    """Tools from a tools/list result, a JSON-RPC answer, the gateway's `GET /tools`, a bare list,
    or `{"servers": {name: {"tools": [...]}}}`; raise ValueError when it is none of these."""
    if isinstance(doc, dict) and isinstance(doc.get("servers"), dict):
        out: list[Tool] = []
        for server, body in doc["servers"].items():
            items = body.get("tools") if isinstance(body, dict) else body
            out += [Tool(str(server), t.name, t.schema) for t in tools_from_json(items or [])]
        return out
    if isinstance(doc, dict) and isinstance(doc.get("result"), dict):
        doc = doc["result"]
    if isinstance(doc, dict):
        doc = doc.get("tools")
    if not isinstance(doc, list):
        raise ValueError("expected a tools/list result ({\"tools\": [...]}), a list of tools, or {\"servers\": {...}}")
    out = []
    for item in doc:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            continue
        raw_meta, raw_schema = item.get("_meta"), item.get("inputSchema")
        meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
        schema: dict[str, Any] = raw_schema if isinstance(raw_schema, dict) else {}
        servers = meta.get("mcpgw/servers")  # GET /tools: one entry per name, the servers offering it
        one = meta.get("io.mcpgw/server")  # the /mcp list: names are `{server}__{tool}`
        if isinstance(servers, list):
            out += [Tool(str(s), item["name"], schema) for s in servers]
        elif isinstance(one, str):
            name = item["name"].removeprefix(f"{one}__")
            out.append(Tool(one, name, schema))
        else:
            out.append(Tool("*", item["name"], schema))
    return out


def lint(policy: Policy, tools: Sequence[Tool]) -> list[LintWarning]:
    """Every argument condition that cannot match the schema of a tool its rule applies to."""
    out: list[LintWarning] = []
    for i, rule in enumerate(policy.rules):
        cond = rule.condition
        if not cond.arguments:
            continue
        names_tools = cond.tool_name is not None or cond.tool_name_pattern is not None
        targets = [t for t in tools if _applies(cond, t)]
        for arg in cond.arguments:
            for tool in targets:
                problem = check(arg, tool.schema, missing_is_problem=names_tools)
                if problem:
                    where = tool.name if tool.server == "*" else f"{tool.server}:{tool.name}"
                    out.append(LintWarning(i, arg.pointer, f"{problem} in the inputSchema of {where}"))
    return out


def _applies(cond: Condition, tool: Tool) -> bool:
    if cond.mcp_server is not None and tool.server != "*" and not glob_match(tool.server, cond.mcp_server):
        return False
    if cond.tool_name is not None and not glob_match(tool.name, cond.tool_name):
        return False
    return cond.tool_name_pattern is None or regex_full_match(tool.name, cond.tool_name_pattern)


def check(arg: ArgCondition, schema: Mapping[str, Any], *, missing_is_problem: bool = True) -> str | None:
    """Why `arg` can never hold for arguments valid under `schema`, or None."""
    sub = resolve(schema, arg.pointer)
    if sub is None:
        return f"{arg.pointer} is not declared" if missing_is_problem and arg.op != "absent" else None
    types = json_types(sub, schema)
    if arg.op == "pattern" and "string" not in types and not (arg.by_value and types & {"integer", "number"}):
        return f"'pattern' needs a string, but {arg.pointer} is {_show(types)}"
    if arg.normalize and "string" not in types:
        return f"'normalize' has no effect: {arg.pointer} is {_show(types)}"
    operands = [arg.value] if arg.op == "equals" else list(arg.value) if arg.op == "in" else []
    bad = [v for v in operands if not _can_match(v, types, arg.by_value)]
    if bad and len(bad) == len(operands):
        return f"{arg.op} {_operands(bad)} can never match: {arg.pointer} is {_show(types)}"
    if bad:
        return f"in-list members {_operands(bad)} can never match: {arg.pointer} is {_show(types)}"
    numbers = [v for v in operands if isinstance(v, int | float) and not isinstance(v, bool)]
    if numbers and "string" in types:
        # pydantic's Decimal is anyOf[number, string]: the backend parses the text and acts on the number
        if arg.by_value:
            return (f"{arg.pointer} admits a string a backend may parse as a number: this deny rule holds "
                    f"for every spelling of {_operands(numbers)} (compared by value), but a schema typing "
                    "it as a number would let the gateway refuse text outright")
        return (f"{arg.pointer} admits a string a backend may parse as a number: this allow rule matches "
                f"the JSON number {_operands(numbers)} only, never a string spelling of it")
    return None


def _can_match(operand: Any, types: frozenset[str], by_value: bool) -> bool:
    """Whether a value valid under `types` may equal `operand` (a deny rule compares by value:
    the number 5 matches the text "5", the text "5" the number 5, true the text "yes")."""
    if types & value_types(operand):
        return True
    if not by_value:
        return False
    if isinstance(operand, bool | int | float):
        return "string" in types or (not isinstance(operand, bool) and "boolean" in types and operand in (0, 1))
    return isinstance(operand, str) and (
        (as_number(operand) is not None and bool(types & {"integer", "number", "boolean"}))
        or (as_bool(operand) is not None and "boolean" in types))


def resolve(schema: Mapping[str, Any], pointer: str) -> Mapping[str, Any] | None:
    """The subschema an RFC 6901 pointer into the arguments reaches, or None if undeclared."""
    node: Mapping[str, Any] = _deref(schema, schema)
    for raw in pointer.split("/")[1:]:
        token = raw.replace("~1", "/").replace("~0", "~")
        props = node.get("properties")
        if isinstance(props, dict) and token in props and isinstance(props[token], dict):
            node = _deref(props[token], schema)
            continue
        items = node.get("items")
        if token.isdigit() and isinstance(items, dict):
            node = _deref(items, schema)
            continue
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            node = _deref(extra, schema)
            continue
        return None
    return node


def _deref(node: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    for _ in range(32):
        ref = node.get("$ref")
        if not (isinstance(ref, str) and ref.startswith("#/")):
            return node
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part.replace("~1", "/").replace("~0", "~")) if isinstance(target, dict) else None
        if not isinstance(target, dict):
            return {}
        node = target
    return {}


def json_types(node: Mapping[str, Any], root: Mapping[str, Any]) -> frozenset[str]:
    """The JSON types a value valid under `node` may have (ANY when unconstrained)."""
    node = _deref(node, root)
    if "const" in node:
        return value_types(node["const"])
    if isinstance(node.get("enum"), list):
        return frozenset().union(*(value_types(v) for v in node["enum"])) if node["enum"] else frozenset()
    declared = node.get("type")
    types: frozenset[str] = ANY
    if isinstance(declared, str):
        types = frozenset({declared})
    elif isinstance(declared, list):
        types = frozenset(t for t in declared if isinstance(t, str))
    if "number" in types:
        types |= {"integer"}  # every integer is a number
    for key in ("anyOf", "oneOf"):
        options = node.get(key)
        if isinstance(options, list) and options:
            types &= frozenset().union(*(json_types(o, root) for o in options if isinstance(o, dict)))
    for option in node.get("allOf") or ():
        if isinstance(option, dict):
            types &= json_types(option, root)
    return types


def value_types(value: Any) -> frozenset[str]:
    """The schema types a JSON value satisfies (1.0 is an integer, as JSON Schema says)."""
    if value is None:
        return frozenset({"null"})
    if isinstance(value, bool):
        return frozenset({"boolean"})
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return frozenset({"integer", "number"})
    if isinstance(value, float):
        return frozenset({"number"})
    if isinstance(value, str):
        return frozenset({"string"})
    return frozenset({"array"}) if isinstance(value, list) else frozenset({"object"})


def _show(types: Iterable[str]) -> str:
    names = sorted(set(types) - ({"integer"} if "number" in types else set()))
    return "of type " + " or ".join(names) if names else "never valid"


def _operands(values: list[Any]) -> str:
    import json

    return ", ".join(json.dumps(v, ensure_ascii=False)[:40] for v in values)
