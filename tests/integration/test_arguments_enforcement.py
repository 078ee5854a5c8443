"""Issue 9 (High 2): a deny rule holds however an argument is spelled or typed, on every entry point.

Real SDK backends (lax, as SDK servers are: pydantic turns "1000000" into 1000000) behind the real
gateway and PDP. Each bad variant must be refused at the gateway; the assertion that matters is on
the backend side: no tools/call for it ever arrived. A valid call still works on the same route.
"""
# ruff: noqa: F811  (pytest fixtures imported by name are "redefined" as arguments)

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.fixtures.backends import Backend, mcp_backend_factory  # noqa: F401  (fixtures)
from tests.integration.gateway_harness import Stack, gateway_stack
from tests.integration.mcp_helpers import ACCEPT, META, MODERN, initialize, session_headers
from tests.integration.test_gateway_rest import tool_calls

ADMIN = "admin@example.com"
TOOLS = ("transfer", "greet", "delete_records", "echo")
POLICY = """
roles:
  banker:
    permissions:
      - resource: "*"
        actions: ["*"]
user_roles:
  admin@example.com: [banker]
rules:
  - name: no big transfers
    condition: {tool_name: transfer, arguments: {/amount: {equals: 1000000}}}
    action: deny
    priority: 100
  - name: never greet the attacker
    condition:
      tool_name: greet
      arguments: {/who: {equals: attacker, normalize: [strip_format, nfkc, casefold, trim]}}
    action: deny
    priority: 100
  - name: no deletes
    condition: {tool_name: delete_records}
    action: deny
    priority: 100
default_policy: deny
"""
# JSON text of the arguments, sent as is (so `1e6` stays `1e6` on the wire).
AMOUNT_STRINGS = ['"1000000"', '"1e6"', '" 1000000"', '"1000000.0"']  # invalid: the schema says integer
AMOUNT_NUMBERS = ["1e6", "1000000.0", "1000000"]  # valid, and the deny rule holds by value
WHO = ["Attacker", "attacker ", "att\u200backer", "\uff41\uff54\uff54\uff41\uff43\uff4b\uff45\uff52", "ATTACKER"]
BAD_NAME = "delete_records "  # the PDP's rule names delete_records; this name is not in the catalog


def transfer(amount: str) -> str:
    return '{"to": "mallory", "amount": ' + amount + "}"


def greet(who: str) -> str:
    return json.dumps({"who": who})


@pytest.fixture
async def stack(tmp_path: Path, pg_dsn: str, mcp_backend_factory) -> AsyncIterator[Stack]:
    bank = mcp_backend_factory("normal", "bank", tools=TOOLS)
    bank2 = mcp_backend_factory("stateless-json", "bank2", tools=TOOLS)
    async with gateway_stack(tmp_path, pg_dsn, {"bank": {"url": bank.url}, "bank2": {"url": bank2.url}},
                             policy=POLICY) as s:
        s.backends.update(bank=bank, bank2=bank2)
        yield s


async def post_raw(stack: Stack, path: str, body: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    hdrs = {**stack.headers(ADMIN), "Content-Type": "application/json", "Accept": ACCEPT, **(headers or {})}
    async with stack.session.post(stack.url + path, data=body.encode(), headers=hdrs) as resp:
        text = await resp.text()
        if resp.content_type == "text/event-stream":
            events = [json.loads(line[5:]) for line in text.splitlines() if line.startswith("data:")]
            return resp.status, next(m for m in events if "id" in m and "method" not in m)
        return resp.status, json.loads(text) if text else None


def rpc_call(name: str, arguments: str, meta: bool = False) -> str:
    extra = ', "_meta": ' + json.dumps(META) if meta else ""
    params = '{"name": ' + json.dumps(name) + ', "arguments": ' + arguments + extra + "}"
    return '{"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": ' + params + "}"


Send = Callable[[Stack, str, str], Awaitable[tuple[int, Any]]]


async def rest_invoke(stack: Stack, tool: str, args: str) -> tuple[int, Any]:
    body = '{"tool_name": ' + json.dumps(tool) + ', "parameters": ' + args + "}"
    return await post_raw(stack, "/mcp/invoke?mcp_server=bank", body)


async def rest_broadcast(stack: Stack, tool: str, args: str) -> tuple[int, Any]:
    body = '{"tool_name": ' + json.dumps(tool) + ', "parameters": ' + args + ', "mcp_servers": ["bank", "bank2"]}'
    return await post_raw(stack, "/mcp/invoke-broadcast", body)


async def tools_invoke(stack: Stack, tool: str, args: str) -> tuple[int, Any]:
    return await post_raw(stack, f"/tools/{quote(tool)}/invoke", args)


async def mcp_prefixed(stack: Stack, tool: str, args: str) -> tuple[int, Any]:
    sid = await initialize(stack, "/mcp")
    return await post_raw(stack, "/mcp", rpc_call(f"bank__{tool}", args), session_headers(sid))


async def mcp_broadcast(stack: Stack, tool: str, args: str) -> tuple[int, Any]:
    sid = await initialize(stack, "/mcp")
    return await post_raw(stack, "/mcp", rpc_call(tool, args), session_headers(sid))


async def passthrough_2025(stack: Stack, tool: str, args: str) -> tuple[int, Any]:
    sid = await initialize(stack, "/servers/bank/mcp")
    return await post_raw(stack, "/servers/bank/mcp", rpc_call(tool, args), session_headers(sid))


async def passthrough_2026(stack: Stack, tool: str, args: str) -> tuple[int, Any]:
    headers = {"MCP-Protocol-Version": MODERN, "Mcp-Method": "tools/call", "Mcp-Name": tool}
    return await post_raw(stack, "/servers/bank/mcp", rpc_call(tool, args, meta=True), headers)


ENTRY_POINTS: dict[str, Send] = {
    "rest_invoke": rest_invoke, "rest_broadcast": rest_broadcast, "tools_invoke": tools_invoke,
    "mcp_prefixed": mcp_prefixed, "mcp_broadcast": mcp_broadcast,
    "passthrough_2025": passthrough_2025, "passthrough_2026": passthrough_2026,
}
REST = ("rest_invoke", "rest_broadcast", "tools_invoke")


def succeeded(status: int, body: Any) -> bool:
    """Whether an answer (any entry point's shape) reports the tool as run."""
    if status != 200 or not isinstance(body, dict):
        return False
    if "success" in body:
        return bool(body["success"])
    if "successful" in body:
        return bool(body["successful"])
    if "results" in body and "errors" in body:  # /tools/{name}/invoke
        return bool(body["results"])
    result = body.get("result")
    return isinstance(result, dict) and not result.get("isError") and "denied" not in json.dumps(result).lower()


def executed(stack: Stack, tool: str) -> list[dict[str, Any]]:
    return [c for b in stack.backends.values() for c in tool_calls(b, tool)]


def assert_invalid(entry: str, status: int, body: Any, field: str) -> None:
    """The strict-validation refusal: 400 naming the field on REST, −32602 on MCP routes."""
    if entry in REST:
        assert status == 400 and field in body["error"]["message"], body
    else:
        assert body["error"]["code"] == -32602 and field in body["error"]["message"], body


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
async def test_no_spelling_of_a_denied_call_reaches_the_backend(stack: Stack, entry: str) -> None:
    send = ENTRY_POINTS[entry]
    for amount in AMOUNT_STRINGS:  # the deny rule compares by value: denied before admission sees them
        status, body = await send(stack, "transfer", transfer(amount))
        assert not succeeded(status, body), (amount, body)
        assert status in (200, 403), body
    for amount in AMOUNT_NUMBERS:
        status, body = await send(stack, "transfer", transfer(amount))
        assert not succeeded(status, body), (amount, body)
        assert status in (200, 403), body
    for who in WHO:
        status, body = await send(stack, "greet", greet(who))
        assert not succeeded(status, body), (who, body)
    status, body = await send(stack, BAD_NAME, '{"table": "users"}')
    assert not succeeded(status, body), body
    # The backend side: none of it arrived (a lax backend would have run every one).
    assert executed(stack, "transfer") == executed(stack, "greet") == []
    assert executed(stack, BAD_NAME) == executed(stack, "delete_records") == []
    # And a valid call still runs, on the same route.
    status, body = await send(stack, "transfer", transfer("5"))
    assert succeeded(status, body), body
    assert "transferred 5 to mallory" in json.dumps(body)
    assert [c["params"]["arguments"] for c in executed(stack, "transfer")][:1] == [{"to": "mallory", "amount": 5}]
    status, body = await send(stack, "greet", greet("bob"))
    assert succeeded(status, body) and "hello bob" in json.dumps(body), body


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
async def test_a_name_not_in_the_catalog_is_never_forwarded(stack: Stack, entry: str) -> None:
    for name in (BAD_NAME, "Delete_records", "delete_records\u200b"):
        if entry == "passthrough_2026" and not name.isascii():
            continue  # an HTTP header (Mcp-Name) cannot carry it
        status, body = await ENTRY_POINTS[entry](stack, name, '{"table": "users"}')
        assert not succeeded(status, body), body
        if entry == "rest_invoke":
            assert status == 404 and "unknown tool" in body["error"]["message"], body
        elif entry in ("mcp_prefixed", "passthrough_2025") or (entry == "passthrough_2026" and name.strip() == name):
            # Unknown to the catalog, or (a zero-width space) not even a representable name.
            message = body["error"]["message"].lower()
            assert body["error"]["code"] == -32602 and ("unknown tool" in message or "no such tool" in message), body
        assert executed(stack, name) == executed(stack, "delete_records") == []


async def test_validation_opt_out_per_server(tmp_path: Path, pg_dsn: str, mcp_backend_factory) -> None:
    lax = mcp_backend_factory("normal", "lax", tools=TOOLS)
    servers = {"bank": {"url": lax.url, "validate_arguments": False}}
    async with gateway_stack(tmp_path, pg_dsn, servers, policy=POLICY) as s:
        status, body = await post_raw(s, "/mcp/invoke?mcp_server=bank",
                                      '{"tool_name": "echo", "parameters": {"text": 5}}')
        # Not checked here: the backend's own (lax) validation decides.
        assert status == 200 and tool_calls(lax, "echo"), body
        status, body = await post_raw(s, "/mcp/invoke?mcp_server=bank",
                                      '{"tool_name": "delete_records ", "parameters": {}}')
        assert status == 404 and tool_calls(lax, "delete_records ") == []  # the catalog still holds


async def test_policy_validate_reads_schemas_from_a_running_gateway(stack: Stack, tmp_path: Path, capsys) -> None:
    import asyncio

    from mcpgw.cli import main

    policy = tmp_path / "lint.yaml"
    policy.write_text(POLICY.replace("default_policy: deny", """  - name: typo'd amount
    condition: {tool_name: transfer, arguments: {/amount: {equals: "a million"}, /ammount: {equals: 5}}}
    action: deny
"""))
    argv = ["policy", "validate", str(policy), "--gateway", stack.url, "--token", stack.token(ADMIN)]
    assert await asyncio.to_thread(main, argv) == 0
    out = capsys.readouterr().out
    for server in ("bank", "bank2"):
        assert f'equals "a million" can never match: /amount is of type integer in the inputSchema of {server}:transfer' in out
        assert f"/ammount is not declared in the inputSchema of {server}:transfer" in out
    assert "4 warning(s)" in out
    assert await asyncio.to_thread(main, ["policy", "validate", str(policy), "--gateway", stack.url]) == 2  # no token
