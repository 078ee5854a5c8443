"""Gateway settings: defaults, flags, migration aliases and cross-field validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.settings import load_gateway_settings
from shared.settings import SettingsError, public_view

AUTH = {"MCPGW_GATEWAY_ISSUER": "https://idp.example/realms/r", "MCPGW_GATEWAY_AUDIENCE": "mcpgw",
        "MCPGW_GATEWAY_PUBLIC_URL": "https://gw.example"}
PUBLIC = {"MCPGW_GATEWAY_PUBLIC_URL": "https://gw.example"}


def load(env: dict[str, str], **overrides: object):
    return load_gateway_settings(environ={**PUBLIC, **env}, dotenv=None, overrides=overrides)


def test_defaults_with_auth() -> None:
    s = load(AUTH)
    assert (s.host, s.port, s.pdp_url) == ("127.0.0.1", 8000, "http://127.0.0.1:8181")
    assert s.servers_file == Path("mcp_servers.yaml")
    assert s.algorithms == ["RS256", "ES256", "PS256", "EdDSA"]
    assert not s.auth_off and s.max_body_bytes == 1_048_576


@pytest.mark.parametrize(
    ("env", "field", "expected"),
    [
        ({"AUTH_ENABLED": "false"}, "auth_off", True),
        ({"AUTH_ENABLED": "true", **AUTH}, "auth_off", False),
        ({"KEYCLOAK_URL": "http://kc:8080/", "KEYCLOAK_REALM": "mcp", "JWT_AUDIENCE": "a"}, "issuer", "http://kc:8080/realms/mcp"),
        ({**AUTH, "JWT_ALGORITHM": "ES256"}, "algorithms", ["ES256"]),
        ({**AUTH, "POLICY_FILE": "policies/policy.yaml"}, "policy_file", Path("policies/policy.yaml")),
        ({**AUTH, "AUDIT_LOG_FILE": "/tmp/a.jsonl"}, "audit_file", Path("/tmp/a.jsonl")),
        ({**AUTH, "AUDIT_TO_STDOUT": "true"}, "audit_stdout", True),
        ({**AUTH, "MCP_SERVERS_CONFIG": "x.yaml"}, "servers_file", Path("x.yaml")),
        ({"MCPGW_GATEWAY_AUDIENCE": "a", "JWKS_URL": "https://idp/jwks"}, "jwks_url", "https://idp/jwks"),
        ({**AUTH, "MCPGW_GATEWAY_UPSTREAM_ALLOWLIST": "10.0.0.0/8, api.example.com"}, "upstream_allowlist", ["10.0.0.0/8", "api.example.com"]),
    ],
)
def test_migration_aliases(env: dict[str, str], field: str, expected: object) -> None:
    assert getattr(load(env), field) == expected


def test_database_url_alias_is_secret() -> None:
    s = load({**AUTH, "DATABASE_URL": "postgresql://u:hunter2@db/x"})
    assert s.database_url is not None and s.database_url.get().endswith("/x")
    assert "hunter2" not in repr(s) and public_view(s)["database_url"] == "***"


def test_explicit_issuer_wins_over_keycloak() -> None:
    s = load({**AUTH, "KEYCLOAK_URL": "http://kc", "KEYCLOAK_REALM": "r"})
    assert s.issuer == "https://idp.example/realms/r"


def test_no_auth_flag_needs_no_issuer_and_grants_no_roles() -> None:
    s = load({}, no_auth=True)
    assert s.auth_off and s.no_auth and not s.auth_enabled and s.dev_roles == []
    assert public_view(s)["no_auth"] is True


def test_flags_override_env() -> None:
    s = load({**AUTH, "MCPGW_GATEWAY_PORT": "9000"}, port=9100, host="0.0.0.0")
    assert (s.port, s.host) == (9100, "0.0.0.0")


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({}, ["issuer (MCPGW_GATEWAY_ISSUER)", "audience (MCPGW_GATEWAY_AUDIENCE)"]),
        ({"MCPGW_GATEWAY_ISSUER": "https://i"}, ["audience (MCPGW_GATEWAY_AUDIENCE): required"]),
        ({**AUTH, "KEYCLOAK_URL": "http://kc"}, ["KEYCLOAK_REALM"]),
        ({**AUTH, "MCPGW_GATEWAY_PDP_URL": "ftp://pdp"}, ["pdp_url"]),
        ({"MCPGW_GATEWAY_AUDIENCE": "a", "MCPGW_GATEWAY_JWKS_URL": "not a url"}, ["jwks_url"]),
        ({**AUTH, "JWT_ALGORITHM": "HS256"}, ["algorithms (MCPGW_GATEWAY_ALGORITHMS): not allowed: HS256"]),
        ({**AUTH, "MCPGW_GATEWAY_ALGORITHMS": "none,RS256"}, ["not allowed: none"]),
        (
            {**AUTH, "MCPGW_GATEWAY_PORT": "eighty", "MCPGW_GATEWAY_MAX_BODY_BYTES": "0", "MCPGW_GATEWAY_PDP_TIMEOUT": "-1"},
            ["port (MCPGW_GATEWAY_PORT)", "max_body_bytes", "pdp_timeout"],
        ),
        (
            {**AUTH, "MCPGW_GATEWAY_MAX_JSON_DEPTH": "300", "MCPGW_GATEWAY_MAX_JSON_ITEMS": "0"},
            ["max_json_depth (MCPGW_GATEWAY_MAX_JSON_DEPTH): must be between 1 and 200", "max_json_items"],
        ),
    ],
)
def test_every_bad_field_is_named(env: dict[str, str], fragments: list[str]) -> None:
    with pytest.raises(SettingsError) as info:
        load(env)
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text


def test_secret_pdp_token_never_in_error_or_view() -> None:
    s = load({**AUTH, "MCPGW_GATEWAY_PDP_TOKEN": "s3cr3t-token"})
    assert s.pdp_token is not None and s.pdp_token.get() == "s3cr3t-token"
    assert "s3cr3t" not in str(public_view(s))


def test_yaml_config_file_lowest_precedence(tmp_path: Path) -> None:
    cfg = tmp_path / "gw.yaml"
    cfg.write_text("port: 7000\nbroadcast_deadline: 5\n")
    s = load_gateway_settings(environ={**AUTH, "MCPGW_GATEWAY_PORT": "7100"}, dotenv=None, yaml_file=cfg)
    assert (s.port, s.broadcast_deadline) == (7100, 5.0)
    cfg.write_text("prot: 7000\n")
    with pytest.raises(SettingsError, match="prot"):
        load_gateway_settings(environ=AUTH, dotenv=None, yaml_file=cfg)


def test_public_url_is_required_with_auth_outside_development() -> None:
    env = {k: v for k, v in AUTH.items() if k != "MCPGW_GATEWAY_PUBLIC_URL"}
    with pytest.raises(SettingsError) as exc:
        load_gateway_settings(environ=env, dotenv=None)
    assert any(e.startswith("public_url (MCPGW_GATEWAY_PUBLIC_URL)") for e in exc.value.errors), exc.value.errors
    dev = load_gateway_settings(environ={**env, "MCPGW_GATEWAY_ENVIRONMENT": "development"}, dotenv=None)
    assert dev.public_url is None and dev.environment == "development"
    assert load_gateway_settings(environ={}, dotenv=None, overrides={"no_auth": True}).public_url is None
    with pytest.raises(SettingsError, match="public_url"):
        load({**AUTH, "MCPGW_GATEWAY_PUBLIC_URL": "gw.example"})  # not an http(s) URL


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "gw.internal", ""])
def test_no_auth_listens_on_loopback_unless_overridden(host: str) -> None:
    with pytest.raises(SettingsError) as exc:
        load({"MCPGW_GATEWAY_HOST": host}, no_auth=True)
    assert any(e.startswith("host (MCPGW_GATEWAY_HOST)") and "NO_AUTH_ALLOW_REMOTE" in e for e in exc.value.errors)
    s = load({"MCPGW_GATEWAY_HOST": host, "MCPGW_GATEWAY_NO_AUTH_ALLOW_REMOTE": "true"}, no_auth=True)
    assert s.auth_off and s.host == host


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
def test_no_auth_on_loopback_needs_no_override(host: str) -> None:
    assert load({"MCPGW_GATEWAY_HOST": host}, no_auth=True).auth_off


def test_remote_no_auth_is_a_flag_and_loud_at_start(caplog: pytest.LogCaptureFixture) -> None:
    import argparse

    from gateway.app import create_app
    from gateway.cli import add_serve_arguments, overrides

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args(["--no-auth", "--no-auth-allow-remote", "--host", "0.0.0.0"])
    s = load_gateway_settings(environ={}, dotenv=None, overrides=overrides(args))
    assert s.auth_off and s.no_auth_allow_remote
    with caplog.at_level("WARNING"):
        create_app(s)
    assert any("EXPOSED BEYOND LOOPBACK" in r.getMessage() and r.levelname == "WARNING" for r in caplog.records)


PEER = "MCPGW_GATEWAY_PEER_"


@pytest.mark.parametrize(
    ("env", "fragments"),
    [
        ({f"{PEER}LISTEN": "127.0.0.1:0"}, [f"peer_secret ({PEER}SECRET): required with {PEER}LISTEN"]),
        ({f"{PEER}LISTEN": "nowhere", f"{PEER}SECRET": "p" * 32}, [f"peer_listen ({PEER}LISTEN): must be host:port"]),
        ({f"{PEER}LISTEN": "127.0.0.1:0", f"{PEER}SECRET": "short-secret-mentioned-nowhere"},
         [f"peer_secret ({PEER}SECRET): at least 32 characters"]),
        ({f"{PEER}LISTEN": "0.0.0.0:9100", f"{PEER}SECRET": "p" * 32}, [f"peer_advertise ({PEER}ADVERTISE): required"]),
        # The derived key seals route ids agents see: a short session secret would be guessed offline.
        ({f"{PEER}LISTEN": "127.0.0.1:0", "MCPGW_GATEWAY_MCP_SESSION_SECRET": "short-secret-mentioned-nowhere"},
         ["mcp_session_secret (MCPGW_GATEWAY_MCP_SESSION_SECRET): at least 32 characters when it keys the peer"]),
        ({"MCPGW_GATEWAY_WORKERS": "2", "MCPGW_GATEWAY_MCP_SESSION_SECRET": "short-secret-mentioned-nowhere"},
         ["mcp_session_secret (MCPGW_GATEWAY_MCP_SESSION_SECRET): at least 32 characters"]),  # refused before forking
        ({f"{PEER}ADVERTISE": "10.0.0.5:70000"}, [f"peer_advertise ({PEER}ADVERTISE): must be host:port",
                                                  f"needs {PEER}LISTEN"]),
        ({f"{PEER}LISTEN": "127.0.0.1:9100", f"{PEER}SECRET": "p" * 32, "MCPGW_GATEWAY_WORKERS": "2"},
         [f"peer_listen ({PEER}LISTEN): each worker needs a port of its own"]),
    ],
)
def test_peer_settings_that_do_not_fit_are_named(env: dict[str, str], fragments: list[str]) -> None:
    with pytest.raises(SettingsError) as info:
        load({**AUTH, **env})
    text = str(info.value)
    for fragment in fragments:
        assert fragment in text
    assert "short-secret-mentioned-nowhere" not in text


def test_peer_channel_settings_accepted_and_secret_hidden() -> None:
    s = load({**AUTH, f"{PEER}LISTEN": "0.0.0.0:0", f"{PEER}ADVERTISE": "[fd00::5]:0", f"{PEER}SECRET": "q" * 40,
              "MCPGW_GATEWAY_WORKERS": "2"})
    assert s.peer_secret is not None and s.peer_secret.get() == "q" * 40
    assert "q" * 40 not in str(public_view(s))
    assert load(AUTH).peer_listen is None  # off unless configured
    # The session secret keys the channel when no peer secret is set.
    assert load({**AUTH, f"{PEER}LISTEN": "127.0.0.1:0", "MCPGW_GATEWAY_MCP_SESSION_SECRET": "s" * 32}).peer_secret is None
    # A short session secret is fine when the peer secret keys the channel, or the channel is off.
    short = {"MCPGW_GATEWAY_MCP_SESSION_SECRET": "short"}
    assert load({**AUTH, **short, f"{PEER}LISTEN": "127.0.0.1:0", f"{PEER}SECRET": "p" * 32}).peer_secret is not None
    assert load({**AUTH, **short}).peer_listen is None
