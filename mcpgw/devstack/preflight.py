"""Checks `make run` does before it starts anything: ports, files, variables, authentication.

Each check returns messages (empty = fine); the caller prints them all and exits 2, so a bad
configuration never looks like a crash and never leaves a half-started stack behind.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from shared.settings import SettingsError

AUTH_OFF_VARIABLES = ("MCPGW_GATEWAY_NO_AUTH", "MCPGW_GATEWAY_AUTH_ENABLED", "AUTH_ENABLED")


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


def servers_problems(path: Path) -> list[str]:
    """Every error of the servers file (file:line: path: problem), if the file exists."""
    from gateway.registry import RegistryError, load_servers_file

    if not path.exists():
        return []
    try:
        load_servers_file(path)
    except RegistryError as exc:
        return list(exc.errors)
    return []


def variable_problems(environ: Mapping[str, str], dotenv: Mapping[str, str]) -> list[str]:
    """Unknown MCPGW_* names in the environment or `.env`."""
    from shared.envcheck import unknown_variables

    out = [f"environment: {m}" for m in unknown_variables(environ)]
    return out + [f".env: {m}" for m in unknown_variables(dotenv)]


def auth_off_source(environ: Mapping[str, str], dotenv: Mapping[str, str]) -> str | None:
    """Where authentication is switched off (`NAME=value in .env`), or None when it is on."""
    from gateway.settings import load_gateway_settings

    merged = {**dotenv, **environ}
    try:
        settings = load_gateway_settings(environ=merged, dotenv=None,
                                         overrides={"issuer": "http://127.0.0.1/x", "audience": "x"})
    except SettingsError:
        return None  # settings_problems reports it
    if not settings.auth_off:
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
    # Placeholders for what `make run` passes itself (issuer, audience, its own public URL).
    gateway = {"no_auth": True} if no_auth else {"issuer": "http://127.0.0.1/x", "audience": "x",
                                                 "public_url": "http://127.0.0.1:8000"}
    try:
        load_gateway_settings(environ=merged, dotenv=None, overrides=gateway)
    except SettingsError as exc:
        out += [f"gateway: {e}" for e in exc.errors]
    try:
        load_settings(PdpSettings, PREFIX, environ=merged, dotenv=None, finalize=check_settings)
    except SettingsError as exc:
        out += [f"pdp: {e}" for e in exc.errors]
    return out
