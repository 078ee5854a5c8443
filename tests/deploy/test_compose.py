"""docker-compose.yml checked against the real settings, CLI, routes and mounted files (no Docker needed)."""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from gateway.registry import parse_servers
from pdp.policy import load_engine
from shared.settings import SettingsError
from tests.deploy.deploy_support import (
    ROOT,
    build_app,
    compose_variables,
    dockerfile_env,
    effective_settings,
    get_paths,
    interpolate,
    is_secret_setting,
    parse_command,
    service_of,
    setting_fields,
)

COMPOSE = ROOT / "docker-compose.yml"
TEXT = COMPOSE.read_text()
SPEC = yaml.safe_load(TEXT)
# What an operator's .env holds for the quick start (values are test stand-ins).
DOTENV = {
    "POSTGRES_PASSWORD": "pg-pass-123",
    "MCPGW_PDP_API_TOKEN": "pdp-token-456",
    "MCPGW_GATEWAY_MCP_SESSION_SECRET": "session-secret-789",
    "MCPGW_GATEWAY_ISSUER": "https://idp.example.com/realms/mcp",
    "MCPGW_GATEWAY_AUDIENCE": "mcpgw",
}


def mcpgw_services(dotenv: dict[str, str] = DOTENV) -> dict[str, tuple[dict[str, Any], str, Any]]:
    """compose service name → (spec, mcpgw service, effective settings) for the mcpgw image."""
    out = {}
    for name, svc in SPEC["services"].items():
        if svc.get("image", "").split(":")[0] != "mcpgw":
            continue
        args = parse_command(svc["command"])
        service = service_of(args)
        env = {**dockerfile_env("runtime"), **{k: interpolate(str(v), dotenv) for k, v in svc["environment"].items()}}
        out[name] = (svc, service, effective_settings(service, args, env))
    return out


def host_path(svc: dict[str, Any], container_path: Path) -> Path:
    """The repo file a bind mount puts at `container_path`."""
    for volume in svc["volumes"]:
        source, target, *_ = volume.split(":")
        if source.startswith(".") and container_path.is_relative_to(target):
            return ROOT / source / PurePosixPath(container_path).relative_to(target)
    raise AssertionError(f"nothing bind-mounted at {container_path}")


def test_services_run_real_commands_with_real_settings() -> None:
    services = mcpgw_services()
    assert sorted(s for _, s, _ in services.values()) == ["gateway", "pdp"]
    for name, (svc, service, settings) in services.items():
        known = setting_fields(service)
        assert not [k for k in svc["environment"] if k not in known], name
        assert settings.host == "0.0.0.0", f"{name} must listen beyond loopback inside its container"
        assert svc["build"]["target"] == "runtime"


def test_quick_start_fails_closed_without_an_issuer() -> None:
    env = {k: v for k, v in DOTENV.items() if "ISSUER" not in k and "AUDIENCE" not in k}
    with pytest.raises(SettingsError, match="issuer"):
        mcpgw_services(env)
    # No-auth in a container (0.0.0.0) needs the explicit, logged override.
    with pytest.raises(SettingsError, match="NO_AUTH_ALLOW_REMOTE"):
        mcpgw_services({**env, "MCPGW_GATEWAY_NO_AUTH": "true"})
    remote = {**env, "MCPGW_GATEWAY_NO_AUTH": "true", "MCPGW_GATEWAY_NO_AUTH_ALLOW_REMOTE": "true"}
    assert mcpgw_services(remote)["gateway"][2].auth_off


@pytest.mark.parametrize("missing", ["POSTGRES_PASSWORD", "MCPGW_PDP_API_TOKEN", "MCPGW_GATEWAY_MCP_SESSION_SECRET"])
def test_required_secrets_stop_compose_with_a_message(missing: str) -> None:
    assert compose_variables(TEXT)[missing] == ":?"
    with pytest.raises(KeyError, match=missing):
        mcpgw_services({k: v for k, v in DOTENV.items() if k != missing})


def test_no_secret_is_written_in_the_file() -> None:
    # Every variable becomes a marker that is then removed: what remains is written in the file.
    markers = {name: "\x00" for name in compose_variables(TEXT)}
    for name, svc in SPEC["services"].items():
        for key, value in (svc.get("environment") or {}).items():
            if any(is_secret_setting(s, key) for s in ("gateway", "pdp")) or "PASSWORD" in key:
                literal = interpolate(str(value), markers).replace("\x00", "")
                leftover = urlsplit(literal).password if "://" in literal else literal
                assert not leftover, f"{name}: {key} holds a literal secret"
                assert "${" in str(value), f"{name}: {key} is not taken from .env"
    assert "pg-pass-123" in mcpgw_services()["gateway"][2].database_url.get()


def test_gateway_reaches_the_pdp_with_its_token() -> None:
    services = mcpgw_services()
    gateway = services["gateway"][2]
    [(pdp_name, (_svc, _s, pdp))] = [(n, v) for n, v in services.items() if v[1] == "pdp"]
    url = urlsplit(gateway.pdp_url)
    assert (url.hostname, url.port) == (pdp_name, pdp.port)
    assert pdp.access_mode == "standalone", "a PDP on the compose network must require its token"
    assert gateway.pdp_token.get() == pdp.api_token.get() == DOTENV["MCPGW_PDP_API_TOKEN"]


def test_healthchecks_and_ports_match_routes() -> None:
    for name, (svc, service, settings) in mcpgw_services().items():
        [target] = re.findall(r"http://[^'\"]+", svc["healthcheck"]["test"][-1])
        url = urlsplit(target)
        assert url.port == settings.port and url.path in get_paths(build_app(service, settings)), name
        published = [p.rsplit(":", 1)[-1] for p in svc.get("ports", [])] + [str(p) for p in svc.get("expose", [])]
        assert published == [str(settings.port)], name


def test_mounted_policy_and_servers_files_are_valid() -> None:
    services = mcpgw_services()
    for name, (svc, service, settings) in services.items():
        if service == "pdp":
            load_engine(host_path(svc, settings.policy_path).read_text(), "test")
        else:
            data = yaml.safe_load(host_path(svc, settings.servers_file).read_text())
            servers, errors = parse_servers(data)
            assert not errors and servers, name
            for server in servers.values():
                url = urlsplit(server.url)
                backend = SPEC["services"][url.hostname or ""]
                assert str(url.port) in [str(p) for p in backend["expose"]]
                assert backend["build"]["target"] == "demo-backend"


def test_state_lives_on_volumes_and_dependencies_exist() -> None:
    declared = set(SPEC["volumes"])
    for name, svc in SPEC["services"].items():
        for dep in svc.get("depends_on", {}):
            assert dep in SPEC["services"], name
        named = {v.split(":")[0] for v in svc.get("volumes", []) if not v.startswith(".")}
        assert named <= declared, name
    for name, (svc, _service, settings) in mcpgw_services().items():
        assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"]
        mounts = {v.split(":")[1]: v.split(":")[0] for v in svc["volumes"]}
        assert mounts.get(str(settings.data_dir)) in declared, f"{name}: audit spool must be on a volume"
