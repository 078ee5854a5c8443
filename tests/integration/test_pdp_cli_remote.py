"""`mcpgw policy push` and `mcpgw policy history` as subprocesses against a live PDP."""

from __future__ import annotations

import asyncio
import json

import pytest

from pdp.app import create_app
from tests.fixtures.oidc import oidc_issuer  # noqa: F401
from tests.integration.pdp_helpers import POLICY, pdp_settings
from tests.integration.pdp_process import clean_env, free_port, run_cli


@pytest.fixture
async def live(pg_dsn, tmp_path, oidc_issuer, aiohttp_server):  # noqa: F811
    """A PDP served on loopback in this loop (the CLI runs as a subprocess), its URL and tokens."""
    settings = pdp_settings(tmp_path, pg_dsn, admin_issuer=oidc_issuer.issuer, admin_audience=oidc_issuer.audience)
    server = await aiohttp_server(create_app(settings))
    return (str(server.make_url("")).rstrip("/"), oidc_issuer.mint("alice", roles=["policy-admin"]),
            oidc_issuer.mint("bob", roles=["developer"]))


async def test_push_and_history(live, tmp_path):
    url, admin, _ = live
    good = tmp_path / "open.yaml"
    good.write_text(POLICY.replace("default_policy: deny", "default_policy: allow"))
    code, out, err = await run_cli("policy", "push", str(good), "--comment", "open up", "--pdp-url", url,
                                   "--token", admin)
    assert (code, err) == (0, "") and out.strip() == f"{good}: pushed as v2 (active)"
    # Token from the environment; --json prints the PDP's answer; --no-activate stores only.
    env = clean_env(MCPGW_ADMIN_TOKEN=admin, MCPGW_PDP_URL=url)
    code, out, _ = await run_cli("policy", "push", str(good), "--comment", "later", "--no-activate", "--json",
                                 env=env)
    assert code == 0 and json.loads(out) == {"version": 3, "policy_version": "v3", "active": False}

    code, out, err = await run_cli("policy", "history", env=env)
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split()[:2] for line in lines] == [["v3", "inactive"], ["v2", "active"], ["v1", "inactive"]]
    assert lines[0].endswith("alice: later") and lines[1].endswith("alice: open up")
    code, out, _ = await run_cli("policy", "history", "--json", env=env)
    versions = json.loads(out)["versions"]
    assert code == 0 and [(v["version"], v["status"], v["comment"]) for v in versions] == [
        (3, "inactive", "later"), (2, "active", "open up"), (1, "inactive", versions[2]["comment"])]


async def test_invalid_push_prints_file_line_and_path_and_exits_1(live, tmp_path):
    url, admin, _ = live
    bad = tmp_path / "bad.yaml"
    text = POLICY.replace("mcp_server:", "mcp_srv:").replace("default_policy: deny", "default_policy: maybe")
    bad.write_text(text)
    lines = text.splitlines()
    key_line = next(i for i, line in enumerate(lines, 1) if "mcp_srv:" in line)
    default_line = next(i for i, line in enumerate(lines, 1) if line.startswith("default_policy"))
    code, out, err = await run_cli("policy", "push", str(bad), "--pdp-url", url, "--token", admin)
    assert code == 1 and out == ""
    # every error, each as FILE:LINE: PATH: MESSAGE (what `policy validate` prints too)
    assert f"{bad}:{key_line}: rules[0].condition.mcp_srv: unknown key 'mcp_srv'" in err
    assert f"{bad}:{default_line}: default_policy: " in err
    code, out, err = await run_cli("policy", "push", str(bad), "--pdp-url", url, "--token", admin, "--json")
    assert code == 1
    errors = json.loads(out)["error"]["errors"]
    assert {(e["path"], e["line"]) for e in errors} == {("rules[0].condition.mcp_srv", key_line),
                                                         ("default_policy", default_line)}
    code, out, _ = await run_cli("policy", "history", "--json", "--pdp-url", url, "--token", admin)
    assert [v["version"] for v in json.loads(out)["versions"]] == [1]  # nothing was stored


async def test_refusals_and_usage_errors(live, tmp_path):
    url, admin, developer = live
    good = tmp_path / "p.yaml"
    good.write_text(POLICY)
    calls = [
        # 1: the PDP refused (wrong role, bad token) or cannot be reached
        ("policy", "push", str(good), "--pdp-url", url, "--token", developer),
        ("policy", "history", "--pdp-url", url, "--token", "not-a-jwt"),
        ("policy", "history", "--pdp-url", f"http://127.0.0.1:{free_port()}", "--token", admin),
        # 2: usage or configuration (no token, missing file, bad flag)
        ("policy", "push", str(good), "--pdp-url", url),
        ("policy", "push", str(tmp_path / "missing.yaml"), "--pdp-url", url, "--token", admin),
        ("policy", "history", "--bogus"),
    ]
    results = await asyncio.gather(*(run_cli(*call) for call in calls))
    codes = [code for code, _, _ in results]
    errs = [err for _, _, err in results]
    assert codes == [1, 1, 1, 2, 2, 2]
    assert "HTTP 403 forbidden" in errs[0] and developer not in errs[0]  # the token is never echoed
    assert "HTTP 401 unauthorized" in errs[1] and "not-a-jwt" not in errs[1]
    assert "cannot reach" in errs[2]
    assert "no admin token" in errs[3]
    assert "missing.yaml" in errs[4]
    assert "--bogus" in errs[5]
    versions = await run_cli("policy", "history", "--json", "--pdp-url", url, "--token", admin)
    assert [v["version"] for v in json.loads(versions[1])["versions"]] == [1]  # nothing was stored


async def test_push_a_native_casbin_pair(live, tmp_path):
    url, admin, _ = live
    model, lines = "examples/authzen-todo/model.conf", "examples/authzen-todo/policy.csv"
    code, out, err = await run_cli("policy", "push", lines, "--casbin-model", model, "--comment", "todo",
                                   "--pdp-url", url, "--token", admin)
    assert (code, err) == (0, "") and out.strip() == f"{lines}: pushed as v2 (active)"
    bad = tmp_path / "policy.csv"
    bad.write_text("p, viewer, todo\n")
    code, _, err = await run_cli("policy", "push", str(bad), "--casbin-model", model, "--pdp-url", url,
                                 "--token", admin)
    assert code == 1 and err.splitlines() == [f"mcpgw: error: the PDP refused {bad} (HTTP 422):",
                                              f"  {bad}:1: policy: p takes 4 field(s), this line has 2"]
    code, out, _ = await run_cli("policy", "history", "--pdp-url", url, "--token", admin)
    assert [line.split()[:2] for line in out.splitlines()] == [["v2", "active"], ["v1", "inactive"]]
