"""`mcpgw register-mcp`: oauth2 flags become a valid entry; unreadable credentials are said, not hidden."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.registry import load_servers_file
from mcpgw.cli import main


@pytest.fixture(autouse=True)
def no_gateway(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No running gateway to ask (never whatever listens on the default port), no user config."""
    monkeypatch.setenv("MCPGW_URL", "http://127.0.0.1:1")
    monkeypatch.delenv("MCPGW_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))


def test_oauth2_backend_from_flags_is_what_the_gateway_loads(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "servers.yaml"
    monkeypatch.setenv("CRM_SECRET", "s3cret")
    code = main(["register-mcp", "crm", "https://crm.example.com/mcp", "--auth-method", "oauth2",
                 "--token-url", "https://idp.example.com/token", "--client-id", "gw",
                 "--client-secret-ref", "env://CRM_SECRET", "--scope", "mcp.read", "--servers-file", str(path)])
    assert code == 0
    auth = yaml.safe_load(path.read_text())["servers"]["crm"]["auth"]
    assert auth == {"method": "oauth2", "token_url": "https://idp.example.com/token", "client_id": "gw",
                    "client_secret_ref": "env://CRM_SECRET", "scope": "mcp.read"}
    server = load_servers_file(path)["crm"]
    assert server.auth.client_id == "gw" and server.auth.scope == "mcp.read"
    err = capsys.readouterr().err
    assert f"in {path.resolve()}" in err and "warning" not in err and "s3cret" not in err


def test_missing_env_credential_is_a_warning_naming_the_variable(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.delenv("NOPE_TOKEN", raising=False)
    path = tmp_path / "servers.yaml"
    code = main(["register-mcp", "x", "https://x.example.com/mcp", "--auth-method", "bearer",
                 "--credential-ref", "env://NOPE_TOKEN", "--servers-file", str(path)])
    assert code == 0  # written: the gateway's environment may have it; none runs to say otherwise
    err = capsys.readouterr().err
    assert f"mcpgw: note: no gateway answers at http://127.0.0.1:1; a gateway loads {path.resolve()} when it starts" in err
    assert f"mcpgw: warning: a gateway started from this shell's environment would refuse {path.resolve()}" in err
    assert f"  {path}:8: servers.x.auth.credential_ref: environment variable NOPE_TOKEN is not set" in err


def test_oauth2_without_client_id_is_refused_with_the_gateways_reason(tmp_path: Path, capsys) -> None:
    path = tmp_path / "servers.yaml"
    code = main(["register-mcp", "crm", "https://crm.example.com/mcp", "--auth-method", "oauth2",
                 "--token-url", "https://idp.example.com/token", "--servers-file", str(path)])
    assert code == 2 and not path.exists()
    assert "client_id: required for oauth2" in capsys.readouterr().err
