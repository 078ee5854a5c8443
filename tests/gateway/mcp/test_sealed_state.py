"""A backend's requestState sealed for one call: opened only for the same binding, live, and our key."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from gateway.mcp.backchannel import InvalidState
from gateway.mcp.protocol import RpcFailure
from gateway.mcp.sealed_state import PREFIX, StateSeal, binding

KEY = b"k" * 32
CALL: dict[str, Any] = {"name": "chatty", "arguments": {"topic": "plan", "n": 1}}
BOUND = binding("admin@example.com", "alpha", "tools/call", CALL)


def test_a_sealed_state_opens_to_the_backends_own_for_the_same_call() -> None:
    seals = StateSeal(KEY, 60)
    token = seals.seal("backend-state", BOUND, now=1000.0)
    assert token.startswith(PREFIX) and "backend-state" not in token
    # The same call with its arguments in another order is the same call (canonical JSON).
    same = binding("admin@example.com", "alpha", "tools/call", {"name": "chatty", "arguments": {"n": 1, "topic": "plan"}})
    assert seals.open(token, same, now=1059.0) == "backend-state"
    assert StateSeal(KEY, 60).open(token, BOUND, now=1000.0) == "backend-state"  # another replica, same secret


@pytest.mark.parametrize("other", [
    binding("dev@example.com", "alpha", "tools/call", CALL),
    binding("admin@example.com", "beta", "tools/call", CALL),
    binding("admin@example.com", "alpha", "prompts/get", CALL),
    binding("admin@example.com", "alpha", "tools/call", {**CALL, "name": "echo"}),
    binding("admin@example.com", "alpha", "tools/call", {**CALL, "arguments": {"topic": "plan", "n": 1.0}}),
    binding("admin@example.com", "alpha", "tools/call", {**CALL, "arguments": {"topic": "plan", "n": True}}),
    binding("admin@example.com", "alpha", "tools/call", {**CALL, "arguments": {"topic": "plan"}}),
], ids=["subject", "server", "method", "tool", "1.0", "true", "fewer-arguments"])
def test_a_sealed_state_does_not_open_for_another_binding(other: bytes) -> None:
    seals = StateSeal(KEY, 60)
    with pytest.raises(InvalidState):
        seals.open(seals.seal("s", BOUND, now=1000.0), other, now=1000.0)


def test_a_sealed_state_expires() -> None:
    seals = StateSeal(KEY, 60)
    with pytest.raises(InvalidState):
        seals.open(seals.seal("s", BOUND, now=1000.0), BOUND, now=1060.5)


def _forged_payload(token: str, expires: float, state: Any) -> str:
    _, mac = token[len(PREFIX):].split(".")
    payload = base64.urlsafe_b64encode(orjson.dumps([expires, state])).rstrip(b"=").decode()
    return f"{PREFIX}{payload}.{mac}"


@pytest.mark.parametrize("forge", [
    lambda t: _forged_payload(t, 9e9, "s"),  # its expiry pushed back
    lambda t: _forged_payload(t, 1060.0, "other-state"),  # another state under the same MAC
    lambda t: StateSeal(b"x" * 32, 60).seal("s", BOUND, now=1000.0),  # another key
    lambda t: "s",  # the backend's state out of its envelope
    lambda t: t[:-2],  # a cut MAC
    lambda t: PREFIX + "!!!.???",
    lambda t: 42,  # not a string
], ids=["expiry", "state", "key", "bare", "cut", "garbage", "number"])
def test_a_forged_state_does_not_open(forge: Any) -> None:
    seals = StateSeal(KEY, 60)
    with pytest.raises(InvalidState):
        seals.open(forge(seals.seal("s", BOUND, now=1000.0)), BOUND, now=1000.0)


def test_unsealed_refuses_with_the_gateways_invalid_state_error() -> None:
    seals = StateSeal(KEY, 60)
    params = {**CALL, "requestState": seals.seal({"any": "json"}, BOUND), "inputResponses": {}}
    assert seals.unsealed(params, BOUND) == {**params, "requestState": {"any": "json"}}
    with pytest.raises(RpcFailure) as caught:
        seals.unsealed(params, binding("dev@example.com", "alpha", "tools/call", CALL))
    assert (caught.value.code, caught.value.message) == (-32602, "Invalid or expired requestState")


def test_result_seals_only_an_input_required_state() -> None:
    seals = StateSeal(KEY, 60)
    complete = {"resultType": "complete", "content": [], "requestState": "odd"}
    assert seals.result(complete, lambda: BOUND) is complete  # relayed byte for byte
    asked = {"resultType": "input_required", "inputRequests": {}, "requestState": "s"}
    sealed = seals.result(asked, lambda: BOUND)
    assert sealed["requestState"].startswith(PREFIX) and seals.open(sealed["requestState"], BOUND) == "s"
    no_state = {"resultType": "input_required", "inputRequests": {}}
    assert seals.result(no_state, lambda: BOUND) is no_state
