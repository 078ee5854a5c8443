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
        [sys.executable, "-m", "shared.cli", service, "serve"],
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
