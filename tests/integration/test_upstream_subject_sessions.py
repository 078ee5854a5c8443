"""Per-subject backend sessions (issue 9, item 7): on a 2025-era backend that keeps session state
(a real SDK server), one agent's state is invisible to another, each session declares its own
agent's capabilities, and the number of sessions per backend is bounded (LRU, ended with DELETE)."""

# ruff: noqa: F811  (pytest fixtures imported by name)

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gateway.credentials import CredentialStore
from gateway.keys import UPSTREAM
from gateway.registry import ServerConfig, parse_servers
from gateway.upstream import LEGACY, UpstreamPool, codec, create_session, sse
from gateway.upstream.sender import drain_background
from gateway.upstream.sessions import Caller, SubjectSessions, canonical_capabilities
from tests.fixtures.backends import ALL_TOOLS, Backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import gateway_stack
from tests.integration.mcp_helpers import ADMIN, DEV, initialize, rpc, session_headers
from tests.integration.pdp_helpers import eventually

TOOLS = (*ALL_TOOLS, "session_state")


@pytest.fixture(scope="module")
def stateful(mcp_backend_factory: Callable[..., Backend]) -> Backend:
    return mcp_backend_factory("legacy", "stateful", tools=TOOLS)


def config(url: str) -> ServerConfig:
    servers, errors = parse_servers({"servers": {"srv": {"url": url, "timeout": 10}}})
    assert errors == []
    return servers["srv"]


def text(result: dict[str, Any]) -> str:
    return str(result["content"][0]["text"]) if result.get("content") else ""


def call(rid: int, tool: str, arguments: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": rid, "method": "tools/call",
            "params": {"name": f"alpha__{tool}", "arguments": arguments or {}}}


async def test_one_agents_backend_session_state_is_invisible_to_another(
    tmp_path: Path, pg_dsn: str, stateful: Backend
) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": stateful.url}}) as stack:
        alice = await initialize(stack, "/mcp", ADMIN, capabilities={"sampling": {}, "roots": {}})
        bob = await initialize(stack, "/mcp", DEV)
        _, answer, _ = await rpc(stack, "/mcp", call(2, "remember", {"note": "alice-secret"}), ADMIN,
                                 session_headers(alice))
        assert text(answer["result"]) == "ok"
        _, answer, _ = await rpc(stack, "/mcp", call(3, "recall"), DEV, session_headers(bob))
        assert "alice-secret" not in text(answer["result"])
        _, answer, _ = await rpc(stack, "/mcp", call(4, "recall"), ADMIN, session_headers(alice))
        assert text(answer["result"]) == "alice-secret"  # her own session kept it
        # Each backend session declares its own agent's capabilities, nothing more.
        _, answer, _ = await rpc(stack, "/mcp", call(5, "client_caps"), ADMIN, session_headers(alice))
        assert text(answer["result"]) == "roots,sampling"
        _, answer, _ = await rpc(stack, "/mcp", call(6, "client_caps"), DEV, session_headers(bob))
        assert text(answer["result"]) == ""
        # The REST entry point is per subject too: Bob's REST call does not see Alice's note.
        status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=alpha", subject=DEV,
                                           json={"tool_name": "recall", "parameters": {}})
        assert status == 200 and "alice-secret" not in str(body), body
        assert stack.app[UPSTREAM].subjects.count("alpha") >= 2


async def test_sessions_per_backend_are_bounded_and_the_evicted_one_is_deleted(stateful: Backend) -> None:
    srv = config(stateful.url)
    async with create_session() as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}), sessions_per_backend=2)
        callers = [Caller.of(f"user{i}@example.com") for i in range(3)]
        await pool.call_tool(srv, "remember", {"note": "first"}, callers[0])
        first = pool.client(srv, callers[0])
        assert first.era == LEGACY and first.session_id
        evicted = first.session_id
        stateful.clear()
        for who in callers[1:]:
            await pool.call_tool(srv, "echo", {"text": "hi"}, who)
        assert pool.subjects.count("srv") == 2 and pool.subjects.ended == 1
        await drain_background()

        async def deleted() -> bool:
            return any(r.method == "DELETE" and r.headers.get("mcp-session-id") == evicted
                       for r in list(stateful.requests))

        await eventually(deleted)
        # The evicted caller comes back to a fresh session: its old state went with the old one.
        assert text(await pool.call_tool(srv, "recall", {}, callers[0])) == ""
        assert pool.subjects.count("srv") == 2
        await pool.close()


async def test_a_2026_backend_needs_no_per_subject_session(mcp_backend_factory: Callable[..., Backend]) -> None:
    backend = mcp_backend_factory("normal", "modern-shared")
    srv = config(backend.url)
    async with create_session() as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}))
        for i in range(3):
            await pool.call_tool(srv, "echo", {"text": "hi"}, Caller.of(f"user{i}"))
        assert pool.era(srv) == "2026-07-28" and pool.subjects.count("srv") <= 1
        assert pool.client(srv, Caller.of("user9")) is pool.client(srv)


def test_idle_sessions_are_ended_when_the_table_is_next_touched() -> None:
    now = [0.0]
    made: list[Any] = []

    class FakeClient:
        def __init__(self, server: Any) -> None:
            self.server, self.ended = server, False
            made.append(self)

        def end_soon(self) -> None:
            self.ended = True

    table = SubjectSessions(lambda cfg, who: FakeClient(cfg), per_backend=10, idle=60.0,  # type: ignore[arg-type,return-value]
                            clock=lambda: now[0])
    srv = config("http://127.0.0.1:1/mcp")
    table.get(srv, Caller.of("a"))
    now[0] = 30.0
    table.get(srv, Caller.of("b"))
    now[0] = 70.0
    table.get(srv, Caller.of("b"))  # a idled 70 s: ended; b was used 40 s ago: kept
    assert made[0].ended and not made[1].ended and table.count("srv") == 1


def test_capabilities_are_reduced_to_what_a_backend_may_use_and_bounded() -> None:
    assert canonical_capabilities({"roots": {}, "sampling": {"tools": {}}, "x-vendor": {"a": 1}}) == \
        '{"roots":{},"sampling":{"tools":{}}}'
    assert canonical_capabilities("nonsense") == "{}"
    huge = canonical_capabilities({"elicitation": {"form": {"pad": "x" * 5000}}})
    assert huge == '{"elicitation":{"form":{}}}'
    assert Caller.of("a", {"sampling": {}}) == Caller.of("a", {"sampling": {}, "experimental": {}})
    # Unknown contents are no part of the key: one subject cannot mint callers without end.
    assert len({Caller.of("a", {"sampling": {"x": i}}) for i in range(50)}) == 1
    assert canonical_capabilities({"elicitation": {"url": {}, "x": 1}, "roots": {"listChanged": True}}) == \
        '{"elicitation":{"url":{}},"roots":{"listChanged":true}}'
    assert canonical_capabilities({"roots": {"listChanged": "yes"}, "sampling": {"context": 1}}) == \
        '{"roots":{},"sampling":{}}'


class _Fake:
    def __init__(self, server: Any) -> None:
        self.server, self.ended = server, False

    def end_soon(self) -> None:
        self.ended = True


def test_one_subject_is_bounded_on_its_own_and_a_session_in_use_is_never_ended() -> None:
    now = [0.0]
    table = SubjectSessions(lambda cfg, who: _Fake(cfg), per_backend=4, idle=60.0,  # type: ignore[arg-type,return-value]
                            clock=lambda: now[0], per_subject=2)
    srv = config("http://127.0.0.1:1/mcp")
    victim = Caller.of("victim")
    theirs = table.get(srv, victim)
    with table.hold("srv", victim):  # the victim's call is in flight
        flood = [table.get(srv, Caller.of("mallory", {c: {}})) for c in ("sampling", "elicitation", "roots")]
        assert flood[0].ended and not flood[1].ended  # mallory's own oldest went, not the victim's
        for i in range(5):  # past the backend's bound: the idle ones go, the one in use stays
            table.get(srv, Caller.of(f"user{i}"))
        now[0] = 100.0
        table.get(srv, Caller.of("late"))  # every other one idled out
        assert not theirs.ended  # type: ignore[attr-defined]
        assert table.get(srv, victim) is theirs
    now[0] = 200.0
    table.get(srv, Caller.of("later"))
    assert theirs.ended  # type: ignore[attr-defined]


async def test_a_session_with_a_call_in_flight_is_not_evicted_by_other_callers(stateful: Backend) -> None:
    srv = config(stateful.url)
    async with create_session() as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}), sessions_per_backend=1)
        slow = Caller.of("slow@example.com")
        running = asyncio.ensure_future(pool.call_tool(srv, "sleep", {"seconds": 1.0}, slow))
        await eventually(lambda: _async(pool.client(srv, slow).session_id is not None and any(
            r.method == "POST" and "sleep" in str(r.body) for r in list(stateful.requests))))
        ours = pool.client(srv, slow).session_id
        await pool.call_tool(srv, "echo", {"text": "hi"}, Caller.of("other@example.com"))
        assert text(await running) == "slept 1.0"
        assert not any(r.method == "DELETE" and r.headers.get("mcp-session-id") == ours
                       for r in list(stateful.requests))
        await pool.close()


async def _async(value: bool) -> bool:
    return value


async def test_a_2025_agent_a_backend_may_ask_gets_a_2025_session_on_a_backend_offering_2026(
    mcp_backend_factory: Callable[..., Backend]
) -> None:
    """In 2026-07-28 a backend asks only with `input_required`; a 2025-era agent that declared sampling
    expects the backend's request mid-call, so it gets a 2025-era session (the backend speaks both)."""
    backend = mcp_backend_factory("normal", "both-eras-asking", tools=TOOLS)
    srv = config(backend.url)
    asking = replace(Caller.of(ADMIN, {"sampling": {}}), handshake=True)
    async with create_session() as session:
        pool = UpstreamPool(session, CredentialStore(session, environ={}))
        await pool.call_tool(srv, "echo", {"text": "hi"})
        assert pool.era(srv) == "2026-07-28"
        # Everyone else keeps the shared 2026-07-28 client: a 2026-07-28 agent declaring sampling, a 2025 one declaring nothing.
        assert pool.client(srv, replace(asking, handshake=False)) is pool.client(srv)
        assert pool.client(srv, Caller(ADMIN, handshake=True)) is pool.client(srv)
        assert text(await pool.call_tool(srv, "client_caps", {}, asking)) == "sampling"
        client = pool.client(srv, asking)
        assert client is not pool.client(srv) and client.era == LEGACY and client.session_id
        assert pool.era(srv) == "2026-07-28"  # the shared client did not learn "legacy" from it
        # The back-channel exists: the backend's sampling request arrives on the call's stream.
        message = {"jsonrpc": "2.0", "id": "c1", "method": "tools/call", "params": {"name": "chatty", "arguments": {"topic": "t"}}}
        async with await client.open_stream(message) as resp:
            seen = []
            async for event in sse.events(resp, "srv", 1 << 20):
                found = codec.event_message(event)
                if found is None:
                    continue
                seen.append(found)
                if found.get("method") == "sampling/createMessage":
                    answer = {"role": "assistant", "content": {"type": "text", "text": "re: t"}, "model": "m"}
                    assert await client.send_response({"jsonrpc": "2.0", "id": found["id"], "result": answer}) < 300
                if found.get("id") == "c1":
                    break
        assert seen[-1]["result"]["content"][0]["text"] == "llm said: re: t", seen
        await pool.close()
