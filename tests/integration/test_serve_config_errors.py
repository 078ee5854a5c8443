"""`mcpgw gateway serve` / `mcpgw pdp serve` with a bad environment: exit 2, every problem listed.

Real processes through the console-script entry point, in an empty folder (no `.env`), so the
message a user sees is the one tested. Secrets given in the same environment never appear.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET = "pw-a8f3e1-do-not-print"
ROOT = Path(__file__).resolve().parents[2]


def run_serve(service: str, env: dict[str, str], cwd) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("MCPGW_") and k != "DATABASE_URL"}
    return subprocess.run(
        [sys.executable, "-m", "mcpgw.cli", service, "serve"],
        env={**base, "PYTHONPATH": str(ROOT), **env}, cwd=cwd, capture_output=True, text=True, timeout=60,
    )


@pytest.mark.parametrize(
    ("service", "env", "expected"),
    [
        (
            "gateway",
            {"MCPGW_GATEWAY_PORT": "eighty", "MCPGW_LOG_LEVEL": "LOUD", "MCPGW_AUDIT_BATCH_SIZE": "0",
             "MCPGW_GATEWAY_PDP_TIMEOUT": "-1", "MCPGW_GATEWAY_MCP_SESSION_SECRET": SECRET},
            ["port (MCPGW_GATEWAY_PORT)", "log_level (MCPGW_LOG_LEVEL)",
             "audit_batch_size (MCPGW_AUDIT_BATCH_SIZE)", "pdp_timeout (MCPGW_GATEWAY_PDP_TIMEOUT)",
             # cross-field problems are listed in the same run, not one restart later
             "issuer (MCPGW_GATEWAY_ISSUER)", "audience (MCPGW_GATEWAY_AUDIENCE)",
             "public_url (MCPGW_GATEWAY_PUBLIC_URL)"],
        ),
        (
            "pdp",
            {"MCPGW_PDP_PORT": "eighty", "MCPGW_LOG_FORMAT": "xml", "MCPGW_AUDIT_QUEUE_SIZE": "zero",
             "MCPGW_PDP_ACCESS_MODE": "standalone"},
            ["port (MCPGW_PDP_PORT)", "log_format (MCPGW_LOG_FORMAT)",
             "audit_queue_size (MCPGW_AUDIT_QUEUE_SIZE)", "api_token (MCPGW_PDP_API_TOKEN)"],
        ),
    ],
)
def test_bad_environment_lists_every_field_and_exits_2(service, env, expected, tmp_path):
    env = {**env, "DATABASE_URL": f"postgresql://mcpgw:{SECRET}@127.0.0.1:1/mcpgw"}
    proc = run_serve(service, env, tmp_path)
    assert proc.returncode == 2, proc.stderr
    problems = [line.strip() for line in proc.stderr.splitlines() if " (" in line]
    assert sorted(p.split(":")[0] for p in problems) == sorted(expected), proc.stderr
    assert SECRET not in proc.stderr + proc.stdout
    assert not list(tmp_path.iterdir()), "nothing may be started or written on a bad config"


def _listening_socket():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


@pytest.mark.parametrize("service", ["gateway", "pdp"])
def test_port_in_use_is_a_configuration_error_before_anything_starts(service, tmp_path):
    (tmp_path / "mcp_servers.yaml").write_text("servers: {}\n")
    prefix = "MCPGW_GATEWAY_" if service == "gateway" else "MCPGW_PDP_"
    with _listening_socket() as busy:
        port = busy.getsockname()[1]
        env = {f"{prefix}PORT": str(port), "MCPGW_DATA_DIR": str(tmp_path / "data"),
               "MCPGW_GATEWAY_NO_AUTH": "true"}
        done = run_serve(service, env, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"port {port} on 127.0.0.1 is in use; choose another with --port or {prefix}PORT" in done.stderr
    assert "unexpected" not in done.stderr and not (tmp_path / "data" / "postgres").exists()


def test_bad_servers_file_names_file_line_and_allowed_keys_before_anything_starts(tmp_path):
    (tmp_path / "mcp_servers.yaml").write_text("servers:\n  a:\n    url: http://127.0.0.1:1/mcp\n    tipe: http\n")
    done = run_serve("gateway", {"MCPGW_GATEWAY_NO_AUTH": "true", "MCPGW_GATEWAY_PORT": "0",
                                 "MCPGW_DATA_DIR": str(tmp_path / "data")}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "mcpgw: error: cannot start the gateway:" in done.stderr
    assert "mcp_servers.yaml:4: servers.a.tipe: unknown key (allowed: auth, description," in done.stderr
    assert not (tmp_path / "data" / "postgres").exists()


def test_bad_policy_file_in_file_mode_names_file_and_line(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("roles: {}\ndefault_policy: maybe\n")
    done = run_serve("pdp", {"MCPGW_PDP_POLICY_FILE": str(policy), "MCPGW_PDP_POLICY_SOURCE": "file",
                             "MCPGW_PDP_PORT": "0", "MCPGW_NOT_A_SETTING": "1"}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert f"{policy}:2: default_policy: must be 'allow' or 'deny', got 'maybe'" in done.stderr
    assert "MCPGW_NOT_A_SETTING: unknown variable" in done.stdout + done.stderr  # warned, not ignored


def test_unresolvable_credential_reference_is_a_configuration_error_naming_file_line_and_variable(tmp_path):
    """The registry resolves env:// references at start; the start checks must too (exit 2, not a crash)."""
    (tmp_path / "mcp_servers.yaml").write_text(
        "servers:\n  crm:\n    url: https://crm.example.com/mcp\n    auth:\n      method: oauth2\n"
        "      token_url: https://idp.example.com/token\n      client_id: gw\n"
        "      client_secret_ref: env://WALK_NOT_SET_SECRET\n"
        "  tickets:\n    url: https://t.example.com/mcp\n    auth:\n      method: bearer\n"
        "      credential_ref: env://WALK_MISSING_TOKEN\n")
    done = run_serve("gateway", {"MCPGW_GATEWAY_NO_AUTH": "true", "MCPGW_GATEWAY_PORT": "0",
                                 "MCPGW_DATA_DIR": str(tmp_path / "data")}, tmp_path)
    assert done.returncode == 2, done.stderr
    assert "mcpgw: error: cannot start the gateway:" in done.stderr
    assert ("mcp_servers.yaml:8: servers.crm.auth.client_secret_ref: environment variable WALK_NOT_SET_SECRET "
            "is not set") in done.stderr, done.stderr
    assert "mcp_servers.yaml:13: servers.tickets.auth.credential_ref: environment variable WALK_MISSING_TOKEN" in done.stderr
    assert "unexpected" not in done.stderr and not (tmp_path / "data" / "postgres").exists()
