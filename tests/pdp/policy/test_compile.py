"""Statement order and Casbin priorities, as docs/policy.md states them."""

from __future__ import annotations

from pdp.policy import compile_policy, parse_policy

POLICY = """
roles:
  r: {permissions: [{resource: "mcp:s:*", actions: [list_tools, invoke_tool]}]}
rules:
  - {name: low-allow, condition: {}, action: allow, priority: -3}
  - {name: tie-allow, condition: {}, action: allow, priority: 7}
  - {name: tie-deny, condition: {}, action: deny, priority: 7}
  - {name: top, condition: {}, action: allow, priority: 1000000}
default_policy: allow
"""


def test_order_priority_desc_deny_first_then_document_order_and_casbin_priority():
    compiled = compile_policy(parse_policy(POLICY))
    got = [(s.rule or f"{s.role}:{s.action}" if s.kind != "default" else "default", s.casbin_line()[0])
           for s in compiled.statements]
    assert got == [
        ("top", "1"),                       # 2 × (1,000,000 − 1,000,000) + 1 (allow)
        ("tie-deny", "1999986"),            # equal priority: deny first (+0) ...
        ("tie-allow", "1999987"),           # ... then allow (+1)
        ("r:list_tools", "2000001"),        # role permissions: priority 0, document order
        ("r:invoke_tool", "2000001"),
        ("low-allow", "2000007"),           # negative priority ranks below role permissions
        ("default", "4000003"),             # the catch-all, below every rule
    ]
    assert compiled.statements[-1].effect == "allow" and compiled.statements[-1].casbin_line()[1:4] == ["*", "*", "*"]
