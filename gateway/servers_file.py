"""The servers file (`mcp_servers.yaml`): each entry parsed and validated into a `ServerConfig`.

Pure: `parse_servers` returns every problem at once, each naming the server and field (with the
file's line numbers once `load_servers_file` read it). The live set and its reloads: registry.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml

from gateway.backend_auth import AuthConfig, is_ref, parse_auth
from gateway.upstream.guard import host_allowed
from gateway.yamllines import with_lines

NAME_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,51}")  # fullmatch: `$` would admit a trailing newline
# Public tool and prompt names are `{server}__{name}`, hash-shortened past 64 characters (mcp/naming.py).
# They stay apart for every pair of servers only when the server is read back whole from the first `__`:
# no `__` inside, no `_` at the end, and short enough (52) that shortening never cuts `{server}__`.
_AMBIGUOUS = ((re.compile(r"__"), "contains '__', the separator of public names `{server}__{tool}`"),
              (re.compile(r"_\Z"), "ends with '_' (with the separator that makes '___')"))
SERVER_KEYS = frozenset(
    {"url", "type", "timeout", "enabled", "description", "tags", "tools", "metadata", "auth",
     "validate_arguments"}
)
STDIO_KEYS = frozenset({"command", "args", "env", "cwd"})
TYPES = ("http", "streamable_http", "streamable-http", "stdio", "sse")


class RegistryError(Exception):
    """The servers file is invalid; `errors` lists every problem."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("invalid servers file:\n  " + "\n  ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class StdioConfig:
    """A `type: stdio` backend's command; `env` values may be `env://`/`file://` references."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None


def _parse_stdio(where: str, raw: Mapping[str, Any]) -> tuple[StdioConfig | None, list[str]]:
    errors: list[str] = []
    if "url" in raw:
        errors.append(f"{where}.url: not allowed with type: stdio (the gateway launches `command`)")
    if "auth" in raw:
        errors.append(f"{where}.auth: not used with type: stdio (give the server its credential in env)")
    command = raw.get("command")
    if not isinstance(command, str) or not command.strip():
        errors.append(f"{where}.command: required with type: stdio (a program path or name)")
    args = _str_list(f"{where}.args", raw.get("args"), errors)
    env = raw.get("env") or {}
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", k) and isinstance(v, str)
        for k, v in env.items()
    ):
        errors.append(f"{where}.env: must map variable names to strings (or env:// / file:// references)")
        env = {}
    errors += [f"{where}.env.{k}: empty reference" for k, v in env.items() if is_ref(v) and not v.partition("://")[2]]
    cwd = raw.get("cwd")
    if cwd is not None and (not isinstance(cwd, str) or not cwd):
        errors.append(f"{where}.cwd: must be a directory path")
    if errors:
        return None, errors
    assert isinstance(command, str)
    return StdioConfig(command, args, tuple(sorted(env.items())), cwd), []


@dataclass(frozen=True)
class ServerConfig:
    """One backend MCP server."""

    name: str
    url: str
    type: str = "http"
    timeout: float = 30.0
    enabled: bool = True
    description: str = ""
    tags: tuple[str, ...] = ()
    tools: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    auth: AuthConfig = field(default_factory=AuthConfig)
    # Strict JSON Schema check of call arguments against the tool's inputSchema (opt-out per server).
    validate_arguments: bool = True
    # `type: stdio`: the command the gateway launches; `url` is then its internal loopback endpoint.
    stdio: StdioConfig | None = None
    # `type: sse` (legacy HTTP+SSE): the server's own event-stream URL; `url` is then the bridge's.
    sse_url: str | None = None


def _check_url(where: str, url: object, allowlist: Iterable[str] | None) -> list[str]:
    if not isinstance(url, str) or not url:
        return [f"{where}.url: required (an http(s) URL)"]
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [f"{where}.url: must be an http:// or https:// URL, got {url!r}"]
    if parts.username or parts.password:
        return [f"{where}.url: must not embed credentials; use auth.credential_ref"]
    return _not_allowed(f"{where}.url", parts.hostname, allowlist)


def _not_allowed(where: str, host: str | None, allowlist: Iterable[str] | None) -> list[str]:
    if host and allowlist is not None and not host_allowed(host, allowlist):
        return [f"{where}: host {host!r} is not in the upstream host allowlist"]
    return []


def _str_list(where: str, value: object, errors: list[str]) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        errors.append(f"{where}: must be a list of strings")
        return ()
    return tuple(value)


def parse_server(
    name: object, raw: object, allowlist: Iterable[str] | None = None
) -> tuple[ServerConfig | None, list[str]]:
    """Validate one server entry; return (config or None, errors)."""
    where = f"servers.{name}"
    errors: list[str] = []
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        errors.append(f"{where}: invalid server name (1-52 of a-z 0-9 _ -, starting with a letter or digit)")
    else:
        errors += [f"{where}: invalid server name: {why}" for pattern, why in _AMBIGUOUS if pattern.search(name)]
    if not isinstance(raw, dict):
        return None, [*errors, f"{where}: must be a mapping"]
    kind = raw.get("type", "http")
    allowed = SERVER_KEYS | STDIO_KEYS if kind == "stdio" else SERVER_KEYS
    errors += [f"{where}.{key}: unknown key (allowed: {', '.join(sorted(allowed))})" for key in raw if key not in allowed]
    stdio = None
    if kind == "stdio":  # launched locally, never fetched: the URL checks and SSRF allowlist do not apply
        stdio, stdio_errors = _parse_stdio(where, raw)
        errors += stdio_errors
    else:
        errors += _check_url(where, raw.get("url"), allowlist)
    if kind not in TYPES:
        errors.append(f"{where}.type: must be one of {', '.join(TYPES)}, got {kind!r}")
    timeout = raw.get("timeout", 30)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0 < timeout <= 3600:
        errors.append(f"{where}.timeout: must be a number of seconds in (0, 3600]")
    enabled, validate_arguments = raw.get("enabled", True), raw.get("validate_arguments", True)
    errors += [f"{where}.{key}: must be true or false" for key, value in
               (("enabled", enabled), ("validate_arguments", validate_arguments)) if not isinstance(value, bool)]
    description = raw.get("description") or ""
    if not isinstance(description, str):
        errors.append(f"{where}.description: must be a string")
    tags = _str_list(f"{where}.tags", raw.get("tags"), errors)
    tools = _str_list(f"{where}.tools", raw.get("tools"), errors)
    metadata = raw.get("metadata") or {}
    if not isinstance(metadata, dict):
        errors.append(f"{where}.metadata: must be a mapping")
    auth, auth_errors = parse_auth(f"{where}.auth", raw.get("auth"))
    errors += auth_errors
    # The token URL receives the client secret: the same SSRF rule as the backend URL.
    errors += _not_allowed(f"{where}.auth.token_url", urlsplit(auth.token_url or "").hostname, allowlist)
    if errors or not isinstance(name, str):  # a bad name is among the errors
        return None, errors
    return (
        ServerConfig(
            name=name,
            url=raw.get("url", ""),
            type=kind,
            timeout=float(timeout),
            enabled=enabled,
            description=description,
            tags=tags,
            tools=tools,
            metadata=MappingProxyType(dict(metadata)),
            auth=auth,
            validate_arguments=validate_arguments,
            stdio=stdio,
            sse_url=raw["url"] if kind == "sse" else None,
        ),
        [],
    )


def parse_servers(
    data: object, allowlist: Iterable[str] | None = None
) -> tuple[dict[str, ServerConfig], list[str]]:
    """Validate a whole servers document; return (servers, every error)."""
    if data is None:
        data = {"servers": {}}
    if not isinstance(data, dict):
        return {}, ["(top level): must be a mapping with a 'servers' key"]
    errors = [f"{key}: unknown top-level key" for key in data if key != "servers"]
    raw_servers = data.get("servers") or {}
    if not isinstance(raw_servers, dict):
        return {}, [*errors, "servers: must be a mapping of name -> server"]
    allow = list(allowlist) if allowlist is not None else None
    servers: dict[str, ServerConfig] = {}
    for name, raw in raw_servers.items():
        config, problems = parse_server(name, raw, allow)
        errors += problems
        if config is not None:
            servers[config.name] = config
    return servers, errors


def load_servers_file(path: Path, allowlist: Iterable[str] | None = None) -> dict[str, ServerConfig]:
    """Read and validate `path`; raise RegistryError with every problem."""
    try:
        text = Path(path).read_text()
        data = yaml.safe_load(text)
    except (OSError, yaml.YAMLError) as exc:
        raise RegistryError([f"{path}: {exc}"]) from exc
    servers, errors = parse_servers(data, allowlist)
    if errors:
        raise RegistryError(with_lines(text, errors, str(path)))
    return servers

