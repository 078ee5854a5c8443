"""Checks `make run` does before it starts anything: ports, files, variables, authentication.

Each check returns messages (empty = fine); the caller prints them all and exits 2, so a bad
configuration never looks like a crash and never leaves a half-started stack behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from shared.settings import SettingsError

if TYPE_CHECKING:
    from gateway.settings import GatewaySettings

AUTH_OFF_VARIABLES = ("MCPGW_GATEWAY_NO_AUTH", "MCPGW_GATEWAY_AUTH_ENABLED", "AUTH_ENABLED")
# What `make run` passes the gateway itself (issuer, audience, its own public URL), as placeholders.
PLACEHOLDERS = {"issuer": "http://127.0.0.1/x", "audience": "x", "public_url": "http://127.0.0.1:8000"}


def port_problems(host: str, ports: Mapping[str, int]) -> list[str]:
    """One line per port that cannot be bound, naming the variable that moves it."""
    from shared.startcheck import bind_problem

    out = []
    for name, number in ports.items():
        why = bind_problem(host, number)
        if why:
            out.append(f"port {number} ({name}) {why}; choose another with MCPGW_DEV_{name.upper()}_PORT=PORT")
    return out


def policy_problems(path: Path) -> list[str]:
    """Every validation error of the policy file, with its line."""
    from pdp.policy import PolicyInvalid, parse_policy

    try:
        parse_policy(path.read_text())
    except OSError as exc:
        return [f"{path}: cannot read the policy file: {exc.strerror}"]
    except PolicyInvalid as exc:
        return [f"{path}:{e.line or '?'}: {e.path or '<document>'}: {e.message}" for e in exc.errors]
    return []


def servers_problems(path: Path, environ: Mapping[str, str], dotenv: Mapping[str, str]) -> list[str]:
    """Every error of the servers file (file:line: path: problem), if the file exists, and every
    credential reference the gateway could not resolve: it gets this environment (not `.env`)."""
    from gateway.registry import start_problems

    if not path.exists():
        return []
    settings = _gateway_settings(environ, dotenv)
    return start_problems(path, (settings.upstream_allowlist or None) if settings else None, environ)


def _gateway_settings(environ: Mapping[str, str], dotenv: Mapping[str, str]) -> GatewaySettings | None:
    """The gateway's settings as `make run` starts it (placeholders for what it passes); None when invalid
    (settings_problems reports why)."""
    from gateway.settings import load_gateway_settings

    try:
        return load_gateway_settings(environ={**dotenv, **environ}, dotenv=None, overrides=PLACEHOLDERS)
    except SettingsError:
        return None


def gateway_leeway(environ: Mapping[str, str], dotenv: Mapping[str, str]) -> float:
    """The clock skew the gateway allows on token expiry (MCPGW_GATEWAY_LEEWAY), as it will start."""
    settings = _gateway_settings(environ, dotenv)
    return settings.leeway if settings is not None else 0.0


def variable_problems(environ: Mapping[str, str], dotenv: Mapping[str, str]) -> list[str]:
    """Unknown MCPGW_* names in the environment or `.env`."""
    from shared.envcheck import unknown_variables

    out = [f"environment: {m}" for m in unknown_variables(environ)]
    return out + [f".env: {m}" for m in unknown_variables(dotenv)]


def auth_off_source(environ: Mapping[str, str], dotenv: Mapping[str, str]) -> str | None:
    """Where authentication is switched off (`NAME=value in .env`), or None when it is on."""
    settings = _gateway_settings(environ, dotenv)
    if settings is None or not settings.auth_off:
        return None
    for name in AUTH_OFF_VARIABLES:
        for where, source in (("the environment", environ), (".env", dotenv)):
            if name in source:
                return f"{name}={source[name]} in {where}"
    return "the gateway settings"


def settings_problems(environ: Mapping[str, str], dotenv: Mapping[str, str], no_auth: bool) -> list[str]:
    """What the gateway and the PDP would refuse at start, with the flags `make run` passes."""
    from gateway.settings import load_gateway_settings
    from pdp.settings import PREFIX, PdpSettings, check_settings
    from shared.settings import load_settings

    merged = {**dotenv, **environ}
    out: list[str] = []
    gateway = {"no_auth": True} if no_auth else PLACEHOLDERS
    try:
        load_gateway_settings(environ=merged, dotenv=None, overrides=gateway)
    except SettingsError as exc:
        out += [f"gateway: {e}" for e in exc.errors]
    try:
        load_settings(PdpSettings, PREFIX, environ=merged, dotenv=None, finalize=check_settings)
    except SettingsError as exc:
        out += [f"pdp: {e}" for e in exc.errors]
    return out
