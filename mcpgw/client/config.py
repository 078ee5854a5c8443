"""Where the CLI finds the gateway URL, the token and the OIDC client: flags > env > config file.

The config file is YAML (`--config FILE`, else `$MCPGW_CONFIG`, else
`$XDG_CONFIG_HOME/mcpgw/config.yaml` or `~/.config/mcpgw/config.yaml`, used only if present).
Unknown keys are errors, so a typo cannot silently send a call to the wrong place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from mcpgw.client.errors import UsageError
from shared.settings import Secret

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT = 30.0

# config-file key -> environment variable
KEYS = {
    "url": "MCPGW_URL",
    "token": "MCPGW_TOKEN",
    "timeout": "MCPGW_TIMEOUT",
    "pdp_url": "MCPGW_PDP_URL",
    "issuer": "MCPGW_OIDC_ISSUER",
    "token_url": "MCPGW_OIDC_TOKEN_URL",
    "client_id": "MCPGW_OIDC_CLIENT_ID",
    "client_secret": "MCPGW_OIDC_CLIENT_SECRET",
    "username": "MCPGW_OIDC_USERNAME",
    "password": "MCPGW_OIDC_PASSWORD",
    "scope": "MCPGW_OIDC_SCOPE",
    "audience": "MCPGW_OIDC_AUDIENCE",
}
SECRET_KEYS = {"token", "client_secret", "password"}


def default_config_path(environ: Mapping[str, str]) -> Path:
    """The per-user config file location."""
    base = environ.get("XDG_CONFIG_HOME") or str(Path(environ.get("HOME", "~")).expanduser() / ".config")
    return Path(base) / "mcpgw" / "config.yaml"


def read_config_file(explicit: str | None, environ: Mapping[str, str]) -> dict[str, Any]:
    """Parse the config file; an explicitly named file must exist, the default one may not."""
    named = explicit or environ.get("MCPGW_CONFIG")
    path = Path(named) if named else default_config_path(environ)
    if not path.is_file():
        if named:
            raise UsageError(f"config file {path} does not exist")
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"config file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UsageError(f"config file {path}: expected a mapping of settings at top level")
    unknown = sorted(str(k) for k in data if k not in KEYS)
    if unknown:
        raise UsageError(
            f"config file {path}: unknown setting(s) {', '.join(unknown)}; known: {', '.join(KEYS)}"
        )
    return data


@dataclass(frozen=True)
class Resolved:
    """The values one command uses; secrets wrapped so they never print."""

    values: dict[str, Any]

    def get(self, key: str) -> Any:
        """A plain value (secrets come back as `Secret`)."""
        return self.values.get(key)

    @property
    def url(self) -> str:
        """The gateway base URL; one without http(s):// and a host is a usage error."""
        url = str(self.values.get("url") or DEFAULT_URL).rstrip("/")
        try:
            parts = urlsplit(url)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # e.g. an unclosed IPv6 bracket
            ok = False
        if not ok:
            raise UsageError(
                f"the gateway URL {url!r} (--url, MCPGW_URL or the config file) must look like "
                f"http://HOST:PORT, e.g. {DEFAULT_URL}"
            )
        return url

    @property
    def token(self) -> Secret | None:
        """The bearer token, checked when a command uses it (`mcpgw token` never does)."""
        token = self.values.get("token")
        return None if token is None else checked_token(token)

    @property
    def timeout(self) -> float:
        return float(self.values.get("timeout") or DEFAULT_TIMEOUT)


def resolve(
    flags: Mapping[str, Any], environ: Mapping[str, str] | None = None, config: str | None = None
) -> Resolved:
    """Layer config file, environment and flags (a flag of None means "not given")."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = dict(read_config_file(config, environ))
    for key, env in KEYS.items():
        if environ.get(env):
            values[key] = environ[env]
    for key, value in flags.items():
        if key in KEYS and value is not None:
            values[key] = value
    if "timeout" in values:
        try:
            timeout = float(values["timeout"])
        except (TypeError, ValueError):
            raise UsageError(f"timeout must be a number of seconds, got {values['timeout']!r}") from None
        if timeout <= 0:
            raise UsageError("timeout must be greater than 0")
        values["timeout"] = timeout
    for key in SECRET_KEYS:
        if values.get(key) is not None and not isinstance(values[key], Secret):
            values[key] = Secret(str(values[key]))
    return Resolved(values)


def checked_token(token: Secret) -> Secret | None:
    """The bearer token without surrounding whitespace; refuses one that cannot be a header value.

    A token pasted with a newline or a non-ASCII character would otherwise fail deep in the HTTP
    client; the message names the problem, never the value.
    """
    value = token.get().strip()
    if value.lower().startswith("bearer "):
        value = value[7:].strip()
    if not value:
        return None
    bad = next((c for c in value if not (0x21 <= ord(c) <= 0x7E)), None)
    if bad is not None:
        kind = "whitespace or a control character" if ord(bad) < 0x80 else "a non-ASCII character"
        raise UsageError(
            f"the token (--token, MCPGW_TOKEN or the config file) contains {kind}; "
            "a bearer token is one printable ASCII word"
        )
    return Secret(value)
