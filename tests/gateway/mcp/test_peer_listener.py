"""gateway.mcp.peer_listener: the peer listener does nothing for a forward not signed with the peers' key.

A real gateway app with a real SDK 2025-era backend holding a call (tests/fixtures/asking_backend.py);
forwards are posted straight to its peer listener, as another replica (or an intruder) would.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.keys import MCP_STATE, PEERS
from gateway.mcp import peers
from gateway.mcp.peer_link import ANSWER, END, RESUME
from gateway.mcp.peer_listener import advertised, peer_key
from gateway.settings import load_gateway_settings
from tests.fixtures.asking_backend import SEEN
from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401
from tests.gateway.mcp.test_bridge import ANSWER as SAMPLED
from tests.gateway.mcp.test_bridge import CAROL, MALLORY, _admin, _asked, _call
from tests.gateway.mcp.test_peer_link import PEER_ENV, _retry
from tests.integration.gateway_harness import Stack, gateway_stack

KEY = peer_key(PEER_ENV["MCPGW_GATEWAY_PEER_SECRET"])


@pytest.fixture(scope="module")
def asking(mcp_backend_factory: Callable[..., Backend]) -> Backend:
    return mcp_backend_factory("asking-legacy", "asking")


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, asking: Backend) -> AsyncIterator[Stack]:
    async with gateway_stack(tmp_path, pg_dsn, {"ask": {"url": asking.url}},
                             env={**PEER_ENV, "MCPGW_GATEWAY_MAX_BODY_BYTES": "4096"}) as s:
        yield s


async def _forward(stack: Stack, path: str, body: dict[str, Any], key: bytes | None = KEY,
                   when: float | None = None) -> tuple[int, bytes]:
    data = orjson.dumps(body)
    headers = {} if key is None else {peers.SIGNATURE: peers.sign(key, when or time.time(), path, data)}
    async with stack.session.post(f"http://{stack.app[PEERS].address}{path}", data=data, headers=headers) as resp:
        return resp.status, await resp.read()


def _claim_body(first: dict[str, Any], subject: str = CAROL, topic: str = "x") -> dict[str, Any]:
    return {"state": first["requestState"], "subject": subject, "name": "ask__ask_and_wait",
            "arguments": orjson.dumps({"topic": topic}).decode(), "server": "ask",
            "inputResponses": _retry(first)["inputResponses"], "progressToken": None}


@pytest.mark.parametrize(("key", "age"), [(None, 0.0), (b"k" * 32, 0.0), (KEY, 120.0)],
                         ids=["unsigned", "other-key", "stale"])
async def test_a_forward_not_signed_now_with_the_key_is_refused_and_changes_nothing(
    stack: Stack, key: bytes | None, age: float
) -> None:
    topic = f"refused-{age}-{key is None}"
    first = await _asked(stack, topic)
    for path in (RESUME, END):
        status, _ = await _forward(stack, path, _claim_body(first, topic=topic), key, time.time() - age)
        assert status == 401
    assert not SEEN[topic].cancelled.is_set() and len(stack.app[MCP_STATE].held) == 1
    status, final = await _call(stack, "ask_and_wait", {"topic": topic}, _admin(stack), _retry(first))
    assert status == 200 and final["result"]["content"][0]["text"] == "llm said: tides", final


async def test_a_signed_forward_still_needs_the_owners_binding(stack: Stack) -> None:
    first = await _asked(stack, "bound-far")
    status, body = await _forward(stack, RESUME, _claim_body(first, MALLORY, "bound-far"))
    assert status == 200 and orjson.loads(body)["error"]["code"] == -32602
    status, body = await _forward(stack, END, _claim_body(first, MALLORY, "bound-far"))
    assert status == 200 and orjson.loads(body) == {"ended": False}
    status, body = await _forward(stack, RESUME, _claim_body(first, CAROL, "bound-far"))
    lines = [orjson.loads(line) for line in body.splitlines()]
    assert status == 200 and lines[-1]["result"]["content"][0]["text"] == "llm said: tides", lines


async def test_a_forwarded_answer_is_delivered_only_for_its_subject(stack: Stack) -> None:
    status, answered = await _forward(stack, ANSWER, {"subject": CAROL, "id": "mcpgw-req-unknown",
                                                      "message": {"result": SAMPLED}})
    assert status == 200 and orjson.loads(answered) == {"answered": False}
    pending = stack.app[MCP_STATE].pending
    gid, future = pending.open(CAROL)
    try:
        reply = {"jsonrpc": "2.0", "id": gid, "result": SAMPLED}
        status, answered = await _forward(stack, ANSWER, {"subject": MALLORY, "id": gid, "message": reply})
        assert orjson.loads(answered) == {"answered": False} and not future.done()
        status, answered = await _forward(stack, ANSWER, {"subject": CAROL, "id": gid, "message": reply})
        assert orjson.loads(answered) == {"answered": True} and future.result() == reply
    finally:
        pending.close(gid)


async def test_bad_forwards_are_clear_4xx(stack: Stack) -> None:
    status, _ = await _forward(stack, ANSWER, {"subject": CAROL, "id": "x", "message": "a" * 200_000})
    assert status == 413  # the gateway's body limit (4096 here) plus the envelope
    status, text = await _forward(stack, RESUME, {"state": 1})
    assert status == 400 and b"state" in text
    status, _ = await _forward(stack, "/mcp", {})
    assert status == 404  # nothing of the gateway's own routes


@pytest.mark.parametrize("stamp", ["\u00b2", "9" * 5000], ids=["superscript", "5000-digits"])
async def test_a_malformed_signature_is_401_before_the_body_is_read(stack: Stack, stamp: str) -> None:
    url = f"http://{stack.app[PEERS].address}{ANSWER}"
    for data in (b"{}", b"a" * 200_000):  # a body past the limit is not even read: 401, not 413
        async with stack.session.post(url, data=data, headers={peers.SIGNATURE: f"{stamp}.AAAA"}) as resp:
            assert resp.status == 401, await resp.text()


def test_the_advertised_address_defaults_to_the_listener_with_its_bound_port() -> None:
    def settings(**env: str) -> Any:
        return load_gateway_settings(environ={"MCPGW_GATEWAY_NO_AUTH": "true", "MCPGW_GATEWAY_PEER_SECRET": "p" * 32,
                                              **{f"MCPGW_GATEWAY_PEER_{k.upper()}": v for k, v in env.items()}},
                                     dotenv=None)

    assert advertised(settings(listen="127.0.0.1:0"), 4711) == "127.0.0.1:4711"
    assert advertised(settings(listen="0.0.0.0:9100", advertise="10.0.0.5:9100"), 9100) == "10.0.0.5:9100"
    assert advertised(settings(listen="[::1]:0"), 4711) == "[::1]:4711"


async def test_no_peer_listener_unless_configured(tmp_path: Path, pg_dsn: str, asking: Backend) -> None:
    async with gateway_stack(tmp_path, pg_dsn, {"ask": {"url": asking.url}}) as plain:
        assert PEERS not in plain.app
        first = await _asked(plain, "plain")
        assert first["requestState"].count(".") == 0  # ids name no owner
