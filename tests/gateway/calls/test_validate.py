"""Strict argument validation against a tool's inputSchema (gateway/calls/validate.py, admit.py): pure."""

from __future__ import annotations

import itertools
import random

import pytest

from gateway.calls.admit import (
    InvalidArguments,
    UncheckableSchema,
    UnknownTool,
    check_arguments,
    refused_everywhere,
)
from gateway.calls.validate import (
    Checker,
    SchemaCache,
    SchemaUnsupported,
    compile_schema,
    flat_plan,
    plan_admits,
)
from gateway.registry import ServerConfig

# What the SDK (pydantic) publishes for `def transfer(to: str, amount: int, memo: str | None = None)`.
TRANSFER = {
    "type": "object",
    "properties": {
        "to": {"type": "string", "title": "To"},
        "amount": {"type": "integer", "title": "Amount"},
        "memo": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
    },
    "required": ["to", "amount"],
    "title": "transferArguments",
}
NESTED = {
    "type": "object",
    "$defs": {"Item": {"type": "object", "properties": {"qty": {"type": "number", "minimum": 0}},
                       "required": ["qty"], "additionalProperties": False}},
    "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}},
                   "mode": {"enum": ["fast", "safe"]}, "flag": {"type": "boolean"}},
    "additionalProperties": False,
}
DRAFT7 = {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object",
          "properties": {"n": {"type": "integer", "maximum": 10}}}


@pytest.mark.parametrize("schema,args,problems", [
    (TRANSFER, {"to": "bob", "amount": 1000000}, []),
    (TRANSFER, {"to": "bob", "amount": 1000000.0}, []),  # an integer in JSON Schema; policy compares by value
    (TRANSFER, {"to": "bob", "amount": 1e6}, []),
    (TRANSFER, {"to": "bob", "amount": 5, "memo": None}, []),
    # The reported bypasses: strings a lax backend would coerce to 1000000.
    (TRANSFER, {"to": "bob", "amount": "1000000"}, ["/amount: must be of type integer, got string"]),
    (TRANSFER, {"to": "bob", "amount": "1e6"}, ["/amount: must be of type integer, got string"]),
    (TRANSFER, {"to": "bob", "amount": " 1000000"}, ["/amount: must be of type integer, got string"]),
    (TRANSFER, {"to": "bob", "amount": "1000000.0"}, ["/amount: must be of type integer, got string"]),
    (TRANSFER, {"to": "bob", "amount": True}, ["/amount: must be of type integer, got boolean"]),
    (TRANSFER, {"to": "bob", "amount": 1.5}, ["/amount: must be of type integer, got number"]),
    (TRANSFER, {"to": 7, "amount": 1}, ["/to: must be of type string, got number"]),
    (TRANSFER, {"amount": 1}, ["(arguments): 'to' is a required property"]),
    (TRANSFER, {"to": "bob", "amount": 1, "memo": 3}, ["/memo: fails 'anyOf'"]),
    (NESTED, {"items": [{"qty": 1}, {"qty": 2.5}], "mode": "safe", "flag": False}, []),
    (NESTED, {"items": [{"qty": "1"}]}, ["/items/0/qty: must be of type number, got string"]),
    (NESTED, {"items": [{"qty": -1}]}, ["/items/0/qty: fails 'minimum' 0"]),
    (NESTED, {"items": [{"qty": 1, "x": 1}]}, ["/items/0: Additional properties are not allowed ('x' was unexpected)"]),
    (NESTED, {"mode": "Fast"}, ["/mode: fails 'enum'"]),
    (NESTED, {"flag": "true"}, ["/flag: must be of type boolean, got string"]),
    (NESTED, {"flag": 1}, ["/flag: must be of type boolean, got number"]),
    (DRAFT7, {"n": 11}, ["/n: fails 'maximum' 10"]),
    (DRAFT7, {"n": "3"}, ["/n: must be of type integer, got string"]),
    ({"type": "object", "properties": {"d": {"type": "string", "format": "date-time"}}}, {"d": "not a date"}, []),
    ({"type": "object", "properties": {"d": {"type": "string", "format": "date"}}}, {"d": "not a date"},
     ["/d: must be a date in canonical form (YYYY-MM-DD)"]),
])
def test_problems(schema, args, problems):
    assert compile_schema(schema).problems(args) == problems


def test_problems_never_echo_the_value():
    [message] = compile_schema(TRANSFER).problems({"to": "bob", "amount": "s3cret-token"})
    assert "s3cret" not in message


@pytest.mark.parametrize("schema,why", [
    (None, "no inputSchema"),
    ({"type": "array"}, "must be 'object'"),
    ({"type": "object", "$schema": "https://example.com/my-draft"}, "unsupported $schema"),
    ({"type": "object", "properties": {"a": {"$ref": "https://example.com/s.json"}}}, "remote $ref"),
    ({"type": "object", "properties": {"a": {"type": "strin"}}}, "invalid schema"),
    ({"type": "object", "required": "a"}, "invalid schema"),
])
def test_uncheckable_schemas_are_refused(schema, why):
    with pytest.raises(SchemaUnsupported, match=why.replace("$", r"\$")):
        compile_schema(schema)


def test_schema_cache_compiles_once_per_schema_and_remembers_refusals():
    cache = SchemaCache()
    tool = {"name": "t", "inputSchema": TRANSFER}
    same = {"name": "u", "inputSchema": dict(TRANSFER)}  # equal schema, other server
    assert cache.for_tool(tool) is cache.for_tool(tool) is cache.for_tool(same)
    bad = {"name": "b", "inputSchema": {"type": "object", "$schema": "x"}}
    for _ in range(2):
        with pytest.raises(SchemaUnsupported):
            cache.for_tool(bad)


STRICT = ServerConfig(name="bank", url="http://127.0.0.1:1/mcp")
LAX = ServerConfig(name="bank", url="http://127.0.0.1:1/mcp", validate_arguments=False)


@pytest.mark.parametrize("server,args,refused", [
    (STRICT, {"to": "bob", "amount": 1}, None),
    (STRICT, None, InvalidArguments),  # omitted arguments are {}: 'to' is missing
    (STRICT, ["to", "bob"], InvalidArguments),
    (STRICT, {"to": "bob", "amount": "1"}, InvalidArguments),
    (LAX, {"to": "bob", "amount": "1"}, None),  # the per-server opt-out
])
def test_check_arguments(server, args, refused):
    tool = {"name": "transfer", "inputSchema": TRANSFER}
    if refused is None:
        check_arguments(SchemaCache(), server, "transfer", tool, args)
        return
    with pytest.raises(refused) as info:
        check_arguments(SchemaCache(), server, "transfer", tool, args)
    assert info.value.status == 400 and info.value.rpc_code == -32602 and "transfer" in info.value.message


def test_an_uncheckable_schema_refuses_the_call_with_a_clear_message():
    tool = {"name": "t", "inputSchema": {"type": "object", "properties": {"a": {"$ref": "http://x/y"}}}}
    with pytest.raises(UncheckableSchema, match="cannot check .*remote \\$ref.*refused") as info:
        check_arguments(SchemaCache(), STRICT, "t", tool, {})
    assert info.value.status == 502
    check_arguments(SchemaCache(), LAX, "t", tool, {})  # opted out: not checked at all


BAD = InvalidArguments("invalid arguments for tool 't': /a: must be of type integer, got string")
GONE = UnknownTool("unknown tool 't' on MCP server 'b'")


@pytest.mark.parametrize("refusals,targets,expected", [
    ({}, [], None),
    ({"a": BAD}, ["a"], BAD),
    ({"a": BAD, "b": GONE}, ["a", "b"], BAD),  # nothing callable, one because of the arguments
    ({"a": BAD}, ["a", "b"], None),  # b was called: a partial answer, a's refusal in its errors
    ({"a": GONE, "b": GONE}, ["a", "b"], None),  # no argument problem: per-target errors
])
def test_refused_everywhere(refusals, targets, expected):
    assert refused_everywhere(refusals, targets) is expected


# Flat schemas (a plan) and their neighbours that use one more keyword (no plan: jsonschema only).
FLAT = {
    "type": "object", "title": "echoArguments",
    "properties": {"text": {"type": "string", "title": "Text"}, "n": {"type": "integer"}, "x": {"type": "number"},
                   "on": {"type": "boolean"}, "z": {"type": "null"}, "o": {"type": "object"}, "a": {"type": "array"},
                   "any": {"description": "anything"}, "t": True},
    "required": ["text", "n"],
}
FLAT_CLOSED = {**FLAT, "additionalProperties": False}
FLAT_DRAFT7 = {**FLAT, "$schema": "http://json-schema.org/draft-07/schema#"}
NOT_FLAT = [
    TRANSFER, NESTED, DRAFT7,
    {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object",  # draft 4: 1.0 is no integer
     "properties": {"n": {"type": "integer"}}},
    {**FLAT, "additionalProperties": {"type": "string"}},
    {**FLAT, "minProperties": 1}, {**FLAT, "propertyNames": {"maxLength": 3}},
    {**FLAT, "properties": {"s": {"type": "string", "maxLength": 3}}},
    {**FLAT, "properties": {"s": {"type": ["string", "null"]}}},
    {**FLAT, "properties": {"s": {"enum": ["a"]}}}, {**FLAT, "properties": {"s": {"const": 1}}},
    {**FLAT, "properties": {"s": False}}, {**FLAT, "$defs": {}}, {**FLAT, "unevaluatedProperties": False},
    {**FLAT, "dependentRequired": {"n": ["x"]}}, {**FLAT, "patternProperties": {"^q": {"type": "string"}}},
    {**FLAT, "if": {}, "then": {}}, {**FLAT, "allOf": [{}]},
]
VALUES = [0, 1, -5, 2**70, 1.0, 1.5, -0.0, True, False, None, "", "x", "1", [], [1], {}, {"a": 1}]


@pytest.mark.parametrize("schema", NOT_FLAT)
def test_no_plan_for_a_schema_with_any_other_keyword(schema):
    assert flat_plan(schema, type(compile_schema(schema)._validator)) is None


@pytest.mark.parametrize("schema", [FLAT, FLAT_CLOSED, FLAT_DRAFT7])
def test_the_plan_answers_exactly_as_jsonschema_on_random_arguments(schema):
    planned = compile_schema(schema)
    assert planned._plan is not None
    alone = Checker(planned._validator)  # the same validator, no plan
    rng = random.Random(7)
    names = [*schema["properties"], "extra", "Text"]
    valid = {"text": "t", "n": 1, "x": 2.5, "on": False, "z": None, "o": {}, "a": [], "any": 3, "t": "u"}
    admitted = 0
    for _ in range(3_000):
        args = dict(rng.sample(sorted(valid.items()), rng.randint(0, len(valid))))
        for name in rng.sample(names, rng.choice([0, 0, 1, 2])):  # a few names set to anything
            args[name] = rng.choice(VALUES)
        assert planned.problems(args) == alone.problems(args), args
        admitted += plan_admits(planned._plan, args)
    assert admitted > 100  # the plan did answer (not only deferred)


def test_the_plan_only_admits_what_jsonschema_admits_for_every_type_pair():
    planned = compile_schema(FLAT_CLOSED)
    for (name, _), value in itertools.product(FLAT_CLOSED["properties"].items(), VALUES):
        args = {"text": "t", "n": 1, name: value}
        if plan_admits(planned._plan, args):
            assert planned._validator.is_valid(args), args
