"""Backend credentials as the backend sees them: every method and location, oauth2, isolation."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import base64
import copy
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import parse_qs

import pytest
from aiohttp import web

from gateway.credentials import CredentialStore
from gateway.registry import ServerConfig, parse_servers
from gateway.upstream import UpstreamError, UpstreamPool, create_session
from shared.redact import REDACTED
from tests.fixtures.backends import Backend, fresh_mcp_backend, mcp_backend_factory  # noqa: F401

SECRET = "s3cr3t-value"
ENV = {"BACKEND_SECRET": SECRET, "BASIC_CRED": "alice:pa ss"}


def servers(defs: dict[str, dict[str, Any]]) -> dict[str, ServerConfig]:
    parsed, errors = parse_servers({"servers": defs})
    assert errors == []
    return parsed


async def make_pool(session: Any, configs: dict[str, ServerConfig], clock: Callable[[], float] | None = None) -> UpstreamPool:
    store = CredentialStore(session, environ=ENV, **({"clock": clock} if clock else {}))
    resolved, errors = store.resolve(configs.values())
    assert errors == []
    store.commit(resolved)
    return UpstreamPool(session, store)


def calls(backend: Backend) -> list[Any]:
    return [r for r in backend.requests if (r.json() or {}).get("method") == "tools/call"]


@pytest.mark.parametrize(
    ("auth", "where", "name", "expected"),
    [
        ({"method": "api_key", "credential_ref": "env://BACKEND_SECRET"}, "header", "x-api-key", SECRET),
        ({"method": "bearer", "credential_ref": "env://BACKEND_SECRET"}, "header", "authorization", f"Bearer {SECRET}"),
        ({"method": "basic", "credential_ref": "env://BASIC_CRED"}, "header", "authorization",
         "Basic " + base64.b64encode(b"alice:pa ss").decode()),
        ({"method": "custom", "name": "X-Backend-Token", "format": "template", "template": "Token {credential}",
          "credential_ref": "env://BACKEND_SECRET"}, "header", "x-backend-token", f"Token {SECRET}"),
        ({"method": "api_key", "location": "header", "name": "X-Key", "format": "prefix", "prefix": "K ",
          "credential_ref": "env://BACKEND_SECRET"}, "header", "x-key", f"K {SECRET}"),
        ({"method": "api_key", "location": "query", "name": "api_key", "credential_ref": "env://BACKEND_SECRET"},
         "query", "api_key", SECRET),
        ({"method": "custom", "location": "query", "name": "tok", "format": "template", "template": "T:{credential}",
          "credential_ref": "env://BACKEND_SECRET"}, "query", "tok", f"T:{SECRET}"),
        ({"method": "api_key", "location": "body", "name": "api_key", "credential_ref": "env://BACKEND_SECRET"},
         "body", "api_key", SECRET),
        ({"method": "bearer", "location": "body", "name": "token", "credential_ref": "env://BACKEND_SECRET"},
         "body", "token", f"Bearer {SECRET}"),
    ],
)  # fmt: skip
async def test_backend_sees_exactly_its_credential(
    fresh_mcp_backend: Backend, auth: dict, where: str, name: str, expected: str
) -> None:
    configs = servers({"target": {"url": fresh_mcp_backend.url, "auth": auth}})
    arguments = {"api_key": None} if name != "api_key" else {}
    caller_args = copy.deepcopy(arguments)
    async with create_session() as session:
        pool = await make_pool(session, configs)
        result = await pool.call_tool(configs["target"], "get_headers", arguments)
    assert arguments == caller_args  # the caller's arguments object was not touched
    said = result["content"][0]["text"]  # the backend says back what it saw: its credential masked
    assert REDACTED in said and expected not in said and "s3cr3t" not in said, said
    request = calls(fresh_mcp_backend)[-1]
    if where == "header":
        assert request.headers[name] == expected
    elif where == "query":
        assert parse_qs(request.query)[name] == [expected]
    else:
        assert request.json()["params"]["arguments"][name] == expected
    # Nothing else carries an Authorization header, and only the chosen location carries the secret.
    for r in fresh_mcp_backend.requests:
        if name != "authorization":
            assert "authorization" not in r.headers
        locations = {"header": json.dumps(r.headers), "query": r.query, "body": r.body.decode()}
        for other, text in locations.items():
            if other != where:
                assert SECRET not in text, (other, r)


async def test_credential_goes_only_to_its_own_backend(
    mcp_backend_factory: Callable[..., Backend], caplog: pytest.LogCaptureFixture
) -> None:
    secured = mcp_backend_factory("normal", "secured")
    plain = mcp_backend_factory("legacy", "plain")
    configs = servers(
        {
            "secured": {"url": secured.url, "auth": {"method": "bearer", "credential_ref": "env://BACKEND_SECRET"}},
            "plain": {"url": plain.url},
        }
    )
    caplog.set_level(logging.DEBUG)
    async with create_session() as session:
        pool = await make_pool(session, configs)
        for name in ("secured", "plain", "secured", "plain"):
            await pool.call_tool(configs[name], "echo", {"text": name})
    assert all(r.headers.get("authorization") == f"Bearer {SECRET}" for r in secured.requests)
    for r in plain.requests:
        assert "authorization" not in r.headers and SECRET not in r.body.decode() and SECRET not in r.query
    assert SECRET not in caplog.text


class TokenServer:
    """A little OAuth2 token endpoint (client-credentials) on loopback."""

    def __init__(self, expires_in: int = 100) -> None:
        self.expires_in = expires_in
        self.requests: list[dict[str, Any]] = []

    async def token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        auth = request.headers.get("Authorization", "")
        self.requests.append({"form": form, "auth": auth})
        expected = "Basic " + base64.b64encode(f"gw-client:{SECRET}".encode()).decode()
        if auth != expected or form.get("grant_type") != "client_credentials":
            return web.json_response({"error": "invalid_client"}, status=401)
        n = len(self.requests)
        return web.json_response({"access_token": f"tok-{n}", "token_type": "Bearer", "expires_in": self.expires_in})


@pytest.fixture
async def token_server(aiohttp_server: Any) -> AsyncIterator[tuple[TokenServer, str]]:
    tokens = TokenServer()
    app = web.Application()
    app.router.add_post("/token", tokens.token)
    server = await aiohttp_server(app)
    yield tokens, str(server.make_url("/token"))


def oauth2(url: str, token_url: str, **extra: Any) -> dict[str, Any]:
    auth = {"method": "oauth2", "token_url": token_url, "client_id": "gw-client",
            "client_secret_ref": "env://BACKEND_SECRET", "scope": "mcp.read", **extra}  # fmt: skip
    return {"oauth": {"url": url, "auth": auth}}


async def test_oauth2_token_cached_and_refreshed_before_expiry(
    fresh_mcp_backend: Backend, token_server: tuple[TokenServer, str]
) -> None:
    tokens, token_url = token_server
    now = [1000.0]
    configs = servers(oauth2(fresh_mcp_backend.url, token_url))
    async with create_session() as session:
        pool = await make_pool(session, configs, clock=lambda: now[0])
        for _ in range(3):
            await pool.call_tool(configs["oauth"], "echo", {"text": "x"})
        assert len(tokens.requests) == 1  # one grant for the probe and three calls
        assert tokens.requests[0]["form"] == {"grant_type": "client_credentials", "scope": "mcp.read"}
        assert {r.headers["authorization"] for r in fresh_mcp_backend.requests} == {"Bearer tok-1"}

        now[0] += 85  # 100 s token: still valid, not yet in the refresh margin (10 s)
        await pool.call_tool(configs["oauth"], "echo", {"text": "x"})
        assert len(tokens.requests) == 1
        now[0] += 6  # 91 s: inside the margin, so refreshed before it expires
        await pool.call_tool(configs["oauth"], "echo", {"text": "x"})
        assert len(tokens.requests) == 2
        assert fresh_mcp_backend.requests[-1].headers["authorization"] == "Bearer tok-2"


async def test_a_replaced_oauth2_token_stays_masked_until_it_expires(
    fresh_mcp_backend: Backend, token_server: tuple[TokenServer, str]
) -> None:
    tokens, token_url = token_server
    now = [1000.0]
    configs = servers(oauth2(fresh_mcp_backend.url, token_url))
    async with create_session() as session:
        pool = await make_pool(session, configs, clock=lambda: now[0])
        await pool.call_tool(configs["oauth"], "echo", {"text": "x"})
        now[0] += 95  # refreshed: tok-2 is used, but the backend saw tok-1, valid for 5 s more
        await pool.call_tool(configs["oauth"], "echo", {"text": "x"})
        assert len(tokens.requests) == 2
        echoed = await pool.call_tool(configs["oauth"], "echo", {"text": "old tok-1, new tok-2"})
        assert "tok-1" not in json.dumps(echoed) and "tok-2" not in json.dumps(echoed), echoed
        now[0] += 10  # tok-1 expired: nothing left to hide
        assert "tok-1" not in pool.credentials.forms(configs["oauth"])


async def test_oauth2_token_endpoint_failure_fails_closed(
    fresh_mcp_backend: Backend, token_server: tuple[TokenServer, str], caplog: pytest.LogCaptureFixture
) -> None:
    _, token_url = token_server
    configs = servers(oauth2(fresh_mcp_backend.url, token_url, client_id="wrong-client"))
    caplog.set_level(logging.DEBUG)
    async with create_session() as session:
        pool = await make_pool(session, configs)
        with pytest.raises(UpstreamError, match="token endpoint answered HTTP 401"):
            await pool.call_tool(configs["oauth"], "echo", {"text": "x"})
    assert fresh_mcp_backend.requests == []  # nothing was sent without the credential
    assert SECRET not in caplog.text


async def test_backend_redirect_is_not_followed(aiohttp_server: Any) -> None:
    """A backend answering 307 must not make the gateway resend the credential elsewhere."""
    elsewhere: list[dict[str, str]] = []

    async def sink(request: web.Request) -> web.Response:
        elsewhere.append(dict(request.headers))
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": {}})

    other = web.Application()
    other.router.add_route("*", "/mcp", sink)
    other_server = await aiohttp_server(other)

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(str(other_server.make_url("/mcp")))

    origin = web.Application()
    origin.router.add_route("*", "/mcp", redirect)
    origin_server = await aiohttp_server(origin)
    configs = servers(
        {"target": {"url": str(origin_server.make_url("/mcp")),
                    "auth": {"method": "api_key", "credential_ref": "env://BACKEND_SECRET"}}}
    )  # fmt: skip
    async with create_session() as session:
        pool = await make_pool(session, configs)
        with pytest.raises(UpstreamError):
            await pool.call_tool(configs["target"], "echo", {"text": "x"})
    assert elsewhere == []


async def test_oauth2_token_endpoint_redirect_is_not_followed(
    fresh_mcp_backend: Backend, aiohttp_server: Any
) -> None:
    """The client secret goes to the configured token URL only, never to where it redirects."""
    elsewhere: list[str] = []

    async def sink(request: web.Request) -> web.Response:
        elsewhere.append(request.headers.get("Authorization", ""))
        return web.json_response({"access_token": "stolen", "expires_in": 100})

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("/sink")

    app = web.Application()
    app.router.add_post("/token", redirect)
    app.router.add_post("/sink", sink)
    server = await aiohttp_server(app)
    configs = servers(oauth2(fresh_mcp_backend.url, str(server.make_url("/token"))))
    async with create_session() as session:
        pool = await make_pool(session, configs)
        with pytest.raises(UpstreamError, match="HTTP 307"):
            await pool.call_tool(configs["oauth"], "echo", {"text": "x"})
    assert elsewhere == [] and fresh_mcp_backend.requests == []
