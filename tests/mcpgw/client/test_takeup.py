"""What `register-mcp` says once the file is written, per answer of the running gateway (pure, plus a
real refused connection)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from mcpgw.client import takeup

URL = "http://127.0.0.1:8000"


def test_taken_and_nobody_running_are_success_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    assert takeup.report(takeup.Verdict("taken", URL), path, "x", "registered") == (0, [f"note: the gateway at {URL} loaded {path}"])
    code, lines = takeup.report(takeup.Verdict("unreachable", URL), path, "x", "registered")
    assert code == 0 and lines[0].startswith(f"note: no gateway answers at {URL}")


def test_refused_is_exit_1_with_the_reason_this_shell_sees(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("WALK_MISSING_TOKEN", raising=False)
    path = tmp_path / "s.yaml"
    path.write_text("servers:\n  crm:\n    url: https://crm.example.com/mcp\n    auth:\n      method: bearer\n"
                    "      credential_ref: env://WALK_MISSING_TOKEN\n")
    code, lines = takeup.report(takeup.Verdict("refused", URL), path, "demo3", "registered")
    assert code == 1 and lines[0].startswith(f"error: demo3 was registered in {path}, but the gateway at {URL} refuses")
    assert "(the gateway's environment may differ)" in lines[0]
    assert lines[1:] == [f"  {path}:6: servers.crm.auth.credential_ref: environment variable WALK_MISSING_TOKEN is not set"]


def test_refused_although_this_shell_resolves_everything_points_at_the_gateways_environment(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("servers:\n  a:\n    url: https://a.example.com/mcp\n")
    code, lines = takeup.report(takeup.Verdict("refused", URL), path, "a", "registered")
    assert code == 1 and "every check this shell can make passes" in lines[0] and len(lines) == 1


def test_a_gateway_that_never_loads_the_written_version_is_not_called_success(tmp_path: Path) -> None:
    code, lines = takeup.report(takeup.Verdict("unseen", URL), tmp_path / "s.yaml", "a", "registered")
    assert code == 1 and "has not loaded that file" in lines[0] and "MCPGW_GATEWAY_SERVERS_FILE" in lines[0]


def test_nothing_listening_is_unreachable_at_once() -> None:
    assert asyncio.run(takeup.verdict("http://127.0.0.1:1", "1:1")).outcome == "unreachable"
