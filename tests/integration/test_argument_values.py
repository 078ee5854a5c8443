"""A deny rule on an argument holds however the value is spelled or typed, as the backend reads it.

A money amount typed `Decimal` is `anyOf: [number, string]` in pydantic's schema, so the strict
check admits text; the SDK backend parses `"1e6"`, `" 1000000 "`, `"1_000_000"`, `"+1000000"` to
1000000: the PDP compares a deny rule's operand by value (pdp/policy/values.py). A `format: uuid`
argument has many spellings pydantic accepts: the gateway admits only the canonical one
(gateway/calls/formats.py). Real SDK backends over stdio, real gateway and PDP.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.integration.gateway_harness import gateway_stack
from tests.integration.mcp_helpers import ACCEPT, ADMIN, META, modern_headers

SERVER = """
from decimal import Decimal
from mcp.server.mcpserver import MCPServer
mcp = MCPServer("bank")
@mcp.tool()
def transfer(to: str, amount: Decimal) -> str:
    return f"transferred {amount} to {to}"
mcp.run(transport="stdio")
"""
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
default_policy: deny
"""
AMOUNTS = ["1000000", '"1000000"', '"1e6"', '" 1000000 "', '"1_000_000"', '"+1000000"']


@pytest.mark.parametrize("entry", ["rest_invoke", "mcp"])
async def test_a_deny_on_a_decimal_amount_holds_however_it_is_spelled(tmp_path: Path, pg_dsn: str, entry: str) -> None:
    servers = {"bank": {"type": "stdio", "command": sys.executable, "args": ["-c", SERVER], "timeout": 20}}
    ran = []
    async with gateway_stack(tmp_path, pg_dsn, servers, policy=POLICY) as stack:
        for amount in AMOUNTS:
            args = '{"to": "mallory", "amount": ' + amount + "}"
            headers = {**stack.headers(ADMIN), "Content-Type": "application/json", "Accept": ACCEPT}
            if entry == "rest_invoke":
                path, body = "/mcp/invoke?mcp_server=bank", '{"tool_name": "transfer", "parameters": ' + args + "}"
            else:
                path = "/mcp"
                body = ('{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "bank__transfer", '
                        '"arguments": ' + args + ', "_meta": ' + json.dumps(META) + "}}")
                headers.update(modern_headers("tools/call", "bank__transfer"))
            async with stack.session.post(stack.url + path, data=body.encode(), headers=headers) as resp:
                text = await resp.text()
            if "transferred 1000000 to mallory" in text or "transferred 1E+6 to mallory" in text:
                ran.append(amount)
        # a different amount, however spelled, still goes through
        status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=bank", subject=ADMIN, json={
            "tool_name": "transfer", "parameters": {"to": "bob", "amount": "1e3"}})
        assert status == 200 and "transferred 1E+3 to bob" in json.dumps(body), body
    assert AMOUNTS[0] not in ran  # the control: the number itself is denied
    assert ran == [], f"the backend transferred 1,000,000 for {ran}"


UUID_SERVER = """
from uuid import UUID
from mcp.server.mcpserver import MCPServer
mcp = MCPServer("bank")
@mcp.tool()
def close_account(account: UUID) -> str:
    return f"closed {account}"
mcp.run(transport="stdio")
"""
PROTECTED = "123e4567-e89b-12d3-a456-426614174000"
OTHER = "00000000-0000-4000-8000-000000000001"
UUID_POLICY = POLICY.replace(
    "condition: {tool_name: transfer, arguments: {/amount: {equals: 1000000}}}",
    "condition: {tool_name: close_account, arguments: {/account: {equals: " + PROTECTED
    + ", normalize: [strip_format, nfkc, casefold, trim]}}}")
SPELLINGS = [PROTECTED, PROTECTED.upper().replace("-", ""), "{" + PROTECTED + "}", "urn:uuid:" + PROTECTED,
             PROTECTED.replace("-", "")]


async def test_a_deny_on_a_uuid_holds_however_the_uuid_is_spelled(tmp_path: Path, pg_dsn: str) -> None:
    """pydantic accepts five spellings of one UUID: every one but the canonical is refused, naming the argument."""
    servers = {"bank": {"type": "stdio", "command": sys.executable, "args": ["-c", UUID_SERVER], "timeout": 20}}
    ran = []
    async with gateway_stack(tmp_path, pg_dsn, servers, policy=UUID_POLICY) as stack:
        for spelling in SPELLINGS:
            status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=bank", subject=ADMIN, json={
                "tool_name": "close_account", "parameters": {"account": spelling}})
            if status == 200 and f"closed {PROTECTED}" in json.dumps(body):
                ran.append(spelling)
            elif spelling != PROTECTED:
                assert status == 400 and "/account" in json.dumps(body), (spelling, status, body)
        # the canonical spelling of another account still goes through
        status, body, _ = await stack.call("POST", "/mcp/invoke?mcp_server=bank", subject=ADMIN, json={
            "tool_name": "close_account", "parameters": {"account": OTHER}})
        assert status == 200 and f"closed {OTHER}" in json.dumps(body), body
    assert PROTECTED not in ran  # the control: the canonical spelling is denied
    assert ran == [], f"the protected account was closed for {ran}"
