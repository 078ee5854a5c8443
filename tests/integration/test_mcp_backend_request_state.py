"""A 2026-07-28 backend's own `requestState` (an `input_required` result's) is honoured only for the
subject, server, tool and arguments it was issued for, and only while live — on `/mcp` and on the
passthrough: real gateway, PDP and SDK backend (gateway/mcp/sealed_state.py)."""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from gateway.mcp.backchannel import STATE_PREFIX
from tests.fixtures.backends import Backend, mcp_backend, mcp_backend_factory  # noqa: F401  (fixtures)
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import ACCEPT, ADMIN, DEV, META, modern_headers

AGGREGATED = ("/mcp", "alpha__chatty")
PASSTHROUGH = ("/servers/alpha/mcp", "chatty")
CAPS = {**META, "io.modelcontextprotocol/clientCapabilities": {"sampling": {}}}
ANSWER = {"role": "assistant", "content": {"type": "text", "text": "answered"}, "model": "m"}
SEALED = "mcpgw-sealed-"


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}}) as s:
        yield s


async def _post(stack: Stack, path: str, subject: str, body: dict[str, Any], name: str) -> tuple[int, Any]:
    hdrs = {**stack.headers(subject), "Accept": ACCEPT, "Content-Type": "application/json",
            **modern_headers(body["method"], name)}
    async with stack.session.post(stack.url + path, json=body, headers=hdrs) as resp:
        text = await resp.text()
        status = resp.status
    events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:") and line[5:].strip()]
    return status, events[-1] if events else json.loads(text)


async def _asked(stack: Stack, where: tuple[str, str], topic: str = "admin's secret plan") -> tuple[dict[str, Any], str, str]:
    """Admin's call of chatty, answered `input_required` by the backend: the call, its state, the request key."""
    path, name = where
    params: dict[str, Any] = {"name": name, "arguments": {"topic": topic}, "_meta": CAPS}
    call = {"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": params}
    _, first = await _post(stack, path, ADMIN, call, name)
    result = first["result"]
    assert result["resultType"] == "input_required"
    assert not result["requestState"].startswith(STATE_PREFIX)  # the backend's own, not a held call's
    (key, _), = result["inputRequests"].items()
    return call, result["requestState"], key


def _retry(call: dict[str, Any], state: Any, key: str, **changed: Any) -> dict[str, Any]:
    params = {**call["params"], "inputResponses": {key: ANSWER}, "requestState": state, **changed}
    return {**call, "id": 6, "params": params}


async def _refused(stack: Stack, backend: Backend, where: tuple[str, str], subject: str,
                   retry: dict[str, Any]) -> None:
    """The retry gets the answer to a requestState that continues nothing (docs/mcp.md "Era bridging"),
    and nothing reaches the backend (which would refuse some of these itself: the SDK binds arguments)."""
    backend.clear()
    status, answer = await _post(stack, where[0], subject, retry, where[1])
    error = answer.get("error") or {}
    assert (status, error.get("code"), error.get("message"), (error.get("data") or {}).get("reason")) == (
        400, -32602, "Invalid or expired requestState", "invalid_request_state"), answer
    assert "tools/call" not in backend.methods(), "the retry was forwarded"


async def _completes(stack: Stack, where: tuple[str, str], retry: dict[str, Any]) -> None:
    status, answer = await _post(stack, where[0], ADMIN, retry, where[1])
    assert status == 200 and answer["result"]["content"][0]["text"] == "llm said: answered", answer


@pytest.mark.parametrize("where", [AGGREGATED, PASSTHROUGH], ids=["mcp", "passthrough"])
async def test_a_backend_request_state_is_honoured_only_for_the_subject_it_was_issued_to(
        stack: Stack, mcp_backend: Backend, where: tuple[str, str]) -> None:
    """Another subject retrying with admin's state does not continue admin's call; admin's own retry does."""
    call, state, key = await _asked(stack, where)
    await _refused(stack, mcp_backend, where, DEV, _retry(call, state, key))
    await _completes(stack, where, _retry(call, state, key))


@pytest.mark.parametrize("where", [AGGREGATED, PASSTHROUGH], ids=["mcp", "passthrough"])
async def test_a_backend_request_state_is_honoured_only_for_the_arguments_it_was_issued_for(
        stack: Stack, mcp_backend: Backend, where: tuple[str, str]) -> None:
    call, state, key = await _asked(stack, where)
    await _refused(stack, mcp_backend, where, ADMIN, _retry(call, state, key, arguments={"topic": "something else"}))


def _bare(state: str) -> str:
    """The backend's own state taken out of the gateway's envelope (its payload is not secret)."""
    if not state.startswith(SEALED):
        return state
    head = state[len(SEALED):].split(".")[0]
    return str(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))[1])


@pytest.mark.parametrize("where", [AGGREGATED, PASSTHROUGH], ids=["mcp", "passthrough"])
async def test_a_request_state_the_gateway_did_not_seal_is_refused(
        stack: Stack, mcp_backend: Backend, where: tuple[str, str]) -> None:
    """The backend's own state out of its envelope, or an envelope with a forged expiry, continues nothing."""
    call, state, key = await _asked(stack, where)
    await _refused(stack, mcp_backend, where, ADMIN, _retry(call, _bare(state), key))
    if state.startswith(SEALED):
        _, mac = state[len(SEALED):].split(".")
        later = base64.urlsafe_b64encode(json.dumps([9e9, _bare(state)]).encode()).rstrip(b"=").decode()
        await _refused(stack, mcp_backend, where, ADMIN, _retry(call, f"{SEALED}{later}.{mac}", key))
    await _completes(stack, where, _retry(call, state, key))  # refusals forwarded nothing: the call goes on


@pytest.fixture
async def hasty(tmp_path: Path, pg_dsn: str, mcp_backend: Backend) -> AsyncIterator[Stack]:
    """A gateway honouring a backend's state for a millisecond (MCPGW_GATEWAY_MCP_INPUT_TIMEOUT)."""
    async with gateway_stack(tmp_path, pg_dsn, {"alpha": {"url": mcp_backend.url}},
                             env={"MCPGW_GATEWAY_MCP_INPUT_TIMEOUT": "0.001"}) as s:
        yield s


@pytest.mark.parametrize("where", [AGGREGATED, PASSTHROUGH], ids=["mcp", "passthrough"])
async def test_a_backend_request_state_expires(hasty: Stack, mcp_backend: Backend, where: tuple[str, str]) -> None:
    call, state, key = await _asked(hasty, where)
    await _refused(hasty, mcp_backend, where, ADMIN, _retry(call, state, key))
