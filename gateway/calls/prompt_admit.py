"""Admission of one `prompts/get` to one backend: the prompt is in the backend's prompt list (exact
name), the arguments are an object naming only the prompt's declared arguments, each a string, the
required ones present. Pure checks plus one stage (`PromptAdmission`) the call pipeline runs.

MCP types every prompt argument as a string; an SDK backend then coerces the text to its function's
parameter types (pydantic lax mode: `"02024"`, `"+2024"`, `"2_024"` are the int 2024). The PDP
decides on the text, comparing a deny rule's operand by value (pdp/policy/values.py), so the spelled
and the coerced value agree; this stage makes sure nothing else reaches the backend: an argument the
prompt does not declare, a number or an object where text is expected, a prompt the backend does not
list. Runs after the PDP, like tool admission (calls/admit.py): a refused caller learns nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web

from gateway.calls.admit import InvalidArguments, Refused
from gateway.calls.call import Call
from gateway.keys import MCP_STATE, UPSTREAM
from gateway.registry import ServerConfig


class UnknownPrompt(Refused, status=404, code="not_found"):
    """The prompt is not in the backend's current prompt list (names match exactly)."""


def find_prompt(prompts: Sequence[Any], name: str) -> Mapping[str, Any] | None:
    """The prompts/list entry called `name`, or None."""
    return next((p for p in prompts if isinstance(p, dict) and p.get("name") == name), None)


def check_prompt_arguments(prompt: str, definition: Mapping[str, Any], arguments: Any) -> None:
    """InvalidArguments unless `arguments` (None: none) fit the prompt's declared arguments."""
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise InvalidArguments(f"invalid arguments for prompt '{prompt}': (arguments): must be an object")
    declared = definition.get("arguments")
    specs = [a for a in declared if isinstance(a, dict) and isinstance(a.get("name"), str)] \
        if isinstance(declared, list) else []
    names = {a["name"] for a in specs}
    problems = [f"/{_escape(k)}: is not an argument of the prompt" for k in arguments if k not in names]
    problems += [f"/{_escape(k)}: must be of type string" for k, v in arguments.items()
                 if k in names and not isinstance(v, str)]
    problems += [f"/{_escape(a['name'])}: is required" for a in specs
                 if a.get("required") is True and a["name"] not in arguments]
    if problems:
        problems = problems[:3]
        raise InvalidArguments(f"invalid arguments for prompt '{prompt}': {'; '.join(problems)}",
                               details={"problems": problems})


def _escape(name: str) -> str:
    return name.replace("~", "~0").replace("/", "~1")


class PromptAdmission:
    """`prompts/get`: the prompt is listed by the target and its arguments fit (see the module)."""

    name = "prompt_admission"

    async def before_forward(self, request: web.Request, call: Call, server: ServerConfig) -> None:
        """Raise Refused unless a prompt request may be forwarded to `server` (other actions pass)."""
        if call.action != "get_prompt":
            return
        prompts = await request.app[MCP_STATE].lists.get(request.app[UPSTREAM], server, "prompts/list", call.caller)
        definition = find_prompt(prompts, call.name)
        if definition is None:
            raise UnknownPrompt(f"unknown prompt '{call.name}' on MCP server '{server.name}'")
        if server.validate_arguments:
            check_prompt_arguments(call.name, definition, call.arguments)
