"""`mcpgw token`: get an access token from the OIDC provider and print it (only it) on stdout.

Client-credentials grant by default; the password grant when a username is configured. The token
endpoint comes from --token-url or from the issuer's discovery document.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import aiohttp

from mcpgw.client.errors import CallFailed, UsageError
from mcpgw.client.http import run
from shared.settings import Secret


def grant_form(cfg: Any) -> dict[str, str]:
    """The token request form for the configured grant (pure: tests read it)."""
    client_id = cfg.get("client_id")
    if not client_id:
        raise UsageError("no OIDC client: give --client-id (or MCPGW_OIDC_CLIENT_ID, or client_id in the config file)")
    form = {"client_id": str(client_id)}
    secret: Secret | None = cfg.get("client_secret")
    if secret:
        form["client_secret"] = secret.get()
    username = cfg.get("username")
    if username:
        password: Secret | None = cfg.get("password")
        if not password:
            raise UsageError("the password grant needs --password (or MCPGW_OIDC_PASSWORD)")
        form.update(grant_type="password", username=str(username), password=password.get())
    else:
        if not secret:
            raise UsageError(
                "the client-credentials grant needs a client secret: MCPGW_OIDC_CLIENT_SECRET "
                "(or --client-secret / client_secret in the config file); or give --username for the password grant"
            )
        form["grant_type"] = "client_credentials"
    if cfg.get("scope"):
        form["scope"] = str(cfg.get("scope"))
    if cfg.get("audience"):
        form["audience"] = str(cfg.get("audience"))
    return form


async def _json(session: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    try:
        async with session.request(method, url, **kw) as resp:
            try:
                return resp.status, await resp.json(content_type=None)
            except ValueError:
                return resp.status, None
    except aiohttp.ClientConnectorError:
        raise CallFailed(f"cannot reach the identity provider at {url}") from None
    except aiohttp.InvalidURL:
        raise UsageError(f"invalid URL {url!r}") from None
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise CallFailed(f"request to {url} failed: {exc or type(exc).__name__}") from None


async def fetch_token(cfg: Any) -> str:
    """Discover the token endpoint if needed, run the grant, return the access token."""
    form = grant_form(cfg)
    timeout = aiohttp.ClientTimeout(total=cfg.timeout)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        token_url = cfg.get("token_url")
        if not token_url:
            issuer = cfg.get("issuer")
            if not issuer:
                raise UsageError("no identity provider: give --issuer or --token-url (or MCPGW_OIDC_ISSUER)")
            discovery = str(issuer).rstrip("/") + "/.well-known/openid-configuration"
            status, doc = await _json(session, "GET", discovery)
            if status != 200 or not isinstance(doc, dict) or not doc.get("token_endpoint"):
                raise CallFailed(f"{discovery} answered {status} without a token_endpoint; give --token-url instead")
            token_url = doc["token_endpoint"]
        status, body = await _json(session, "POST", str(token_url), data=form)
    if status != 200 or not isinstance(body, dict) or not body.get("access_token"):
        detail = ""
        if isinstance(body, dict) and body.get("error"):
            detail = f": {body['error']}" + (f" ({body['error_description']})" if body.get("error_description") else "")
        raise CallFailed(f"the token endpoint {token_url} refused the {form['grant_type']} grant (HTTP {status}){detail}")
    return str(body["access_token"])


def cmd_token(args: argparse.Namespace) -> int:
    """Print a fresh access token for `export MCPGW_TOKEN=$(mcpgw token)`."""
    token = run(fetch_token(args.cfg))
    sys.stdout.write(token + "\n")
    return 0


def add_parser(subparsers: Any, handle: Any, common: argparse.ArgumentParser) -> None:
    """The `token` command."""
    p = subparsers.add_parser(
        "token",
        parents=[common],
        help="get an access token from the OIDC provider",
        description="Run the client-credentials grant (or the password grant with --username) and "
        "print the access token, e.g. export MCPGW_TOKEN=$(mcpgw token). Prefer env vars or the "
        "config file for secrets: flags are visible in the process list.",
    )
    p.add_argument("--issuer", help="OIDC issuer URL (discovery finds the token endpoint)")
    p.add_argument("--token-url", help="token endpoint URL (skips discovery)")
    p.add_argument("--client-id")
    p.add_argument("--client-secret", help="prefer MCPGW_OIDC_CLIENT_SECRET")
    p.add_argument("--username", "--user", help="use the password grant as this user (make run: alice, bob, ...)")
    p.add_argument("--password", help="prefer MCPGW_OIDC_PASSWORD")
    p.add_argument("--scope")
    p.add_argument("--audience", help="audience parameter, for providers that take one")
    p.set_defaults(func=handle(cmd_token))
