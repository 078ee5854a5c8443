"""`mcpgw policy validate|test|explain|compile` exit codes and output."""

from __future__ import annotations

from mcpgw.cli import main

ROOT_POLICY = "policies/policy.yaml"


def test_validate_ok_and_errors(tmp_path, capsys):
    assert main(["policy", "validate", ROOT_POLICY]) == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("roles:\n  a:\n    permisions: []\n")
    assert main(["policy", "validate", str(bad)]) == 1
    # One error style (`mcpgw: error:` first), the problems as FILE:LINE: PATH: MESSAGE lines below it.
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"mcpgw: error: {bad} is not a valid policy:", err
    assert err[1].startswith(f"  {bad}:3: roles.a.permisions: unknown key"), err


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


def test_policy_test_refuses_misspelt_keys_and_empty_case_files(tmp_path, capsys):
    cases = tmp_path / "cases.yaml"
    # `argumnets` would otherwise be dropped and the case would test a request without arguments.
    cases.write_text("- {name: typo, subject: x, resource: 's:t', action: invoke_tool, argumnets: {a: 1}, expect: deny}\n")
    assert main(["policy", "test", ROOT_POLICY, "--cases", str(cases)]) == 1
    assert "ERROR typo: unknown key(s) 'argumnets'" in capsys.readouterr().out
    for text in ("[]\n", "cases: []\n"):
        cases.write_text(text)
        assert main(["policy", "test", ROOT_POLICY, "--cases", str(cases)]) == 2
        assert "no cases" in capsys.readouterr().err


def test_policy_test_invalid_policy_exits_2(tmp_path, capsys):
    bad, cases = tmp_path / "bad.yaml", tmp_path / "cases.yaml"
    bad.write_text("rules:\n  - {name: r, action: deny, condition: {tool: x}}\n")
    cases.write_text("- {subject: x, resource: 's:t', action: invoke_tool, expect: deny}\n")
    assert main(["policy", "test", str(bad), "--cases", str(cases)]) == 2
    assert f"{bad}:2: rules[0].condition.tool: unknown key" in capsys.readouterr().err


def test_explain_names_resource_and_version(capsys):
    assert main(["policy", "explain", ROOT_POLICY, "--subject", "admin@example.com",
                 "--resource", "prod-server:db_delete", "--action", "invoke_tool"]) == 1
    out = __import__("json").loads(capsys.readouterr().out)
    assert out["resource"] == "mcp:prod-server:db_delete" and out["policy_version"] == "file:policy.yaml"
    assert out["decision"] == "deny" and out["statement"]["kind"] == "rule"


def test_explain_shows_casbins_deciding_line_next_to_its_yaml_source(capsys):
    assert main(["policy", "explain", ROOT_POLICY, "--subject", "dev@example.com",
                 "--resource", "dev-server:x", "--action", "invoke_tool"]) == 0
    out = __import__("json").loads(capsys.readouterr().out)
    # Casbin's own line (priority first, statement id last): the developer role's dev-server grant.
    assert ", role:developer, mcp:dev-server:*, invoke_tool, s" in out["casbin"]["enforce_ex"]
    assert out["casbin"]["enforce_ex"].endswith(", allow")
    lines = open(ROOT_POLICY).read().splitlines()
    assert out["yaml"]["path"] == "roles.developer.permissions[0]"
    assert lines[out["yaml"]["line"] - 1].strip() == out["yaml"]["text"] == '- resource: "mcp:dev-server:*"'
    assert out["fast_path_agrees"] is True
    assert main(["policy", "explain", ROOT_POLICY, "--subject", "admin@example.com",
                 "--resource", "prod-server:db_delete", "--action", "invoke_tool"]) == 1
    out = __import__("json").loads(capsys.readouterr().out)
    assert out["yaml"]["path"] == "rules[0]" and "Block dangerous tools" in out["yaml"]["text"]
    assert main(["policy", "explain", ROOT_POLICY, "--subject", "nobody", "--resource", "s:t",
                 "--action", "invoke_tool"]) == 1
    out = __import__("json").loads(capsys.readouterr().out)
    assert out["statement"]["kind"] == "default" and out["yaml"]["text"] == "default_policy: deny"


def test_validate_a_native_casbin_pair(tmp_path, capsys):
    model, lines = "examples/authzen-todo/model.conf", "examples/authzen-todo/policy.csv"
    assert main(["policy", "validate", lines, "--casbin-model", model]) == 0
    assert "valid (21 policy lines; r.sub = subject, r.obj = resource, r.act = action.name)" in capsys.readouterr().out
    bad = tmp_path / "policy.csv"
    bad.write_text("p, viewer, todo\n")
    assert main(["policy", "validate", str(bad), "--casbin-model", model]) == 1
    err = capsys.readouterr().err
    assert err.startswith("mcpgw: error: ") and f"\n  {bad}:1: policy: p takes 4 field(s), this line has 2" in err
    bad_model = tmp_path / "model.conf"
    bad_model.write_text(open(model).read().replace("r.act == p.act", "nope(r.act)"))
    assert main(["policy", "validate", lines, "--casbin-model", str(bad_model)]) == 1
    assert f"{bad_model}:22: [matchers].m: unknown function(s): nope" in capsys.readouterr().err
    assert main(["policy", "validate", lines, "--casbin-model", str(tmp_path / "missing.conf")]) == 2
