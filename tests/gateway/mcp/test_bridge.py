"""gateway.mcp.bridge: a 2025-era SDK backend asking a 2026-07-28 agent mid-call, through `/mcp`.

The backend (tests/fixtures/asking_backend.py, served 2025-11-25 only) samples and elicits in the
middle of tools/call; the agent sees `input_required` results and answers by retrying.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import asyncio
import dataclasses
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx2
import mcp_types as types
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from gateway.keys import MCP_STATE
from tests.fixtures.asking_backend import SEEN, Seen
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import ACCEPT, META, modern_headers

CAROL, MALLORY = "carol@example.com", "mallory@example.com"
CAPS = {**META, "io.modelcontextprotocol/clientCapabilities": {"sampling": {}, "elicitation": {}}}
ANSWER = {"role": "assistant", "content": {"type": "text", "text": "tides"}, "model": "m"}
_ids = itertools.count(1)


@pytest.fixture(scope="module")
def asking(mcp_backend_factory: Callable[..., Backend]) -> Backend:
    return mcp_backend_factory("asking-legacy", "asking")


def _stack(tmp_path: Path, pg_dsn: str, backend: Backend, **env: str) -> Any:
    settings = {f"MCPGW_GATEWAY_MCP_{k.upper()}": v for k, v in env.items()}
    return gateway_stack(tmp_path, pg_dsn, {"ask": {"url": backend.url}}, env=settings)


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, asking: Backend) -> AsyncIterator[Stack]:
    async with _stack(tmp_path, pg_dsn, asking) as s:
        yield s


async def _call(stack: Stack, tool: str, arguments: dict[str, Any], token: str,
                extra: dict[str, Any] | None = None) -> tuple[int, Any]:
    """One 2026-07-28 tools/call on /mcp by the bearer of `token`; (status, JSON-RPC response)."""
    body = {"jsonrpc": "2.0", "id": next(_ids), "method": "tools/call",
            "params": {"name": f"ask__{tool}", "arguments": arguments, "_meta": CAPS, **(extra or {})}}
    headers = {"Authorization": f"Bearer {token}", "Accept": ACCEPT, "Content-Type": "application/json",
               **modern_headers("tools/call", f"ask__{tool}")}
    async with stack.session.post(stack.url + "/mcp", json=body, headers=headers) as resp:
        return resp.status, await resp.json()


def _admin(stack: Stack, who: str = CAROL) -> str:
    """A token for `who` granted everything by its role claim."""
    return stack.token(who, roles=("admin",))


async def _asked(stack: Stack, topic: str, who: str = CAROL) -> dict[str, Any]:
    """Start `ask_and_wait(topic)`: its input_required result (the backend is waiting for the answer)."""
    status, first = await _call(stack, "ask_and_wait", {"topic": topic}, _admin(stack, who))
    assert status == 200, first
    result = first["result"]
    assert result["resultType"] == "input_required", result
    (key, request), = result["inputRequests"].items()
    assert request["method"] == "sampling/createMessage"
    assert request["params"]["messages"][0]["content"]["text"] == topic
    return result


async def _backend_saw(event: Any) -> None:
    """Wait (in a thread: the backend's events are threading.Events) until the backend set `event`."""
    assert await asyncio.to_thread(event.wait, 15), "the backend never got there"


def _held(stack: Stack) -> Any:
    return stack.app[MCP_STATE].held


async def test_sdk_2026_client_answers_two_mid_call_requests_of_a_2025_backend(stack: Stack) -> None:
    """The SDK's own 2026-07-28 client, unchanged: two rounds (sampling, then elicitation), one result."""
    asked: list[str] = []

    async def sampling(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        asked.append("sampling")
        text = params.messages[0].content.text  # type: ignore[union-attr]
        return types.CreateMessageResult(role="assistant", model="m", content=types.TextContent(type="text",
                                                                                                text=f"re: {text}"))

    async def elicitation(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append("elicitation")
        return types.ElicitResult(action="accept", content={"name": "carol"})

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {_admin(stack)}"})
    client = Client(streamable_http_client(stack.url + "/mcp", http_client=http), mode="2026-07-28",
                    sampling_callback=sampling, elicitation_callback=elicitation)
    async with http, client:
        result = await client.call_tool("ask__ask_twice", {"topic": "moon"})
    assert not result.is_error, result
    assert result.content[0].text == "llm said: re: moon; user: carol"  # type: ignore[union-attr]
    assert asked == ["sampling", "elicitation"]
    assert len(_held(stack)) == 0 and _held(stack).held == 0 and len(stack.app[MCP_STATE].pending) == 0


async def test_another_subjects_retry_is_refused_and_forwards_nothing(stack: Stack, asking: Backend) -> None:
    first = await _asked(stack, "foreign")
    key = next(iter(first["inputRequests"]))
    retry = {"inputResponses": {key: ANSWER}, "requestState": first["requestState"]}
    posted = len(asking.requests)
    status, refused = await _call(stack, "ask_and_wait", {"topic": "foreign"}, _admin(stack, MALLORY), retry)
    assert status == 400 and refused["error"]["code"] == -32602, refused
    assert refused["error"]["message"] == "Invalid or expired requestState"
    assert len(asking.requests) == posted  # nothing reached the backend
    assert not SEEN["foreign"].cancelled.is_set()
    # The owner's retry still works: the foreign attempt neither used nor ended the call.
    status, final = await _call(stack, "ask_and_wait", {"topic": "foreign"}, _admin(stack), retry)
    assert status == 200 and final["result"]["content"][0]["text"] == "llm said: tides", final
    await _backend_saw(SEEN["foreign"].finished)


async def test_a_retry_is_bound_to_its_arguments_and_used_once(stack: Stack) -> None:
    first = await _asked(stack, "bound")
    key = next(iter(first["inputRequests"]))
    retry = {"inputResponses": {key: ANSWER}, "requestState": first["requestState"]}
    status, other = await _call(stack, "ask_and_wait", {"topic": "other"}, _admin(stack), retry)
    assert status == 400 and other["error"]["code"] == -32602
    status, final = await _call(stack, "ask_and_wait", {"topic": "bound"}, _admin(stack), retry)
    assert final["result"]["content"][0]["text"] == "llm said: tides"
    status, again = await _call(stack, "ask_and_wait", {"topic": "bound"}, _admin(stack), retry)
    assert status == 400 and again["error"]["message"] == "Invalid or expired requestState"


async def test_a_retrys_arguments_must_be_the_same_json_not_merely_equal_in_python(stack: Stack) -> None:
    """1 == 1.0 == True in Python; a retry is bound to its arguments' canonical JSON."""
    status, first = await _call(stack, "ask_and_wait", {"topic": "exact", "pause": 0}, _admin(stack))
    assert status == 200 and first["result"]["resultType"] == "input_required", first
    key = next(iter(first["result"]["inputRequests"]))
    retry = {"inputResponses": {key: ANSWER}, "requestState": first["result"]["requestState"]}
    status, loose = await _call(stack, "ask_and_wait", {"topic": "exact", "pause": 0.0}, _admin(stack), retry)
    assert status == 400 and loose["error"]["message"] == "Invalid or expired requestState", loose
    status, final = await _call(stack, "ask_and_wait", {"pause": 0, "topic": "exact"}, _admin(stack), retry)
    assert status == 200 and final["result"]["content"][0]["text"] == "llm said: tides", final  # key order is no matter


async def test_a_retry_decided_for_another_server_ends_the_held_call(stack: Stack) -> None:
    """A reload may route the tool's name elsewhere: the retry was decided for that server, so the held
    call (on the old one) is ended and the retry answered −32602, never continued on the old server."""
    from gateway.keys import SERVERS
    from gateway.mcp import bridge
    from gateway.mcp.protocol import RpcFailure

    first = await _asked(stack, "moved")
    held = _held(stack).claim(first["requestState"], (CAROL, "ask__ask_and_wait", b'{"topic":"moved"}'))
    assert isinstance(held, bridge.Held)
    elsewhere = dataclasses.replace(stack.app[SERVERS].get("ask"), name="other")
    writer = bridge.HeldCall(held.call.request, stack.app[MCP_STATE], elsewhere, "modern", 99, "/mcp")
    with pytest.raises(RpcFailure) as failure:
        await bridge.resume(held, writer, {"inputResponses": {}})
    assert failure.value.code == -32602 and failure.value.message == "Invalid or expired requestState"
    await _backend_saw(SEEN["moved"].cancelled)
    assert not SEEN["moved"].finished.is_set() and _held(stack).held == 0


async def test_a_held_round_outlives_the_backends_idle_timeout_while_the_agent_answers(
    tmp_path: Path, pg_dsn: str, asking: Backend
) -> None:
    """The backend waits, silent, for the agent's answer: its `timeout` (an idle limit) must not end the
    call then — the answer's own limit applies while a relayed request is outstanding."""
    servers = {"ask": {"url": asking.url, "timeout": 0.5}}
    async with gateway_stack(tmp_path, pg_dsn, servers) as slow_stack:
        first = await _asked(slow_stack, "patient")
        await asyncio.sleep(1.5)  # the agent takes three idle limits to answer
        assert not SEEN["patient"].cancelled.is_set()
        key = next(iter(first["inputRequests"]))
        retry = {"inputResponses": {key: ANSWER}, "requestState": first["requestState"]}
        status, final = await _call(slow_stack, "ask_and_wait", {"topic": "patient"}, _admin(slow_stack), retry)
        assert status == 200 and final["result"]["content"][0]["text"] == "llm said: tides", final


async def test_a_bare_response_from_a_2026_agent_does_not_answer_a_held_call(stack: Stack) -> None:
    """Only a retry (decided again by policy) answers a held call's request; a bare JSON-RPC response is refused."""
    first = await _asked(stack, "bare")
    key = next(iter(first["inputRequests"]))
    headers = {"Authorization": f"Bearer {_admin(stack)}", "Accept": ACCEPT, "Content-Type": "application/json",
               "MCP-Protocol-Version": "2026-07-28"}
    async with stack.session.post(stack.url + "/mcp", json={"jsonrpc": "2.0", "id": key, "result": ANSWER},
                                  headers=headers) as resp:
        assert resp.status == 400, await resp.text()
        assert "inputResponses" in (await resp.json())["error"]["message"]
    retry = {"inputResponses": {key: ANSWER}, "requestState": first["requestState"]}
    status, final = await _call(stack, "ask_and_wait", {"topic": "bare"}, _admin(stack), retry)
    assert status == 200 and final["result"]["content"][0]["text"] == "llm said: tides", final  # still held


async def test_a_denied_retry_cancels_the_held_backend_call(stack: Stack) -> None:
    """The retry is decided again: the caller lost its role meanwhile, so it is denied and the backend's
    handler is cancelled (notifications/cancelled), not left waiting."""
    first = await _asked(stack, "denied")
    key = next(iter(first["inputRequests"]))
    retry = {"inputResponses": {key: ANSWER}, "requestState": first["requestState"]}
    status, denied = await _call(stack, "ask_and_wait", {"topic": "denied"}, stack.token(CAROL), retry)
    assert status == 200 and denied["result"]["isError"], denied
    assert "Denied by gateway policy" in denied["result"]["content"][0]["text"]
    await _backend_saw(SEEN["denied"].cancelled)
    assert not SEEN["denied"].finished.is_set()
    assert len(_held(stack)) == 0 and _held(stack).held == 0


async def test_an_agent_leaving_during_a_round_cancels_the_held_backend_call(stack: Stack) -> None:
    """2026-07-28: closing the connection is the cancel, for a held call too."""
    seen = SEEN.setdefault("left", Seen())
    call = asyncio.ensure_future(_call(stack, "ask_and_wait", {"topic": "left", "pause": 60}, _admin(stack)))
    await _backend_saw(seen.started)
    # Never parked (so nothing is counted in HeldCalls): what must end is the held call's own task.
    rounds = [t for t in asyncio.all_tasks() if getattr(t.get_coro(), "__name__", "") == "_rounds"]
    assert len(rounds) == 1
    call.cancel()  # the agent's connection closes while the round waits for the backend
    await _backend_saw(seen.cancelled)
    done, running = await asyncio.wait(rounds, timeout=10)
    assert not running and all(t.cancelled() for t in done)
    assert len(stack.app[MCP_STATE].pending) == 0


@pytest.mark.parametrize(("state", "message"), [(42, "requestState must be a string"),
                                                  ("mcpgw-state-forged", "Invalid or expired requestState")])
async def test_a_malformed_or_unknown_request_state_is_a_clear_error(stack: Stack, state: Any, message: str) -> None:
    status, answer = await _call(stack, "ask_and_wait", {"topic": "x"}, _admin(stack), {"requestState": state})
    assert status == 400 and answer["error"] == {"code": -32602, "message": message, **(
        {"data": {"reason": "invalid_request_state"}} if isinstance(state, str) else {})}


async def test_a_call_not_retried_in_time_is_cancelled_at_the_backend(tmp_path: Path, pg_dsn: str,
                                                                      asking: Backend) -> None:
    async with _stack(tmp_path, pg_dsn, asking, input_timeout="0.3") as stack:
        first = await _asked(stack, "expired")
        await _backend_saw(SEEN["expired"].cancelled)  # the gateway told the backend when time ran out
        key = next(iter(first["inputRequests"]))
        retry = {"inputResponses": {key: ANSWER}, "requestState": first["requestState"]}
        status, late = await _call(stack, "ask_and_wait", {"topic": "expired"}, _admin(stack), retry)
        assert status == 400 and late["error"]["message"] == "Invalid or expired requestState"
        assert _held(stack).held == 0 and len(stack.app[MCP_STATE].pending) == 0


async def test_held_calls_are_bounded_per_subject(tmp_path: Path, pg_dsn: str, asking: Backend) -> None:
    async with _stack(tmp_path, pg_dsn, asking, max_held_calls_per_subject="1") as stack:
        await _asked(stack, "held-1")
        status, refused = await _call(stack, "ask_and_wait", {"topic": "held-2"}, _admin(stack))
        assert status == 429, refused
        assert "MCPGW_GATEWAY_MCP_MAX_HELD_CALLS_PER_SUBJECT" in refused["error"]["message"]
        await _backend_saw(SEEN["held-2"].cancelled)  # the refused call is not left running
        assert not SEEN["held-1"].cancelled.is_set()
        await _asked(stack, "held-3", MALLORY)  # another subject has its own share
        assert _held(stack).held == 2
