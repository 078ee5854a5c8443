"""What the policy commands that talk to a running PDP share: its URL and token flags, one call, errors."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from shared.clierror import error


def _remote_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pdp-url", default=os.environ.get("MCPGW_PDP_URL", "http://127.0.0.1:8181"),
                   help="PDP base URL (default: $MCPGW_PDP_URL or http://127.0.0.1:8181)")
    p.add_argument("--token", default=None, help="Admin bearer JWT (default: $MCPGW_ADMIN_TOKEN)")
    p.add_argument("--json", action="store_true", help="Print the PDP's JSON answer")


def _token(args: argparse.Namespace) -> str | None:
    token = args.token or os.environ.get("MCPGW_ADMIN_TOKEN")
    if not token:
        error("no admin token: pass --token or set MCPGW_ADMIN_TOKEN")
        return None
    return str(token)


# What to do next, by status (0 = the PDP could not be reached).
_HINTS = {
    0: "Is the PDP running? Start it with `mcpgw pdp serve`, or point at it with --pdp-url or MCPGW_PDP_URL",
    401: "The admin token is missing, malformed or expired: get a fresh one (`mcpgw token ...`) and pass "
         "it with --token or MCPGW_ADMIN_TOKEN",
    403: "The token is valid but lacks a PDP admin role (MCPGW_PDP_ADMIN_ROLES, default policy-admin,admin)",
}


def _print_error(status: int, answer: Any) -> None:
    problem = answer.get("error", {}) if isinstance(answer, dict) else {}
    code = problem.get("code", "error") if isinstance(problem, dict) else "error"
    message = problem.get("message", answer) if isinstance(problem, dict) else answer
    hint = f". {_HINTS[status]}" if status in _HINTS else ""
    error(f"{f'HTTP {status} ' if status else ''}{code}: {message}{hint}")


def _call(args: argparse.Namespace, token: str, method: str, path: str, body: Any) -> tuple[int, Any]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(args.pdp_url.rstrip("/") + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {"error": {"message": str(exc)}}
    except OSError as exc:
        return 0, {"error": {"code": "unreachable", "message": f"cannot reach {args.pdp_url}: {exc}"}}
