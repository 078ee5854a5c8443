"""A backend session renewed while other requests are in flight (gateway/upstream/session.py): the
old session id is kept until the new session is ready, so requests racing the renewal are refused
as stale and sent again in the new session — one new session, nothing sent without a session id."""
# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
from collections.abc import Callable

from gateway.credentials import CredentialStore
from gateway.registry import parse_servers
from gateway.upstream import create_session
from gateway.upstream.client import BackendClient
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401


async def test_requests_racing_a_renewal_heal_in_one_new_session(mcp_backend_factory: Callable[..., Backend]) -> None:
    backend = mcp_backend_factory("legacy", "renewing")
    servers, errors = parse_servers({"servers": {"srv": {"url": backend.url, "timeout": 10}}})
    assert errors == []
    async with create_session() as http:
        client = BackendClient(servers["srv"], http, CredentialStore(http, environ={}))
        await client.request("tools/list")
        old = client.session_id
        assert old and client.initialize_count == 1
        # The backend forgets the session (as after a restart or an idle expiry): it now answers 404.
        async with http.delete(backend.url, headers={"Mcp-Session-Id": old, "MCP-Protocol-Version": "2025-11-25"}) as r:
            assert r.status in (200, 204)
        backend.clear()
        texts = [str(i) for i in range(8)]
        replies = await asyncio.gather(*(client.request("tools/call", {"name": "echo", "arguments": {"text": t}})
                                         for t in texts))
        assert [r.response["result"]["content"][0]["text"] for r in replies] == texts
        assert client.initialize_count == 2 and client.session_id not in (None, old)
        posts = [(r.headers.get("mcp-session-id"), r.json()) for r in backend.requests if r.method == "POST"]
        assert [body for sid, body in posts if sid is None and body.get("method") != "initialize"] == []
        ran = [body["params"]["arguments"]["text"] for sid, body in posts
               if sid == client.session_id and body.get("method") == "tools/call"]
        assert sorted(ran) == texts  # each call ran once, in the new session
