"""How a backend wants its credential: the `auth:` block of a server, validated, and pure injection."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

METHODS = ("api_key", "bearer", "basic", "oauth2", "custom", "none")
LOCATIONS = ("header", "query", "body")
FORMATS = ("raw", "prefix", "template")
REF_SCHEMES = ("env", "file")
AUTH_KEYS = frozenset({"method", "location", "name", "format", "prefix", "template", "credential_ref",
                       "token_url", "client_id", "client_secret_ref", "scope", "audience"})
_DEFAULT_NAME = {"api_key": "X-API-Key", "bearer": "Authorization", "basic": "Authorization", "oauth2": "Authorization"}
_DEFAULT_PREFIX = {"bearer": "Bearer ", "basic": "Basic ", "oauth2": "Bearer "}
# Headers the transport owns; a credential there would break or smuggle the MCP exchange.
_RESERVED_HEADERS = frozenset({"host", "content-length", "content-type", "accept", "transfer-encoding", "connection",
                               "mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name"})


@dataclass(frozen=True)
class AuthConfig:
    """A backend's credential settings (method `none` = send nothing)."""

    method: str = "none"
    location: str = "header"
    name: str = ""
    format: str = "raw"
    prefix: str = ""
    template: str = ""
    credential_ref: str | None = None
    token_url: str | None = None
    client_id: str | None = None
    client_secret_ref: str | None = None
    scope: str | None = None
    audience: str | None = None

    @property
    def secret_ref(self) -> str | None:
        """The reference holding the secret (oauth2: the client secret)."""
        if self.method == "oauth2":
            return self.client_secret_ref or self.credential_ref
        return self.credential_ref


def is_ref(value: str) -> bool:
    """True if `value` is a credential reference (`env://NAME` or `file:///path`), not a literal."""
    return value.startswith(("env://", "file://"))


def check_ref(where: str, ref: object) -> list[str]:
    """Errors for a credential reference (only env://NAME and file:///path are supported)."""
    if not isinstance(ref, str) or "://" not in ref:
        return [f"{where}: must be a reference like env://NAME or file:///path"]
    scheme, _, target = ref.partition("://")
    if scheme not in REF_SCHEMES:
        return [f"{where}: unsupported scheme {scheme}:// (supported: env://, file://)"]
    if not target or (scheme == "file" and not target.startswith("/")):
        return [f"{where}: {scheme}:// needs a {'variable name' if scheme == 'env' else 'absolute path'}"]
    return []


def _str_field(raw: Mapping[str, Any], key: str, where: str, errors: list[str]) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        errors.append(f"{where}.{key}: must be a string")
        return None
    return value


def _choice(where: str, key: str, value: str, options: tuple[str, ...], errors: list[str]) -> str:
    if value not in options:
        errors.append(f"{where}.{key}: must be one of {', '.join(options)}, got {value!r}")
    return value


def parse_auth(where: str, raw: object) -> tuple[AuthConfig, list[str]]:
    """Validate an `auth:` block; return (config, errors)."""
    if raw is None:
        return AuthConfig(), []
    if not isinstance(raw, dict):
        return AuthConfig(), [f"{where}: must be a mapping"]
    errors = [f"{where}.{key}: unknown key" for key in raw if key not in AUTH_KEYS]
    s = {key: _str_field(raw, key, where, errors) for key in AUTH_KEYS}
    method = _choice(where, "method", s["method"] or "none", METHODS, errors)
    if method not in METHODS or method == "none":
        return AuthConfig(), errors
    location = _choice(where, "location", s["location"] or "header", LOCATIONS, errors)
    name = s["name"] or _DEFAULT_NAME.get(method, "")
    if not name:
        errors.append(f"{where}.name: required for method {method}")
    elif location == "header" and name.lower() in _RESERVED_HEADERS:
        errors.append(f"{where}.name: {name} is a transport header and cannot carry a credential")
    fmt = _choice(where, "format", s["format"] or ("prefix" if method in _DEFAULT_PREFIX else "raw"), FORMATS, errors)
    prefix = s["prefix"] if s["prefix"] is not None else _DEFAULT_PREFIX.get(method, "")
    template = s["template"] or ""
    if fmt == "prefix" and not prefix:
        errors.append(f"{where}.prefix: required with format: prefix")
    if fmt == "template" and "{credential}" not in template:
        errors.append(f"{where}.template: must contain {{credential}} with format: template")
    if method == "oauth2":
        parts = urlsplit(s["token_url"] or "")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors.append(f"{where}.token_url: required for oauth2 (an http(s) URL)")
        if not s["client_id"]:
            errors.append(f"{where}.client_id: required for oauth2")
        if s["client_secret_ref"] and s["credential_ref"]:
            errors.append(f"{where}.client_secret_ref: give client_secret_ref or credential_ref, not both")
        ref_key = "client_secret_ref" if s["client_secret_ref"] else "credential_ref"
        errors += check_ref(f"{where}.{ref_key}", s[ref_key])
    else:
        for key in ("token_url", "client_id", "client_secret_ref", "scope", "audience"):
            if raw.get(key) is not None:
                errors.append(f"{where}.{key}: only valid with method oauth2")
        errors += check_ref(f"{where}.credential_ref", s["credential_ref"])
    return AuthConfig(method=method, location=location, name=name, format=fmt, prefix=prefix or "",
                      template=template, credential_ref=s["credential_ref"], token_url=s["token_url"],
                      client_id=s["client_id"], client_secret_ref=s["client_secret_ref"], scope=s["scope"],
                      audience=s["audience"]), errors


def format_value(auth: AuthConfig, credential: str) -> str:
    """The value to send for `credential` (basic: base64 of `user:password`)."""
    if auth.method == "basic":
        credential = base64.b64encode(credential.encode()).decode("ascii")
    if auth.format == "prefix":
        return auth.prefix + credential
    if auth.format == "template":
        return auth.template.replace("{credential}", credential)
    return credential


@dataclass(frozen=True)
class Injection:
    """Where and what to add to one upstream request."""

    location: str
    name: str
    value: str

    def __repr__(self) -> str:  # the value is a secret
        return f"Injection({self.location!r}, {self.name!r}, '***')"


def inject(injection: Injection | None, headers: dict[str, str], query: dict[str, str],
           message: dict[str, Any]) -> dict[str, Any]:
    """Apply `injection` to the outgoing headers/query (mutated: they are ours) and return the message.

    A body credential goes into a copy of the message: `params.arguments` for tools/call and
    prompts/get, `params` otherwise; the caller's params object is never modified.
    """
    if injection is None:
        return message
    if injection.location == "header":
        headers[injection.name] = injection.value
        return message
    if injection.location == "query":
        query[injection.name] = injection.value
        return message
    params = dict(message.get("params") or {})
    if message.get("method") in ("tools/call", "prompts/get"):
        params["arguments"] = {**(params.get("arguments") or {}), injection.name: injection.value}
    else:
        params[injection.name] = injection.value
    return {**message, "params": params}
