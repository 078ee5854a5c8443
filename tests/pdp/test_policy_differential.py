"""Differential: the fast path names the same deciding statement as stock Casbin `enforce_ex`.

Random policies (roles with inheritance, user/group assignments, rules with every condition key,
argument conditions, both default policies) and 10,000 random requests in total.
"""

from __future__ import annotations

import random

import yaml

from pdp.policy import Request, load_engine
from pdp.policy.casbin_engine import build_enforcer, casbin_decide

SERVERS = ["a", "b", "dev-1", "dev-2", "prod"]
TOOLS = ["read", "write", "delete_all", "drop", "x"]
ACTIONS = ["list_servers", "list_tools", "server_info", "invoke_tool", "read_resource", "get_prompt"]
USERS = ["u1", "u2", "u3", "u4"]
GROUPS = ["/g1", "/g2", "/g3"]


def _pattern(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return "*"
    server = rng.choice([*SERVERS, "*", "dev-*"])
    name = rng.choice([*TOOLS, "*", "d*", "resource/file%3A///*", "prompt/p*"])
    return f"mcp:{server}:{name}"


def random_policy(rng: random.Random) -> dict:
    names = [f"r{i}" for i in range(rng.randint(2, 7))]
    roles = {}
    for i, name in enumerate(names):
        body: dict = {"permissions": [
            {"resource": _pattern(rng), "actions": rng.sample([*ACTIONS, "*"], rng.randint(1, 3))}
            for _ in range(rng.randint(0, 4))
        ]}
        if i and rng.random() < 0.5:  # inherit only earlier roles: no cycles
            body["inherits"] = rng.sample(names[:i], rng.randint(1, min(2, i)))
        roles[name] = body
    rules = []
    for i in range(rng.randint(0, 6)):
        cond: dict = {}
        if rng.random() < 0.2:
            cond["user"] = rng.choice(USERS)
        if rng.random() < 0.2:
            cond["role"] = rng.sample(names, 1)
        if rng.random() < 0.2:
            cond["group"] = rng.choice(GROUPS)
        if rng.random() < 0.3:
            cond["action"] = rng.sample(ACTIONS, rng.randint(1, 2))
        if rng.random() < 0.5:
            cond["mcp_server"] = rng.choice([*SERVERS, "dev-*", "*"])
        if rng.random() < 0.3:
            cond["tool_name"] = rng.choice([*TOOLS, "d*"])
        if rng.random() < 0.2:
            cond["tool_name_pattern"] = rng.choice([".*delete.*|.*drop.*", "r.*", "x"])
        if rng.random() < 0.45:
            cond["arguments"] = {rng.choice(["/f", "/n/k"]): rng.choice(
                [{"equals": True}, {"in": [1, 2]}, {"pattern": "a.*"}, {"absent": True}, {"absent": False},
                 {"equals": 1000000}, {"equals": "ABC", "normalize": ["casefold", "trim", "strip_format"]},
                 {"in": ["ａbc", 2], "normalize": ["nfkc"]}, {"pattern": "a.*", "normalize": ["casefold", "trim"]}])}
        rules.append({"name": f"rule{i}", "condition": cond, "action": rng.choice(["allow", "deny"]),
                      "priority": rng.choice([-1, 0, 1, 5, 5, 10])})
    return {
        "roles": roles,
        "user_roles": {u: rng.sample(names, rng.randint(1, 2)) for u in rng.sample(USERS, 2)},
        "group_roles": {g: rng.sample(names, 1) for g in rng.sample(GROUPS, 2)},
        "rules": rules,
        "default_policy": rng.choice(["allow", "deny"]),
    }


def random_request(rng: random.Random, role_names: list[str]) -> Request:
    action = rng.choice(ACTIONS)
    kind = {"invoke_tool": "tool", "read_resource": "resource", "get_prompt": "prompt"}.get(action, "server")
    name = {"tool": rng.choice(TOOLS), "resource": "file:///" + rng.choice(["a", "b:c"]),
            "prompt": rng.choice(["p1", "q"])}.get(kind)
    args = rng.choice([None, {}, {"f": True}, {"f": 1}, {"f": "a\nb"}, {"n": {"k": "abc"}}, {"n": {"k": 2}},
                       {"f": 1e6}, {"f": "1000000"}, {"f": " Abc"}, {"f": "a\u200bbC"}, {"n": {"k": "ＡBC "}}])
    return Request(
        rng.choice([*USERS, "other"]), action, rng.choice([*SERVERS, "zzz"]), kind, name,
        tuple(rng.sample([*role_names, "ghost"], rng.randint(0, 2))),
        tuple(rng.sample(GROUPS, rng.randint(0, 2))), args,
    )


def test_fast_path_equals_casbin_on_random_policies():
    rng = random.Random(20261101)
    checked = 0
    seen: set[tuple[str, bool]] = set()
    arg_ops: set[str] = set()
    for _ in range(50):
        doc = random_policy(rng)
        engine = load_engine(yaml.safe_dump(doc), "v")
        enforcer = build_enforcer(engine.compiled)
        for _ in range(200):
            req = random_request(rng, list(doc["roles"]))
            fast = engine.decide(req)
            ref = casbin_decide(enforcer, engine.compiled, req)
            assert fast.statement == ref, (doc, req)
            assert fast.allowed == (ref.effect == "allow")
            checked += 1
            seen.add((ref.kind, fast.allowed))
            if ref.condition is not None and ref.condition.arguments:
                arg = ref.condition.arguments[0]
                arg_ops.add(arg.op + ("+normalize" if arg.normalize else ""))
    assert checked == 10_000
    # every kind of deciding statement and both answers were exercised
    assert {("rule", True), ("rule", False), ("role", True), ("default", True), ("default", False)} <= seen
    # and rules with argument conditions decided, for every operator (so the cache bypass is exercised)
    # (normalised ones included)
    assert arg_ops == {"equals", "in", "pattern", "absent", "equals+normalize", "in+normalize", "pattern+normalize"}


def test_search_equals_casbin_per_candidate():
    """`Engine.search` (merged per-server lists, shared cache) answers exactly like enforce_ex."""
    rng = random.Random(20261125)
    checked = 0
    for _ in range(40):
        doc = random_policy(rng)
        engine = load_engine(yaml.safe_dump(doc), "v")
        enforcer = build_enforcer(engine.compiled)
        for _ in range(3):
            base = random_request(rng, list(doc["roles"]))
            if rng.random() < 0.5:
                kind, action = "tool", "invoke_tool"
                pairs = [(rng.choice([*SERVERS, "zzz"]), rng.choice(TOOLS)) for _ in range(25)]
            else:
                kind, action = "server", rng.choice(ACTIONS[:3])
                pairs = [(s, None) for s in rng.sample([*SERVERS, "zzz"], 4)]
            base = Request(base.subject, action, "", "server", None, base.roles, base.groups, base.arguments)
            # twice: the second pass answers from the cache the first pass filled
            for answers in (engine.search(base, kind, pairs), engine.search(base, kind, pairs)):
                for (server, name), allowed in zip(pairs, answers, strict=True):
                    req = Request(base.subject, action, server, kind, name, base.roles, base.groups, base.arguments)
                    assert allowed == (casbin_decide(enforcer, engine.compiled, req).effect == "allow"), (doc, req)
                    checked += 1
    assert checked > 2_000
