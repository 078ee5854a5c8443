"""gateway.mcp.peer_link: a held call or a pending server→client request reached from another replica.

Two real gateway apps (replicas A and B: one issuer, PDP and Postgres, one session and one peer
secret, each its own peer listener) in front of a real SDK 2025-era backend that samples and
elicits mid-tool (tests/fixtures/asking_backend.py). Without the peer channel every retry or answer
below that lands on the replica not holding the call is lost (−32602, or an answer never delivered).
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from gateway.app import create_app
from gateway.keys import MCP_STATE, PEERS
from shared.keys import AUDIT
from tests.fixtures.asking_backend import SEEN
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.gateway.mcp.test_bridge import (
    ANSWER,
    CAROL,
    MALLORY,
    _admin,
    _asked,
    _backend_saw,
    _call,
)
from tests.integration.gateway_harness import Stack, gateway_stack, start_site
from tests.integration.mcp_helpers import ACCEPT, initialize, session_headers

PEER_ENV = {"MCPGW_GATEWAY_MCP_SESSION_SECRET": "s" * 32, "MCPGW_GATEWAY_PEER_SECRET": "p" * 40,
            "MCPGW_GATEWAY_PEER_LISTEN": "127.0.0.1:0"}


@pytest.fixture(scope="module")
def asking(mcp_backend_factory: Callable[..., Backend]) -> Backend:
    return mcp_backend_factory("asking-legacy", "asking")


@pytest.fixture
async def pair(tmp_path: Path, pg_dsn: str, asking: Backend) -> AsyncIterator[tuple[Stack, Stack]]:
    """Replicas A and B of one gateway."""
    async with gateway_stack(tmp_path, pg_dsn, {"ask": {"url": asking.url}}, env=PEER_ENV) as a:
        settings = dataclasses.replace(a.settings, data_dir=tmp_path / "b", audit_file=tmp_path / "b.jsonl")
        app = create_app(settings)
        runner, url = await start_site(app)
        try:
            yield a, dataclasses.replace(a, url=url, app=app)
        finally:
            await runner.cleanup()


def _retry(first: dict[str, Any], answer: dict[str, Any] = ANSWER) -> dict[str, Any]:
    key = next(iter(first["inputRequests"]))
    return {"inputResponses": {key: answer}, "requestState": first["requestState"]}


def _answers(backend: Backend) -> int:
    """How many JSON-RPC responses (answers to the backend's own requests) the backend received."""
    return sum(1 for r in backend.requests if isinstance(m := r.json(), dict) and "method" not in m)


def _idle(*stacks: Stack) -> bool:
    return all(len(s.app[MCP_STATE].held) == 0 and s.app[MCP_STATE].held.held == 0
               and len(s.app[MCP_STATE].pending) == 0 for s in stacks)


async def _tool_calls(dsn: str, *stacks: Stack) -> list[asyncpg.Record]:
    for s in stacks:
        await s.app[AUDIT].flush()
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch("SELECT * FROM audit_events WHERE tool = 'ask_and_wait' ORDER BY id")
    finally:
        await conn.close()


async def test_a_2026_retry_on_the_other_replica_continues_the_held_call(pair: tuple[Stack, Stack], pg_dsn: str) -> None:
    a, b = pair
    first = await _asked(a, "crossed")
    assert first["requestState"].count(".") == 2  # it names its owner
    status, final = await _call(b, "ask_and_wait", {"topic": "crossed"}, _admin(b), _retry(first))
    assert status == 200, final
    assert final["result"]["content"][0]["text"] == "llm said: tides"
    await _backend_saw(SEEN["crossed"].finished)
    assert _idle(a, b)
    # One audit row per decision: the first call (A) and the retry (B); the owner wrote none for the round.
    rows = await _tool_calls(pg_dsn, a, b)
    assert len(rows) == 2 and all(r["decision"] == "allow" for r in rows), rows


async def test_rounds_alternate_between_replicas(pair: tuple[Stack, Stack]) -> None:
    """Two rounds (sampling, then elicitation): every retry on B, the call held on A throughout."""
    a, b = pair
    status, first = await _call(a, "ask_twice", {"topic": "sea"}, _admin(a))
    assert first["result"]["resultType"] == "input_required", first
    status, second = await _call(b, "ask_twice", {"topic": "sea"}, _admin(b), _retry(first["result"]))
    assert status == 200 and second["result"]["resultType"] == "input_required", second
    (request,) = second["result"]["inputRequests"].values()
    assert request["method"] == "elicitation/create"
    accept = {"action": "accept", "content": {"name": "carol"}}
    status, final = await _call(b, "ask_twice", {"topic": "sea"}, _admin(b), _retry(second["result"], accept))
    assert status == 200 and final["result"]["content"][0]["text"] == "llm said: tides; user: carol", final
    assert _idle(a, b)


async def test_the_owner_checks_the_binding_of_a_forwarded_retry(pair: tuple[Stack, Stack], asking: Backend) -> None:
    """Another subject's retry, or other arguments, forwarded from B: −32602 from A, the call untouched."""
    a, b = pair
    first = await _asked(a, "guarded")
    posted = _answers(asking)
    status, foreign = await _call(b, "ask_and_wait", {"topic": "guarded"}, _admin(b, MALLORY), _retry(first))
    assert status == 400 and foreign["error"]["code"] == -32602, foreign
    assert foreign["error"]["message"] == "Invalid or expired requestState"
    status, other = await _call(b, "ask_and_wait", {"topic": "other"}, _admin(b), _retry(first))
    assert status == 400 and other["error"]["code"] == -32602, other
    # B's decisions may list the catalog in each caller's backend session; no answer was posted.
    assert _answers(asking) == posted and not SEEN["guarded"].cancelled.is_set()
    status, final = await _call(b, "ask_and_wait", {"topic": "guarded"}, _admin(b), _retry(first))
    assert status == 200 and final["result"]["content"][0]["text"] == "llm said: tides", final
    status, again = await _call(a, "ask_and_wait", {"topic": "guarded"}, _admin(a), _retry(first))
    assert status == 400 and again["error"]["code"] == -32602  # used once, wherever


async def test_a_retry_denied_on_the_other_replica_cancels_the_held_call(pair: tuple[Stack, Stack]) -> None:
    a, b = pair
    first = await _asked(a, "denied-far")
    status, denied = await _call(b, "ask_and_wait", {"topic": "denied-far"}, b.token(CAROL), _retry(first))
    assert status == 200 and denied["result"]["isError"], denied
    await _backend_saw(SEEN["denied-far"].cancelled)
    assert not SEEN["denied-far"].finished.is_set()
    assert _idle(a, b)  # the owner ended it (and gave back its count) before telling the backend


async def test_a_retry_whose_owner_is_gone_is_an_expired_state(tmp_path: Path, pg_dsn: str, asking: Backend) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"ask": {"url": asking.url}}, env=PEER_ENV) as a:
        owner = create_app(dataclasses.replace(a.settings, data_dir=tmp_path / "b", audit_file=tmp_path / "b.jsonl"))
        runner, url = await start_site(owner)
        b = dataclasses.replace(a, url=url, app=owner)
        first = await _asked(b, "orphan")
        await runner.cleanup()  # the owner stops: its held call ends with it
        await _backend_saw(SEEN["orphan"].cancelled)
        status, late = await _call(a, "ask_and_wait", {"topic": "orphan"}, _admin(a), _retry(first))
        assert status == 400 and late["error"] == {"code": -32602, "message": "Invalid or expired requestState",
                                                   "data": {"reason": "invalid_request_state"}}, late


async def test_a_forged_owner_is_refused_before_anything_is_sent(pair: tuple[Stack, Stack]) -> None:
    """A requestState naming an address no replica sealed is −32602 at once: no request to where an agent chose."""
    a, b = pair
    first = await _asked(a, "forged-route")
    nonce = first["requestState"].rsplit(".", 1)[1]
    forged = f"mcpgw-state-MTI3LjAuMC4xOjE.AAAAAAAAAAAAAAAAAAAAAA.{nonce}"  # 127.0.0.1:1, a made-up seal
    retry = {**_retry(first), "requestState": forged}
    status, answer = await _call(b, "ask_and_wait", {"topic": "forged-route"}, _admin(b), retry)
    assert status == 400 and answer["error"]["code"] == -32602, answer
    assert not b.app[PEERS].tasks  # nothing sent anywhere, not even an "end"
    status, final = await _call(b, "ask_and_wait", {"topic": "forged-route"}, _admin(b), _retry(first))
    assert status == 200 and final["result"]["content"][0]["text"] == "llm said: tides", final


async def test_a_2025_agents_answer_posted_to_the_other_replica_reaches_the_call(pair: tuple[Stack, Stack]) -> None:
    """The call's stream is on A; the agent's POST with the answer lands on B (one session: shared secret)."""
    a, b = pair
    sid = await initialize(a, "/mcp", CAROL, capabilities={"sampling": {}})
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "ask__ask_and_wait", "arguments": {"topic": "posted"}}}
    headers = {"Authorization": f"Bearer {_admin(a)}", "Accept": ACCEPT, "Content-Type": "application/json",
               **session_headers(sid)}
    # Bounded: an answer that never arrives would leave the call waiting ANSWER_TIMEOUT (300 s).
    async with asyncio.timeout(30), a.session.post(a.url + "/mcp", json=call, headers=headers) as resp:
        assert resp.content_type == "text/event-stream"
        async for line in resp.content:
            if line.startswith(b"data:"):
                asked = json.loads(line[5:])
                break
        assert asked["method"] == "sampling/createMessage"
        reply = {"jsonrpc": "2.0", "id": asked["id"], "result": ANSWER}
        async with b.session.post(b.url + "/mcp", json=reply, headers=headers) as answered:
            assert answered.status == 202, await answered.text()
        rest = (await resp.read()).decode()
    done = [json.loads(line[5:]) for line in rest.splitlines() if line.startswith("data:")]
    assert done[-1]["result"]["content"][0]["text"] == "llm said: tides", done
    assert _idle(a, b)
