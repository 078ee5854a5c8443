"""Decision table: every sentence of docs/policy.md, answered by the fast path AND by Casbin."""

from __future__ import annotations

import pytest

from pdp.policy import Request, load_engine
from pdp.policy.casbin_engine import build_enforcer, casbin_decide

POLICY = """
roles:
  admin:
    permissions:
      - resource: "*"
        actions: ["*"]
  viewer:
    permissions:
      - resource: "mcp:*:*"
        actions: [list_servers, list_tools, server_info]
  developer:
    inherits: [viewer]
    permissions:
      - resource: "mcp:dev-server:*"
        actions: [list_tools, invoke_tool]
  senior:
    inherits: [developer]
  analyst:
    permissions:
      - resource: "mcp:*:read_only_tool"
        actions: [invoke_tool]
  wild:
    permissions:
      - resource: "mcp:dev-*:*"
        actions: [invoke_tool]
      - resource: "mcp:docs:resource/file%3A///public/*"
        actions: [read_resource]
      - resource: "mcp:docs:prompt/summarize"
        actions: [get_prompt]
  star:
    permissions:
      - resource: "mcp:ops:*"
        actions: ["*"]
  token-only:
    permissions:
      - resource: "mcp:tok:t"
        actions: [invoke_tool]
user_roles:
  admin@example.com: [admin]
  dev@example.com: [developer]
  sen@example.com: [senior]
group_roles:
  /engineering: [developer]
  /analysts: [analyst]
rules:
  - name: no-prod-danger
    condition: {mcp_server: prod-server, tool_name_pattern: ".*delete.*|.*drop.*"}
    action: deny
    priority: 100
  - name: eq-deny
    condition: {mcp_server: tie, tool_name: t}
    action: deny
    priority: 50
  - name: eq-allow
    condition: {mcp_server: tie, tool_name: t}
    action: allow
    priority: 50
  - name: allow-tie-other
    condition: {mcp_server: tie, tool_name: u}
    action: allow
    priority: 50
  - name: high-allow-over-low-deny
    condition: {mcp_server: layered, tool_name: x}
    action: allow
    priority: 20
  - name: low-deny
    condition: {mcp_server: layered}
    action: deny
    priority: 10
  - name: bob-only
    condition: {user: bob, mcp_server: private}
    action: allow
    priority: 5
  - name: qa-group
    condition: {group: /qa, mcp_server: "qa-*", action: invoke_tool}
    action: allow
    priority: 5
  - name: dev-role-sandbox
    condition: {role: developer, mcp_server: sandbox}
    action: allow
    priority: 5
  - name: no-force-push
    condition:
      mcp_server: git
      tool_name: push
      arguments: {/force: {equals: true}}
    action: deny
    priority: 30
  - name: git-allow
    condition: {mcp_server: git}
    action: allow
    priority: 1
  - name: branch-in
    condition:
      mcp_server: git2
      arguments: {/branch: {in: [main, release]}}
    action: deny
    priority: 30
  - name: path-pattern
    condition:
      mcp_server: fs
      arguments: {/path: {pattern: "/etc/.*"}}
    action: deny
    priority: 30
  - name: needs-ticket
    condition:
      mcp_server: fs
      arguments: {/ticket: {absent: true}}
    action: deny
    priority: 29
  - name: fs-allow
    condition: {mcp_server: fs}
    action: allow
    priority: 1
  - name: nested-pointer
    condition:
      mcp_server: deep
      arguments: {"/opts/a~1b/0": {equals: 1}}
    action: allow
    priority: 1
  - name: negative-deny-below-roles
    condition: {mcp_server: dev-server}
    action: deny
    priority: -1
default_policy: deny
"""

ALLOW_ALL = """
roles: {r: {permissions: []}}
rules:
  - {name: d, condition: {mcp_server: blocked}, action: deny, priority: 1}
default_policy: allow
"""


BLANKET = """
roles: {dev: {permissions: [{resource: "mcp:s:*", actions: ["*"]}]}}
rules:
  - {name: blanket-deny-low, condition: {}, action: deny, priority: -5}
  - {name: tool-t, condition: {tool_name: t}, action: deny, priority: 1}
default_policy: allow
"""


def T(subject, action, server, name=None, *, roles=(), groups=(), args=None, kind=None):  # noqa: N802
    if kind is None:
        kind = {"invoke_tool": "tool", "read_resource": "resource", "get_prompt": "prompt"}.get(action, "server")
    return Request(subject, action, server, kind, name, tuple(roles), tuple(groups), args)


CASES = [
    # --- role permissions, `*` resource and `*` action
    ("admin everything", T("admin@example.com", "invoke_tool", "any", "x"), True, "role:admin"),
    ("admin server action", T("admin@example.com", "list_tools", "any"), True, "role:admin"),
    ("admin prompt", T("admin@example.com", "get_prompt", "any", "p"), True, "role:admin"),
    ("admin resource", T("admin@example.com", "read_resource", "any", "file:///x"), True, "role:admin"),
    ("unknown user default deny", T("nobody", "invoke_tool", "nowhere", "x"), False, "default"),
    ("unknown user list default deny", T("nobody", "list_servers", "nowhere"), False, "default"),
    # --- server-level actions are checked on mcp:S:*
    ("viewer list_servers", T("v", "list_servers", "s1", roles=["viewer"]), True, "role:viewer"),
    ("viewer list_tools", T("v", "list_tools", "s1", roles=["viewer"]), True, "role:viewer"),
    ("viewer server_info", T("v", "server_info", "s1", roles=["viewer"]), True, "role:viewer"),
    ("viewer cannot invoke", T("v", "invoke_tool", "s1", "t", roles=["viewer"]), False, "default"),
    ("tool perm does not grant list_tools", T("a", "list_tools", "s", roles=["analyst"]), False, "default"),
    # --- inheritance (transitive), user_roles, group_roles, token roles
    ("developer invokes on dev-server", T("dev@example.com", "invoke_tool", "dev-server", "x"), True, "role:developer"),
    ("developer inherits viewer", T("dev@example.com", "list_servers", "other"), True, "role:viewer"),
    ("senior inherits developer", T("sen@example.com", "invoke_tool", "dev-server", "x"), True, "role:developer"),
    ("senior inherits viewer transitively", T("sen@example.com", "server_info", "o"), True, "role:viewer"),
    ("developer not elsewhere", T("dev@example.com", "invoke_tool", "other", "x"), False, "default"),
    ("group role", T("g", "invoke_tool", "dev-server", "x", groups=["/engineering"]), True, "role:developer"),
    ("group role inherits", T("g", "list_tools", "q", groups=["/engineering"]), True, "role:viewer"),
    ("unknown group nothing", T("g", "invoke_tool", "dev-server", "x", groups=["/sales"]), False, "rule:negative-deny-below-roles"),
    ("token role", T("t", "invoke_tool", "tok", "t", roles=["token-only"]), True, "role:token-only"),
    ("token role unknown to policy", T("t", "invoke_tool", "tok", "t", roles=["ghost"]), False, "default"),
    ("token role inherits", T("t", "list_tools", "q", roles=["developer"]), True, "role:viewer"),
    ("union of sources", T("dev@example.com", "invoke_tool", "a", "read_only_tool", groups=["/analysts"]), True, "role:analyst"),
    # --- wildcard segments never cross ':'
    ("mid wildcard matches", T("a", "invoke_tool", "srv", "read_only_tool", roles=["analyst"]), True, "role:analyst"),
    ("mid wildcard other tool", T("a", "invoke_tool", "srv", "read_only_tool2", roles=["analyst"]), False, "default"),
    ("mid wildcard prefix tool", T("a", "invoke_tool", "srv", "x_read_only_tool", roles=["analyst"]), False, "default"),
    ("prefix glob dev-*", T("w", "invoke_tool", "dev-1", "x", roles=["wild"]), True, "role:wild"),
    ("prefix glob no match", T("w", "invoke_tool", "prod-1", "x", roles=["wild"]), False, "default"),
    ("prefix glob needs dash", T("w", "invoke_tool", "dev", "x", roles=["wild"]), False, "default"),
    # --- resources and prompts
    ("resource under public", T("w", "read_resource", "docs", "file:///public/a.txt", roles=["wild"]), True, "role:wild"),
    ("resource nested under public", T("w", "read_resource", "docs", "file:///public/x/y", roles=["wild"]), True, "role:wild"),
    ("resource outside public", T("w", "read_resource", "docs", "file:///secret/a", roles=["wild"]), False, "default"),
    ("resource other server", T("w", "read_resource", "docs2", "file:///public/a", roles=["wild"]), False, "default"),
    ("prompt allowed", T("w", "get_prompt", "docs", "summarize", roles=["wild"]), True, "role:wild"),
    ("prompt other", T("w", "get_prompt", "docs", "translate", roles=["wild"]), False, "default"),
    ("tool named like prompt not granted", T("w", "invoke_tool", "docs", "summarize", roles=["wild"]), False, "default"),
    # --- `*` action
    ("star action invoke", T("s", "invoke_tool", "ops", "x", roles=["star"]), True, "role:star"),
    ("star action list", T("s", "list_tools", "ops", roles=["star"]), True, "role:star"),
    ("star action prompt", T("s", "get_prompt", "ops", "p", roles=["star"]), True, "role:star"),
    ("star action other server", T("s", "invoke_tool", "ops2", "x", roles=["star"]), False, "default"),
    # --- rules: regex full match, priority, equal priority deny wins
    ("regex deny delete", T("admin@example.com", "invoke_tool", "prod-server", "db_delete"), False, "rule:no-prod-danger"),
    ("regex deny drop", T("admin@example.com", "invoke_tool", "prod-server", "drop_table"), False, "rule:no-prod-danger"),
    ("regex deny is case sensitive", T("admin@example.com", "invoke_tool", "prod-server", "DELETE"), True, "role:admin"),
    ("regex rule other server", T("admin@example.com", "invoke_tool", "prod-server-2", "db_delete"), True, "role:admin"),
    ("regex rule not on list_tools", T("admin@example.com", "list_tools", "prod-server"), True, "role:admin"),
    ("regex rule not on prompts", T("admin@example.com", "get_prompt", "prod-server", "delete"), True, "role:admin"),
    ("equal priority deny beats allow", T("x", "invoke_tool", "tie", "t"), False, "rule:eq-deny"),
    ("equal priority allow alone", T("x", "invoke_tool", "tie", "u"), True, "rule:allow-tie-other"),
    ("higher allow beats lower deny", T("x", "invoke_tool", "layered", "x"), True, "rule:high-allow-over-low-deny"),
    ("lower deny otherwise", T("admin@example.com", "invoke_tool", "layered", "y"), False, "rule:low-deny"),
    ("negative rule below role allow", T("dev@example.com", "invoke_tool", "dev-server", "z"), True, "role:developer"),
    ("negative rule beats default", T("nobody", "invoke_tool", "dev-server", "z"), False, "rule:negative-deny-below-roles"),
    # --- user / group / role / action conditions
    ("user condition", T("bob", "invoke_tool", "private", "x"), True, "rule:bob-only"),
    ("user condition other user", T("alice", "invoke_tool", "private", "x"), False, "default"),
    ("group condition", T("q", "invoke_tool", "qa-1", "x", groups=["/qa"]), True, "rule:qa-group"),
    ("group condition wrong action", T("q", "list_tools", "qa-1", groups=["/qa"]), False, "default"),
    ("group condition no group", T("q", "invoke_tool", "qa-1", "x"), False, "default"),
    ("role condition inherited", T("sen@example.com", "invoke_tool", "sandbox", "x"), True, "rule:dev-role-sandbox"),
    ("role condition missing", T("v", "invoke_tool", "sandbox", "x", roles=["viewer"]), False, "default"),
    # --- argument conditions
    ("force push denied", T("x", "invoke_tool", "git", "push", args={"force": True}), False, "rule:no-force-push"),
    ("non-force push allowed", T("x", "invoke_tool", "git", "push", args={"force": False}), True, "rule:git-allow"),
    # a deny rule compares by value: pydantic's lax bool reads 1 and "yes" as true
    ("force 1 is true to a deny rule", T("x", "invoke_tool", "git", "push", args={"force": 1}), False, "rule:no-force-push"),
    ("force yes is true to a deny rule", T("x", "invoke_tool", "git", "push", args={"force": "yes"}), False,
     "rule:no-force-push"),
    ("force 2 is not true", T("x", "invoke_tool", "git", "push", args={"force": 2}), True, "rule:git-allow"),
    ("no arguments push allowed", T("x", "invoke_tool", "git", "push"), True, "rule:git-allow"),
    ("in: main denied", T("x", "invoke_tool", "git2", "merge", args={"branch": "main"}), False, "rule:branch-in"),
    ("in: feature not matched", T("x", "invoke_tool", "git2", "merge", args={"branch": "feat"}), False, "default"),
    ("pattern full match denied", T("x", "invoke_tool", "fs", "read", args={"path": "/etc/passwd", "ticket": 1}), False, "rule:path-pattern"),
    ("pattern sees past a newline", T("x", "invoke_tool", "fs", "read", args={"path": "/etc/a\nb", "ticket": 1}), False,
     "rule:path-pattern"),
    ("pattern is not search", T("x", "invoke_tool", "fs", "read", args={"path": "/x/etc/passwd", "ticket": 1}), True, "rule:fs-allow"),
    ("pattern needs a string", T("x", "invoke_tool", "fs", "read", args={"path": ["/etc/x"], "ticket": 1}), True, "rule:fs-allow"),
    ("absent true fires", T("x", "invoke_tool", "fs", "read", args={"path": "/tmp/a"}), False, "rule:needs-ticket"),
    ("absent true with no arguments", T("x", "invoke_tool", "fs", "read"), False, "rule:needs-ticket"),
    ("nested pointer with escapes", T("x", "invoke_tool", "deep", "t", args={"opts": {"a/b": [1]}}), True, "rule:nested-pointer"),
    ("nested pointer mismatch", T("x", "invoke_tool", "deep", "t", args={"opts": {"a/b": [2]}}), False, "default"),
]

ALLOW_CASES = [
    ("default allow", T("x", "invoke_tool", "s", "t"), True, "default"),
    ("default allow server", T("x", "list_servers", "s"), True, "default"),
    ("deny rule over default allow", T("x", "invoke_tool", "blocked", "t"), False, "rule:d"),
]


BLANKET_CASES = [
    ("empty condition matches every request", T("x", "list_servers", "any"), False, "rule:blanket-deny-low"),
    ("empty condition matches resources too", T("x", "read_resource", "any", "file:///a"), False,
     "rule:blanket-deny-low"),
    ("negative blanket rule below role", T("x", "invoke_tool", "s", "q", roles=["dev"]), True, "role:dev"),
    ("tool_name applies to tool calls", T("x", "invoke_tool", "s", "t", roles=["dev"]), False, "rule:tool-t"),
    ("tool_name ignores prompts", T("x", "get_prompt", "s", "t", roles=["dev"]), True, "role:dev"),
    ("tool_name ignores resources", T("x", "read_resource", "s", "t", roles=["dev"]), True, "role:dev"),
    ("tool_name ignores server actions", T("x", "list_tools", "s", roles=["dev"]), True, "role:dev"),
]


def _label(stmt) -> str:
    d = stmt.describe()
    return {"rule": f"rule:{d.get('name')}", "role": f"role:{d.get('role')}"}.get(d["kind"], "default")


@pytest.fixture(scope="module")
def engines():
    out = {}
    for key, text in (("main", POLICY), ("allow", ALLOW_ALL), ("blanket", BLANKET)):
        engine = load_engine(text, "v1")
        out[key] = (engine, build_enforcer(engine.compiled))
    return out


def test_table_is_large_enough():
    assert len(CASES) + len(ALLOW_CASES) + len(BLANKET_CASES) >= 60


@pytest.mark.parametrize(
    "policy,name,request_,allowed,by",
    [("main", *c) for c in CASES] + [("allow", *c) for c in ALLOW_CASES] + [("blanket", *c) for c in BLANKET_CASES],
    ids=[c[0] for c in CASES + ALLOW_CASES + BLANKET_CASES],
)
def test_decision(engines, policy, name, request_, allowed, by):
    engine, enforcer = engines[policy]
    fast = engine.decide(request_)
    again = engine.decide(request_)  # second answer may come from the cache and must not differ
    reference = casbin_decide(enforcer, engine.compiled, request_)
    assert (fast.allowed, _label(fast.statement)) == (allowed, by)
    assert (again.allowed, again.statement) == (fast.allowed, fast.statement)
    assert reference == fast.statement


def test_requests_with_arguments_skip_the_cache_when_rules_read_arguments(engines):
    engine, _ = engines["main"]  # has argument conditions
    force = T("x", "invoke_tool", "git", "push", args={"force": True})
    plain = T("x", "invoke_tool", "git", "push", args={"force": False})
    for _ in range(2):
        outcomes = [engine.decide(force), engine.decide(plain)]
        assert [(o.allowed, o.cached) for o in outcomes] == [(False, False), (True, False)]
    other, _ = engines["allow"]  # no argument conditions: arguments cannot change the answer
    req = T("x", "invoke_tool", "cache-me", "t", args={"a": 1})
    assert [other.decide(req).cached for _ in range(2)] == [False, True]
