"""Invalid policies: every class of error is reported with its path and line; nothing is ignored."""

from __future__ import annotations

import pytest

from pdp.policy import PolicyInvalid, parse_policy
from pdp.policy.validate import check_pattern

BASE = """\
roles:
  viewer:
    permissions:
      - resource: "mcp:*:*"
        actions: [list_tools]
"""

RULE = BASE + "rules:\n  - name: r\n    action: deny\n    condition: "

CASES = [
    ("unknown top key", "rolez: {}\n", "rolez", 1, "unknown key 'rolez'"),
    ("unknown role key", "roles:\n  a:\n    permisions: []\n", "roles.a.permisions", 3, "unknown key"),
    ("unknown permission key", "roles:\n  a:\n    permissions:\n      - {resource: '*', actions: ['*'], when: x}\n",
     "roles.a.permissions[0].when", 4, "unknown key 'when'"),
    ("missing actions", "roles:\n  a:\n    permissions:\n      - resource: '*'\n", "roles.a.permissions[0]", 4, "missing required key 'actions'"),
    ("unknown action", "roles:\n  a:\n    permissions:\n      - {resource: '*', actions: [delete]}\n",
     "roles.a.permissions[0].actions", 4, "unknown action(s) 'delete'"),
    ("bad pattern segments", "roles:\n  a:\n    permissions:\n      - {resource: 'mcp:a:b:c', actions: ['*']}\n",
     "roles.a.permissions[0].resource", 4, "3 segments"),
    ("bad pattern prefix", "roles:\n  a:\n    permissions:\n      - {resource: 'foo:a:b', actions: ['*']}\n",
     "roles.a.permissions[0].resource", 4, "must start with 'mcp:'"),
    ("empty segment", "roles:\n  a:\n    permissions:\n      - {resource: 'mcp::b', actions: ['*']}\n",
     "roles.a.permissions[0].resource", 4, "empty segment"),
    ("actions not a list", "roles:\n  a:\n    permissions:\n      - {resource: '*', actions: invoke_tool}\n",
     "roles.a.permissions[0].actions", 4, "expected a list of strings"),
    ("unknown inherited role", "roles:\n  a:\n    inherits: [b]\n", "roles.a.inherits", 3, "unknown role 'b'"),
    ("inheritance cycle", "roles:\n  a:\n    inherits: [b]\n  b:\n    inherits: [a]\n", "roles.a.inherits", 2, "inheritance cycle"),
    ("self inheritance", "roles:\n  a:\n    inherits: [a]\n", "roles.a.inherits", 2, "inheritance cycle: a -> a"),
    ("user role unknown", BASE + "user_roles:\n  bob: [admin]\n", "user_roles.bob", 7, "unknown role 'admin'"),
    ("group role unknown", BASE + "group_roles:\n  /g: [admin]\n", "group_roles./g", 7, "unknown role 'admin'"),
    ("user roles not a list", BASE + "user_roles:\n  bob: viewer\n", "user_roles.bob", 7, "expected a list"),
    ("rule unknown condition key", BASE + "rules:\n  - name: r\n    action: deny\n    condition:\n      tool: x\n",
     "rules[0].condition.tool", 10, "unknown key 'tool'"),
    ("rule bad regex", BASE + "rules:\n  - name: r\n    action: deny\n    condition:\n      tool_name_pattern: '(('\n",
     "rules[0].condition.tool_name_pattern", 10, "invalid regular expression"),
    ("rule unknown role", BASE + "rules:\n  - name: r\n    action: deny\n    condition: {role: admin}\n",
     "rules[0].condition.role", 9, "unknown role 'admin'"),
    ("rule bad effect", BASE + "rules:\n  - name: r\n    action: block\n    condition: {}\n", "rules[0].action", 8, "must be 'allow' or 'deny'"),
    ("rule priority type", BASE + "rules:\n  - name: r\n    action: deny\n    priority: high\n    condition: {}\n",
     "rules[0].priority", 9, "expected an integer"),
    ("rule priority bool", BASE + "rules:\n  - name: r\n    action: deny\n    priority: true\n    condition: {}\n",
     "rules[0].priority", 9, "expected an integer"),
    ("rule missing condition", BASE + "rules:\n  - name: r\n    action: deny\n", "rules[0]", 7, "missing required key 'condition'"),
    ("duplicate rule name", BASE + "rules:\n  - {name: r, action: deny, condition: {}}\n  - {name: r, action: deny, condition: {}}\n",
     "rules[1].name", 8, "duplicate rule name"),
    ("bad pointer", BASE + "rules:\n  - name: r\n    action: deny\n    condition:\n      arguments: {force: {equals: 1}}\n",
     "rules[0].condition.arguments.force", 10, "must start with '/'"),
    ("bad pointer escape", BASE + "rules:\n  - name: r\n    action: deny\n    condition:\n      arguments: {/a~2: {equals: 1}}\n",
     "rules[0].condition.arguments./a~2", 10, "bad '~' escape"),
    ("unknown argument op", BASE + "rules:\n  - name: r\n    action: deny\n    condition:\n      arguments: {/a: {contains: 1}}\n",
     "rules[0].condition.arguments./a.contains", 10, "unknown key 'contains'"),
    ("two argument ops", BASE + "rules:\n  - name: r\n    action: deny\n    condition:\n      arguments: {/a: {equals: 1, absent: true}}\n",
     "rules[0].condition.arguments./a", 10, "exactly one"),
    ("in needs list", BASE + "rules:\n  - name: r\n    action: deny\n    condition:\n      arguments: {/a: {in: 1}}\n",
     "rules[0].condition.arguments./a.in", 10, "expected a list"),
    ("absent needs bool", BASE + "rules:\n  - name: r\n    action: deny\n    condition:\n      arguments: {/a: {absent: maybe}}\n",
     "rules[0].condition.arguments./a.absent", 10, "expected true or false"),
    ("argument bad regex", BASE + "rules:\n  - name: r\n    action: deny\n    condition:\n      arguments: {/a: {pattern: '['}}\n",
     "rules[0].condition.arguments./a.pattern", 10, "invalid regular expression"),
    ("server glob with colon", BASE + "rules:\n  - name: r\n    action: deny\n    condition: {mcp_server: 'a:b'}\n",
     "rules[0].condition.mcp_server", 9, "must not contain ':'"),
    ("condition action unknown", BASE + "rules:\n  - name: r\n    action: deny\n    condition: {action: call}\n",
     "rules[0].condition.action", 9, "unknown action(s) 'call'"),
    # Conditions that could never hold (or constrain nothing) are errors: a deny rule written this
    # way would silently never fire.
    ("empty user list", RULE + "{user: []}\n", "rules[0].condition.user", 9, "at least one value"),
    ("empty role list", RULE + "{role: []}\n", "rules[0].condition.role", 9, "at least one value"),
    ("empty group list", RULE + "{group: []}\n", "rules[0].condition.group", 9, "at least one value"),
    ("empty arguments", RULE + "{arguments: {}}\n", "rules[0].condition.arguments", 9, "at least one JSON pointer"),
    ("empty in list", RULE + "{arguments: {/a: {in: []}}}\n", "rules[0].condition.arguments./a.in", 9,
     "at least one value"),
    ("equals a YAML date", RULE + "{arguments: {/a: {equals: 2024-01-01}}}\n",
     "rules[0].condition.arguments./a.equals", 9, "is not JSON"),
    ("in a YAML date", RULE + "{arguments: {/a: {in: [x, 2024-01-01]}}}\n",
     "rules[0].condition.arguments./a.in", 9, "is not JSON"),
    ("equals nan", RULE + "{arguments: {/a: {equals: .nan}}}\n", "rules[0].condition.arguments./a.equals", 9,
     "not a JSON number"),
    ("equals binary", RULE + "{arguments: {/a: {equals: !!binary aGk=}}}\n", "rules[0].condition.arguments./a.equals",
     9, "is not JSON"),
    ("equals non-string key", RULE + "{arguments: {/a: {equals: {1: x}}}}\n",
     "rules[0].condition.arguments./a.equals", 9, "is not a string"),
    ("unknown normalisation", RULE + "{arguments: {/a: {equals: x, normalize: [lowercase]}}}\n",
     "rules[0].condition.arguments./a.normalize", 9, "unknown normalisation(s) 'lowercase'"),
    ("empty normalisation list", RULE + "{arguments: {/a: {equals: x, normalize: []}}}\n",
     "rules[0].condition.arguments./a.normalize", 9, "at least one value"),
    ("normalisation with absent", RULE + "{arguments: {/a: {absent: true, normalize: trim}}}\n",
     "rules[0].condition.arguments./a.normalize", 9, "no meaning with 'absent'"),
    ("normalisation alone", RULE + "{arguments: {/a: {normalize: [trim]}}}\n",
     "rules[0].condition.arguments./a", 9, "exactly one"),
    ("normalisation misspelt", RULE + "{arguments: {/a: {equals: x, normalise: [trim]}}}\n",
     "rules[0].condition.arguments./a.normalise", 9, "unknown key 'normalise'"),
    ("empty string glob", RULE + "{tool_name: ''}\n", "rules[0].condition.tool_name", 9, "got an empty string"),
    ("default policy", BASE + "default_policy: permit\n", "default_policy", 6, "must be 'allow' or 'deny'"),
    ("duplicate key", BASE + "default_policy: deny\ndefault_policy: allow\n", "default_policy", 7, "duplicate key"),
    ("not a mapping", "- a\n- b\n", "", 1, "expected a mapping"),
    ("empty document", "", "", 1, "empty"),
    ("yaml syntax", "roles: [\n", "", 2, "invalid YAML"),
]


@pytest.mark.parametrize("name,text,path,line,message", CASES, ids=[c[0] for c in CASES])
def test_invalid_policy_reports_path_line_message(name, text, path, line, message):
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(text)
    found = [(e.path, e.line) for e in info.value.errors if message in e.message]
    assert (path, line) in found, [str(e) for e in info.value.errors]


def test_every_error_is_reported_at_once():
    text = BASE + "user_roles:\n  bob: [nope]\nrules:\n  - {name: r, action: deny, condition: {tool: x}}\nextra: 1\n"
    with pytest.raises(PolicyInvalid) as info:
        parse_policy(text)
    assert len(info.value.errors) == 3


def test_valid_policy_with_empty_role_and_description():
    policy = parse_policy("roles:\n  a:\n  b:\n    description: B\n    inherits: [a]\nrules: []\n")
    assert set(policy.roles) == {"a", "b"} and policy.default_policy == "deny"


@pytest.mark.parametrize("pattern,ok", [
    ("*", True), ("mcp:*:*", True), ("mcp:a:b", True), ("mcp:dev-*:*", True),
    ("mcp:*", False), ("mcp:a:b:c", False), ("x:a:b", False), ("mcp:**:a", False), ("mcp:a b:c", False),
])
def test_check_pattern(pattern, ok):
    assert (check_pattern(pattern) is None) == ok


def test_json_operands_that_are_valid():
    policy = parse_policy(BASE + "rules:\n  - name: r\n    action: deny\n    condition:\n      arguments:\n"
                          "        /a: {equals: {k: [1, 2.5, null, true, '2024-01-01']}}\n        /b: {in: [1, x]}\n")
    ops = {(a.pointer, a.op): a.value for a in policy.rules[0].condition.arguments}
    assert ops == {("/a", "equals"): {"k": [1, 2.5, None, True, "2024-01-01"]}, ("/b", "in"): [1, "x"]}


def test_normalised_operands_are_stored_normalised():
    text = RULE + (
        "{arguments: {/who: {equals: ' ＡttAcker ', normalize: [casefold, nfkc, trim]},"
        " /tag: {in: ['A\u200bB', 1], normalize: [strip_format, casefold]}, /n: {equals: 1000000}}}\n"
    )
    args = parse_policy(text).rules[0].condition.arguments
    assert [(a.pointer, a.op, a.value, a.normalize) for a in args] == [
        ("/who", "equals", "attacker", ("casefold", "nfkc", "trim")),
        ("/tag", "in", ["ab", 1], ("strip_format", "casefold")),
        ("/n", "equals", 1000000, ()),
    ]


def test_deny_rules_compare_arguments_by_value_allow_rules_exactly():
    text = BASE + ("rules:\n  - name: d\n    action: deny\n    condition: {arguments: {/n: {equals: 1}}}\n"
                   "  - name: a\n    action: allow\n    condition: {arguments: {/n: {equals: 1}}}\n")
    deny, allow = parse_policy(text).rules
    assert [a.by_value for a in deny.condition.arguments] == [True]
    assert [a.by_value for a in allow.condition.arguments] == [False]


@pytest.mark.parametrize("spelled,value", [("1e6", 1000000), ("1E+6", 1000000), ("-2.5e-1", -0.25), ("'1e6'", "1e6")])
def test_an_exponent_without_a_dot_is_a_number_as_in_yaml_1_2(spelled, value):
    rule = f"rules:\n  - name: r\n    action: deny\n    condition: {{arguments: {{/n: {{equals: {spelled}}}}}}}\n"
    arg = parse_policy(BASE + rule).rules[0].condition.arguments[0]
    assert arg.value == value and type(arg.value) is type(value) or isinstance(value, int) and isinstance(arg.value, float)
