"""The connect-time SSRF guard against a real backend: a name resolving to a blocked address."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import ipaddress

import pytest

from gateway.credentials import CredentialStore
from gateway.registry import parse_servers
from gateway.upstream import UpstreamError, UpstreamPool, create_session
from gateway.upstream.guard import GuardedResolver
from tests.fixtures.backends import Backend, fresh_mcp_backend  # noqa: F401


async def test_name_resolving_to_blocked_address_is_never_contacted(fresh_mcp_backend: Backend) -> None:
    # "localhost" really resolves to loopback; block loopback here to stand in for a name
    # pointed at the metadata service.
    loopback = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128")]
    url = fresh_mcp_backend.url.replace("127.0.0.1", "localhost")
    configs, errors = parse_servers({"servers": {"meta": {"url": url}}}, ["localhost"])
    assert errors == []
    resolver = GuardedResolver(["localhost"], blocked=loopback)
    async with create_session(resolver=resolver) as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}))
        with pytest.raises(UpstreamError, match="cannot reach backend"):
            await pool.call_tool(configs["meta"], "echo", {"text": "x"})
    assert fresh_mcp_backend.requests == []
    # The same name is reachable when the guard blocks nothing it resolves to.
    async with create_session(resolver=GuardedResolver(["localhost"])) as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}))
        result = await pool.call_tool(configs["meta"], "echo", {"text": "x"})
    assert result["isError"] is False
