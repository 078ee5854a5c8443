"""prompts/get is admitted like a tool call: the prompt must be listed, only its declared arguments,
strings only; and a deny rule on a prompt argument holds however the backend's coercion reads it
(pydantic lax mode turns "02024", "2024.0", "+2024", "2_024" into 2024). /mcp and passthrough.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.integration.gateway_harness import gateway_stack
from tests.integration.mcp_helpers import ADMIN, META, modern_headers, rpc

SERVER = """
from mcp.server.mcpserver import MCPServer
mcp = MCPServer("reports")
@mcp.prompt()
def report(year: int) -> str:
    return f"report for {year!r}"
mcp.run(transport="stdio")
"""
POLICY = """
roles:
  admin:
    permissions:
      - resource: "*"
        actions: ["*"]
user_roles:
  admin@example.com: [admin]
rules:
  - name: no 2024 report
    condition:
      action: get_prompt
      mcp_server: rep
      arguments: {/year: {equals: "2024", normalize: [strip_format, nfkc, casefold, trim]}}
    action: deny
    priority: 100
default_policy: deny
"""


SPELLINGS = ["2024", "02024", "2024.0", "+2024", "2_024", " 2024 ", "\uff12\uff10\uff12\uff14"]


def prompt_get(name: str, arguments: object) -> dict[str, object]:
    return {"jsonrpc": "2.0", "id": 3, "method": "prompts/get",
            "params": {"name": name, "arguments": arguments, "_meta": META}}


@pytest.mark.parametrize("path,name", [("/mcp", "rep__report"), ("/servers/rep/mcp", "report")],
                         ids=["mcp", "passthrough"])
async def test_a_deny_on_a_prompt_argument_holds_however_the_number_is_spelled(
        tmp_path: Path, pg_dsn: str, path: str, name: str) -> None:
    servers = {"rep": {"type": "stdio", "command": sys.executable, "args": ["-c", SERVER], "timeout": 20}}
    async with gateway_stack(tmp_path, pg_dsn, servers, policy=POLICY) as stack:

        async def get(arguments: object, prompt: str = name) -> dict[str, object]:
            _, answer, _ = await rpc(stack, path, prompt_get(prompt, arguments), subject=ADMIN,
                                     headers=modern_headers("prompts/get", prompt))
            return answer

        for year in SPELLINGS:
            answer = await get({"year": year})
            assert "error" in answer and answer["error"]["code"] == -32003, (
                f"{year!r} passed the deny rule and the backend rendered: {answer}")
        rendered = await get({"year": "2023"})
        assert "report for 2023" in str(rendered.get("result")), rendered  # another year still renders
        # admission: only declared argument names, strings only, a listed prompt
        for bad, says in [({"year": "2023", "extra": "x"}, "/extra"), ({"year": 2023}, "/year"),
                          ({}, "/year"), (["2023"], "(arguments)")]:
            answer = await get(bad)
            assert answer.get("error", {}).get("code") == -32602 and says in answer["error"]["message"], (bad, answer)
        answer = await get({"year": "2023"}, prompt=name.replace("report", "missing"))
        assert answer.get("error", {}).get("code") == -32602, answer
