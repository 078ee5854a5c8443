"""`mcpgw policy validate|test|explain|compile` exit codes and output."""

from __future__ import annotations

from shared.cli import main

ROOT_POLICY = "policies/policy.yaml"


def test_validate_ok_and_errors(tmp_path, capsys):
    assert main(["policy", "validate", ROOT_POLICY]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("roles:\n  a:\n    permisions: []\n")
    assert main(["policy", "validate", str(bad)]) == 1
    assert f"{bad}:3: roles.a.permisions: unknown key" in capsys.readouterr().err


def test_policy_test_cases(tmp_path, capsys):
    cases = tmp_path / "cases.yaml"
    cases.write_text(
        "- {name: dev ok, subject: dev@example.com, resource: 'dev-server:x', action: invoke_tool, expect: allow}\n"
        "- {name: prod delete, subject: admin@example.com, resource: 'prod-server:db_delete', action: invoke_tool, expect: deny}\n"
        "- {name: group list, subject: z, groups: [/engineering], resource: other, action: list_tools, expect: allow}\n"
    )
    assert main(["policy", "test", ROOT_POLICY, "--cases", str(cases)]) == 0
    cases.write_text("- {name: wrong, subject: nobody, resource: 's:t', action: invoke_tool, expect: allow}\n")
    assert main(["policy", "test", ROOT_POLICY, "--cases", str(cases)]) == 1
    assert "FAIL  wrong: expected allow, got deny" in capsys.readouterr().out


def test_explain_and_compile(capsys):
    assert main(["policy", "explain", ROOT_POLICY, "--subject", "x", "--roles", "analyst",
                 "--resource", "s:read_only_tool", "--action", "invoke_tool"]) == 0
    assert '"role": "analyst"' in capsys.readouterr().out
    assert main(["policy", "explain", ROOT_POLICY, "--subject", "admin@example.com",
                 "--resource", "prod-server:db_delete", "--action", "invoke_tool"]) == 1  # deny
    assert '"name": "Block dangerous tools in production"' in capsys.readouterr().out
    assert main(["policy", "explain", ROOT_POLICY, "--subject", "x", "--resource", "s:t",
                 "--action", "invoke_tool", "--arguments", "[1]"]) == 2
    assert main(["policy", "compile", ROOT_POLICY]) == 0
    out = capsys.readouterr().out
    assert "e = priority(p.eft) || deny" in out and "g, role:developer, role:viewer" in out
