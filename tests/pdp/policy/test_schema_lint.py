"""Warnings where an argument condition cannot match the tool's schema (pdp/policy/schema_lint.py) and
`mcpgw policy validate --tools FILE`."""

from __future__ import annotations

import json

import pytest

from mcpgw.cli import main
from pdp.policy.model import ArgCondition
from pdp.policy.schema_lint import Tool, check, lint, tools_from_json
from pdp.policy.validate import parse_policy

SCHEMA = {
    "type": "object",
    "$defs": {"Who": {"type": "string"}},
    "properties": {
        "amount": {"type": "integer"},
        "price": {"type": "number"},
        "to": {"type": "string"},
        "memo": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        "who": {"$ref": "#/$defs/Who"},
        "mode": {"enum": ["fast", "safe"]},
        "flag": {"type": "boolean"},
        "items": {"type": "array", "items": {"type": "object", "properties": {"qty": {"type": "integer"}}}},
        "anything": {},
    },
}
NORM = ("casefold",)


@pytest.mark.parametrize("arg,problem", [
    (ArgCondition("/amount", "equals", 1000000), None),
    (ArgCondition("/amount", "equals", 1000000.0), None),  # 1000000.0 is an integer in JSON Schema
    (ArgCondition("/price", "equals", 5), None),
    (ArgCondition("/amount", "equals", "1000000"), 'equals "1000000" can never match: /amount is of type integer'),
    (ArgCondition("/amount", "equals", 1.5), "equals 1.5 can never match: /amount is of type integer"),
    (ArgCondition("/amount", "equals", True), "equals true can never match"),
    (ArgCondition("/to", "equals", 1000000), "equals 1000000 can never match: /to is of type string"),
    (ArgCondition("/amount", "in", [1, "2"]), 'in-list members "2" can never match'),
    (ArgCondition("/amount", "in", ["1", "2"]), 'in "1", "2" can never match'),
    (ArgCondition("/amount", "pattern", "1.*"), "'pattern' needs a string, but /amount is of type integer"),
    (ArgCondition("/to", "pattern", "a.*"), None),
    (ArgCondition("/amount", "equals", 1, NORM), "'normalize' has no effect: /amount is of type integer"),
    (ArgCondition("/memo", "equals", "x", NORM), None),
    (ArgCondition("/memo", "equals", 3), "equals 3 can never match: /memo is of type null or string"),
    (ArgCondition("/who", "equals", 3), "/who is of type string"),  # through a local $ref
    (ArgCondition("/mode", "equals", "slow"), None),  # same type; enum values are not compared
    (ArgCondition("/mode", "equals", 1), "/mode is of type string"),
    (ArgCondition("/flag", "equals", 1), "/flag is of type boolean"),
    (ArgCondition("/items/0/qty", "equals", "1"), "/items/0/qty is of type integer"),
    (ArgCondition("/anything", "equals", "x"), None),
    (ArgCondition("/nope", "equals", 1), "/nope is not declared"),
    # a deny rule's operand compares by value: "0b101" is 5, but "0b2" is no number in any base
    (ArgCondition("/amount", "equals", "0b101", (), True), None),
    (ArgCondition("/amount", "equals", "0b2", (), True), 'equals "0b2" can never match: /amount is of type integer'),
    (ArgCondition("/nope", "absent", True), None),
    (ArgCondition("/to/deeper", "equals", 1), "/to/deeper is not declared"),
])
def test_check(arg, problem):
    found = check(arg, SCHEMA)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found, found


@pytest.mark.parametrize("doc,expected", [
    ({"tools": [{"name": "t", "inputSchema": {}}]}, [("*", "t")]),
    ({"jsonrpc": "2.0", "id": 1, "result": {"tools": [{"name": "t"}]}}, [("*", "t")]),
    ([{"name": "t"}, {"nope": 1}], [("*", "t")]),
    ({"tools": [{"name": "t", "_meta": {"mcpgw/servers": ["a", "b"]}}]}, [("a", "t"), ("b", "t")]),  # GET /tools
    ({"tools": [{"name": "a__t", "_meta": {"io.mcpgw/server": "a"}}]}, [("a", "t")]),  # the /mcp list
    ({"servers": {"a": {"tools": [{"name": "t"}]}, "b": [{"name": "u"}]}}, [("a", "t"), ("b", "u")]),
])
def test_tools_from_json(doc, expected):
    assert [(t.server, t.name) for t in tools_from_json(doc)] == expected


def test_tools_from_json_refuses_other_documents():
    with pytest.raises(ValueError, match="tools/list"):
        tools_from_json({"servers_": 1})


POLICY = """\
rules:
  - name: big transfers
    action: deny
    condition:
      tool_name: transfer
      mcp_server: bank
      arguments:
        /amount: {equals: "a million"}
        /to: {equals: mallory}
  - name: anyone's memo
    action: deny
    condition:
      arguments:
        /memo: {pattern: ".*x.*"}
        /nope: {equals: 1}
"""
TOOLS = [Tool("bank", "transfer", SCHEMA), Tool("other", "transfer", {"type": "object"}), Tool("bank", "x", {})]


def test_lint_applies_rules_to_the_tools_they_name_only():
    warnings = lint(parse_policy(POLICY), TOOLS)
    assert [(w.rule, w.pointer) for w in warnings] == [(0, "/amount")]
    assert "bank:transfer" in warnings[0].message


def test_validate_with_tools_prints_warnings_with_lines_and_exits_0(tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps({"tools": [{"name": "transfer", "inputSchema": SCHEMA,
                                            "_meta": {"mcpgw/servers": ["bank"]}}]}))
    assert main(["policy", "validate", str(policy), "--tools", str(tools)]) == 0
    out = capsys.readouterr().out
    assert (f"{policy}:8: warning: rules[0].condition.arguments./amount: equals \"a million\" can never match: "
            "/amount is of type integer in the inputSchema of bank:transfer") in out
    assert "1 warning(s) against 1 tool schema(s)" in out
    assert main(["policy", "validate", str(policy)]) == 0  # without schemas: no lint
    assert "warning" not in capsys.readouterr().out


def test_validate_with_unreadable_tools_is_a_usage_error(tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY)
    assert main(["policy", "validate", str(policy), "--tools", str(tmp_path / "missing.json")]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "tools"}')
    assert main(["policy", "validate", str(policy), "--tools", str(bad)]) == 2
    assert "expected a tools/list result" in capsys.readouterr().err


DECIMAL = {"type": "object", "properties": {"amount": {"anyOf": [{"type": "number"}, {"type": "string"}]},
                                            "count": {"type": "integer"}, "flag": {"type": "boolean"}}}


@pytest.mark.parametrize("arg,problem", [
    # pydantic's Decimal admits text the backend parses: both effects are told what holds
    (ArgCondition("/amount", "equals", 1000000, by_value=True), "this deny rule holds for every spelling of 1000000"),
    (ArgCondition("/amount", "equals", 1000000), "this allow rule matches the JSON number 1000000 only"),
    (ArgCondition("/amount", "in", ["x", 5]), "matches the JSON number 5 only"),
    (ArgCondition("/amount", "equals", "x"), None),
    # a deny rule compares by value: text and numbers can match each other
    (ArgCondition("/count", "equals", "1000000", by_value=True), None),
    (ArgCondition("/count", "equals", "1000000"), 'equals "1000000" can never match'),
    (ArgCondition("/count", "equals", "lots", by_value=True), 'equals "lots" can never match'),
    (ArgCondition("/count", "pattern", "1.*", by_value=True), None),
    (ArgCondition("/flag", "equals", "yes", by_value=True), None),
    (ArgCondition("/flag", "equals", 1, by_value=True), None),
])
def test_check_a_number_where_the_schema_admits_text(arg, problem):
    found = check(arg, DECIMAL)
    assert found == problem if problem is None else problem in (found or ""), found


def test_validate_with_tools_warns_on_a_decimal_amount(tmp_path, capsys):
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - name: no big transfers\n    action: deny\n    condition:\n"
                      "      tool_name: transfer\n      arguments: {/amount: {equals: 1e6}}\n")
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps({"tools": [{"name": "transfer", "inputSchema": DECIMAL}]}))
    assert main(["policy", "validate", str(policy), "--tools", str(tools)]) == 0
    out = capsys.readouterr().out
    assert "/amount admits a string a backend may parse as a number" in out and "1000000" in out, out
