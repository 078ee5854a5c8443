"""Errors the CLI turns into a message on stderr and an exit code scripts can rely on.

CliError
 ├── UsageError      exit 2: bad flags, bad JSON parameters, bad config file, refused file edit
 └── CallFailed      exit 1: the gateway (or IdP) was unreachable, refused, denied or failed
      └── ApiError   an HTTP error answer `{error: {code, message}}` with its status
"""

from __future__ import annotations

from typing import Any

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    """A failure with a message for the operator and an exit code."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(CliError):
    """Bad input or configuration: exit 2."""

    exit_code = EXIT_USAGE


class CallFailed(CliError):
    """The call failed, was refused or denied: exit 1."""

    exit_code = EXIT_FAILED


class ApiError(CallFailed):
    """An HTTP error answer from the gateway."""

    def __init__(self, message: str, *, status: int, code: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.body = body


def explain_http_error(status: int, body: Any, url: str) -> ApiError:
    """Turn an error answer into a message that says what to do next."""
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        code = str(err.get("code") or "error")
        message = str(err.get("message") or "")
    else:
        code, message = "error", (str(body)[:300] if body else "")
    if status == 401:
        text = (
            f"401 unauthorized: {message or 'no valid token'}. The token is missing or expired: "
            "get one with `mcpgw token ...` and pass it with --token or MCPGW_TOKEN."
        )
    elif status == 403:
        text = f"403 denied by policy: {message or 'no reason given'}"
        extra = _decision_details(err)
        if extra:
            text += f" ({extra})"
    elif status == 404:
        text = f"404 not found: {message or url}"
    elif status == 503:
        text = f"503 unavailable: {message} (the gateway fails closed when the PDP is down)"
    else:
        text = f"{status} {code}: {message}" if message else f"gateway answered HTTP {status}"
    return ApiError(text, status=status, code=code, body=body)


def _decision_details(err: dict[str, Any] | None) -> str:
    """The deciding statement and decision id, when the gateway includes them."""
    if not err:
        return ""
    parts = []
    statement = err.get("statement")
    if statement:
        parts.append(f"statement: {_compact(statement)}")
    for key in ("decision_id", "policy_version"):
        if err.get(key):
            parts.append(f"{key}: {err[key]}")
    return "; ".join(parts)


def _compact(value: Any) -> str:
    if isinstance(value, dict):
        return ", ".join(f"{k}={_compact(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "[" + ", ".join(_compact(v) for v in value) + "]"
    return str(value)
