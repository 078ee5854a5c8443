"""Native Casbin pairs: validation with line numbers, the AuthZEN→enforce mapping, decisions."""

from __future__ import annotations

import pytest

from pdp.policy.checker import PolicyInvalid
from pdp.policy.native import parse_native
from pdp.policy.native_engine import NativeEngine
from pdp.policy.native_map import Entity, enforce_args, parse_mapping

RBAC_DOMAINS = """\
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub.id, p.sub, r.dom) && r.dom == p.dom && keyMatch2(r.obj.id, p.obj) && r.act == p.act
"""
RBAC_LINES = """\
p, reader, tenant1, /docs/:id, read
p, writer, tenant1, /docs/:id, write
g, writer, reader, tenant1
g, alice, writer, tenant1
g, bob, reader, tenant2
"""
PRIORITY = """\
[request_definition]
r = sub, obj, act

[policy_definition]
p = priority, sub, obj, act, eft

[role_definition]
g = _, _

[policy_effect]
e = priority(p.eft) || deny

[matchers]
m = g(r.sub.id, p.sub) && r.obj.id == p.obj && r.act == p.act
"""
PRIORITY_LINES = """\
p, 10, staff, payroll, read, allow
p, 1, mallory, payroll, read, deny
g, mallory, staff
g, carol, staff
"""


def _errors(model: str, lines: str) -> list[tuple[str, int | None, str]]:
    with pytest.raises(PolicyInvalid) as info:
        parse_native(model, lines)
    return [(e.path, e.line, e.message) for e in info.value.errors]


@pytest.mark.parametrize("model,lines,expected", [
    (RBAC_DOMAINS, "p, reader, tenant1, /x\n\n# ok\nq, a, b\ng, a, b\n", [
        ("policy", 1, "p takes 4 field(s), this line has 3"),
        ("policy", 4, "'q' is not defined in the model (p, g)"),
        ("policy", 5, "g takes 3 field(s), this line has 2")]),
    (RBAC_DOMAINS.replace("[matchers]", "[matcher]"), RBAC_LINES, [
        ("[matcher]", 13, "unknown section (allowed: request_definition, policy_definition, role_definition, "
                          "policy_effect, matchers)"),
        ("[matchers]", None, "required section is missing")]),
    ("oops\n" + RBAC_DOMAINS, RBAC_LINES, [("model", 1, "expected '[section]' or 'key = value'")]),
    (RBAC_DOMAINS.replace("r = sub", "x = sub"), RBAC_LINES, [
        ("[request_definition].x", 2, "keys in [request_definition] start with 'r'")]),
])
def test_shape_errors_name_their_lines(model, lines, expected):
    assert _errors(model, lines) == expected


def test_matcher_and_effect_errors_point_at_their_lines():
    (err,) = _errors(RBAC_DOMAINS.replace("&& r.act", "&&& r.act"), RBAC_LINES)
    assert err[:2] == ("[matchers].m", 14) and "not a valid expression" in err[2]
    (err,) = _errors(RBAC_DOMAINS.replace("keyMatch2(", "keyMatch9("), RBAC_LINES)
    assert err[:2] == ("[matchers].m", 14) and err[2].startswith("unknown function(s): keyMatch9 (available: g, ")
    (err,) = _errors(RBAC_DOMAINS.replace("some(where", "sum(where"), RBAC_LINES)
    assert err[:2] == ("model", 11) and "unsupported effect" in err[2]
    (err,) = _errors("# mcpgw-map: dom = tenant\n" + RBAC_DOMAINS, RBAC_LINES)
    assert err[:2] == ("model", 1) and "source 'tenant' must be" in err[2]


@pytest.mark.parametrize("tokens,comment,expected", [
    (["sub", "obj", "act"], "", ("subject", "resource", "action.name")),
    (["sub", "dom", "obj", "act"], "", ("subject", "context.dom", "resource", "action.name")),
    (["s", "o", "a", "env"], "", ("subject", "resource", "action.name", "context.env")),
    (["sub", "dom", "obj", "act"], "# mcpgw-map: dom = context.tenant, sub = subject.id\n",
     ("subject.id", "context.tenant", "resource", "action.name")),
    (["sub", "obj", "act"], "#mcpgw-map: obj = resource.properties.path\n",
     ("subject", "resource.properties.path", "action.name")),
])
def test_mapping_defaults_and_overrides(tokens, comment, expected):
    assert parse_mapping(comment, tokens).sources == expected


def test_enforce_args_build_attribute_objects_and_name_missing_values():
    mapping = parse_mapping("# mcpgw-map: dom = context.tenant\n", ["sub", "dom", "obj", "act"])
    body = {"subject": {"type": "user", "id": "alice", "properties": {"dept": "x", "id": "spoof"}},
            "action": {"name": "read"}, "resource": {"type": "doc", "id": "/docs/1"}, "context": {"tenant": "t1"}}
    sub, dom, obj, act = enforce_args(mapping, body)
    assert isinstance(sub, Entity) and (sub.id, sub.type, sub.dept) == ("alice", "user", "x")  # id not shadowed
    assert (dom, obj.id, act) == ("t1", "/docs/1", "read")
    with pytest.raises(KeyError, match="context.tenant is required"):
        enforce_args(mapping, {**body, "context": {}})


def _body(sub: str, obj: str, act: str, **context: str) -> dict:
    return {"subject": {"type": "user", "id": sub}, "action": {"name": act},
            "resource": {"type": "doc", "id": obj}, "context": dict(context)}


def test_rbac_with_domains_and_keymatch2():
    model = "# mcpgw-map: dom = context.tenant\n" + RBAC_DOMAINS
    engine = NativeEngine(parse_native(model, RBAC_LINES), "v1")
    assert engine.decide(_body("alice", "/docs/7", "read", tenant="tenant1")).allowed  # inherited reader
    assert engine.decide(_body("alice", "/docs/7", "write", tenant="tenant1")).rule == (
        "writer", "tenant1", "/docs/:id", "write")
    assert not engine.decide(_body("alice", "/docs/7", "read", tenant="tenant2")).allowed  # other domain
    assert not engine.decide(_body("bob", "/docs/7", "read", tenant="tenant2")).allowed  # no tenant2 lines
    hit = engine.decide(_body("alice", "/docs/7", "read", tenant="tenant1"))
    assert hit.cached and hit.line is not None and hit.line.line == 1


def test_priority_effect_deny_line_wins_over_role_allow():
    engine = NativeEngine(parse_native(PRIORITY, PRIORITY_LINES), "v1")
    assert engine.decide(_body("carol", "payroll", "read")).allowed
    outcome = engine.decide(_body("mallory", "payroll", "read"))
    assert not outcome.allowed and outcome.rule == ("1", "mallory", "payroll", "read", "deny")


def test_matcher_error_is_a_deny_and_batch_semantics_stop():
    model = RBAC_DOMAINS.replace("r.act == p.act", "r.act == p.act && r.obj.owner == r.sub.id")
    engine = NativeEngine(parse_native("# mcpgw-map: dom = context.tenant\n" + model, RBAC_LINES), "v1")
    outcome = engine.decide(_body("alice", "/docs/1", "read", tenant="tenant1"))  # resource has no `owner`
    assert not outcome.allowed and "owner" in (outcome.error or "")
    ok = {**_body("alice", "/docs/1", "read", tenant="tenant1")}
    ok["resource"] = {"type": "doc", "id": "/docs/1", "properties": {"owner": "alice"}}
    no = _body("bob", "/docs/1", "read", tenant="tenant1")
    assert [o.allowed for o in engine.batch([ok, no, ok], "execute_all")] == [True, False, True]
    assert [o.allowed for o in engine.batch([ok, no, ok], "deny_on_first_deny")] == [True, False]
    assert [o.allowed for o in engine.batch([no, ok, no], "permit_on_first_permit")] == [False, True]


def test_search_enumerates_policy_columns():
    engine = NativeEngine(parse_native(PRIORITY, PRIORITY_LINES), "v1")
    assert engine.candidates("subject") == ["mallory", "carol"]  # 'staff' is a role
    assert engine.candidates("resource") == ["payroll"] and engine.candidates("action") == ["read"]
    base = {"subject": {"type": "user"}, "action": {"name": "read"}, "resource": {"type": "doc", "id": "payroll"},
            "context": {}}
    assert engine.search("subject", base, "user", engine.candidates("subject")) == ["carol"]


def test_batch_names_the_item_missing_a_mapped_value():
    engine = NativeEngine(parse_native("# mcpgw-map: dom = context.tenant\n" + RBAC_DOMAINS, RBAC_LINES), "v1")
    ok = _body("alice", "/docs/1", "read", tenant="tenant1")
    with pytest.raises(KeyError, match=r"evaluations\[1\]: context.tenant is required"):
        engine.batch([ok, _body("alice", "/docs/1", "read")], "execute_all")
