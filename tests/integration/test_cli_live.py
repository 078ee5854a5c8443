"""The client CLI run as a subprocess against a live stack: gateway + PDP + SDK backends + OIDC issuer.

The stack runs in one background thread with its own event loop (module scope), so every test is
a plain `subprocess.run` of `python -m mcpgw.cli ...` — exactly what an operator's shell does.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from shared.settings import load_settings
from tests.fixtures.backends import (  # noqa: F401 - fixtures
    Backend,
    mcp_backend,
    mcp_backend_500,
    mcp_backend_factory,
    mcp_backend_json,
)
from tests.fixtures.oidc import OidcIssuer
from tests.fixtures.pg import create_database, drop_database
from tests.fixtures.servers_files import SALESFORCE_PROD

ROOT = Path(__file__).resolve().parents[2]

POLICY = """\
roles:
  operator:
    permissions:
      - resource: "*"
        actions: ["*"]
  viewer:
    permissions:
      - resource: "mcp:alpha:*"
        actions: ["list_servers", "list_tools", "server_info"]
      - resource: "mcp:alpha:echo"
        actions: ["invoke_tool"]
rules:
  - name: "No deletes anywhere"
    condition:
      tool_name_pattern: ".*delete.*"
    action: deny
    priority: 100
default_policy: deny
"""

CLIENT_ID, CLIENT_SECRET = "ops-cli", "cli-secret-0123"


@dataclass
class Stack:
    gateway_url: str
    pdp_url: str
    issuer: OidcIssuer
    servers_file: Path
    operator: str
    viewer: str


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _token_endpoint(issuer: OidcIssuer, request: web.Request) -> web.Response:
    """A Keycloak-like token endpoint: client credentials for the ops client, password for ann."""
    form = await request.post()
    if form.get("client_id") != CLIENT_ID:
        return web.json_response({"error": "invalid_client"}, status=401)
    if form.get("grant_type") == "client_credentials" and form.get("client_secret") == CLIENT_SECRET:
        token = issuer.mint("svc-ops", roles=["operator"])
    elif form.get("grant_type") == "password" and (form.get("username"), form.get("password")) == ("ann", "pw"):
        token = issuer.mint("ann", roles=["viewer"])
    else:
        return web.json_response({"error": "invalid_grant", "error_description": "bad credentials"}, status=400)
    return web.json_response({"access_token": token, "token_type": "Bearer", "expires_in": 300})


async def _site(app: web.Application, runners: list[web.AppRunner], port: int = 0) -> str:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    runners.append(runner)
    return f"http://127.0.0.1:{runner.addresses[0][1]}"


REAL_PDP = importlib.util.find_spec("pdp.app") is not None


def _pdp_app(policy: Path, tmp: Path) -> web.Application:
    """The real PDP (file mode); the gateway harness's AuthZEN stand-in until pdp.app exists."""
    if not REAL_PDP:
        import yaml

        from tests.integration.gateway_harness import _stub_pdp

        return _stub_pdp(yaml.safe_load(policy.read_text()))
    from pdp.app import create_app
    from pdp.settings import PdpSettings

    settings = load_settings(
        PdpSettings, "MCPGW_PDP_", environ={}, dotenv=None,
        overrides={"policy_file": policy, "policy_source": "file", "audit_postgres": False, "data_dir": tmp},
    )
    return create_app(settings)


async def _serve(tmp: Path, dsn: str, backends: dict[str, Backend]) -> AsyncIterator[Stack]:

    from gateway.app import create_app as gateway_app
    from gateway.settings import GatewaySettings

    runners: list[web.AppRunner] = []
    issuer = OidcIssuer("mcpgw")
    issuer.rotate()

    async def token(request: web.Request) -> web.Response:
        return await _token_endpoint(issuer, request)

    issuer.app.router.add_post("/realms/mcpgw/protocol/openid-connect/token", token)
    issuer.base_url = await _site(issuer.app, runners)

    policy = tmp / "policy.yaml"
    policy.write_text(POLICY)
    pdp_url = await _site(_pdp_app(policy, tmp), runners)

    servers = tmp / "mcp_servers.yaml"
    servers.write_text(
        "# live stack for the CLI tests\nservers:\n"
        f"  alpha:\n    url: {backends['alpha'].url}\n    tags: [team]\n"
        f"  beta:\n    url: {backends['beta'].url}\n    tags: [team]\n"
        f"  broken:\n    url: {backends['broken'].url}\n    tags: [other]\n"
    )
    gw_settings = load_settings(
        GatewaySettings, "MCPGW_GATEWAY_", environ={}, dotenv=None,
        overrides={
            "servers_file": servers, "pdp_url": pdp_url, "issuer": issuer.issuer,
            "audience": issuer.audience, "database_url": dsn, "data_dir": tmp, "decision_cache_ttl": 0,
        },
    )
    gateway_url = await _site(gateway_app(gw_settings), runners)
    try:
        yield Stack(
            gateway_url, pdp_url, issuer, servers,
            issuer.mint("ops", roles=["operator"], expires_in=3600),
            issuer.mint("vic", roles=["viewer"], expires_in=3600),
        )
    finally:
        for runner in reversed(runners):
            await runner.cleanup()


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, pg_server_dsn: str,
    mcp_backend: Backend, mcp_backend_json: Backend, mcp_backend_500: Backend,  # noqa: F811
) -> Iterator[Stack]:
    """The whole stack on loopback, served from a background thread."""
    tmp = tmp_path_factory.mktemp("cli")
    name = "t_" + uuid.uuid4().hex[:16]
    backends = {"alpha": mcp_backend, "beta": mcp_backend_json, "broken": mcp_backend_500}
    loop = asyncio.new_event_loop()
    started: dict[str, Any] = {}
    ready, stop = threading.Event(), asyncio.Event()

    async def main() -> None:
        dsn = await create_database(pg_server_dsn, name)
        try:
            async for value in _serve(tmp, dsn, backends):
                started["stack"] = value
                ready.set()
                await stop.wait()
        except BaseException as exc:
            started["error"] = exc
            ready.set()
        finally:
            await drop_database(pg_server_dsn, name)

    thread = threading.Thread(target=lambda: loop.run_until_complete(main()), daemon=True)
    thread.start()
    assert ready.wait(30), "stack did not start"
    if "error" in started:
        raise started["error"]
    yield started["stack"]
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


NOWHERE = "http://127.0.0.1:1"


def mcpgw(*args: str, token: str | None = None, env: dict[str, str] | None = None, stdin: str | None = None,
          url: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a subprocess with a clean environment (no user config file)."""
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "PYTHONPATH": str(ROOT)}
    if url or "MCPGW_CONFIG" not in (env or {}):
        # never whatever runs on the default port (register-mcp asks the gateway it names)
        environ["MCPGW_URL"] = url or NOWHERE
    if token:
        environ["MCPGW_TOKEN"] = token
    environ.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mcpgw.cli", *args], input=stdin, capture_output=True, text=True,
        env=environ, cwd=ROOT, timeout=30,
    )


# ---- reads, both output modes ----------------------------------------------------------------


def test_list_servers_table_and_json(stack: Stack) -> None:
    human = mcpgw("list-servers", url=stack.gateway_url, token=stack.operator)
    assert human.returncode == 0, human.stderr
    lines = human.stdout.splitlines()
    assert lines[0].split()[:3] == ["NAME", "ENABLED", "TAGS"]
    assert [ln.split()[0] for ln in lines[1:]] == ["alpha", "beta", "broken"]
    machine = mcpgw("list-servers", "--json", url=stack.gateway_url, token=stack.operator)
    body = json.loads(machine.stdout)
    assert [s["name"] for s in body["servers"]] == ["alpha", "beta", "broken"]
    assert stack.operator not in human.stdout + human.stderr + machine.stdout + machine.stderr


def test_policy_filters_what_a_viewer_sees(stack: Stack) -> None:
    out = mcpgw("list-servers", "--json", url=stack.gateway_url, token=stack.viewer)
    assert [s["name"] for s in json.loads(out.stdout)["servers"]] == ["alpha"]
    tools = mcpgw("list-tools", "alpha", "--json", url=stack.gateway_url, token=stack.viewer)
    assert [t["name"] for t in json.loads(tools.stdout)["tools"]] == ["echo"]


def test_list_tools_table_and_json(stack: Stack) -> None:
    human = mcpgw("list-tools", "alpha", url=stack.gateway_url, token=stack.operator)
    assert human.returncode == 0, human.stderr
    names = [ln.split()[0] for ln in human.stdout.splitlines()[1:]]
    assert "echo" in names and "add" in names
    assert any(ln.startswith("echo") and "Echo the text back" in ln for ln in human.stdout.splitlines())
    body = json.loads(mcpgw("list-tools", "alpha", "--json", url=stack.gateway_url, token=stack.operator).stdout)
    assert body["mcp_server"] == "alpha" and body["count"] == len(body["tools"]) == len(names)


def test_invoke_text_and_json(stack: Stack) -> None:
    human = mcpgw("invoke", "alpha", "echo", "--params", '{"text": "hello cli"}', url=stack.gateway_url, token=stack.operator)
    assert (human.returncode, human.stdout.strip()) == (0, "hello cli"), human.stderr
    machine = mcpgw("invoke", "beta", "add", "--params-file", "-", "--json", stdin='{"a": 2, "b": 3}',
                    url=stack.gateway_url, token=stack.operator)
    body = json.loads(machine.stdout)
    assert body["success"] is True and body["mcp_server"] == "beta" and body["tool_name"] == "add"
    assert body["result"]["content"][0]["text"] == "5"


# ---- error paths -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [("{not json", "--params is not valid JSON"), ("[1]", "must be a JSON object")],
)
def test_bad_json_params_is_usage_error(stack: Stack, params: str, message: str) -> None:
    out = mcpgw("invoke", "alpha", "echo", "--params", params, url=stack.gateway_url, token=stack.operator)
    assert out.returncode == 2 and message in out.stderr and out.stdout == ""


def test_unknown_server(stack: Stack) -> None:
    out = mcpgw("invoke", "nope", "echo", "--params", "{}", url=stack.gateway_url, token=stack.operator)
    assert out.returncode == 1
    assert "404 not found" in out.stderr and "nope" in out.stderr


def test_denied_tool_names_the_reason(stack: Stack) -> None:
    out = mcpgw("invoke", "alpha", "delete_records", "--params", '{"table": "t"}', url=stack.gateway_url, token=stack.operator)
    assert out.returncode == 1
    assert "403 denied by policy" in out.stderr and "No deletes anywhere" in out.stderr


def test_missing_and_bad_token(stack: Stack) -> None:
    out = mcpgw("list-servers", url=stack.gateway_url)
    assert out.returncode == 1 and "missing or expired" in out.stderr
    bad = "not-a-real-token-SECRET123"
    out = mcpgw("list-servers", "--token", bad, url=stack.gateway_url)
    assert out.returncode == 1 and "missing or expired" in out.stderr and bad not in out.stderr + out.stdout


def test_gateway_down_says_where_and_how_to_start() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    out = mcpgw("list-servers", url=url, token="t0ken-must-not-print")
    assert out.returncode == 1
    assert f"cannot reach the gateway at {url}" in out.stderr and "mcpgw gateway serve" in out.stderr
    assert "t0ken-must-not-print" not in out.stderr
    health = mcpgw("health", url=url)
    assert health.returncode == 1 and health.stdout.splitlines()[1].split()[:2] == ["gateway", "fail"]


def test_bad_config_file_is_usage_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ulr: http://x\n")
    out = mcpgw("list-servers", "--config", str(cfg))
    assert out.returncode == 2 and "unknown setting(s) ulr" in out.stderr


def test_config_file_supplies_url_and_token(stack: Stack, tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"url: {stack.gateway_url}\ntoken: {stack.viewer}\n")
    out = mcpgw("list-servers", "--json", env={"MCPGW_CONFIG": str(cfg)})
    assert out.returncode == 0, out.stderr
    assert [s["name"] for s in json.loads(out.stdout)["servers"]] == ["alpha"]


# ---- broadcast ---------------------------------------------------------------------------------


def test_broadcast_by_tags_summary_full_json(stack: Stack) -> None:
    args = ("invoke-broadcast", "echo", "--tags", "team", "--params", '{"text": "hi all"}')
    summary = mcpgw(*args, url=stack.gateway_url, token=stack.operator)
    assert summary.returncode == 0, summary.stderr
    lines = summary.stdout.splitlines()
    assert lines[0].startswith("echo: 2/2 servers succeeded, 0 failed")
    assert [ln.split()[:3] for ln in lines[2:]] == [["alpha", "ok", "hi"], ["beta", "ok", "hi"]]
    assert summary.stderr == ""  # no progress noise without a terminal
    full = mcpgw(*args, "--format", "full", url=stack.gateway_url, token=stack.operator)
    assert "== alpha (ok)\nhi all" in full.stdout and "== beta (ok)\nhi all" in full.stdout
    body = json.loads(mcpgw(*args, "--format", "json", url=stack.gateway_url, token=stack.operator).stdout)
    assert (body["total_servers"], body["successful"], body["failed"]) == (2, 2, 0)
    assert sorted(body["results"]) == ["alpha", "beta"]


def test_broadcast_partial_failure_exits_1(stack: Stack) -> None:
    out = mcpgw("invoke-broadcast", "echo", "--servers", "alpha,broken,ghost", "--params", '{"text": "x"}', "--json",
                url=stack.gateway_url, token=stack.operator)
    assert out.returncode == 1
    body = json.loads(out.stdout)
    assert list(body["results"]) == ["alpha"] and sorted(body["errors"]) == ["broken", "ghost"]


def test_broadcast_denied_target_is_an_error(stack: Stack) -> None:
    out = mcpgw("invoke-broadcast", "delete_records", "--servers", "alpha", "--params", '{"table": "t"}', "--json",
                url=stack.gateway_url, token=stack.operator)
    body = json.loads(out.stdout)
    assert out.returncode == 1 and body["errors"]["alpha"].startswith("denied:")


def _run_in_pty(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI with stdin/stdout/stderr on a pseudo-terminal; return (exit code, everything shown)."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mcpgw.cli", *args], stdin=follower, stdout=follower,
                            stderr=follower, env=env, cwd=ROOT, close_fds=True)
    os.close(follower)
    chunks = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    code = proc.wait(10)
    os.close(leader)
    return code, b"".join(chunks).decode(errors="replace")


def test_broadcast_in_a_terminal_shows_live_progress_and_same_outcome(stack: Stack) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "PYTHONPATH": str(ROOT),
           "MCPGW_URL": stack.gateway_url, "MCPGW_TOKEN": stack.operator, "TERM": "xterm"}
    args = ["invoke-broadcast", "echo", "--servers", "alpha,beta,broken", "--params", '{"text": "p"}']
    code, shown = _run_in_pty(args, env)
    assert code == 1
    assert "echo: 0/3 answered, 0 failed, 3 pending" in shown  # the first frame: all pending
    assert "echo: 3/3 answered, 1 failed, 0 pending" in shown  # the last frame
    assert "\x1b[4F" in shown  # redrawn in place
    assert "✓ alpha" in shown and "✗ broken" in shown
    assert "echo: 2/3 servers succeeded, 1 failed" in shown
    plain = mcpgw(*args, "--json", url=stack.gateway_url, token=stack.operator)
    body = json.loads(plain.stdout)
    assert (list(body["results"]), list(body["errors"])) == (["alpha", "beta"], ["broken"])


# ---- token, health ----------------------------------------------------------------------------


def test_token_client_credentials_then_use_it(stack: Stack) -> None:
    env = {"MCPGW_OIDC_CLIENT_SECRET": CLIENT_SECRET}
    out = mcpgw("token", "--issuer", stack.issuer.issuer, "--client-id", CLIENT_ID, env=env)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert token.count(".") == 2 and out.stderr == ""
    listed = mcpgw("list-servers", "--json", url=stack.gateway_url, token=token)
    assert len(json.loads(listed.stdout)["servers"]) == 3


def test_token_password_grant_and_refusal(stack: Stack) -> None:
    token_url = stack.issuer.issuer + "/protocol/openid-connect/token"
    out = mcpgw("token", "--token-url", token_url, "--client-id", CLIENT_ID, "--username", "ann",
                env={"MCPGW_OIDC_PASSWORD": "pw"})
    listed = mcpgw("list-servers", "--json", url=stack.gateway_url, token=out.stdout.strip())
    assert [s["name"] for s in json.loads(listed.stdout)["servers"]] == ["alpha"]
    bad = mcpgw("token", "--token-url", token_url, "--client-id", CLIENT_ID, "--username", "ann",
                env={"MCPGW_OIDC_PASSWORD": "wrong-pw-XYZ"})
    assert bad.returncode == 1 and "invalid_grant" in bad.stderr and "wrong-pw-XYZ" not in bad.stderr
    missing = mcpgw("token", "--token-url", token_url, "--client-id", CLIENT_ID)
    assert missing.returncode == 2 and "client secret" in missing.stderr


def test_health_one_line_each(stack: Stack) -> None:
    out = mcpgw("health", url=stack.gateway_url, token=stack.operator)
    rows = {ln.split()[0] + ("" if not ln.startswith("backend") else " " + ln.split()[1]): ln for ln in out.stdout.splitlines()[1:]}
    assert out.returncode == 1  # the HTTP-500 backend fails
    assert " ok " in rows["gateway"] and " ok " in rows["database"] and " ok " in rows["pdp"]
    assert " ok " in rows["backend alpha"] and " ok " in rows["backend beta"] and " fail " in rows["backend broken"]
    if not REAL_PDP:
        return
    direct = json.loads(mcpgw("health", "--json", "--pdp-url", stack.pdp_url, url=stack.gateway_url, token=stack.operator).stdout)
    by = {c["component"]: c for c in direct["checks"]}
    assert direct["healthy"] is False and by["pdp"]["status"] == "ok" and stack.pdp_url in by["pdp"]["detail"]


# ---- register-mcp / unregister-mcp ----------------------------------------------------------

COMMENTED = (
    "# Production backends — reviewed by the platform team.\nservers:\n  # CRM: owned by sales-eng\n"
    + SALESFORCE_PROD
    + "\n# end of file\n"
)


def test_register_round_trip_keeps_comments(tmp_path: Path) -> None:
    path = tmp_path / "mcp_servers.yaml"
    path.write_text(COMMENTED)
    out = mcpgw("register-mcp", "docs-search", "https://docs.example.com/mcp", "--tags", "docs,read-only",
                "--timeout", "15", "--description", "Docs search", "--auth-method", "bearer",
                "--credential-ref", "env://DOCS_TOKEN", env={"MCPGW_GATEWAY_SERVERS_FILE": str(path)})
    assert out.returncode == 0, out.stderr
    new = path.read_text()
    added = [
        "  docs-search:", "    url: https://docs.example.com/mcp", "    type: http", "    timeout: 15.0",
        "    enabled: true", "    description: Docs search", "    tags: [docs, read-only]", "    auth:",
        "      method: bearer", "      credential_ref: env://DOCS_TOKEN",
    ]
    lines = new.splitlines()
    at = lines.index("  docs-search:")
    assert lines[at : at + len(added)] == added
    assert lines[:at] + lines[at + len(added) :] == COMMENTED.splitlines()
    # The gateway's own loader accepts the result.
    from gateway.registry import load_servers_file

    assert sorted(load_servers_file(path)) == ["docs-search", "salesforce-prod"]
    gone = mcpgw("unregister-mcp", "docs-search", "--servers-file", str(path))
    assert gone.returncode == 0 and path.read_text() == COMMENTED


def test_register_refuses_bad_entry_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text(COMMENTED)
    before = path.stat().st_mtime_ns
    out = mcpgw("register-mcp", "evil", "http://x.example", "--auth-method", "api_key", "--credential-ref",
                "vault://secret/x", "--servers-file", str(path))
    assert out.returncode == 2 and "servers.evil.auth.credential_ref" in out.stderr
    dup = mcpgw("register-mcp", "salesforce-prod", "https://x.example", "--servers-file", str(path))
    assert dup.returncode == 2 and "already registered" in dup.stderr
    assert path.read_text() == COMMENTED and path.stat().st_mtime_ns == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_registered_server_goes_live(stack: Stack, mcp_backend_json: Backend) -> None:  # noqa: F811
    before = stack.servers_file.read_text()
    try:
        out = mcpgw("register-mcp", "gamma", mcp_backend_json.url, "--tags", "late", "--servers-file", str(stack.servers_file),
                    url=stack.gateway_url)
        assert out.returncode == 0 and f"mcpgw: note: the gateway at {stack.gateway_url} loaded" in out.stderr, out.stderr
        assert stack.servers_file.read_text().startswith(before)
        deadline = time.monotonic() + 10
        names: list[str] = []
        while time.monotonic() < deadline and "gamma" not in names:
            listed = mcpgw("list-servers", "--json", url=stack.gateway_url, token=stack.operator)
            names = [s["name"] for s in json.loads(listed.stdout)["servers"]]
            time.sleep(0.2)
        assert "gamma" in names
        call = mcpgw("invoke", "gamma", "echo", "--params", '{"text": "new"}', url=stack.gateway_url, token=stack.operator)
        assert call.stdout.strip() == "new"
    finally:
        mcpgw("unregister-mcp", "gamma", "--servers-file", str(stack.servers_file))
    assert stack.servers_file.read_text() == before


def test_registration_behind_a_refused_entry_is_not_reported_as_done(stack: Stack, mcp_backend_json: Backend) -> None:  # noqa: F811
    """One entry the gateway cannot load (its env:// variable is unset there) makes it refuse the whole
    file: a later good registration must say so and exit 1, not claim success."""
    before = stack.servers_file.read_text()
    assert "WALK_NOT_SET_SECRET" not in os.environ
    try:
        crm = mcpgw("register-mcp", "crm", "https://crm.example.com/mcp", "--auth-method", "oauth2",
                    "--token-url", "https://idp.example.com/token", "--client-id", "gw",
                    "--client-secret-ref", "env://WALK_NOT_SET_SECRET", "--scope", "openid",
                    "--servers-file", str(stack.servers_file), url=stack.gateway_url)
        assert crm.returncode == 1, crm.stderr
        assert "but the gateway at" in crm.stderr and "refuses that file" in crm.stderr, crm.stderr
        assert "servers.crm.auth.client_secret_ref: environment variable WALK_NOT_SET_SECRET is not set" in crm.stderr
        later = mcpgw("register-mcp", "demo3", mcp_backend_json.url, "--servers-file", str(stack.servers_file),
                      url=stack.gateway_url)
        assert later.returncode == 1, later.stderr
        assert "demo3 was registered in" in later.stderr and "the change is not live" in later.stderr, later.stderr
        assert f"{stack.servers_file}:" in later.stderr and "WALK_NOT_SET_SECRET is not set" in later.stderr
        # Removing the bad entry is taken, and demo3 with it.
        fixed = mcpgw("unregister-mcp", "crm", "--servers-file", str(stack.servers_file), url=stack.gateway_url)
        assert fixed.returncode == 0 and "loaded" in fixed.stderr, fixed.stderr
        listed = mcpgw("list-servers", "--json", url=stack.gateway_url, token=stack.operator)
        assert "demo3" in [s["name"] for s in json.loads(listed.stdout)["servers"]]
    finally:
        for name in ("crm", "demo3"):
            mcpgw("unregister-mcp", name, "--servers-file", str(stack.servers_file))
    assert stack.servers_file.read_text() == before


@pytest.mark.parametrize(
    "command",
    ["register-mcp", "unregister-mcp", "list-servers", "list-tools", "invoke", "invoke-broadcast", "token", "health",
     "serve", "policy push", "audit query"],  # every other command: tests/mcpgw/test_client.py (in-process)
)
def test_help_on_every_command(command: str) -> None:
    out = mcpgw(*command.split(), "--help")
    assert out.returncode == 0 and out.stdout.startswith(f"usage: mcpgw {command}")


def test_exit_codes_of_policy_and_audit_commands(tmp_path: Path) -> None:
    """The same 0/1/2 contract as the client commands, with errors that say what to do."""
    missing = str(tmp_path / "missing.yaml")
    for args in (("policy", "validate", missing), ("policy", "compile", missing)):
        out = mcpgw(*args)
        assert out.returncode == 2 and "missing.yaml" in out.stderr, args
    assert mcpgw("policy", "validate", "policies/policy.yaml").returncode == 0
    down = f"http://127.0.0.1:{_free_port()}"
    out = mcpgw("policy", "history", "--pdp-url", down, env={"MCPGW_ADMIN_TOKEN": "adm1n-t0ken-xyz"})
    assert out.returncode == 1 and down in out.stderr and "mcpgw pdp serve" in out.stderr
    assert "adm1n-t0ken-xyz" not in out.stderr + out.stdout
    # No DATABASE_URL and no embedded database here: refuse (2) rather than create an empty one.
    out = mcpgw("audit", "query", "--since", "1h", env={"MCPGW_DATA_DIR": str(tmp_path / "empty")})
    assert out.returncode == 2 and "no audit database" in out.stderr and "DATABASE_URL" in out.stderr
    assert not (tmp_path / "empty").exists()


def test_token_that_is_not_a_header_value_is_a_usage_error(stack: Stack) -> None:
    secret = "eyJhbGciOiJub25lIn0.c2VjcmV0LXBhcnQ"
    out = mcpgw("list-servers", url=stack.gateway_url, env={"MCPGW_TOKEN": secret + "\nX-Injected: 1"})
    assert out.returncode == 2 and "control character" in out.stderr
    assert "Traceback" not in out.stderr and secret not in out.stderr + out.stdout


def test_broadcast_with_a_tool_error_exits_1(stack: Stack) -> None:
    out = mcpgw("invoke-broadcast", "fail", "--servers", "alpha", "--params", '{"message": "kaput"}',
                url=stack.gateway_url, token=stack.operator)
    assert out.returncode == 1
    assert "0/1 servers succeeded, 1 failed (1 of them with a tool error)" in out.stdout and out.stdout.splitlines()[-1].split()[:2] == ["alpha", "error"]


def test_health_without_token_still_accounts_for_backends(stack: Stack) -> None:
    out = mcpgw("health", "--json", url=stack.gateway_url)
    by = {c["component"]: c for c in json.loads(out.stdout)["checks"]}
    assert out.returncode == 0, out.stderr
    assert by["pdp"]["status"] == "ok" and by["backends"]["status"] == "skip" and "401" in by["backends"]["detail"]
    viewer = json.loads(mcpgw("health", "--json", url=stack.gateway_url, token=stack.viewer).stdout)
    by = {c["component"]: c for c in viewer["checks"]}
    assert "backend alpha" in by and "2 of 3 registered not visible" in by["backends"]["detail"]


def test_serve_shorthand_runs_and_health_reports_pdp_down(tmp_path: Path) -> None:
    """`mcpgw serve --port --no-auth` as its own process, with no PDP behind it: fail closed, say so."""
    port, dead = _free_port(), f"http://127.0.0.1:{_free_port()}"
    servers = tmp_path / "mcp_servers.yaml"
    servers.write_text("servers:\n  solo:\n    url: http://127.0.0.1:9/mcp\n")
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent", "PYTHONPATH": str(ROOT),
           "MCPGW_DATA_DIR": str(tmp_path), "MCPGW_AUDIT_POSTGRES": "false", "MCPGW_LOG_FORMAT": "text"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "mcpgw.cli", "serve", "--port", str(port), "--no-auth", "--servers", str(servers),
         "--pdp-url", dead], env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
        out = mcpgw("health", url=url)
        rows = {ln.split()[0]: ln.split()[1] for ln in out.stdout.splitlines()[1:]}
        assert out.returncode == 1 and rows["gateway"] == "ok" and rows["pdp"] == "fail" and rows["backends"] == "fail"
        assert "AUTH OFF" in out.stdout and "PDP unreachable" in out.stdout
        call = mcpgw("invoke", "solo", "echo", url=url)
        assert call.returncode == 1 and "fails closed when the PDP is down" in call.stderr
    finally:
        proc.send_signal(signal.SIGINT)
        code = proc.wait(15)
    assert code == 0


def test_tool_error_result_exits_1_in_both_modes(stack: Stack) -> None:
    human = mcpgw("invoke", "alpha", "fail", "--params", '{"message": "kaput"}', url=stack.gateway_url, token=stack.operator)
    assert human.returncode == 1 and "kaput" in human.stdout and "the tool reported an error" in human.stderr
    machine = mcpgw("invoke", "alpha", "fail", "--json", url=stack.gateway_url, token=stack.operator)
    body = json.loads(machine.stdout)
    assert machine.returncode == 1 and body["success"] is False and body["result"]["isError"] is True
