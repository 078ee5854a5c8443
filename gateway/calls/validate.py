"""Strict JSON Schema validation of tool arguments against the tool's own `inputSchema`: pure.

No coercion: `"1000000"` is not an integer, `true` is not a number (SDK servers would coerce the
string, so a policy condition on the typed value would be bypassed). `1000000.0` is an integer, as
JSON Schema says, and policy compares numbers by value.

Formats whose values have one canonical spelling are asserted in that spelling (`formats.py`:
`uuid` lowercase and hyphenated, `date` as YYYY-MM-DD): a backend accepts many spellings of one UUID
(upper case, no hyphens, `{…}`, `urn:uuid:`), and a policy decides on the text, so any other
spelling is refused (400 / −32602 naming the argument) rather than decided on as a different value.
Other formats (date-time, email, hostname, …) remain annotations.

`jsonschema`, every draft (2020-12 by default, as MCP says); not `fastjsonschema`, which ignores
2020-12 keywords such as `prefixItems` (fail open) and `exec`s the backend's schema. A schema is
compiled once, cached by its canonical JSON.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import orjson
from jsonschema import validators
from jsonschema.exceptions import SchemaError, ValidationError

from gateway.calls.formats import CANONICAL, FORMATS
from shared.jsonutil import dumps

log = logging.getLogger(__name__)

DEFAULT = validators.Draft202012Validator  # MCP: a schema without $schema is 2020-12
_DRAFTS = (validators.Draft4Validator, validators.Draft6Validator, validators.Draft7Validator,
           validators.Draft201909Validator, validators.Draft202012Validator)
SUPPORTED = {str(c.META_SCHEMA.get("$id") or c.META_SCHEMA.get("id")).rstrip("#"): c for c in _DRAFTS}
MAX_PROBLEMS = 3
CACHE_SIZE = 4096


class SchemaUnsupported(ValueError):
    """The tool's schema cannot be checked (invalid, unknown draft, remote `$ref`): refuse its calls."""


# The common tool schema (pydantic's and the SDKs' flat argument objects): `properties` with one
# plain `type` each, `required`, a boolean `additionalProperties`, annotations. For such a schema a
# few type() checks prove an arguments object valid without jsonschema's walk (~7 µs per call);
# anything they do not prove valid (a missing name, a 1.0 for an integer, a subclass) goes to
# jsonschema, which decides and words the problems. Any other keyword means no plan at all.
_ANNOTATIONS = frozenset({"title", "description", "default", "examples", "format", "$comment", "deprecated",
                          "readOnly", "writeOnly"})
_TOP_KEYWORDS = _ANNOTATIONS | {"$schema", "type", "properties", "required", "additionalProperties"}
_EXACT_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,), "null": (type(None),),
    "object": (dict,), "array": (list,),
}
# Drafts whose `integer` also admits 1.0 and whose keywords above mean the same (not 3/4).
_PLAN_DRAFTS = (validators.Draft6Validator, validators.Draft7Validator, validators.Draft201909Validator,
                validators.Draft202012Validator)
_ANY = None  # a property any value satisfies
Plan = tuple[dict[str, tuple[type, ...] | None], tuple[str, ...], bool]


def flat_plan(schema: Mapping[str, Any], cls: Any = DEFAULT) -> Plan | None:
    """(allowed exact types per property, required names, additional properties allowed) for a
    flat object schema, or None when the schema uses anything else."""
    if cls not in _PLAN_DRAFTS or not set(schema) <= _TOP_KEYWORDS or schema.get("type", "object") != "object":
        return None
    properties, required = schema.get("properties", {}), schema.get("required", [])
    additional = schema.get("additionalProperties", True)
    if (type(properties) is not dict or type(required) is not list or type(additional) is not bool
            or not all(type(name) is str for name in required)):
        return None
    types: dict[str, tuple[type, ...] | None] = {}
    for name, sub in properties.items():
        if sub is True:
            types[name] = _ANY
            continue
        if type(sub) is not dict or not set(sub) <= _ANNOTATIONS | {"type"} or sub.get("format") in CANONICAL:
            return None  # an asserted format: jsonschema checks it
        wanted = sub.get("type")
        if wanted is None:
            types[name] = _ANY
        elif type(wanted) is str and wanted in _EXACT_TYPES:
            types[name] = _EXACT_TYPES[wanted]
        else:
            return None
    return types, tuple(required), additional


def plan_admits(plan: Plan, arguments: dict[str, Any]) -> bool:
    """True only when `arguments` certainly satisfy the planned schema (False: ask jsonschema)."""
    types, required, additional = plan
    for name in required:
        if name not in arguments:
            return False
    for name, value in arguments.items():
        if name not in types:
            if not additional:
                return False
            continue
        allowed = types[name]
        if allowed is not _ANY and type(value) not in allowed:
            return False
    return True


class Checker:
    """A compiled schema: `problems(arguments)` lists what is wrong, empty when valid."""

    __slots__ = ("_plan", "_validator")

    def __init__(self, validator: Any, plan: Plan | None = None) -> None:
        self._validator = validator
        self._plan = plan

    def problems(self, arguments: Any) -> list[str]:
        """Up to MAX_PROBLEMS messages, each naming the argument (JSON pointer) and the rule broken."""
        if self._plan is not None and type(arguments) is dict and plan_admits(self._plan, arguments):
            return []
        try:
            if self._validator.is_valid(arguments):
                return []
            errors = sorted(self._validator.iter_errors(arguments), key=_order)
        except Exception as exc:  # an unresolvable $ref, a bad regex met late: fail closed
            raise SchemaUnsupported(f"schema could not be applied ({type(exc).__name__})") from None
        return [describe(e) for e in errors[:MAX_PROBLEMS]]


def _order(error: ValidationError) -> tuple[str, str]:
    return (pointer(error.absolute_path), str(error.validator))


def pointer(path: Any) -> str:
    """An RFC 6901 pointer for a jsonschema path ('' for the arguments object itself)."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def describe(error: ValidationError) -> str:
    """A message naming the field and the rule, without echoing the value (it may be a secret)."""
    where = pointer(error.absolute_path) or "(arguments)"
    rule, expected = str(error.validator), error.validator_value
    if rule in ("anyOf", "oneOf"):  # a refused spelling of an asserted format says so (`UUID | None`)
        spelled = next((e for e in error.context or () if e.validator == "format" and e.validator_value in CANONICAL),
                       None)
        if spelled is not None:
            rule, expected = "format", spelled.validator_value
    if rule in ("required", "additionalProperties", "dependentRequired", "propertyNames"):
        return f"{where}: {error.message}"
    if rule == "format" and expected in CANONICAL:
        return f"{where}: must be a {expected} in canonical form ({CANONICAL[expected]})"
    if rule == "type":
        wanted = expected if isinstance(expected, str) else " or ".join(map(str, expected))
        return f"{where}: must be of type {wanted}, got {_json_type(error.instance)}"
    shown = dumps(expected).decode() if not isinstance(expected, Mapping | list) else ""
    return f"{where}: fails '{rule}'" + (f" {shown[:80]}" if shown else "")


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return {str: "string", dict: "object", list: "array", type(None): "null"}.get(type(value), "unknown")


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("$ref", "$dynamicRef", "$recursiveRef") and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def compile_schema(schema: Any) -> Checker:
    """A Checker for a tool's inputSchema, or SchemaUnsupported saying why it cannot be checked."""
    if not isinstance(schema, dict):
        raise SchemaUnsupported("the tool has no inputSchema object")
    if schema.get("type", "object") != "object":
        raise SchemaUnsupported(f"inputSchema type must be 'object', got {schema.get('type')!r}")
    declared = schema.get("$schema")
    if declared is None:
        cls = DEFAULT
    elif not isinstance(declared, str) or declared.rstrip("#") not in SUPPORTED:
        raise SchemaUnsupported(f"unsupported $schema {str(declared)[:100]!r}")
    else:
        cls = SUPPORTED[declared.rstrip("#")]
    remote = [r for r in _refs(schema) if not r.startswith("#")]
    if remote:
        raise SchemaUnsupported(f"remote $ref {remote[0][:100]!r} is not followed")
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise SchemaUnsupported(f"invalid schema: {exc.message[:200]}") from None
    except Exception as exc:  # e.g. a regex the metaschema check cannot compile
        raise SchemaUnsupported(f"invalid schema ({type(exc).__name__})") from None
    # Only the formats with one canonical spelling are asserted (formats.py); others are annotations.
    return Checker(cls(schema, format_checker=FORMATS), flat_plan(schema, cls))


class SchemaCache:
    """Compiled Checkers (or the reason a schema is unsupported) by the schema's canonical hash."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._entries: dict[bytes, Checker | SchemaUnsupported] = {}
        # By identity of a catalog's tool dict: the hot path skips hashing the schema per call.
        self._by_tool: dict[int, tuple[Mapping[str, Any], Checker | SchemaUnsupported]] = {}

    def for_tool(self, tool: Mapping[str, Any]) -> Checker:
        """The Checker for a tools/list entry's inputSchema; raises SchemaUnsupported."""
        seen = self._by_tool.get(id(tool))
        if seen is None or seen[0] is not tool:
            try:
                found: Checker | SchemaUnsupported = self.checker(tool.get("inputSchema"))
            except SchemaUnsupported as exc:
                found = exc
            if len(self._by_tool) >= self.size:
                self._by_tool.clear()
            seen = self._by_tool[id(tool)] = (tool, found)
        if isinstance(seen[1], SchemaUnsupported):
            raise seen[1]
        return seen[1]

    def checker(self, schema: Any) -> Checker:
        """The compiled Checker for `schema`; raises SchemaUnsupported (cached too)."""
        try:
            canonical = orjson.dumps(schema, option=orjson.OPT_SORT_KEYS)
        except TypeError:
            raise SchemaUnsupported("the schema is not plain JSON") from None
        key = hashlib.blake2b(canonical, digest_size=16).digest()
        found = self._entries.get(key)
        if found is None:
            try:
                found = compile_schema(schema)
            except SchemaUnsupported as exc:
                log.warning("tool input schema refused; calls to the tool are refused",
                            extra={"reason": str(exc)})
                found = exc
            if len(self._entries) >= self.size:
                self._entries.clear()
            self._entries[key] = found
        if isinstance(found, SchemaUnsupported):
            raise found
        return found


__all__ = ["Checker", "SchemaCache", "SchemaUnsupported", "compile_schema", "flat_plan", "plan_admits"]
